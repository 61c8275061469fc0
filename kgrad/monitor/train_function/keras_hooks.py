"""Every place where kgrad relies on Keras internals, in one module.

Keras gives callbacks no access to gradients, so the capture reaches into the
trainer. Each touch point below is a function or constant of this module; no
other module of kgrad touches these attributes. Checked against Keras 3.15.1
(TensorFlow backend, TensorFlow 2.21); `check()` verifies them on the
installed Keras and `tests/test_keras_hooks.py` fails naming the broken one.

Each hook: what kgrad does with it; what breaks if Keras changes it.

- `optimizer.apply(grads, variables)`: replaced on the optimizer instance
  (`patch`) to see the gradients the optimizer applies; else nothing is
  captured.
- `optimizer._trainable_variables`: the variables when `apply` gets none;
  else gradients cannot be matched to variables.
- `optimizer.iterations`: the update count, read on the host; else the steps
  of the event files are wrong.
- `optimizer.gradient_accumulation_steps`, `optimizer._iterations` (batches
  seen), `optimizer._accumulated_gradients`, `optimizer._get_variable_index`:
  with gradient accumulation, which batch updates and the average gradient it
  applies; else the accumulating batches are logged as steps.
- `keras.backend.backend()`: kgrad captures with TensorFlow only; other
  backends are refused.
- `optimizer.built`, `optimizer.build`: builds the optimizer before the
  statistics' first trace; else the first logged step fails to trace.
- `TensorFlowTrainer.train_step` and `model._symbolic_build`'s habit of
  building `model.optimizer` for `model.trainable_variables`: kgrad builds it
  before the first trace of a model that trains with Keras's own step, so
  the train function is traced once, not twice, when the optimizer's
  `build` is one of Keras's that only create constants (`constant_build`);
  else step 1 traces twice, as a plain `fit` does.
- `LossScaleOptimizer.dynamic_scale` and `.check_finite`,
  `optimizer.loss_scale_factor`: unscale gradients, mark skipped steps; else
  gradients are logged scaled (by 2**15 at first).
- `Layer.call` of Dense, Conv*, Activation and ReLU layers, and of
  BatchNormalization layers: wrapped on the instance to read the layer's
  output (and which BatchNorm layers train, at which batch size) in the same
  forward pass; `layer.activation` and everything `get_config` and saving
  read stay untouched; else no activation statistics, no BatchNorm list.
- `RNN.call(sequences, initial_state, mask, training)` (SimpleRNN, LSTM,
  GRU, `RNN` with any cell): wrapped to pass the input through an identity
  whose gradient gives the temporal profile; else no `temporal_grad/*` tags.
- `model._flatten_layers(include_self=False, recursive=...)`: every layer,
  nested ones included, and which layer holds which; else no activation
  statistics, no BatchNorm list.
- `model.train_function` is Keras's, made and cached by Keras: kgrad never
  makes one. It wraps the current one in a guard for the duration of `fit`
  (same calls, same results) to remove its wrappers if the step raises, and
  reads its `tf.function`s' `experimental_get_tracing_count()` through the
  closure Keras makes, to know whether it was traced before the monitor was
  attached; else a function traced before the monitor logs nothing.
- `model.make_train_function(force=True)`: retraces a function traced
  before the monitor was attached (when `retrace_keeps_training`); else that
  fit logs nothing (and says so).
- `optimizer._all_reduce_sum_gradients`: under several replicas, wrapped to
  read the gradients Keras all-reduced; else no gradient statistics there.
- `model._loss_tracker.total` and `.count` (set by `Trainer.compile`, updated
  in `TensorFlowTrainer.train_step`): read on the host at the begin and end of
  a logged batch for the loss of that step (`kgrad.monitor.step.loss_probe`); else
  no `kgrad/loss` tag.
- `model.steps_per_execution`: the steps one call of the train function runs;
  else off-schedule steps are logged.
- `control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE` (TensorFlow): set
  while kgrad builds its conds (`conds_kept_as_functions`) so that a step not
  logged calls one branch instead of visiting both; else those steps cost a
  little more.
- `strategy.extended.should_save_summary` (TensorFlow): only the chief of a
  multi-worker run writes event files (`is_chief`); else every worker writes.
- `keras.src.utils.io_utils.print_msg`: prints findings the way Keras's own
  callbacks print (stdout, or absl logging after
  `keras.config.disable_interactive_logging()`); else no finding is printed.

Example:

>>> import keras
>>> check()  # [] when every hook holds on the installed Keras
[]
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

CHECKED_WITH = "3.15.1"


def patch(obj, name, value, restore):
    """Sets `obj.name = value` on the instance; appends the undo to `restore`.

    The attribute goes straight into the instance's `__dict__`
    (`object.__setattr__`), past the tracking `__setattr__` of Keras layers and
    optimizers: kgrad sets only functions, which nothing tracks, and it does so
    around every train step, where Keras's tracking would cost ~10 us a call.

    Example:

    >>> restore = []
    >>> class Thing: pass
    >>> thing = Thing()
    >>> patch(thing, "x", 1, restore)
    >>> restore.pop()(); hasattr(thing, "x")
    False
    """
    had_own = name in vars(obj)
    old = vars(obj).get(name)

    def undo():
        if had_own:
            object.__setattr__(obj, name, old)
        else:
            object.__delattr__(obj, name)

    object.__setattr__(obj, name, value)
    restore.append(undo)


def all_layers(model):
    """Every layer of `model`, nested ones included, the model itself excluded."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def optimizer_variables(optimizer):
    """The variables an optimizer updates when `apply` is called without them."""
    return list(optimizer._trainable_variables)


def build_optimizer(optimizer, variables):
    """Builds `optimizer` for `variables` if `apply` has not built it yet."""
    if not optimizer.built:
        optimizer.build(variables)


def build_optimizer_before_tracing(model):
    """Builds `model.optimizer` before the first trace, when that changes nothing.

    Without a distribution strategy Keras builds the optimizer inside the
    first trace of its train function, and `tf.function` then traces it a
    second time (variables were created). That first trace never runs: the
    variables get their initial values (lifted out of it), and whatever else
    `build` does in it is dropped. Keras's own `_symbolic_build` builds it
    beforehand, for `model.trainable_variables`, under a strategy; kgrad does
    the same for a built model that trains with Keras's own `train_step`
    (whose optimizer updates exactly those variables), so its train function
    is traced once, when an eager build gives the same values as the dropped
    trace: only for the optimizers of `constant_build` (Keras's built-ins,
    whose `build` creates variables with constant initial values). Another
    optimizer (`ScheduleFreeAdamW` assigns the weights to its momentum in
    `build`, which the dropped trace never does) is built by Keras, as without
    kgrad. Returns whether it built the optimizer.
    """
    optimizer = getattr(model, "optimizer", None)
    keras_step = _keras_train_step()
    if optimizer is None or optimizer.built or keras_step is None:
        return False
    own_step = "train_step" not in vars(model) and type(model).train_step is keras_step
    if not own_step or not all(layer.built for layer in [model, *all_layers(model)]):
        return False
    if not constant_build(optimizer):
        return False
    with model.distribute_strategy.scope():
        optimizer.build(model.trainable_variables)
    return True


_CONSTANT_BUILDS = (
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "Adamax",
    "Adagrad",
    "Adadelta",
    "Adafactor",
    "Ftrl",
    "Lamb",
    "Lion",
    "Muon",
    "Nadam",
    "RMSprop",
)


def constant_build(optimizer):
    """Whether `optimizer.build` only creates variables with constant values.

    True for the `build` of Keras's optimizers listed in `_CONSTANT_BUILDS`
    (read in Keras 3.15.1: each creates zeros or a constant, nothing else),
    inherited by a subclass that does not override it, and for a
    `LossScaleOptimizer` around one of them. A `build` of anyone else may
    assign values (e.g. `ScheduleFreeAdamW`, a custom optimizer).
    """
    build = type(optimizer).build
    if build is keras.optimizers.LossScaleOptimizer.build:
        return constant_build(optimizer.inner_optimizer)
    known = (getattr(keras.optimizers, name, None) for name in _CONSTANT_BUILDS)
    return any(build is cls.build for cls in known if cls is not None)


def _keras_train_step():
    from keras.src.backend.tensorflow import trainer

    return getattr(getattr(trainer, "TensorFlowTrainer", None), "train_step", None)


def recurrent_call_of(layer):
    """The attribute wrapped to see a recurrent layer's input sequence: `"call"`."""
    return "call"


def train_function_traced(model):
    """Whether `model.train_function` exists and Keras has traced it.

    Keras's train function is a closure over its `tf.function`s (none with
    `run_eagerly=True`); it is traced at its first call.
    """
    function = model.train_function
    if function is None:
        return False
    inner = [unguarded(function)]
    for cell in getattr(inner[0], "__closure__", None) or ():
        try:
            inner.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return any(
        f.experimental_get_tracing_count() > 0
        for f in inner
        if hasattr(f, "experimental_get_tracing_count")
    )


def retrace_keeps_training(model):
    """Whether a retrace of Keras's train function would train the same.

    Keras keeps a traced train function when `trainable` changes without a
    recompile, and that function still updates the variables it was traced
    with. For a model on Keras's own `train_step`, those are the variables
    its optimizer was built for: a retrace keeps training the same exactly
    when they are still `model.trainable_variables`. A custom `train_step`
    chooses its variables itself; it is retraced.
    """
    optimizer = getattr(model, "optimizer", None)
    own_step = "train_step" not in vars(model) and (
        type(model).train_step is _keras_train_step()
    )
    if not own_step or optimizer is None or not optimizer.built:
        return True
    built_for = [id(v) for v in optimizer_variables(optimizer)]
    return built_for == [id(v) for v in model.trainable_variables]


def retrace_train_function(model):
    """Makes Keras make its train function anew (traced at its next call)."""
    model.make_train_function(force=True)


def guard_train_function(model, on_call):
    """Wraps Keras's current train function in `guard` (same results).

    `on_call(inner, call)` runs `call()` (Keras's function `inner` on the
    iterator) and may catch what it raises. Keras may replace the function at any time
    (`make_train_function(force=True)`, a compile): `guarded` says whether
    the guard is still the one in place.

    Returns:
        The guard installed as `model.train_function`.
    """
    inner = model.train_function

    def guard(iterator):
        return on_call(inner, lambda: inner(iterator))

    guard._kgrad_inner = inner
    model.train_function = guard
    return guard


def guarded(model, guard):
    """Whether `guard` is still `model.train_function`."""
    return guard is not None and model.train_function is guard


def unguard_train_function(model, guard):
    """Puts Keras's function back if `guard` is still in place."""
    if guarded(model, guard):
        model.train_function = guard._kgrad_inner


def remove_stale_guard(model):
    """Puts Keras's function back from a guard a stopped `fit` left behind."""
    inner = getattr(model.train_function, "_kgrad_inner", None)
    if inner is not None:
        model.train_function = inner


def unguarded(function):
    """Keras's own train function: `function`, or the one a kgrad guard wraps."""
    return getattr(function, "_kgrad_inner", function)


def loss_totals(model):
    """`(total, count)` of the model's loss tracker, or `None` if it has none.

    Args:
        model: A compiled Keras model.

    Returns:
        Two floats, or `None` when the model has no loss tracker.
    """
    tracker = getattr(model, "_loss_tracker", None)
    total = getattr(tracker, "total", None)
    count = getattr(tracker, "count", None)
    if total is None or count is None:
        return None
    return float(total.numpy()), float(count.numpy())


def child_layers(layer):
    """The layers `layer` holds directly (sub-models count as one layer)."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def gradient_reduction_wrapper(optimizer, keep):
    """`(object, name, wrapper)` that hands `keep` Keras's all-reduced gradients.

    The wrapper replaces `optimizer._all_reduce_sum_gradients` (of the inner
    optimizer of a `LossScaleOptimizer`, which receives the unscaled
    gradients) on the instance, under several replicas.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    reduce = inner._all_reduce_sum_gradients

    def reduce_and_keep(grads_and_vars):
        reduced = reduce(grads_and_vars)
        keep([grad for grad, _ in reduced])
        return reduced

    return inner, "_all_reduce_sum_gradients", reduce_and_keep


def backend():
    """The name of the Keras backend (`"tensorflow"`, `"jax"`, `"torch"`, ...)."""
    return keras.backend.backend()


def require_tensorflow_backend():
    """Raises `ValueError` naming the backend unless it is TensorFlow."""
    name = backend()
    if name != "tensorflow":
        raise ValueError(
            "GradientMonitor captures gradients with the TensorFlow backend only "
            "(set KERAS_BACKEND=tensorflow before importing keras). Received: "
            f"Keras backend {name!r}"
        )


def updates_now(optimizer):
    """float64 1.0 when this `apply` updates the weights, 0.0 if it accumulates."""
    steps = getattr(optimizer, "gradient_accumulation_steps", None)
    if not steps:
        return tf.constant(1.0, tf.float64)
    return tf.cast((optimizer._iterations + 1) % steps == 0, tf.float64)


def applied_gradients(optimizer, grads, variables):
    """The gradients `apply` will use: with accumulation, the batches' average.

    Meaningful at the batch that updates (`updates_now`); `None` stays `None`.
    """
    steps = getattr(optimizer, "gradient_accumulation_steps", None)
    if not steps:
        return grads
    out = []
    for grad, variable in zip(grads, variables, strict=True):
        if grad is None:
            out.append(None)
            continue
        index = optimizer._get_variable_index(variable)
        accumulated = optimizer._accumulated_gradients[index]
        grad = tf.convert_to_tensor(grad)
        out.append((grad + tf.cast(accumulated, grad.dtype)) / steps)
    return out


def is_loss_scaled(optimizer):
    """Whether the gradients handed to `optimizer.apply` are loss-scaled."""
    return isinstance(optimizer, keras.optimizers.LossScaleOptimizer) or bool(
        getattr(optimizer, "loss_scale_factor", None)
    )


def loss_scale(optimizer):
    """The factor the gradients handed to `optimizer.apply` are scaled by."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.cast(tf.convert_to_tensor(optimizer.dynamic_scale), tf.float32)
    factor = getattr(optimizer, "loss_scale_factor", None)
    return tf.constant(float(factor or 1.0), tf.float32)


def skipped_by_loss_scaling(optimizer, grads):
    """1.0 when a loss-scale optimizer will skip this step (non-finite grads)."""
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.constant(0.0, tf.float64)
    finite = optimizer.check_finite(grads)
    return tf.cast(tf.logical_not(finite), tf.float64)


def print_msg(message):
    """Prints `message` through the channel Keras's own callbacks use."""
    from keras.src.utils import io_utils

    io_utils.print_msg(message)


def check():
    """Names the hooks that do not hold on the installed Keras (`[]` if all do).

    Trains a tiny model for one step with each hook in place and checks that
    Keras went through it, and that the loss-scale internals answer as
    expected. A hook that raises counts as broken. Takes about a second.
    """
    broken = []

    def verify(hook, condition):
        try:
            holds = condition()
        except Exception:  # whatever Keras raises, the hook does not hold
            holds = False
        if not holds:
            broken.append(hook)

    model, calls = _fit_once_through_hooks(broken)
    optimizer = model.optimizer
    for hook, name in (
        ("optimizer.apply", "apply"),
        ("model.train_function", "train_function"),
        ("Layer.call", "call"),
        ("BatchNormalization.call", "bn"),
        ("RNN.call", "rnn"),
    ):
        verify(hook, lambda name=name: calls[name] > 0)
    verify(
        "model._flatten_layers",
        lambda: (
            {id(layer) for layer in model.layers}
            <= {id(layer) for layer in all_layers(model)}
        ),
    )
    verify(
        "optimizer._trainable_variables",
        lambda: (
            {id(v) for v in optimizer_variables(optimizer)}
            == {id(v) for v in model.trainable_variables}
        ),
    )
    verify("optimizer.iterations", lambda: int(optimizer.iterations.numpy()) == 1)
    verify("model.steps_per_execution", lambda: model.steps_per_execution == 1)
    verify("model.jit_compile", lambda: model.jit_compile in (True, False, "auto"))
    verify("LossScaleOptimizer.dynamic_scale/check_finite", _loss_scaling_holds)
    verify("io_utils.print_msg", _print_msg_holds)
    verify("optimizer gradient accumulation internals", _accumulation_holds)
    verify("keras.backend.backend", lambda: backend() == "tensorflow")
    verify("TensorFlowTrainer.train_step", _prebuild_holds)
    verify("optimizer.build of _CONSTANT_BUILDS", constant_builds_hold)
    verify("model._loss_tracker", lambda: loss_totals(model)[1] > 0)
    return broken


def constant_builds_hold():
    """Whether each of `_CONSTANT_BUILDS` builds eagerly as in a dropped trace.

    Builds two of each on the same weights: one eagerly (as kgrad does), one
    inside a `tf.function` trace that never runs (as a plain `fit` does), and
    compares every optimizer variable's value.
    """
    weights = [keras.Variable(np.arange(6.0).reshape(2, 3) + 1, name="w")]
    weights.append(keras.Variable(np.ones(3) * 2, name="b"))
    classes = [getattr(keras.optimizers, name, None) for name in _CONSTANT_BUILDS]
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


def _fit_once_through_hooks(broken):
    """A small model fit for one step with every wrapper kgrad installs."""
    x, y = np.ones((4, 3, 2), "float32"), np.ones((4, 2), "float32")
    rnn = keras.layers.SimpleRNN(2)
    batchnorm = keras.layers.BatchNormalization()
    layers = [rnn, keras.layers.Dense(2, activation="relu"), batchnorm]
    model = keras.Sequential([keras.Input((3, 2)), *layers, keras.layers.ReLU()])
    model.compile(optimizer="sgd", loss="mse")
    calls = {name: 0 for name in ("apply", "train_function", "call", "rnn", "bn")}
    restore = []

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    try:
        _, dense, _ = layers
        optimizer = model.optimizer
        attribute = recurrent_call_of(rnn)
        patch(rnn, attribute, counting("rnn", getattr(rnn, attribute)), restore)
        patch(optimizer, "apply", counting("apply", optimizer.apply), restore)
        patch(dense, "call", counting("call", dense.call), restore)
        patch(batchnorm, "call", counting("bn", batchnorm.call), restore)
        model.make_train_function()
        if train_function_traced(model):
            broken.append("train function traced at its first call")
        guard = guard_train_function(
            model, lambda inner, call: counting("train_function", call)()
        )
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        if not guarded(model, guard) or not train_function_traced(model):
            broken.append("model.train_function kept by fit")
        retrace_train_function(model)
        if train_function_traced(model):
            broken.append("model.make_train_function(force=True)")
    except Exception as error:
        broken.append(f"model.fit through the hooks ({type(error).__name__})")
    finally:
        while restore:
            restore.pop()()
    return model, calls


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


def is_chief(strategy):
    """Whether this process writes summaries (the chief of a multi-worker run).

    Reads `strategy.extended.should_save_summary` (a TensorFlow internal of
    the multi-worker strategies); a strategy without it writes.
    """
    return getattr(strategy.extended, "should_save_summary", True)


@contextlib.contextmanager
def conds_kept_as_functions():
    """Keeps the `tf.cond`s built inside as `If` ops (not lowered to Switch/Merge).

    Sets TensorFlow's module-level switch
    `control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE` while they are
    built; if a TensorFlow release drops it, the conds are lowered as usual
    (the same results, a little slower on the steps not logged).
    """
    lowering = _lowering_module()
    if lowering is None or not hasattr(lowering, _SWITCH):
        yield
        return
    before = getattr(lowering, _SWITCH)
    setattr(lowering, _SWITCH, True)
    try:
        yield
    finally:
        setattr(lowering, _SWITCH, before)


_SWITCH = "_DISABLE_LOWER_USING_SWITCH_MERGE"


def _lowering_module():
    try:
        from tensorflow.python.ops import control_flow_util_v2
    except ImportError:  # a TensorFlow without the module
        return None
    return control_flow_util_v2
