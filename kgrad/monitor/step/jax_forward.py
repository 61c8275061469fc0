"""Activation statistics of Keras's JAX forward pass, out of `jax.value_and_grad`.

Keras's JAX `train_step` calls `jax.value_and_grad(self.compute_loss_and_updates,
has_aux=True)`: the layer outputs live only inside it, and what leaves it is
its `aux`, `(unscaled_loss, y_pred, non_trainable_values, metrics_values)`,
whose non-trainable values become the state Keras keeps and passes back.

So, for a monitored `fit`, kgrad:
- wraps the `call` of each probed layer (`step.activation_kinds`) on the
  instance: while the wrapper below runs a training forward pass, it
  remembers the layer's output and returns it unchanged;
- wraps `compute_loss_and_updates` on the model instance: it passes Keras's
  own the model's non-trainable values, and, in training, computes the
  `[m, 2]` statistics of the remembered outputs under `jax.lax.cond` on the
  capture's armed flag (read in the optimizer values Keras passes; a step
  that is not logged keeps the previous ones), and returns them after the
  non-trainable values of its `aux`;
- puts a placeholder after the non-trainable values of the state Keras passes
  its train function (`extend`, from the capture's guard), so that the state
  has the same structure from the first step on: one trace.

Nothing is added to the model: `model.weights`, `get_weights` and saving
(also from a callback mid-`fit`) see what they see without kgrad, and
`jax_state_sync` pairs the model's variables with the first values of the
list. Only a model trained by Keras's own `train_step` and
`compute_loss_and_updates`, without a distribution, is probed.

Tested in tests/jax/test_jax_capture.py (statistics) and
tests/jax/test_jax_unchanged.py (training unchanged).

Example:

```python
forward = JaxForward(model)
forward.install(flag_position, arm_position)  # JaxCapture.install does it
forward.extend(state)  # the guard, before each call of Keras's function
forward.read()  # float64 [m, 2] of the last logged step
```
"""

import jax
import jax.numpy as jnp
import numpy as np

from kgrad.monitor.step import activation_kinds
from kgrad.monitor.step import jax_stats as stats
from kgrad.monitor.train_function import jax_hooks


class JaxForward:
    """The activation probes of one model on JAX.

    Args:
        model: A compiled, built `keras.Model`.
    """

    def __init__(self, model):
        self.model = model
        probes = activation_kinds.probed(jax_hooks.all_layers(model))
        self.enabled = bool(probes) and jax_hooks.keras_forward(model)
        self.probes = probes if self.enabled else []
        self._count = len(model.non_trainable_variables)
        self._outputs = None  # {id(layer): [outputs]} in a training forward pass
        self._restore = []

    def install(self, flag_position, arm_position):
        """Wraps the probed layers' `call` and `compute_loss_and_updates`."""
        self.uninstall()
        if not self.enabled:
            return
        for layer, _ in self.probes:
            self._patch(layer, "call", self._wrap_call(layer, layer.call))
        original = self.model.compute_loss_and_updates
        self._patch(
            self.model,
            "compute_loss_and_updates",
            self._wrap_loss(original, flag_position, arm_position),
        )

    def uninstall(self):
        while self._restore:
            self._restore.pop()()
        self._outputs = None

    def _patch(self, owner, name, wrapper):
        missing = object()
        before = vars(owner).get(name, missing)
        setattr(owner, name, wrapper)

        def restore():
            if before is missing:
                vars(owner).pop(name, None)
            else:
                setattr(owner, name, before)

        self._restore.append(restore)

    def placeholder(self):
        return np.full([len(self.probes), 2], np.nan, np.float32)

    def extend(self, state):
        """Appends the placeholder to the non-trainable values of Keras's `state`."""
        if self.enabled and len(state[1]) == self._count:
            state[1].append(self.placeholder())

    def read(self):
        """float64 `[m, 2]` statistics of the last logged step (NaN: not run)."""
        if not self.enabled:
            return np.zeros([0, 2])
        values = jax_hooks.non_trainable_extra(self.model, self._count)
        return np.asarray(self.placeholder() if values is None else values, np.float64)

    # -- in the traced train step -----------------------------------------
    def _wrap_call(self, layer, call):
        forward = self

        def call_and_remember(*args, **kwargs):
            outputs = call(*args, **kwargs)
            if forward._outputs is not None:
                forward._outputs.setdefault(id(layer), []).append(outputs)
            return outputs

        return call_and_remember

    def _wrap_loss(self, original, flag_position, arm_position):
        forward = self

        def compute_loss_and_updates(
            trainable, non_trainable, metrics, *args, training=False, **kwargs
        ):
            extra = list(non_trainable[forward._count :])
            non_trainable = non_trainable[: forward._count]
            optimizer_values = kwargs.get("optimizer_variables")
            if not training or not extra or optimizer_values is None:
                return original(
                    trainable,
                    non_trainable,
                    metrics,
                    *args,
                    training=training,
                    **kwargs,
                )
            forward._outputs = {}
            try:
                loss, aux = original(
                    trainable, non_trainable, metrics, *args, training=True, **kwargs
                )
                outputs, forward._outputs = forward._outputs, None
            finally:
                forward._outputs = None
            flag = optimizer_values[flag_position]
            armed = flag // 2 > optimizer_values[arm_position]
            rows = jax.lax.cond(
                armed,
                lambda o: forward._statistics(o),
                lambda o: jnp.asarray(extra[0], jnp.float32),
                outputs,
            )
            unscaled, y_pred, new_non_trainable, new_metrics = aux
            new_non_trainable = [*new_non_trainable, jax.lax.stop_gradient(rows)]
            return loss, (unscaled, y_pred, new_non_trainable, new_metrics)

        return compute_loss_and_updates

    def _statistics(self, outputs):
        """`[m, 2]` float32 rows; NaN for a layer that did not run."""
        calls = [outputs.get(id(layer)) for layer, _ in self.probes]
        return stats.activation_statistics(
            [_all_calls(c) if c else None for c in calls],
            [kind for _, kind in self.probes],
        )


def _all_calls(outputs):
    """The outputs of all calls of a layer in one step, as one batch of units."""
    if len(outputs) == 1:
        return outputs[0]
    if len({x.shape[-1] for x in outputs}) > 1:
        return outputs[-1]  # calls on different units cannot be pooled
    return jnp.concatenate([jnp.reshape(x, (-1, x.shape[-1])) for x in outputs])
