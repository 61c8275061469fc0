"""The usual alternative to kgrad: an extra `tf.GradientTape` pass on a probe batch.

Configuration `d` of `benchmarks/perf/overhead.py`: how Weights & Biases' Keras
callback gets gradients (one more forward and backward pass on a fixed batch
at the logging steps, norms written with `tf.summary`).

Example:

    callback = ProbeGradientCallback("/tmp/logs", (x[:64], y[:64]), loss)
    model.fit(x, y, callbacks=[callback])
"""

import keras
import tensorflow as tf

from kgrad import tags


class ProbeGradientCallback(keras.callbacks.Callback):
    """Logs gradient norms of a fixed probe batch, as W&B's Keras callback does.

    At the logged steps (those of `GradientMonitor`'s norm schedule) it runs one
    more forward and backward pass on the probe batch inside a `tf.function`
    and writes the norms with `tf.summary`.

    Args:
        log_dir: Directory of the summaries.
        probe: `(x, y)` numpy arrays, the probe batch.
        loss_fn: The compiled loss.
        every: Logging period in steps. Defaults to `100`.
        first_steps: Also log each of the first `first_steps` steps. Defaults
            to `50`.
    """

    def __init__(self, log_dir, probe, loss_fn, every=100, first_steps=50):
        super().__init__()
        self.log_dir = log_dir
        self.probe = probe
        self.loss_fn = loss_fn
        self.every = every
        self.first_steps = first_steps
        self._writer = None
        self._function = None

    def on_train_begin(self, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
            x, y = self.probe
            self._x, self._y = tf.constant(x), tf.constant(y)
            self._function = tf.function(self._log_norms)
        self._base = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_base = self._base

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch_base + batch + 1
        self._base = step
        if step <= self.first_steps or step % self.every == 0:
            self._function(tf.constant(step, tf.int64))

    def on_train_end(self, logs=None):
        self._writer.flush()

    def _log_norms(self, step):
        model = self.model
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = model(self._x, training=True)
            loss = self.loss_fn(self._y, y_pred)
        grads = tape.gradient(loss, variables)
        with self._writer.as_default(step=step):
            for variable, grad in zip(variables, grads, strict=True):
                if grad is not None:
                    tf.summary.scalar(
                        tags.tag(tags.GRAD_NORM, variable.path), tf.norm(grad)
                    )
            tf.summary.scalar(tags.GLOBAL_GRAD_NORM, tf.linalg.global_norm(grads))
