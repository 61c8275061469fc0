"""The host side of the capture: install it, arm it, read it.

The statistics of the real training gradients are taken in Keras's own train
step (`kgrad.monitor.step.traced`); this module puts the wrappers in place
and takes them away, arms a step and reads what it packed.

How it works, and why:

- Keras computes gradients inside its compiled train function and hands them
  to `optimizer.apply(grads, variables)`; callbacks never see them. While
  Keras's train function runs in a monitored `fit` (and only then), the
  capture wraps `apply` on every optimizer
  the train step may call (`model.optimizer` and those the model holds, see
  `kgrad.monitor.step.optimizers`), and the `call` of the layers whose
  forward pass it summarises (`kgrad.monitor.step.forward_probes`,
  `kgrad.monitor.step.temporal`).
- **Keras owns its train function.** kgrad neither makes nor replaces it:
  Keras traces its own function, when and how it always does (at the first
  call after a compile, after `make_train_function(force=True)`, with or
  without XLA, under any strategy), and the wrappers put the statistics into
  that trace, behind conds on a flag the callback arms. A step that is not
  logged skips them; training computes exactly what it computes without the
  monitor. A train function Keras traced before the monitor was attached is
  retraced once, when that provably trains the same
  (`kgrad.monitor.train_function.same_trace`).
- The variables an optimizer updates are known when `apply` is traced (a model
  may build its layers in that very trace): each distinct list makes a
  `kgrad.monitor.step.packed.Record`, with its own layout and tag names. Each
  optimizer has one statistics vector (a channel), of unknown length until a
  record sizes it, read by the host with a single transfer (`read`).
- The flag holds `2 * arm + histograms`, where `arm` counts the arming calls.
  A channel captures when the flag's `arm` is newer than the last it
  captured, so it captures once per arming: the first step of a
  `steps_per_execution` chunk, the first `apply` of an optimizer applied
  several times in one step (a WGAN critic).
- What an armed step computes, and where, is `kgrad.monitor.step.traced`.
  Under several replicas the gradients are taken where Keras has all-reduced
  them (`keras_hooks.gradient_reduction_wrapper`, installed here): after its
  per-replica clipping, when the optimizer clips.
- With `gradient_accumulation_steps`, the gradient logged is the one applied
  (the average of the accumulated batches) at the batch that updates; the
  batches that only accumulate, like the steps a loss-scale optimizer skips,
  are marked not `applied`, and the callback arms the next batch instead.

The backend's parts (state variables, replica count) come from
`kgrad.monitor.step.backend_tensorflow`. Tested in tests/test_callback.py,
tests/test_temporal.py and tests/test_train_function.py.

Example:

```python
capture = GradientCapture(model, bins=30)
capture.install()  # GradientMonitor installs it around each train step only
capture.arm(histograms=True)
model.fit(x, y, epochs=1, steps_per_epoch=1)  # logged step
capture.uninstall()
[(channel.name, record.paths, values) for channel, record, values in capture.read()]
```
"""

import tensorflow as tf

from kgrad.monitor.step import backend_tensorflow as backend
from kgrad.monitor.step.forward_probes import ForwardProbes
from kgrad.monitor.step.increments import Increments
from kgrad.monitor.step.layout import HEADER
from kgrad.monitor.step.optimizers import find_optimizers
from kgrad.monitor.step.per_example import per_example_probe
from kgrad.monitor.step.temporal import TemporalProbe
from kgrad.monitor.step.traced import TracedStep
from kgrad.monitor.train_function import keras_hooks
from kgrad.monitor.train_function.function_watch import TraceLog

_RECORD = HEADER.index("record")
_COUNT = HEADER.index("capture_count")


class Channel:
    """One monitored optimizer: its slot name, statistics vector and records.

    Attributes:
        name: Slot name (see `kgrad.monitor.step.optimizers`).
        optimizer: The optimizer.
        traced: Whether the train step called its `apply` while installed.
        records: `Record`s by number.
    """

    def __init__(self, name, optimizer, replicated):
        self.name = name
        self.optimizer = optimizer
        self.increments = Increments(optimizer, replicated)
        self.traced = False
        self.captures_read = 0.0
        self.records = {}
        self._by_variables = {}
        self.stats = backend.vector_variable("kgrad_stats")
        # see `kgrad.monitor.step.increments`
        self.update_sq = backend.vector_variable("kgrad_update_sq")
        self.last_arm = backend.state_variable(
            tf.constant(0, tf.int64), "kgrad_last_arm"
        )

    def record_for(self, variables, make):
        """The `Record` of `variables`, made by `make(number)` the first time."""
        key = tuple(id(v) for v in variables)
        record = self._by_variables.get(key)
        if record is None:
            record = make(len(self.records) + 1, self.increments.positions(variables))
            self.records[record.number] = record
            self._by_variables[key] = record
        with tf.init_scope():  # sized before the function runs (XLA wants it)
            if self.stats.shape[0] != record.layout.size:
                self.stats.assign(tf.zeros([record.layout.size], tf.float64))
            if self.update_sq.shape[0] != len(record.increments):
                self.update_sq.assign(tf.zeros([len(record.increments)], tf.float64))
        return record


class GradientCapture:
    """Installs the capture of gradient statistics into a compiled model.

    Args:
        model: A compiled `keras.Model`.
        bins: Histogram buckets per variable. Defaults to `30`.
        optimizers: Optimizers to monitor, or `None` for every optimizer the
            model holds. Defaults to `None`.
        noise_scale: Whether to take per-example gradient norms
            (`kgrad.monitor.step.per_example`). Defaults to `False`.
    """

    def __init__(self, model, bins=30, optimizers=None, noise_scale=False):
        self.model = model
        self.bins = bins
        self.forward = ForwardProbes(model)
        self.temporal = TemporalProbe(model)
        self.per_example = per_example_probe(model, noise_scale, self._armed_any)
        self.trace_log = TraceLog()  # Keras's functions traced with the wrappers
        self._explicit = optimizers
        self._restore = []
        self._wrappers = None
        self._arms = 0
        self.replicated = backend.replica_count(model) > 1
        with model.distribute_strategy.scope():
            self._flag = backend.state_variable(tf.constant(0, tf.int64), "kgrad_flag")
            self._step = TracedStep(
                model,
                bins,
                self._flag,
                (self.forward, self.temporal, self.per_example),
                self.trace_log,
            )
            self.channels = [
                Channel(name, optimizer, self.replicated)
                for name, optimizer in find_optimizers(model, optimizers)
            ]

    @property
    def trace_histograms(self):
        """Whether functions traced from now on hold the histogram code."""
        return self.trace_log.histograms

    @trace_histograms.setter
    def trace_histograms(self, value):
        self.trace_log.histograms = value

    @property
    def traced_channels(self):
        """The channels whose optimizer the train step calls (known once traced)."""
        return [c for c in self.channels if c.traced]

    # -- installation -----------------------------------------------------
    def install(self):
        """Wraps the optimizers and the probed layers (undone by `uninstall`).

        The monitor keeps them in place only while Keras's train function runs
        (`kgrad.monitor.train_function.function_watch`): outside a train step,
        nothing of kgrad is on the model, and a validation or predict pass is never
        probed.
        """
        if self.installed():
            self.uninstall()
        if self._wrappers is None:
            self._wrappers = self._make_wrappers()
        for obj, name, value in self._wrappers:
            keras_hooks.patch(obj, name, value, self._restore)
        self.forward.forget_eager()

    def installed(self):
        """Whether the wrappers are in place (between `install` and `uninstall`)."""
        return bool(self._restore)

    def serves(self, model):
        """Whether this capture fits `model`: the same model and optimizers."""
        found = find_optimizers(model, self._explicit)
        return model is self.model and [id(o) for _, o in found] == [
            id(c.optimizer) for c in self.channels
        ]

    def uninstall(self):
        """Restores the model's layers and its optimizers."""
        while self._restore:
            self._restore.pop()()

    def _make_wrappers(self):
        """`[(object, attribute, wrapper)]`: made once, patched at each install."""
        wrappers = []
        for channel in self.channels:
            optimizer = channel.optimizer
            wrappers.append(
                (optimizer, "apply", self._step.wrap_apply(channel, optimizer.apply))
            )
            if self.replicated:
                wrappers.append(
                    keras_hooks.gradient_reduction_wrapper(
                        optimizer, self._step.keep_reduced
                    )
                )
            wrappers += channel.increments.wrappers()
        wrappers += self.forward.wrappers()
        wrappers += self.temporal.wrappers()
        if self.per_example is not None:
            wrappers = self.per_example.chain(wrappers)
        return wrappers

    # -- arming and reading -----------------------------------------------
    def arm(self, histograms):
        """Makes the next train step capture statistics, once per optimizer.

        Args:
            histograms: Whether to compute histograms too.
        """
        self._arms += 1
        self._flag.assign(2 * self._arms + int(bool(histograms)))

    def _armed_any(self):
        """Whether a channel will capture this step (read in the forward pass)."""
        arm = tf.convert_to_tensor(self._flag) // 2
        last = [tf.convert_to_tensor(c.last_arm) for c in self.channels]
        return arm > tf.reduce_min(tf.stack(last))

    def disarm(self):
        """Makes the steps that follow capture nothing (after a logged call)."""
        self._flag.assign(0)

    def read(self):
        """Returns `[(channel, record, statistics)]` of the channels that captured.

        One host transfer per optimizer the train step calls; the statistics
        are a dict of numpy arrays. A channel is left out when nothing new was
        captured since the last read (its `capture_count` did not change).
        """
        out = []
        for channel in self.traced_channels:
            vector = channel.stats.numpy()
            if vector.size <= _RECORD or vector[_COUNT] == channel.captures_read:
                continue
            record = channel.records.get(int(vector[_RECORD]))
            if record is None or record.layout.size != vector.size:
                continue
            channel.captures_read = vector[_COUNT]
            out.append((channel, record, record.layout.unpack(vector)))
        return out


_UNSUPPORTED_STRATEGIES = (
    tf.distribute.experimental.ParameterServerStrategy,
    tf.distribute.TPUStrategy,
)


def check_strategy(strategy):
    """Raises `ValueError` naming `strategy` unless the capture supports it."""
    if isinstance(strategy, _UNSUPPORTED_STRATEGIES):
        raise ValueError(
            "GradientMonitor supports the default strategy, MirroredStrategy "
            "and MultiWorkerMirroredStrategy. Received: a model trained under "
            f"{type(strategy).__name__}"
        )
