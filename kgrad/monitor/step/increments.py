"""The update of each large variable, measured on the increment the optimizer assigns.

The update ratio needs `||w_after - w_before||` per variable. Holding
`w_before` until the optimizer has run costs a copy of the weights, which is
what made a logged step cost twice the model in memory. For a large variable
(more than `stats.STACK_LIMIT` entries, where a copy matters) kgrad measures
the update where the optimizer makes it instead: Keras's built-in optimizers
change a variable with one call of `optimizer.assign_sub`, `assign_add` or
`assign` in `update_step`. A wrapper around those takes the sum of squares of
the change, in a cond of its own that runs on logged steps only, before the
assignment, so the increment is read where Keras already holds it.

- Weight decay runs before `update_step` (`w1 = w0 - c * w0`, with
  `c = learning_rate * weight_decay`), so the whole update is
  `w2 - w0 = (w2 - w1) - c / (1 - c) * w1`: folded in from the weights the
  optimizer is about to change.
- The norms of one `apply` are written to the channel's `update_sq`
  variable, since Keras may run `update_step` inside its own conds (gradient
  accumulation, loss scaling).
- The change is the increment the optimizer assigns: it equals the weights'
  change up to the rounding of that assignment.

The small variables, those with a constraint (applied after the update), and
every variable of an optimizer that is not one of
`keras_hooks.KERAS_OPTIMIZERS`, that
overwrites its weights with their moving average (`use_ema` with
`ema_overwrite_frequency`) or that runs under several replicas keep the
snapshot of the weights before `apply` (`kgrad.monitor.step.host`).

Tested in tests/test_increments.py.

Example:

```python
increments = Increments(optimizer, replicated=False)
positions = increments.positions(record.variables)  # large, unconstrained
with increments.tracking(positions, record.variables, armed, channel.update_sq):
    optimizer.apply(grads, record.variables)  # update_sq: one norm per position
```
"""

import contextlib
import threading

import keras
import numpy as np
import tensorflow as tf

from kgrad import checks
from kgrad.monitor.step import backend_tensorflow as backend
from kgrad.monitor.step import stats as stats_lib
from kgrad.monitor.train_function import keras_hooks


def innermost(optimizer):
    """The optimizer that runs `update_step` (inside a `LossScaleOptimizer`)."""
    while getattr(optimizer, "inner_optimizer", None) is not None:
        optimizer = optimizer.inner_optimizer
    return optimizer


def measurable(optimizer, replicated):
    """Whether the updates of `optimizer` can be measured on its increments."""
    inner = innermost(optimizer)
    overwrites = getattr(inner, "use_ema", False) and getattr(
        inner, "ema_overwrite_frequency", None
    )
    return not replicated and not overwrites and keras_hooks.builtin_update_step(inner)


def _underlying(variable):
    """The `tf.Variable` that Keras's TensorFlow optimizer assigns."""
    return variable.value if isinstance(variable, keras.Variable) else variable


class _Apply:
    """What one traced `apply` measures: positions, the arming, the norms."""

    def __init__(self, positions, variables, armed, target):
        self.position_of = {id(_underlying(variables[p])): p for p in positions}
        self.positions = positions
        self.armed = armed
        self.target = target
        self.norms = {}


class Increments:
    """Measures the updates of large variables on the increments of one optimizer.

    Args:
        optimizer: The monitored optimizer (a `LossScaleOptimizer` is looked
            through).
        replicated: Whether the model trains on several replicas.
    """

    def __init__(self, optimizer, replicated):
        self.optimizer = innermost(optimizer)
        self.usable = measurable(optimizer, replicated)
        self._active = {}  # thread -> _Apply
        self._warned = False

    def positions(self, variables):
        """Positions in `variables` whose update is measured on its increment."""
        if not self.usable:
            return []
        return [
            i
            for i, v in enumerate(variables)
            if _entries(v) > stats_lib.STACK_LIMIT
            and getattr(v, "constraint", None) is None
            and v.dtype in ("float16", "bfloat16", "float32", "float64")
        ]

    @contextlib.contextmanager
    def tracking(self, positions, variables, armed, target):
        """Measures the increments of `positions` during an `apply` traced inside.

        Args:
            positions: From `positions(variables)`.
            variables: The variables of the record.
            armed: Scalar bool tensor: the step is logged.
            target: float64 variable of shape `[None]`; receives one squared
                update norm per position, in order (NaN for a variable that
                `update_step` did not assign once).
        """
        if not positions:
            yield
            return
        key = threading.get_ident()
        self._active[key] = _Apply(positions, variables, armed, target)
        try:
            yield
        finally:
            self._active.pop(key, None)

    def wrappers(self):
        """`[(object, attribute, wrapper)]` around the optimizer's assignments."""
        if not self.usable:
            return []
        inner = self.optimizer
        out = [
            (inner, name, self._wrap_assign(name, getattr(inner, name)))
            for name in keras_hooks.ASSIGNS
        ]
        out.append(keras_hooks.update_step_wrapper(inner, self._wrap_update))
        return out

    def _wrap_assign(self, kind, assign):
        increments = self

        def assign_and_measure(variable, value):
            state = increments._active.get(threading.get_ident())
            position = None
            if state is not None:
                position = state.position_of.get(id(_underlying(variable)))
            if position is not None:
                norm = backend.cond(
                    state.armed,
                    lambda: increments._squared_update(kind, variable, value),
                    lambda: tf.constant(0.0, tf.float64),
                )
                if position in state.norms:  # assigned twice: not measurable
                    increments._warn_twice(variable)
                    norm = tf.constant(np.nan, tf.float64)
                state.norms[position] = norm
            return assign(variable, value)

        return assign_and_measure

    def _wrap_update(self, update):
        increments = self

        def update_and_keep_norms(grads, trainable_variables, learning_rate):
            result = update(grads, trainable_variables, learning_rate)
            state = increments._active.get(threading.get_ident())
            if state is not None and state.norms:
                nan = tf.constant(np.nan, tf.float64)
                state.target.assign(
                    tf.stack([state.norms.get(p, nan) for p in state.positions])
                )
            return result

        return update_and_keep_norms

    def _squared_update(self, kind, variable, value):
        """float64 `||w_after - w_before||**2` of one assignment (and the decay)."""
        tensor = _underlying(variable)
        dtype = tensor.dtype
        value = tf.cast(value, dtype)  # as Keras's own assign does
        if isinstance(value, tf.IndexedSlices):
            value = tf.scatter_nd(
                tf.cast(value.indices, tf.int64)[:, None],
                value.values,
                tf.shape(tensor, out_type=tf.int64),
            )
        change = value - tensor if kind == "assign" else value
        decay = self._decay(tensor)
        if decay is not None:
            sign = -1.0 if kind == "assign_sub" else 1.0
            change = change - tf.cast(sign * decay, dtype) * tensor
        return stats_lib.sum_of_squares(stats_lib.Blocks([change]))[0]

    def _decay(self, tensor):
        """`c / (1 - c)` of the weight decay applied to `tensor`, or `None`."""
        inner = self.optimizer
        if not keras_hooks.decays(inner, tensor):
            return None
        c = tf.cast(inner.learning_rate, tf.float64) * tf.cast(
            inner.weight_decay, tf.float64
        )
        return c / (1.0 - c)

    def _warn_twice(self, variable):
        if self._warned:
            return
        self._warned = True
        checks.warn(
            f"kgrad: {type(self.optimizer).__name__} assigned "
            f"{getattr(variable, 'name', variable)} twice in one update; its "
            "update ratio is not logged (NaN)."
        )


def _entries(variable):
    return tf.TensorShape(variable.shape).num_elements() or 0
