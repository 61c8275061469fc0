"""Probes every Keras and TensorFlow internal kgrad touches: `check()`.

Each entry of `INTERNALS` names one internal of
`kgrad.monitor.train_function.keras_hooks` (its table says what kgrad does
with it) and a probe: the attribute is there and, where that is cheap, it
answers as kgrad expects. No model is trained; tests/test_keras_hooks.py also
fits a model through every wrapper, and removes each internal in turn to see
`check()` name it.

Example:

>>> check()  # [] when every internal holds on the installed Keras
[]
"""

import sys

import keras
import numpy as np
import tensorflow as tf

from kgrad.monitor import requirements
from kgrad.monitor.train_function import keras_hooks
from kgrad.monitor.train_function.keras_hooks import (
    _SWITCH,
    _lowering_module,
    applied_gradients,
    autograph_generated,
    build_optimizer,
    build_optimizer_before_tracing,
    builtin_update_step,
    concrete_functions,
    decays,
    is_loss_scaled,
    loss_scale,
    skipped_by_loss_scaling,
    train_function_traced,
    train_tf_functions,
    updates_now,
)


def check():
    """Names the internals that do not hold on the installed Keras (`[]` if all do).

    Runs the probe of each entry of `INTERNALS`: the attribute is there, and
    where it is cheap, it answers as kgrad expects (no model is trained). A
    probe that raises counts as broken. tests/test_keras_hooks.py also fits a
    model through every wrapper, and removes each internal to see it named.
    """
    broken = []
    for name, probe in INTERNALS:
        try:
            holds = probe()
        except Exception:  # whatever Keras raises, the internal does not hold
            holds = False
        if not holds:
            broken.append(name)
    return broken


def _has(owner, *names):
    """A probe: `owner()` has every attribute in `names`."""
    return lambda: all(hasattr(owner(), name) for name in names)


def _built_sgd(**kwargs):
    optimizer = keras.optimizers.SGD(**kwargs)
    optimizer.build([keras.Variable([0.0])])
    return optimizer


def _compiled_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _traced_functions_found():
    model = _compiled_model()
    model.make_train_function()
    function = model.train_function
    return bool(train_tf_functions(function)) and not train_function_traced(function)


def _concrete_functions_hold():
    step = tf.function(lambda x: x + 1.0)
    step(tf.constant(1.0))

    def keras_like(iterator):  # a closure over its tf.function, as Keras's
        return step(iterator)

    (found,) = train_tf_functions(keras_like)
    return found is step and len(concrete_functions(step)) == 1


def _activation_read_holds():
    """Dense, EinsumDense and Conv's `call` apply `self.activation` last."""
    import inspect

    layers = keras.layers
    calls = [layers.Dense.call, layers.EinsumDense.call, layers.Conv2D.call]
    return all("self.activation(" in inspect.getsource(call) for call in calls)


def _loss_tracker_holds():
    tracker = _compiled_model()._loss_tracker
    return hasattr(tracker, "total") and hasattr(tracker, "count")


def _weight_decay_holds():
    optimizer = keras.optimizers.AdamW(weight_decay=0.1)
    variable = keras.Variable([1.0])
    optimizer.build([variable])
    return decays(optimizer, variable) is True


def _summary_flag_holds():
    extended = type(tf.distribute.get_strategy().extended)
    return hasattr(extended, "should_save_summary")


def _lowering_holds():
    lowering = _lowering_module()
    return lowering is not None and hasattr(lowering, _SWITCH)


def constant_builds_hold():
    """Whether each of `_CONSTANT_BUILDS` builds eagerly as in a dropped trace.

    Builds two of each on the same weights: one eagerly (as kgrad does), one
    inside a `tf.function` trace that never runs (as a plain `fit` does), and
    compares every optimizer variable's value.
    """
    weights = [keras.Variable(np.arange(6.0).reshape(2, 3) + 1, name="w")]
    weights.append(keras.Variable(np.ones(3) * 2, name="b"))
    names = keras_hooks._CONSTANT_BUILDS  # read at each call (tests extend it)
    classes = [getattr(keras.optimizers, name, None) for name in names]
    classes = [cls for cls in classes[1:] if cls is not None]
    eager, traced = [cls() for cls in classes], [cls() for cls in classes]
    for optimizer in eager:
        optimizer.build(weights)

    def build_all():
        for optimizer in traced:
            optimizer.build(weights)

    tf.function(build_all).get_concrete_function()
    return all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for one, other in zip(eager, traced, strict=True)
        for a, b in zip(one.variables, other.variables, strict=True)
    )


def _prebuild_holds():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    built = build_optimizer_before_tracing(model)
    return built and len(model.optimizer.variables) > 1


def _loss_scaling_holds():
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())
    variable = keras.Variable([1.0])
    build_optimizer(scaled, [variable])
    skipped = skipped_by_loss_scaling(scaled, [tf.constant([float("inf")])])
    return (
        float(loss_scale(scaled)) > 1.0
        and float(skipped) == 1.0
        and is_loss_scaled(scaled)
    )


def _autograph_frames_hold():
    """Code autograph converts runs from files `autograph_generated` tells."""
    seen = []

    def look():
        frame = sys._getframe(1)
        while frame is not None:
            seen.append(autograph_generated(frame.f_code.co_filename))
            frame = frame.f_back

    def traced(x):
        look()
        return x + 1.0

    spec = tf.TensorSpec((), tf.float32)
    tf.function(traced, autograph=True).get_concrete_function(spec)
    return any(seen)


def _print_msg_holds():
    from keras.src.utils import io_utils

    return callable(io_utils.print_msg) and callable(
        io_utils.is_interactive_logging_enabled
    )


def _accumulation_holds():
    optimizer = keras.optimizers.SGD(1.0, gradient_accumulation_steps=2)
    variable = keras.Variable([0.0])
    build_optimizer(optimizer, [variable])
    grad = tf.constant([2.0])
    first = float(updates_now(optimizer))
    optimizer.apply([grad], [variable])
    second = float(updates_now(optimizer))
    average = applied_gradients(optimizer, [tf.constant([4.0])], [variable])[0]
    return (first, second, float(average[0])) == (0.0, 1.0, 3.0)


# Every internal kgrad touches: `(name, probe)`; `check()` runs the probes.
INTERNALS = (
    ("optimizer.apply", _has(lambda: keras.optimizers.Optimizer, "apply")),
    ("optimizer._trainable_variables", _has(_built_sgd, "_trainable_variables")),
    ("optimizer.iterations", _has(_built_sgd, "iterations")),
    ("optimizer gradient accumulation internals", _accumulation_holds),
    ("optimizer._backend_update_step", lambda: builtin_update_step(_built_sgd())),
    ("optimizer._use_weight_decay", _weight_decay_holds),
    (
        "optimizer._all_reduce_sum_gradients",
        _has(lambda: keras.optimizers.SGD, "_all_reduce_sum_gradients"),
    ),
    ("optimizer.build of _CONSTANT_BUILDS", constant_builds_hold),
    ("TensorFlowTrainer.train_step", _prebuild_holds),
    ("LossScaleOptimizer.dynamic_scale/check_finite", _loss_scaling_holds),
    ("model._flatten_layers", _has(lambda: keras.layers.Layer, "_flatten_layers")),
    ("model.make_train_function", _has(lambda: keras.Model, "make_train_function")),
    ("model.train_function's tf.functions", _traced_functions_found),
    ("tf.function._list_all_concrete_functions", _concrete_functions_hold),
    ("model._loss_tracker", _loss_tracker_holds),
    ("call applies self.activation (noise_scale)", _activation_read_holds),
    ("model.steps_per_execution", _has(_compiled_model, "steps_per_execution")),
    ("io_utils.print_msg", _print_msg_holds),
    ("keras.backend.backend", lambda: requirements.backend() == "tensorflow"),
    ("control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE", _lowering_holds),
    ("strategy.extended.should_save_summary", _summary_flag_holds),
    ("autograph's __autograph_generated files", _autograph_frames_hold),
)
