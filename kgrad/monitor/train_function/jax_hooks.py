"""Every Keras internal the JAX capture touches, listed, with `check()`.

The JAX twin of `kgrad.monitor.keras_hooks` (which imports TensorFlow). On
JAX, Keras's `fit` keeps the training state out of the variables during an
epoch: `JAXTrainer.fit` gathers `[v.value for v in ...]` into a tuple of
lists at the first batch of an epoch (`_get_jax_state`, which then purges the
variables), passes it through its jitted `train_step` and keeps the newest
lists in `model._jax_state`; `jax_state_sync()` writes them back at the end
of the epoch, or when a callback reads `Callback.model`.

Each internal, what kgrad does with it, and what breaks if it goes (`check()`
names it):
- `model._jax_state`, `model._jax_state_synced`: read a value mid-epoch
  without syncing the model (a tracked copy of Keras's lists).
- The `(trainable, non_trainable, optimizer, metrics)` lists `fit` passes
  `model.train_function`: the flag's new value is put in the optimizer list.
- `Callback._model`: not used; the callback keeps the model `set_model` gave.
- `optimizer._untrack_variable`: removes kgrad's variables after `fit`.
- `optimizer._trainable_variables`: the variables `apply(grads)` updates
  inside `stateless_apply`.
- `optimizer._accumulated_gradients`, `_get_variable_index`, `_iterations`:
  the gradient applied under `gradient_accumulation_steps`.
- `model._loss_tracker` (`total`, `count`): the loss of a logged step, read
  in the metrics state (without it, no `kgrad.tags.LOSS`).
- `JAXTrainer.train_step`: tells a custom `train_step` apart (warned about).
- `JAXTrainer.compute_loss_and_updates` (`self.compute_loss_and_updates`,
  looked up on the instance inside `train_step`; its `aux` holds the
  non-trainable values the state keeps) and `model._flatten_layers`: the
  activation probes (`step.jax_forward`).
- `keras.src.utils.io_utils.print_msg`: prints findings as Keras's callbacks
  print (on every backend; it needs no TensorFlow).

Tested in tests/jax/test_jax_capture.py (`check()` on the installed Keras).

Example:

```python
check()  # [] when every internal is where kgrad expects it
value = state_value(model, optimizer.iterations)  # mid-epoch, no sync
```
"""

import numpy as np


def check():
    """Names of the internals above that this Keras lacks (`[]` when all hold)."""
    import keras
    from keras.src.backend.jax import trainer

    missing = []
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    for name in ("_jax_state_synced", "_loss_tracker", "_get_jax_state"):
        if not hasattr(model, name):
            missing.append(f"model.{name}")
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    for name in (
        "_untrack_variable",
        "_trainable_variables",
        "_iterations",
        "_get_variable_index",
    ):
        if not hasattr(optimizer, name):
            missing.append(f"optimizer.{name}")
    state = model._get_jax_state(True, True, True, True)
    if not (
        isinstance(state, tuple)
        and len(state) == 4
        and all(isinstance(part, list) for part in state)
        and len(state[2]) == len(optimizer.variables)
    ):
        missing.append("the state of JAXTrainer.train_function")
    if not hasattr(trainer.JAXTrainer, "train_step"):
        missing.append("JAXTrainer.train_step")
    return missing


def custom_train_step(model):
    """Whether `model` overrides Keras's JAX `train_step`."""
    from keras.src.backend.jax.trainer import JAXTrainer

    return getattr(type(model), "train_step", None) is not JAXTrainer.train_step


def _state_list(model, kind):
    """The live list of `kind` values of the epoch, or `None` when synced."""
    state = getattr(model, "_jax_state", None)
    if not state or getattr(model, "_jax_state_synced", True):
        return None
    return state.get(kind)


def state_value(model, variable, kind="optimizer_variables", owners=None):
    """The current value of `variable` as numpy, without syncing the model.

    Args:
        model: The model being fit.
        variable: One of `owners`' variables.
        kind: The state list it lives in. Defaults to `"optimizer_variables"`.
        owners: The variables of that list, in order; `None` for
            `model.optimizer.variables`. Defaults to `None`.
    """
    values = _state_list(model, kind)
    if values is not None:
        owners = model.optimizer.variables if owners is None else owners
        return np.asarray(values[_position(owners, variable)])
    return np.asarray(variable.value)


def state_position(model, variable):
    """Where `variable` is in the optimizer state Keras passes its step."""
    return _position(model.optimizer.variables, variable)


def put_optimizer_values(state, positions, values):
    """Sets optimizer variables in the `state` Keras passes its train function.

    `state` is `(trainable, non_trainable, optimizer, metrics)` lists, as
    `JAXTrainer.fit` passes it; the lists are Keras's own, not copies.
    """
    for position, value in zip(positions, values, strict=True):
        state[2][position] = value


def _position(variables, variable):
    for i, candidate in enumerate(variables):
        if candidate is variable:
            return i
    raise KeyError(f"kgrad: {variable.path} is not in the training state")


def untrack(optimizer, variable):
    """Removes a variable kgrad added to `optimizer`."""
    optimizer._untrack_variable(variable)


def applied_variables(optimizer):
    """The variables `optimizer.apply(grads)` updates (built optimizer)."""
    return list(optimizer._trainable_variables)


def accumulation(optimizer, variables):
    """`(steps, accumulators, iterations)` under gradient accumulation, or `None`."""
    steps = getattr(optimizer, "gradient_accumulation_steps", None)
    if not steps:
        return None
    accumulators = [
        optimizer._accumulated_gradients[optimizer._get_variable_index(v)]
        for v in variables
    ]
    return steps, accumulators, optimizer._iterations


def loss_totals(model):
    """`(total, count)` of the loss tracker, mid-epoch without syncing, or `None`."""
    tracker = getattr(model, "_loss_tracker", None)
    total = getattr(tracker, "total", None)
    count = getattr(tracker, "count", None)
    if total is None or count is None:
        return None
    owners = model.metrics_variables
    return (
        float(state_value(model, total, "metrics_variables", owners)),
        float(state_value(model, count, "metrics_variables", owners)),
    )


def all_layers(model):
    """Every layer of `model`, nested ones included, the model itself excluded."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def keras_forward(model):
    """Whether Keras's own JAX `train_step` and loss run `model`, undistributed."""
    import keras
    from keras.src.backend.jax.trainer import JAXTrainer

    own = type(model).compute_loss_and_updates is JAXTrainer.compute_loss_and_updates
    return (
        own
        and not custom_train_step(model)
        and keras.distribution.distribution() is None
    )


def non_trainable_extra(model, count):
    """The value after the first `count` non-trainable values of the epoch's state."""
    values = _state_list(model, "non_trainable_variables")
    if values is None or len(values) <= count:
        return None
    return np.asarray(values[count])


def print_msg(message):
    """Prints `message` through the channel Keras's own callbacks use.

    On every backend (`kgrad.monitor.drive.findings_channel` prints with it).
    """
    from keras.src.utils import io_utils

    io_utils.print_msg(message)
