"""Takes the statistics of the real training gradients out of Keras's JAX step.

How it works, and why:

- Keras's JAX train step is a pure function, jitted with its state donated:
  `jax.value_and_grad` of the loss, then `optimizer.stateless_apply`, which
  calls `optimizer.apply(grads)` in a `StatelessScope` and returns the new
  value of *every* variable the optimizer owns. The gradients never leave the
  jit; the optimizer's state does.
- So, for a monitored `fit`, kgrad lends the optimizer three variables
  (`kgrad_flag`, `kgrad_arm`, `kgrad`) and wraps its `apply` on the instance.
  Under `jax.lax.cond` on the flag (a step that is not logged skips them),
  the wrapper computes the statistics of the gradients `apply` uses
  (unscaled: `loss_scale_factor`, or the inner optimizer of a
  `LossScaleOptimizer`; before clipping; under `gradient_accumulation_steps`
  the average applied), of the weights before `apply` and of the update, and
  assigns them to `kgrad`. The host reads it from `model._jax_state` after the
  step, without syncing the model (`train_function.jax_hooks`).
- **Keras owns its train function**: kgrad neither makes nor replaces it. A
  guard calls it with the same arguments, after putting the flag's new value
  (`2 * arm + histograms`) into the state Keras passes it. A channel captures
  when `arm` is newer than the last it captured: once per arming, the first
  step of a `steps_per_execution` chunk, as on TensorFlow.
- The vector has the TensorFlow path's layout (`step.layout`) in float32,
  with norms where TensorFlow packs squared norms (`step.jax_stats`); `read()`
  squares them in float64: the step logger, tags and findings are shared.

The activation statistics leave `jax.value_and_grad` through its `aux`
(`step.jax_forward`). Not captured on JAX: the temporal profile (the gradient
with respect to a recurrent layer's input exists only inside the backward
pass). A step a `LossScaleOptimizer` skips is counted as skipped.

Tested in tests/jax/test_jax_capture.py.

Example:

```python
capture = JaxCapture(model, bins=30)
capture.install()  # GradientMonitor does it in on_train_begin
capture.arm(histograms=True)
model.fit(x, y, epochs=1, steps_per_epoch=1)
[(channel.name, record.paths, values) for channel, record, values in capture.read()]
```
"""

import warnings

import jax
import jax.numpy as jnp
import keras
import numpy as np

from kgrad.monitor.step import jax_stats as stats
from kgrad.monitor.step import naming
from kgrad.monitor.step.jax_forward import JaxForward
from kgrad.monitor.step.layout import HEADER, statistics_layout
from kgrad.monitor.train_function import jax_hooks

_RECORD = HEADER.index("record")
_COUNT = HEADER.index("capture_count")
_NORM_FIELDS = ("grad_sq", "weight_sq", "update_sq")  # packed as norms
_VERB = {"arm": "armed", "read": "read"}


class JaxRecord:
    """The variables the optimizer updates, the probed layers, names and layout.

    A `kgrad.monitor.step.records.Record` without the temporal profile.

    Args:
        variables: The variables `apply` updates, in its order.
        bins: Histogram buckets.
        probes: `[(layer, kind)]` of the activation probes (`step.jax_forward`).
    """

    number = 1
    recurrent = ()

    def __init__(self, variables, bins, probes=()):
        self.variables = list(variables)
        self.paths = naming.variable_names(self.variables)
        self.probes = list(probes)
        self.layer_names = naming.layer_names([layer for layer, _ in self.probes])
        self.batchnorm_paths = set()
        self.layout = statistics_layout(len(self.variables), bins, m=len(self.probes))


class JaxChannel:
    """The monitored optimizer, its record and its three kgrad variables.

    Args:
        name: Slot name (`"optimizer"`).
        optimizer: `model.optimizer`.
        bins: Histogram buckets.
    """

    def __init__(self, name, optimizer, bins, probes=()):
        self.name = name
        self.optimizer = optimizer
        self.owner = getattr(optimizer, "inner_optimizer", optimizer)
        variables = jax_hooks.applied_variables(self.owner)
        self.record = JaxRecord(variables, bins, probes)
        self.records = {self.record.number: self.record}
        self.traced = False
        self.captures_read = 0.0
        self.dynamic_scale = None  # a LossScaleOptimizer's, read at arming
        self.variables = []

    def add_variables(self):
        """Gives the optimizer kgrad's variables (undone by `remove_variables`)."""
        add = self.owner.add_variable
        size = self.record.layout.size
        self.flag = add((), initializer="zeros", dtype="int32", name="kgrad_flag")
        self.last_arm = add((), initializer="zeros", dtype="int32", name="kgrad_arm")
        self.stats = add((size,), initializer="zeros", dtype="float32", name="kgrad")
        self.variables = [self.flag, self.last_arm, self.stats]

    def remove_variables(self):
        for variable in self.variables:
            jax_hooks.untrack(self.owner, variable)
        self.variables = []


class JaxCapture:
    """Installs the capture of gradient statistics into Keras's JAX step.

    Args:
        model: A compiled `keras.Model` whose optimizer is built (`fit` builds
            it before `on_train_begin`).
        bins: Histogram buckets per variable. Defaults to `30`.
    """

    per_example = None  # the noise scale's per-example norms: TensorFlow only

    def __init__(self, model, bins=30):
        self.model = model
        self.bins = bins
        self.trace_histograms = True
        self.forward = JaxForward(model)
        probes = self.forward.probes
        self.channels = [JaxChannel("optimizer", model.optimizer, bins, probes)]
        self._arms = 0
        self._restore = []
        self._pending = None
        self._armed_unread = False
        self._positions = []
        self._warned = set()

    @property
    def traced_channels(self):
        """The channels whose `apply` ran under the wrapper."""
        return [c for c in self.channels if c.traced]

    def serves(self, model):
        """Whether this capture fits `model`: the same model, optimizer, variables."""
        channel = self.channels[0]
        return (
            model is self.model
            and model.optimizer is channel.optimizer
            and jax_hooks.applied_variables(channel.owner) == channel.record.variables
        )

    def install(self):
        """Adds kgrad's variables, wraps `apply` and guards Keras's function.

        Undone by `uninstall`. The guard calls Keras's own train function with
        the same arguments; on an armed call it first puts the flag's new
        value into the optimizer state Keras passes (see `arm`).
        """
        self.uninstall()
        for channel in self.channels:
            channel.add_variables()
            original = channel.owner.apply
            channel.owner.apply = self._wrap_apply(channel, original)
            self._restore.append(lambda c=channel: c.remove_variables())
            self._restore.append(lambda c=channel: vars(c.owner).pop("apply", None))
        self._positions = [
            jax_hooks.state_position(self.model, c.flag) for c in self.channels
        ]
        channel = self.channels[0]
        self.forward.install(
            self._positions[0], jax_hooks.state_position(self.model, channel.last_arm)
        )
        self._restore.append(self.forward.uninstall)
        self._restore.append(self._unguard)
        self._guard_function()
        self._pending = None

    def uninstall(self):
        """Restores the optimizer (its `apply`, its variables) and the function."""
        while self._restore:
            self._restore.pop()()

    def _guard_function(self):
        function = self.model.train_function
        if function is None or getattr(function, "kgrad_guard", False):
            return
        pending = self

        def guarded(state, iterator):
            pending.forward.extend(state)  # the activations' place: one trace
            if pending._pending is not None:
                values, pending._pending = pending._pending, None
                pending._safely(
                    "arm",
                    lambda: jax_hooks.put_optimizer_values(
                        state, pending._positions, values
                    ),
                )
            return function(state, iterator)

        guarded.kgrad_guard = True
        guarded.keras_function = function
        self.model.train_function = guarded

    def _unguard(self):
        function = self.model.train_function
        if getattr(function, "kgrad_guard", False):
            self.model.train_function = function.keras_function

    # -- arming and reading -----------------------------------------------
    def arm(self, histograms):
        """Makes the next train step capture statistics (histograms too).

        The flag's value goes into the state of Keras's next call (through the
        guard): no model sync. Each channel captures once per arming, so
        nothing needs disarming.
        """
        self._arms += 1
        self._guard_function()  # a function Keras made anew mid-fit
        value = np.int32(2 * self._arms + int(bool(histograms)))
        self._pending = [value] * len(self.channels)
        self._armed_unread = True
        for channel in self.channels:
            if channel.owner is not channel.optimizer:  # the scale of this step
                scale = self._safely(
                    "read",
                    lambda c=channel: jax_hooks.state_value(
                        self.model, c.optimizer.dynamic_scale
                    ),
                )
                channel.dynamic_scale = np.nan if scale is None else float(scale)

    def disarm(self):
        """Drops an arming that no train step took (nothing else to undo)."""
        self._pending = None

    def read(self):
        """`[(channel, record, statistics)]` of the channels that captured.

        One host transfer per channel; squared norms in float64, as the
        TensorFlow capture reads them.
        """
        out = []
        armed, self._armed_unread = self._armed_unread, False
        for channel in self.traced_channels:
            vector = self._safely(
                "read", lambda c=channel: jax_hooks.state_value(self.model, c.stats)
            )
            if vector is None:
                continue
            if vector[_COUNT] == channel.captures_read:
                if channel.dynamic_scale is not None and armed:
                    out.append((channel, channel.record, _skipped(channel, vector)))
                continue
            channel.captures_read = vector[_COUNT]
            values = channel.record.layout.unpack(vector.astype(np.float64))
            for name in _NORM_FIELDS:
                values[name] = np.square(values[name])
            if channel.dynamic_scale is not None:
                values["loss_scale"] = np.float64(channel.dynamic_scale)
            if channel.record.probes:
                values["activations"] = self._safely("read", self.forward.read)
            out.append((channel, channel.record, values))
        return out

    # -- in the traced train step -----------------------------------------
    def _wrap_apply(self, channel, apply):
        capture = self
        record = channel.record
        owner = channel.owner

        def apply_and_capture(grads, trainable_variables=None):
            grads = list(grads)
            variables = (
                jax_hooks.applied_variables(owner)
                if trainable_variables is None
                else list(trainable_variables)
            )
            if [id(v) for v in variables] != [id(v) for v in record.variables]:
                capture._warn_once("variables")
                return apply(grads, trainable_variables)
            channel.traced = True
            flag = channel.flag.value
            last = channel.last_arm.value
            arm = flag // 2
            armed = arm > last
            histograms = flag % 2 == 1
            header = capture._header(owner)
            taken = capture._gradients(owner, grads, variables)
            before = [v.value for v in variables]
            result = apply(grads, trainable_variables)
            after = [v.value for v in variables]
            previous = channel.stats.value

            def compute(operands):
                taken, before, after, header, histograms = operands
                return stats.packed_step(
                    record,
                    (taken, before, after),
                    header,
                    histograms,
                    bins=capture.bins,
                    trace_histograms=capture.trace_histograms,
                )

            vector = jax.lax.cond(
                armed,
                compute,
                lambda operands: previous,
                (taken, before, after, dict(header, capture_count=arm), histograms),
            )
            channel.stats.assign(vector)
            channel.last_arm.assign(jnp.where(armed, arm, last))
            return result

        return apply_and_capture

    def _header(self, optimizer):
        """The header fields known before `apply` (see `packed.HEADER`)."""
        applied = 1.0
        accumulation = jax_hooks.accumulation(optimizer, [])
        if accumulation is not None:
            steps, _, iterations = accumulation
            applied = ((iterations.value + 1) % steps == 0).astype(jnp.float32)
        scale = 1.0  # a LossScaleOptimizer's: read by the host when arming
        if optimizer.loss_scale_factor is not None:
            scale = optimizer.loss_scale_factor
        return dict(
            record=1.0,
            step=keras.ops.convert_to_tensor(optimizer.iterations) + 1,
            skipped=0.0,
            applied=applied,
            loss_scale=scale,
            batch_size=np.nan,
        )

    def _gradients(self, optimizer, grads, variables):
        """The gradients `apply` uses, unscaled and before clipping."""
        scale = optimizer.loss_scale_factor
        if scale is not None:
            grads = [g if g is None else g / scale for g in grads]
        accumulation = jax_hooks.accumulation(optimizer, variables)
        if accumulation is not None:
            steps, accumulators, _ = accumulation
            grads = [
                g if g is None else (g + acc.value) / steps
                for g, acc in zip(grads, accumulators, strict=True)
            ]
        missing = [v.path for g, v in zip(grads, variables, strict=True) if g is None]
        if missing:
            self._warn_once("missing", missing)
        return grads

    def _safely(self, what, action):
        """`action()`, or `None` after one warning: logging never stops training."""
        try:
            return action()
        except Exception as error:  # noqa: BLE001 (any failure of kgrad's own)
            self._warn_once(what, [repr(error)])
            return None

    def _warn_once(self, cause, names=()):
        if cause in self._warned:
            return
        self._warned.add(cause)
        if cause == "missing":
            message = (
                f"kgrad: no gradient for {len(names)} variable(s), skipped: "
                + ", ".join(names)
            )
        elif cause in ("arm", "read"):
            message = (
                f"kgrad: the training state could not be {_VERB[cause]} ({names[0]}); "
                "training goes on, the steps it concerns are not logged."
            )
        else:
            message = (
                "kgrad: the optimizer was applied to other variables than it was "
                "built with (a custom `train_step`?): this step is not logged."
            )
        warnings.warn(message, stacklevel=3)


def _skipped(channel, vector):
    """A step the `LossScaleOptimizer` skipped (its inner `apply` did not run)."""
    values = channel.record.layout.unpack(vector.astype(np.float64))
    values.update(skipped=np.float64(1.0), loss_scale=np.float64(channel.dynamic_scale))
    return values


def unsupported(model):
    """`None`, or why kgrad cannot see this model's gradients on JAX."""
    if jax_hooks.custom_train_step(model):
        return (
            f"{type(model).__name__} overrides `train_step`: on JAX kgrad sees the "
            "gradients only when it calls `self.optimizer.stateless_apply` with "
            "the optimizer variables of its state, as Keras's own `train_step` "
            "does"
        )
    if not isinstance(getattr(model, "optimizer", None), keras.optimizers.Optimizer):
        return "the model has no Keras optimizer"
    return None
