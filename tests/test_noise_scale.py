"""The noise scale (kgrad.monitor.log.noise_scale) logged by `GradientMonitor`,
against the same estimator computed from one tape per example, read back with
TensorBoard's reader."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor
from kgrad.monitor.log import noise_scale

B = 16


def _model():
    inputs = keras.Input((5, 4))
    x = keras.layers.Conv1D(6, 2, activation="relu")(inputs)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Dense(6, activation="tanh")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def _data(n=B):
    rng = np.random.default_rng(1)
    labels = rng.choice(3, size=n, p=[0.8, 0.1, 0.1])  # a clear mean gradient
    return rng.normal(size=(n, 5, 4)).astype("float32"), labels


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _explicit(model, x, y, variables):
    """`(mean_i ||g_i||^2, ||G||^2)` over `variables`, one tape per example."""
    per_example = 0.0
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            loss = LOSS(y[i : i + 1], model(x[i : i + 1], training=True))
        grads = tape.gradient(loss, variables)
        per_example += sum(float(tf.reduce_sum(g**2)) for g in grads)
    with tf.GradientTape() as tape:
        loss = LOSS(y, model(x, training=True))
    grads = tape.gradient(loss, variables)
    return per_example / len(x), sum(float(tf.reduce_sum(g**2)) for g in grads)


def test_logged_noise_scale_equals_the_estimator_on_explicit_gradients(
    tmp_path, events
):
    x, y = _data()
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=LOSS)  # weights stay
    monitor = GradientMonitor(
        tmp_path, norms_every="batch", noise_scale=True, verbose=0, figure_secs=None
    )
    model.fit(x, y, batch_size=B, epochs=3, verbose=0, callbacks=[monitor])
    monitor.flush()
    logged = events(tmp_path / "train")
    mean_sq, batch_sq = _explicit(model, x, y, model.trainable_variables)
    trace, signal = noise_scale.estimate(mean_sq, batch_sq, B)
    assert [s for s, _ in logged["noise_scale/b_simple_step"]] == [1, 2, 3]
    for _, value in logged["noise_scale/b_simple_step"]:
        np.testing.assert_allclose(value, trace / signal, rtol=1e-4)
    # the same step three times: the smoothed sums equal it too
    np.testing.assert_allclose(logged["b_simple/global"][-1][1], trace / signal, 1e-4)
    np.testing.assert_allclose(logged["noise_scale/trace_sigma"][-1][1], trace, 1e-4)
    assert float(logged["noise_scale/covered"][0][1]) == 1.0
    assert float(logged["noise_scale/batch"][0][1]) == B
    norm = model.get_layer(index=2)
    mean_sq, batch_sq = _explicit(model, x, y, norm.trainable_variables)
    trace, signal = noise_scale.estimate(mean_sq, batch_sq, B)
    layernorm = logged["noise_scale/b_simple_layernorm"][0][1]
    np.testing.assert_allclose(layernorm, trace / signal, rtol=1e-4)
    assert f"b_simple/{norm.path}" in logged


def test_layers_without_a_rule_are_named_and_left_out(tmp_path, events):
    inputs = keras.Input((5, 4))
    x = keras.layers.SimpleRNN(3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile(optimizer="sgd", loss=LOSS)
    x_np, y = _data()
    monitor = GradientMonitor(tmp_path, noise_scale=True, verbose=0, figure_secs=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x_np, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    monitor.flush()
    messages = [str(w.message) for w in caught if "noise scale" in str(w.message)]
    assert len(messages) == 1
    cell = model.layers[1].cell.path
    assert messages[0].startswith("kgrad: ") and cell in messages[0]
    covered = events(tmp_path / "train")["noise_scale/covered"]
    assert all(0.0 < float(v) < 1.0 for _, v in covered)


def test_unlogged_steps_compute_no_norms(tmp_path):
    """Only logged steps reach the rules (eager steps run one branch of a cond)."""
    from kgrad.monitor.step import per_example_rules

    calls = []
    original = per_example_rules._dense

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model = _model()
    model.compile(optimizer="sgd", loss=LOSS, run_eagerly=True)
    x, y = _data(64)
    monitor = GradientMonitor(
        tmp_path,
        norms_every=4,
        histograms_every=0,
        first_steps=0,
        noise_scale=True,
        verbose=0,
    )
    per_example_rules._dense = counting
    try:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    finally:
        per_example_rules._dense = original
    assert len(calls) == 2 * 3  # two Dense layers at steps 1, 4 and 8 of 8


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_noise_scale_must_be_a_boolean(value):
    with pytest.raises(
        TypeError, match=f"noise_scale.*Received: noise_scale={value!r}"
    ):
        GradientMonitor(noise_scale=value)
