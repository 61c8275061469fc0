"""`monitor.record(...)`: arguments checked, and written through the step logger."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor, tags


def _model_and_gradients():
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(3, name="d")], name="m"
    )
    x = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")

    def gradients():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(x) ** 2)
        return tape.gradient(loss, model.trainable_variables)

    return model, gradients


def test_histograms_as_a_bool_tensor_inside_tf_function(tmp_path, events):
    model, gradients = _model_and_gradients()
    monitor = GradientMonitor(tmp_path, histogram_bins=4)

    @tf.function
    def step_fn(step):
        monitor.record(
            gradients(), model.trainable_variables, step, histograms=step % 2 == 0
        )

    for step in range(1, 5):
        step_fn(tf.constant(step, tf.int64))
    monitor.record(gradients(), model.trainable_variables, 5, histograms=False)
    logged = events(tmp_path / "train")
    expected = np.linalg.norm(gradients()[0].numpy())
    norms = logged["grad_norm/m/d/kernel"]
    assert [s for s, _ in norms] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([float(v) for _, v in norms], expected, rtol=1e-5)
    histograms = logged["grad_hist/m/d/kernel"]
    assert [s for s, _ in histograms] == [2, 4]
    assert all(h[:, 2].sum() == 6 * 3 for _, h in histograms)


@pytest.mark.parametrize(
    "flag", ["yes", 1, tf.constant(1.0), tf.constant([True, False])]
)
def test_other_histograms_values_raise_a_type_error_naming_it(tmp_path, flag):
    model, gradients = _model_and_gradients()
    monitor = GradientMonitor(tmp_path)
    with pytest.raises(
        TypeError,
        match=r"`histograms` must be True, False or a "
        r"scalar bool tensor.*Received: histograms=",
    ):
        monitor.record(gradients(), model.trainable_variables, 1, histograms=flag)

    @tf.function
    def step_fn():  # refused at trace time, before any statistic is traced
        monitor.record(gradients(), model.trainable_variables, 1, histograms=flag)

    with pytest.raises(TypeError, match="Received: histograms="):
        step_fn()
    assert not (tmp_path / "train").exists()


def test_grads_and_variables_of_different_lengths_raise_naming_both(tmp_path):
    model, gradients = _model_and_gradients()
    monitor = GradientMonitor(tmp_path)
    with pytest.raises(ValueError, match="Received: 1 grads for 2 variables"):
        monitor.record(gradients()[:1], model.trainable_variables, 1)
    assert not (tmp_path / "train").exists()


@pytest.mark.parametrize("step", [-1, np.int64(-3), tf.constant(-1)])
def test_a_negative_step_raises_naming_it(tmp_path, step):
    model, gradients = _model_and_gradients()
    monitor = GradientMonitor(tmp_path)
    message = r"`step` must be a non-negative integer. Received: step=\S*-"
    with pytest.raises(ValueError, match=message):
        monitor.record(gradients(), model.trainable_variables, step)


def test_a_negative_step_tensor_inside_tf_function_fails_when_run(tmp_path):
    model, gradients = _model_and_gradients()
    monitor = GradientMonitor(tmp_path)

    @tf.function
    def step_fn(step):
        monitor.record(gradients(), model.trainable_variables, step)

    step_fn(tf.constant(0, tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be non-negative"):
        step_fn(tf.constant(-1, tf.int64))


def test_record_goes_through_the_step_logger_like_fit(tmp_path, events):
    """Run claim, steps written once, the run described, and findings."""
    model, gradients = _model_and_gradients()
    monitor = GradientMonitor(tmp_path, verbose=0)
    for step in (1, 2, 2, 1, 3):  # a step at or before the last is not written again
        monitor.record(gradients(), model.trainable_variables, step)
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged["grad_norm/m/d/kernel"]] == [1, 2, 3]
    assert tags.RUN_INFO in logged
    assert monitor.findings.current == []  # diagnosed: a healthy run

    nan = [tf.fill(tf.shape(g), float("nan")) for g in gradients()]
    monitor.record(nan, model.trainable_variables, 4)
    assert [f.kind for f in monitor.findings.current] == ["nonfinite"]
    assert tags.FINDINGS in events(tmp_path / "train")

    other = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(2, name="e")], name="other"
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(other(np.ones((2, 6), "float32")) ** 2)
    grads = tape.gradient(loss, other.trainable_variables)
    second = GradientMonitor(tmp_path, verbose=0)
    with pytest.warns(UserWarning, match="kgrad: .*another model"):
        second.record(grads, other.trainable_variables, 1)
    assert "grad_norm/other/e/kernel" in events(tmp_path / "train_2")
