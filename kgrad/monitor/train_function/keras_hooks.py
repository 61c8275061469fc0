"""Every place where kgrad relies on Keras internals, in one module.

Keras gives callbacks no access to gradients, so the capture reaches into the
trainer. Each touch point below is a function or constant of this module; no
other module of kgrad touches these attributes (of Keras or of TensorFlow).
Checked against Keras 3.15.1 (TensorFlow backend, TensorFlow 2.21):
`kgrad.monitor.train_function.hooks_check.check()` probes every one on the
installed versions, and tests/test_keras_hooks.py fails naming the broken one
(and removes each in turn to see it named).

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
- `optimizer._backend_update_step`, its `assign`, `assign_add`,
  `assign_sub`, `optimizer._use_weight_decay`, and the class being defined
  under `keras.src.optimizers.` (`builtin_update_step`, `decays`): the update
  of each large variable is measured on the increment Keras's own optimizers
  assign (`kgrad.monitor.step.increments`); else the update ratio falls back
  to a copy of the weights (`KERAS_OPTIMIZERS` only).
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
- With `noise_scale=True` (`kgrad.monitor.step.per_example`): `Layer.call`
  of Dense, EinsumDense, Conv1D/2D, Embedding, LayerNormalization and
  BatchNormalization wrapped on the instance, and, for the duration of one
  call of the first four, `layer.activation` swapped on the instance for
  `activation(identity(z))`: their `call` must apply `self.activation` to the
  affine output (checked on each class's source); their weights read as
  `kernel`, `bias`, `embeddings`, `gamma`, `beta`, `moving_mean`,
  `moving_variance`; else those layers get no per-example norms (named).
- `RNN.call(sequences, initial_state, mask, training)` (SimpleRNN, LSTM,
  GRU, `RNN` with any cell): wrapped to pass the input through an identity
  whose gradient gives the temporal profile; else no temporal tags (`tags.temporal`).
- `model._flatten_layers(include_self=False, recursive=...)`: every layer,
  nested ones included, and which layer holds which; else no activation
  statistics, no BatchNorm list.
- `model.train_function` is Keras's, made and cached by Keras: kgrad never
  makes one (`kgrad.monitor.train_function.function_watch` wraps it in a
  guard for the duration of `fit`). kgrad reads its `tf.function`s'
  `experimental_get_tracing_count()` through the closure Keras makes, to
  know whether it was traced before the monitor was attached; else a
  function traced before the monitor logs nothing.
- `model.make_train_function(force=True)`: retraces a function traced
  before the monitor was attached, or traced without the histogram code,
  when `kgrad.monitor.train_function.same_trace` proves that the new trace
  trains the same; else that fit logs nothing, or norms only (and says so).
- The closure Keras's train function makes over its `tf.function`s
  (`train_tf_functions`) and TensorFlow's
  `Function._list_all_concrete_functions()` (`concrete_functions`): the
  traces `same_trace` compares; else no retrace is proven, nothing is
  logged by a function traced before the monitor.
- `optimizer._all_reduce_sum_gradients`: under several replicas, wrapped to
  read the gradients Keras all-reduced; else no gradient statistics there.
- `model._loss_tracker.total` and `.count` (set by `Trainer.compile`, updated
  in `TensorFlowTrainer.train_step`): read on the host at the begin and end of
  a logged batch for the loss of that step (`kgrad.monitor.step.loss_probe`); else
  no `tags.LOSS` tag.
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
  Called through `jax_hooks.print_msg`, which needs no TensorFlow.
- TensorFlow's autograph runs the code it converts from files it writes,
  named `__autograph_generated_file*.py` (`autograph_generated`, handed to
  `kgrad.checks.skip_generated_code`): `kgrad.checks.warn` skips their
  frames, with kgrad's, Keras's and TensorFlow's, to attribute a warning
  raised while Keras traces to the user's `model.fit(...)` line; else such a
  warning points at generated code.

Example:

>>> restore = []
>>> class Thing: pass
>>> patch(Thing(), "x", 1, restore)  # set on the instance, undone by restore
"""

import contextlib

import keras
import tensorflow as tf

from kgrad import checks

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


_CONSTANT_BUILDS = tuple(
    "Optimizer SGD Adam AdamW Adamax Adagrad Adadelta Adafactor Ftrl Lamb Lion "
    "Muon Nadam RMSprop".split()
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


def train_function_traced(function):
    """Whether Keras's train function `function` exists and was traced.

    Keras's train function is a closure over its `tf.function`s (none with
    `run_eagerly=True`); it is traced at its first call.
    """
    if function is None:
        return False
    return any(
        f.experimental_get_tracing_count() > 0 for f in train_tf_functions(function)
    )


def train_tf_functions(function):
    """The `tf.function`s Keras's train function `function` calls directly.

    `TensorFlowTrainer._make_function` returns a closure over
    `multi_step_on_iterator` (a `tf.function` that calls the step).
    """
    inner = [function]
    for cell in getattr(inner[0], "__closure__", None) or ():
        try:
            inner.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return [f for f in inner if hasattr(f, "experimental_get_tracing_count")]


def concrete_functions(tf_function):
    """Every trace (concrete function) of `tf_function` (TensorFlow internal)."""
    return list(tf_function._list_all_concrete_functions())


def retrace_train_function(model):
    """Makes Keras make its train function anew (traced at its next call)."""
    model.make_train_function(force=True)


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


AUTOGRAPH_FILE_MARK = "__autograph_generated"


def autograph_generated(filename):
    """Whether `filename` is a file autograph wrote the code it converts to."""
    return AUTOGRAPH_FILE_MARK in filename


checks.skip_generated_code(autograph_generated)


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


# Keras optimizers whose `update_step` changes each variable with one call of
# `assign_sub`, `assign_add` or `assign`, and whose weight decay is Keras's own.
KERAS_OPTIMIZERS = frozenset(
    "Adadelta Adafactor Adagrad Adam AdamW Adamax Ftrl Lamb Lion Nadam RMSprop "
    "SGD".split()
)
ASSIGNS = ("assign", "assign_add", "assign_sub")


def builtin_update_step(optimizer):
    """Whether `optimizer` is one of Keras's own `KERAS_OPTIMIZERS`.

    Its class is defined under `keras.src.optimizers.` and it has the
    `assign*` methods and `_backend_update_step`, which applies the update of
    each variable with one assignment.
    """
    kind = type(optimizer)
    return (
        kind.__name__ in KERAS_OPTIMIZERS
        and kind.__module__.startswith("keras.src.optimizers.")
        and all(
            hasattr(optimizer, name) for name in ASSIGNS + ("_backend_update_step",)
        )
    )


def update_step_wrapper(optimizer, wrap):
    """`(optimizer, "_backend_update_step", wrapper)`, the wrapper `wrap(step)`."""
    return optimizer, "_backend_update_step", wrap(optimizer._backend_update_step)


def decays(optimizer, tensor):
    """Whether `optimizer` applies weight decay to `tensor` (`_use_weight_decay`)."""
    if optimizer.weight_decay is None:
        return False
    return bool(optimizer._use_weight_decay(tensor))
