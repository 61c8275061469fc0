"""Every Keras internal kgrad relies on still holds on the installed Keras."""

import inspect
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.ops import control_flow_util_v2

from kgrad import checks
from kgrad.monitor.train_function import function_watch, hooks_check, keras_hooks
from tests.support import optimizers


def test_every_keras_hook_holds():
    broken = hooks_check.check()
    assert broken == [], (
        f"Keras {keras.__version__} no longer provides these hooks kgrad relies on "
        f"(checked with {keras_hooks.CHECKED_WITH}): {', '.join(broken)}. "
        "See the table in kgrad/monitor/train_function/keras_hooks.py for what "
        "each one does."
    )


def test_check_names_a_hook_that_is_gone(monkeypatch):
    monkeypatch.delattr(keras.optimizers.LossScaleOptimizer, "check_finite")
    assert hooks_check.check() == ["LossScaleOptimizer.dynamic_scale/check_finite"]


def test_patch_restores_the_instance():
    restore = []
    layer = keras.layers.Dense(2)
    original = layer.call
    keras_hooks.patch(layer, "call", lambda x: x, restore)
    assert layer.call is not original
    restore.pop()()
    assert "call" not in vars(layer)


@pytest.mark.parametrize("name, make", optimizers.assigning_builds())
def test_the_constant_builds_are_checked_against_a_dropped_trace(
    monkeypatch, name, make
):
    assert hooks_check.constant_builds_hold()
    # These copy the weights into a slot in `build`: an eager build differs
    # from the trace a plain fit drops, and check() says so.
    monkeypatch.setattr(keras.optimizers, name, type(make()), raising=False)
    names = (*keras_hooks._CONSTANT_BUILDS, name)
    monkeypatch.setattr(keras_hooks, "_CONSTANT_BUILDS", names)
    assert not hooks_check.constant_builds_hold()


def _strategy_extended_class():
    return type(tf.distribute.get_strategy().extended)


# Each internal that lives on a class or module, removed: check() names it.
_REMOVABLE = {
    "optimizer.apply": (lambda: keras.optimizers.Optimizer, "apply"),
    "optimizer._backend_update_step": (
        lambda: type(keras.optimizers.SGD()).__mro__[1],
        "_backend_update_step",
    ),
    "optimizer._use_weight_decay": (
        lambda: keras.src.optimizers.base_optimizer.BaseOptimizer,
        "_use_weight_decay",
    ),
    "optimizer._all_reduce_sum_gradients": (
        lambda: keras.src.backend.tensorflow.optimizer.TFOptimizer,
        "_all_reduce_sum_gradients",
    ),
    "model._flatten_layers": (lambda: keras.layers.Layer, "_flatten_layers"),
    "model.make_train_function": (
        lambda: keras.src.backend.tensorflow.trainer.TensorFlowTrainer,
        "make_train_function",
    ),
    "LossScaleOptimizer.dynamic_scale/check_finite": (
        lambda: keras.optimizers.LossScaleOptimizer,
        "check_finite",
    ),
    "io_utils.print_msg": (lambda: keras.src.utils.io_utils, "print_msg"),
    "control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE": (
        lambda: control_flow_util_v2,
        "_DISABLE_LOWER_USING_SWITCH_MERGE",
    ),
    "strategy.extended.should_save_summary": (
        _strategy_extended_class,
        "should_save_summary",
    ),
}


@pytest.mark.parametrize("name", sorted(_REMOVABLE))
def test_check_names_each_internal_that_is_gone(monkeypatch, name):
    owner, attribute = _REMOVABLE[name]
    owner = owner()
    for klass in getattr(owner, "__mro__", [owner]):  # where it is defined
        if attribute in vars(klass):
            monkeypatch.delattr(klass, attribute)
    assert name in hooks_check.check()


def test_check_names_autograph_files_named_otherwise(monkeypatch):
    monkeypatch.setattr(keras_hooks, "AUTOGRAPH_FILE_MARK", "__converted_by_tf")
    assert hooks_check.check() == ["autograph's __autograph_generated files"]


def test_a_warning_from_code_autograph_converted_points_at_the_users_line():
    @tf.function  # autograph runs `step` from a file it generates
    def step(x):
        checks.warn("kgrad: example")
        return x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        step(tf.constant(1.0))
    ((warning,),) = [caught]
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_check_names_an_optimizer_that_moved_out_of_keras_src(monkeypatch):
    monkeypatch.setattr(keras.optimizers.SGD, "__module__", "elsewhere.sgd")
    assert "optimizer._backend_update_step" in hooks_check.check()


def test_check_names_an_instance_internal_that_is_gone(monkeypatch):
    build = keras.optimizers.SGD.build

    def build_without(self, variables):
        build(self, variables)
        del self._trainable_variables

    monkeypatch.setattr(keras.optimizers.SGD, "build", build_without)
    assert "optimizer._trainable_variables" in hooks_check.check()


def test_every_internal_has_a_probe():
    names = [name for name, _ in hooks_check.INTERNALS]
    assert len(names) == len(set(names))
    assert set(_REMOVABLE) <= set(names)


def test_a_fit_goes_through_every_wrapper_kgrad_installs():
    """A small model fit for one step with each wrapper in place goes through it."""
    x, y = np.ones((4, 3, 2), "float32"), np.ones((4, 2), "float32")
    rnn = keras.layers.SimpleRNN(2)
    batchnorm = keras.layers.BatchNormalization()
    dense = keras.layers.Dense(2, activation="relu")
    model = keras.Sequential(
        [keras.Input((3, 2)), rnn, dense, batchnorm, keras.layers.ReLU()]
    )
    model.compile(optimizer="sgd", loss="mse")
    calls = {name: 0 for name in ("apply", "train_function", "call", "rnn", "bn")}
    restore = []

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    optimizer = model.optimizer
    attribute = keras_hooks.recurrent_call_of(rnn)
    keras_hooks.patch(rnn, attribute, counting("rnn", getattr(rnn, attribute)), restore)
    keras_hooks.patch(optimizer, "apply", counting("apply", optimizer.apply), restore)
    keras_hooks.patch(dense, "call", counting("call", dense.call), restore)
    keras_hooks.patch(batchnorm, "call", counting("bn", batchnorm.call), restore)
    try:
        model.make_train_function()
        assert not keras_hooks.train_function_traced(model.train_function)
        guard = function_watch.guard_train_function(
            model, lambda inner, call: counting("train_function", call)()
        )
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert function_watch.guarded(model, guard)
        assert keras_hooks.train_function_traced(function_watch.unguarded(guard))
        keras_hooks.retrace_train_function(model)
        assert not keras_hooks.train_function_traced(model.train_function)
    finally:
        while restore:
            restore.pop()()
    assert all(count > 0 for count in calls.values()), calls
    assert {id(layer) for layer in model.layers} <= {
        id(layer) for layer in keras_hooks.all_layers(model)
    }
    assert int(optimizer.iterations.numpy()) == 1
    assert keras_hooks.loss_totals(model)[1] > 0
