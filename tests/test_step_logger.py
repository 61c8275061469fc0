"""What the step logger writes and says when a fit logs no gradient."""

import warnings

import keras
import numpy as np

from kgrad import GradientMonitor

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def overflowing_fit(callbacks):
    """4 steps that all overflow float16: the loss-scale optimizer skips each."""
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(5, name="d"), keras.layers.Dense(3)]
        )
        optimizer = keras.optimizers.LossScaleOptimizer(
            keras.optimizers.SGD(0.1), initial_scale=2.0**40
        )
        model.compile(optimizer=optimizer, loss=LOSS)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 6)).astype("float32")
        y = rng.integers(0, 3, size=32)
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=callbacks)
    finally:
        keras.config.set_dtype_policy("float32")
    return model


def test_a_fit_whose_every_step_overflows_names_it_and_logs_the_loss_scale(
    tmp_path, events
):
    plain = overflowing_fit([])
    monitor = GradientMonitor(tmp_path, norms_every=1, figure_secs=None, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = overflowing_fit([monitor])
    for a, b in zip(plain.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(model.optimizer.iterations.numpy()) == 0  # nothing was applied
    said = [str(w.message) for w in caught if "kgrad" in str(w.message)]
    assert len(said) == 1, said
    assert (
        "skipped every step due, because the scaled gradients overflowed" in (said[0])
    )
    assert "4 batch(es) skipped, the last at loss scale 1.37439e+11" in said[0]
    assert "see the warning above" not in said[0]
    logged = events(tmp_path / "train")
    assert [(s, float(v)) for s, v in logged["loss_scale/skipped"]] == [(0, 4.0)]
    assert [(s, float(v)) for s, v in logged["loss_scale/value"]] == [(0, 2.0**37)]
    assert not any(tag.startswith("grad_norm/") for tag in logged)
