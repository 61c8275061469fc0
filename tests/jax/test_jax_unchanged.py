"""On JAX, a monitored `fit` trains bit for bit as a plain one (weights, history)."""

import keras
import numpy as np
import pytest

from tests.support.jax_fits import data, mlp, monitor


def _same(plain, monitored):
    (weights_a, history_a), (weights_b, history_b) = plain, monitored
    assert history_a == history_b
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)


def _recompile(model, x, y, callbacks):
    h1 = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=callbacks())
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    h2 = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=callbacks())
    return [h1.history, h2.history]


def _trainable_toggle(model, x, y, callbacks):
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="mse")
    h1 = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=callbacks())
    model.layers[0].trainable = True
    model.compile(optimizer="adam", loss="mse")
    h2 = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=callbacks())
    return [h1.history, h2.history]


def _several_fits(model, x, y, callbacks):
    return [
        model.fit(
            x, y, batch_size=8, epochs=2, verbose=0, callbacks=callbacks()
        ).history
        for _ in range(2)
    ]


def _unknown_length(model, x, y, callbacks):
    def batches():
        for i in range(0, len(x), 8):
            yield x[i : i + 8], y[i : i + 8]

    history = []
    for _ in range(2):
        history.append(
            model.fit(batches(), epochs=1, verbose=0, callbacks=callbacks()).history
        )
    return history


CASES = {
    "dropout_batchnorm": (dict(dropout=0.3, batchnorm=True), {}, _several_fits),
    "steps_per_execution": ({}, dict(steps_per_execution=3), _several_fits),
    "recompile": ({}, {}, _recompile),
    "trainable_toggle": ({}, {}, _trainable_toggle),
    "unknown_length": (dict(dropout=0.2), {}, _unknown_length),
    "mixed_float16": ({}, dict(policy="mixed_float16"), _several_fits),
    "gradient_accumulation": ({}, dict(accumulate=2), _several_fits),
}


def _train(case, log_dir, monitored, **monitor_args):
    model_args, compile_args, lifecycle = CASES[case]
    compile_args = dict(compile_args)
    keras.config.set_dtype_policy(compile_args.pop("policy", "float32"))
    keras.utils.set_random_seed(3)
    x, y = data(48)
    model = mlp(**model_args)
    accumulate = compile_args.pop("accumulate", None)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01, gradient_accumulation_steps=accumulate),
        loss="mse",
        **compile_args,
    )
    shared = monitor(log_dir, **monitor_args) if monitored else None

    def callbacks():
        return [shared] if monitored else []

    history = lifecycle(model, x, y, callbacks)
    keras.config.set_dtype_policy("float32")
    return [np.asarray(w) for w in model.get_weights()], history


@pytest.mark.parametrize("case", sorted(CASES))
def test_monitored_fit_trains_as_plain_fit(tmp_path, case):
    plain = _train(case, tmp_path / "plain", monitored=False)
    every_step = _train(case, tmp_path / "every", monitored=True)
    _same(plain, every_step)
    assert (tmp_path / "every" / "train").is_dir()
    if case in ("dropout_batchnorm", "steps_per_execution"):  # unlogged steps too
        defaults = _train(
            case,
            tmp_path / "defaults",
            monitored=True,
            norms_every=4,
            histograms_every=0,
        )
        _same(plain, defaults)


def test_the_optimizer_is_left_as_it_was(tmp_path):
    x, y = data(16)
    model = mlp()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, batch_size=8, verbose=0)
    before = [v.path for v in model.optimizer.variables]
    model.fit(x, y, batch_size=8, verbose=0, callbacks=[monitor(tmp_path)])
    assert [v.path for v in model.optimizer.variables] == before
    assert "apply" not in vars(model.optimizer)
    assert not getattr(model.train_function, "kgrad_guard", False)
