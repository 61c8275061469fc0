"""Every Keras internal kgrad relies on still holds on the installed Keras."""

import keras

from kgrad.monitor.train_function import keras_hooks


def test_every_keras_hook_holds():
    broken = keras_hooks.check()
    assert broken == [], (
        f"Keras {keras.__version__} no longer provides these hooks kgrad relies on "
        f"(checked with {keras_hooks.CHECKED_WITH}): {', '.join(broken)}. "
        "See the table in kgrad/monitor/train_function/keras_hooks.py for what "
        "each one does."
    )


def test_check_names_a_hook_that_is_gone(monkeypatch):
    monkeypatch.delattr(keras.optimizers.LossScaleOptimizer, "check_finite")
    assert keras_hooks.check() == ["LossScaleOptimizer.dynamic_scale/check_finite"]


def test_patch_restores_the_instance():
    restore = []
    layer = keras.layers.Dense(2)
    original = layer.call
    keras_hooks.patch(layer, "call", lambda x: x, restore)
    assert layer.call is not original
    restore.pop()()
    assert "call" not in vars(layer)


def test_the_constant_builds_are_checked_against_a_dropped_trace(monkeypatch):
    assert keras_hooks.constant_builds_hold()
    # ScheduleFreeAdamW assigns the weights to its momentum in `build`: an
    # eager build differs from the trace a plain fit drops, and check() says so.
    names = (*keras_hooks._CONSTANT_BUILDS, "ScheduleFreeAdamW")
    monkeypatch.setattr(keras_hooks, "_CONSTANT_BUILDS", names)
    assert not keras_hooks.constant_builds_hold()
