"""A function Keras traced before kgrad is retraced only when that trains the same.

Each test runs a workflow plain and monitored from the same seed and compares
the weights bit for bit and the history exactly; where a new trace would train
differently (a stateful random op, Python state changed since the trace), the
monitor keeps Keras's function, logs no gradients (or norms without
histograms) and says what to do in one warning.
"""

import gc
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor
from kgrad.monitor.train_function import same_trace

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
FIT = dict(batch_size=8, shuffle=False, verbose=0)  # 32 examples: 4 steps


class Noise(keras.layers.Layer):
    """An old-style noise layer: a stateful TensorFlow random op."""

    def call(self, x, training=False):
        return x + tf.random.normal(tf.shape(x), stddev=0.1) if training else x


class Scaled(keras.Model):
    """A custom `train_step` whose loss weight is a Python attribute."""

    weight = 1.0

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.weight * LOSS(y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    return x, rng.integers(0, 3, size=32)


def mlp(middle=None, model_class=keras.Model):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    if middle is not None:
        hidden = middle(hidden)
    return model_class(inputs, keras.layers.Dense(3, name="out")(hidden))


def both(scenario):
    """`scenario(callbacks)` plain, then monitored: `(monitored model, warnings)`."""
    results = []
    for monitored in (False, True):
        keras.utils.set_random_seed(3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, histories = scenario(monitored)
        said = [str(w.message) for w in caught if "kgrad" in str(w.message)]
        results.append((model, histories, said))
    (plain, plain_histories, _), (model, histories, said) = results
    for a, b in zip(plain.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert json.dumps(plain_histories) == json.dumps(histories)
    return model, said


def history(fit):
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


def plain_then_monitored(tmp_path, make, change=lambda model: None):
    """A plain fit, `change(model)`, then a monitored fit (or a plain one)."""
    x, y = data()

    def scenario(monitored):
        model = make()
        model.compile(optimizer="adam", loss=LOSS)
        first = model.fit(x, y, **FIT)  # Keras traces without kgrad
        change(model)
        monitor = GradientMonitor(tmp_path, norms_every=1, figure_secs=None)
        callbacks = [monitor] if monitored else []
        second = model.fit(x, y, callbacks=callbacks, **FIT)
        return model, [history(first), history(second)]

    return both(scenario)


def logged_steps(events, tmp_path):
    run = tmp_path / "train"
    if not run.exists():
        return []
    return [step for step, _ in events(run).get("grad_norm/global", [])]


def assert_refused_in_one_line(said, reason):
    assert len(said) == 1, said
    (message,) = said
    assert "\n" not in message
    assert reason in message
    assert "logs no gradients in this fit" in message
    assert "Call `model.compile(...)` or `model.make_train_function(force=True)`" in (
        message
    )


def test_an_unchanged_custom_train_step_is_retraced_and_logged(tmp_path, events):
    _, said = plain_then_monitored(tmp_path, lambda: mlp(model_class=Scaled))
    assert said == []
    assert logged_steps(events, tmp_path) == [5, 6, 7, 8]


def test_a_stateful_random_op_keeps_keras_function(tmp_path, events):
    _, said = plain_then_monitored(tmp_path, lambda: mlp(Noise()))
    assert_refused_in_one_line(said, "stateful random ops would restart")
    assert "RandomStandardNormal" in said[0]
    assert logged_steps(events, tmp_path) == []


def test_a_dropout_rate_changed_since_the_trace_keeps_keras_function(tmp_path, events):
    def zero_rate(model):
        model.get_layer("dropout").rate = 0.0  # Keras's function keeps 0.5

    make = lambda: mlp(keras.layers.Dropout(0.5, name="dropout"))  # noqa: E731
    _, said = plain_then_monitored(tmp_path, make, zero_rate)
    assert_refused_in_one_line(said, "Python state it was traced with changed")
    assert logged_steps(events, tmp_path) == []


def test_an_attribute_read_by_a_custom_train_step_keeps_keras_function(
    tmp_path, events
):
    def double(model):
        model.weight = 2.0  # Keras's function keeps 1.0

    make = lambda: mlp(model_class=Scaled)  # noqa: E731
    _, said = plain_then_monitored(tmp_path, make, double)
    assert_refused_in_one_line(said, "Python state it was traced with changed")
    assert logged_steps(events, tmp_path) == []


def test_histograms_switched_on_mid_fit_with_a_stateful_random_op(tmp_path, events):
    x, y = data()

    def scenario(monitored):
        model = mlp(Noise())
        model.compile(optimizer="adam", loss=LOSS)
        monitor = GradientMonitor(
            tmp_path, norms_every=1, histograms_every=0, figure_secs=None
        )

        class SwitchOn(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 1:
                    monitor.histograms_every = 1

        callbacks = [monitor, SwitchOn()] if monitored else [SwitchOn()]
        return model, [history(model.fit(x, y, callbacks=callbacks, **FIT))]

    _, said = both(scenario)
    assert len(said) == 1 and "RandomStandardNormal" in said[0], said
    assert "norms go on without histograms" in said[0]
    logged = events(tmp_path / "train")
    assert [step for step, _ in logged["grad_norm/global"]] == [1, 2, 3, 4]
    assert not any(tag.startswith("grad_hist/") for tag in logged)


def test_a_function_traced_under_an_earlier_monitor_is_retraced(tmp_path, events):
    x, y = data()

    def scenario(monitored):
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS)
        fits = []
        for run in ("first", "second"):
            monitor = GradientMonitor(tmp_path / run, norms_every=1, figure_secs=None)
            callbacks = [monitor] if monitored else []
            fits.append(history(model.fit(x, y, callbacks=callbacks, **FIT)))
            monitor.flush()
            del monitor, callbacks  # the first monitor is gone: its function stays
            gc.collect()
        return model, fits

    _, said = both(scenario)
    assert said == []
    second = events(tmp_path / "second" / "train")["grad_norm/global"]
    assert [step for step, _ in second] == [5, 6, 7, 8]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_the_same_code_traced_twice_compares_equal(jit_compile):
    model = mlp(keras.layers.Dropout(0.5, name="dropout"))
    model.compile(optimizer="adam", loss=LOSS, jit_compile=jit_compile)
    model.fit(*data(), **FIT)
    old = model.train_function
    model.make_train_function(force=True)
    assert same_trace.kernel_random_ops(old) == []
    assert same_trace.same_traces(old, same_trace.candidates_of(model.train_function))
    model.get_layer("dropout").rate = 0.25
    model.make_train_function(force=True)
    candidates = same_trace.candidates_of(model.train_function)
    assert not same_trace.same_traces(old, candidates)
