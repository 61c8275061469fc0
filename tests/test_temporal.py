"""The temporal gradient profile equals an independent GradientTape computation."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor
from kgrad.analysis import report, temporal_profile
from kgrad.monitor.step.host import GradientCapture
from kgrad.monitor.step.packed import TEMPORAL_POINTS, sampled_timesteps

BATCH, FEATURES = 8, 3


class MinimalCell(keras.layers.Layer):
    """A custom cell for `keras.layers.RNN`: h = tanh(x W + h U)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units))
        self.recurrent = self.add_weight(
            shape=(self.units, self.units), initializer="orthogonal"
        )

    def call(self, inputs, states):
        h = keras.ops.tanh(inputs @ self.kernel + states[0] @ self.recurrent)
        return h, [h]


RECURRENT = {
    "simple_rnn": lambda: keras.layers.SimpleRNN(4),
    "lstm": lambda: keras.layers.LSTM(4),
    "gru": lambda: keras.layers.GRU(4),
    "custom_cell": lambda: keras.layers.RNN(MinimalCell(4)),
}


def sequence_data(length, n=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, FEATURES)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y


MSE = keras.losses.MeanSquaredError()


def expected_profile(layers, target, x, y, loss=MSE):
    """Per-timestep norm of d loss / d (input of `target`), by GradientTape."""
    with tf.GradientTape() as tape:
        h = tf.constant(x)
        for layer in layers:
            if layer is target:
                tape.watch(h)
                watched = h
            h = layer(h, training=True)
        value = loss(y, h)
    grad = tape.gradient(value, watched).numpy().astype(np.float64)
    return np.sqrt((grad**2).sum(axis=tuple(i for i in range(grad.ndim) if i != 1)))


def captured_step(model, x, y):
    capture = GradientCapture(model)
    capture.install()
    try:
        capture.arm(histograms=False)
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    finally:
        capture.uninstall()
    ((_, _, captured),) = capture.read()  # one channel: the model's optimizer
    return capture, captured


@pytest.mark.parametrize("kind", sorted(RECURRENT))
@pytest.mark.parametrize("after_dense", [False, True])
def test_profile_equals_gradient_tape(kind, after_dense):
    length = 12
    rnn = RECURRENT[kind]()
    front = [keras.layers.Dense(FEATURES, activation="tanh")] if after_dense else []
    layers = [*front, rnn, keras.layers.Dense(1)]
    model = keras.Sequential([keras.Input((length, FEATURES)), *layers])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = sequence_data(length)
    expected = expected_profile(layers, rnn, x, y)

    capture, captured = captured_step(model, x, y)

    assert [layer.name for layer in capture.temporal.layers] == [rnn.name]
    assert captured["temporal_length"].tolist() == [length]
    logged = captured["temporal"][0]
    np.testing.assert_allclose(logged[:length], expected, rtol=1e-5)
    assert np.isnan(logged[length:]).all()
    assert expected[0] < expected[-1]  # a real profile, not a constant


def test_long_and_variable_sequences_keep_evenly_spaced_timesteps():
    rnn = keras.layers.GRU(4)
    layers = [rnn, keras.layers.Dense(1)]
    model = keras.Sequential([keras.Input((None, FEATURES)), *layers])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    for length in (40, 7):
        x, y = sequence_data(length, seed=length)
        expected = expected_profile(layers, rnn, x, y)
        _, captured = captured_step(model, x, y)
        kept = sampled_timesteps(length)
        assert len(kept) == min(length, TEMPORAL_POINTS)
        assert kept[0] == 0 and kept[-1] == length - 1
        assert captured["temporal_length"].tolist() == [length]
        logged = captured["temporal"][0][: len(kept)]
        np.testing.assert_allclose(logged, expected[kept], rtol=1e-5)


def test_bidirectional_directions_in_processing_order():
    length = 9
    bidirectional = keras.layers.Bidirectional(keras.layers.SimpleRNN(4))
    layers = [bidirectional, keras.layers.Dense(1)]
    model = keras.Sequential([keras.Input((length, FEATURES)), *layers])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = sequence_data(length)
    forward, backward = bidirectional.forward_layer, bidirectional.backward_layer
    expected = {}
    for direction in (forward, backward):
        with tf.GradientTape() as tape:
            h = tf.constant(x)
            tape.watch(h)
            outputs = [
                d(h) if d is direction else tf.stop_gradient(d(h))
                for d in (forward, backward)
            ]
            value = MSE(y, layers[1](tf.concat(outputs, -1)))
        grad = tape.gradient(value, h).numpy().astype(np.float64)
        expected[direction.name] = np.sqrt((grad**2).sum(axis=(0, 2)))

    capture, captured = captured_step(model, x, y)

    names = [layer.name for layer in capture.temporal.layers]
    assert sorted(names) == sorted(expected)
    for row, name in enumerate(names):
        want = expected[name][::-1] if name == backward.name else expected[name]
        np.testing.assert_allclose(captured["temporal"][row][:length], want, rtol=1e-5)
    # In processing order both directions end near their output.
    for row in range(2):
        assert captured["temporal"][row][0] < captured["temporal"][row][length - 1]


def test_masked_layer_is_refused_with_a_warning():
    length = 6
    model = keras.Sequential(
        [
            keras.Input((length, FEATURES)),
            keras.layers.Masking(0.0),
            keras.layers.LSTM(4),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = sequence_data(length)
    x[:, :2] = 0.0  # padded at the start
    with pytest.warns(UserWarning, match="no temporal gradient profile.*mask") as w:
        _, captured = captured_step(model, x, y)
    (warning,) = [r for r in w if "temporal" in str(r.message)]
    assert warning.filename == __file__  # the user's line, not Keras's frames
    assert np.isnan(captured["temporal"]).all()
    assert captured["has_grad"].all()  # the other statistics are still taken


def test_monitor_writes_the_profile_tags(tmp_path, events):
    length = 20
    rnn = keras.layers.SimpleRNN(4, name="rnn")
    layers = [rnn, keras.layers.Dense(1)]
    model = keras.Sequential([keras.Input((length, FEATURES)), *layers], name="m")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = sequence_data(length)
    expected = expected_profile(layers, rnn, x, y)
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=0, figure_secs=0
    )
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[monitor])
    monitor.flush()

    logged = events(tmp_path / "train")
    kept = sampled_timesteps(length)
    tags = {tag for tag in logged if tag.startswith("temporal_grad/")}
    name = "rnn"  # rnn.path without the model's name (`kgrad.tags.in_model`)
    assert tags == {f"temporal_grad/{name}/t{t:02d}" for t in kept} | {
        f"temporal_grad/{name}/t_first_over_last"
    }
    for t in kept:
        step, value = logged[f"temporal_grad/{name}/t{t:02d}"][0]
        assert step == 1
        assert float(value) == pytest.approx(expected[t], rel=1e-5)
    ratio = float(logged[f"temporal_grad/{name}/t_first_over_last"][0][1])
    assert ratio == pytest.approx(expected[0] / expected[-1], rel=1e-5)
    assert [step for step, _ in logged["kgrad/temporal_profile"]] == [2]


def test_finding_fires_on_rnn_simple_not_on_gru_adding_problem_t50(tmp_path):
    from kgrad.lab import experiments
    from kgrad.lab.experiments import RunConfig

    kinds, ratios = {}, {}
    for cell in ("rnn_simple", "gru"):
        config = RunConfig(
            cell,
            data_kwargs={"length": 50, "n_train": 1000, "n_test": 64},
            model_kwargs={"units": 32},  # the demo's 64 units need more steps
            learning_rate=1e-2,
            steps=150,
        )
        with open(os.devnull, "w") as quiet:
            result = experiments.train(config, tmp_path / cell, stream=quiet)
        kinds[cell] = [f.kind for f in result.findings]
        scalars, _ = report.load_run(result.log_dir)
        ratios[cell] = temporal_profile.ratios(scalars, "rnn_01")[-1][1]
    assert "vanishing_in_time" in kinds["rnn_simple"], ratios
    assert "vanishing_in_time" not in kinds["gru"], ratios
    assert ratios["rnn_simple"] < 1e-5 and ratios["gru"] > 1e-2


def test_profile_under_mixed_precision_is_unscaled():
    keras.config.set_dtype_policy("mixed_float16")  # conftest restores float32
    length = 8
    rnn = keras.layers.LSTM(4)
    layers = [rnn, keras.layers.Dense(1, dtype="float32")]
    model = keras.Sequential([keras.Input((length, FEATURES)), *layers])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    x, y = sequence_data(length)
    expected = expected_profile(layers, rnn, x, y)
    _, captured = captured_step(model, x, y)
    # float16 activations: a few parts in a thousand; the loss scale is 2**15.
    np.testing.assert_allclose(captured["temporal"][0][:length], expected, rtol=2e-2)
