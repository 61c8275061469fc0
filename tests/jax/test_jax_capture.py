"""The JAX capture: logged norms are `jax.grad`'s, histograms numpy's, no TF needed."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from kgrad.monitor.step import naming
from kgrad.monitor.train_function import jax_hooks
from tests.support.events import read_events
from tests.support.jax_fits import data, mlp, monitor


def test_the_keras_internals_the_capture_touches_hold():
    assert jax_hooks.check() == []


def _first_step_gradients(model, x, y, loss_fn):
    """`jax.grad` of the loss at the model's weights, outside Keras's step."""
    variables = model.trainable_variables
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss(values):
        outputs, _ = model.stateless_call(values, non_trainable, x, training=True)
        return jnp.mean(loss_fn(y, outputs))

    grads = jax.grad(loss)([v.value for v in variables])
    return {
        v.path: float(np.linalg.norm(np.asarray(g, np.float64)))
        for v, g in zip(variables, grads, strict=True)
    }


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.SGD(0.1),
        lambda: keras.optimizers.Adam(0.01, clipnorm=1e-3),  # logged before clipping
        lambda: keras.optimizers.SGD(0.1, loss_scale_factor=128.0),  # unscaled
        lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)),
    ],
    ids=["sgd", "clipnorm", "loss_scale_factor", "loss_scale_optimizer"],
)
def test_logged_norms_equal_jax_grad_of_the_same_loss(tmp_path, optimizer):
    x, y = data(16)
    model = mlp()
    loss_fn = keras.losses.MeanSquaredError(reduction=None)
    model.compile(optimizer=optimizer(), loss="mse")
    expected = _first_step_gradients(model, x, y, loss_fn)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[monitor(tmp_path)],
    )
    events = read_events(tmp_path / "train")
    for path, norm in expected.items():
        ((step, logged),) = events[f"grad_norm/{path}"]
        assert step == 1
        np.testing.assert_allclose(float(logged), norm, rtol=1e-5)
    total = np.sqrt(sum(n * n for n in expected.values()))
    np.testing.assert_allclose(
        float(events["grad_norm/global"][0][1]), total, rtol=1e-5
    )
    assert float(events["grad_nonfinite/global"][0][1]) == 0.0
    assert "kgrad/loss" in events


def test_update_ratios_are_the_weight_changes(tmp_path):
    x, y = data(16)
    model = mlp()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    before = {v.path: np.asarray(v.value) for v in model.trainable_variables}
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[monitor(tmp_path)])
    events = read_events(tmp_path / "train")
    for v in model.trainable_variables:
        change = np.linalg.norm(np.asarray(v.value, np.float64) - before[v.path])
        weight = np.linalg.norm(before[v.path].astype(np.float64))
        if weight > 0:
            logged = float(events[f"update_ratio/{v.path}"][0][1])
            np.testing.assert_allclose(logged, change / weight, rtol=1e-4)


def test_histograms_count_every_finite_entry(tmp_path):
    x, y = data(32)
    model = mlp()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        verbose=0,
        callbacks=[monitor(tmp_path, histograms_every=1)],
    )
    events = read_events(tmp_path / "train")
    for v in model.trainable_variables:
        histogram = events[f"grad_hist/{v.path}"]
        assert [step for step, _ in histogram] == [1, 2]
        assert histogram[0][1][:, 2].sum() == np.prod(v.shape)


def test_a_custom_train_step_is_named_and_training_goes_on(tmp_path):
    class Custom(keras.Sequential):
        def train_step(self, state, data):
            return super().train_step(state, data)

    x, y = data(16)
    model = Custom(mlp().layers)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.warns(UserWarning, match="kgrad: Custom overrides `train_step`"):
        model.fit(
            x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor(tmp_path)]
        )
    # It calls Keras's own step, so the capture still sees the gradients.
    assert "grad_norm/global" in read_events(tmp_path / "train")


def test_the_noise_scale_is_refused_with_its_reason_and_the_rest_logged(tmp_path):
    x, y = data(16)
    model = mlp()
    model.compile(optimizer="sgd", loss="mse")
    reason = "kgrad: `noise_scale` needs the TensorFlow backend.*jax.value_and_grad"
    with pytest.warns(UserWarning, match=reason):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=1,
            verbose=0,
            callbacks=[monitor(tmp_path, noise_scale=True)],
        )
    logged = read_events(tmp_path / "train")
    assert "grad_norm/global" in logged
    assert not [tag for tag in logged if "b_simple" in tag or "noise_scale" in tag]


BLOCK_TENSORFLOW = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("kgrad test: TensorFlow is blocked")
sys.meta_path.insert(0, Block())
import numpy as np, keras, kgrad
from kgrad import GradientMonitor
layers = [keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)]
model = keras.Sequential(layers)
model.compile(optimizer="adam", loss="mse")
x = np.ones((16, 3), "float32")
model.fit(x, x[:, :1], batch_size=4, epochs=2, verbose=0, callbacks=[
    GradientMonitor(sys.argv[1], norms_every="batch", histograms_every=2, verbose=0)])
assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
"""


def test_the_monitor_needs_no_tensorflow(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TENSORFLOW, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = read_events(tmp_path / "train")
    assert [s for s, _ in events["grad_norm/global"]] == list(range(1, 9))
    histograms = [tag for tag in events if tag.startswith("grad_hist/")]
    assert len(histograms) == 4
    assert [s for s, _ in events[histograms[0]]] == [1, 2, 4, 6, 8]


def test_a_failure_to_read_the_state_never_stops_training(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("state gone")

    monkeypatch.setattr(jax_hooks, "state_value", broken)
    x, y = data(16)
    model = mlp()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.warns(UserWarning, match="could not be read.*state gone"):
        history = model.fit(
            x, y, batch_size=8, epochs=2, verbose=0, callbacks=[monitor(tmp_path)]
        )
    assert len(history.history["loss"]) == 2


def test_activation_statistics_are_those_of_the_layer_outputs(tmp_path):
    x, y = data(32)
    model = mlp()
    model.compile(optimizer="sgd", loss="mse")
    model.layers[0].bias.assign(np.r_[-100.0, np.zeros(15)].astype("float32"))  # dead
    model.layers[1].kernel.assign(model.layers[1].kernel * 20.0)  # saturated tanh
    kernel, bias, kernel_2, bias_2 = [w.numpy() for w in model.weights[:4]]
    callback = monitor(tmp_path)
    model.fit(
        x, y, batch_size=32, epochs=1, verbose=0, shuffle=False, callbacks=[callback]
    )
    events = read_events(tmp_path / "train")
    hidden = np.maximum(x @ kernel + bias, 0.0)  # step 1: the initial weights
    dead = np.mean(np.all(hidden <= 0.0, axis=0))
    saturated = np.abs(np.tanh(hidden @ kernel_2 + bias_2)) > 0.98
    assert dead > 0 and saturated.mean() > 0
    relu, tanh = (naming.layer_names([layer])[0] for layer in model.layers[:2])
    assert float(events[f"activation_zero/{relu}"][0][1]) == pytest.approx(
        np.mean(hidden <= 0.0)
    )
    assert float(events[f"dead_units/{relu}"][0][1]) == pytest.approx(dead)
    assert float(events[f"saturation/{tanh}"][0][1]) == pytest.approx(saturated.mean())
    assert len(model.weights) == 6 and "call" not in vars(model.layers[0])
    assert "compute_loss_and_updates" not in vars(model)
