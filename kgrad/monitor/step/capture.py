"""Takes the statistics of the real training gradients out of the train step.

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
  that trace, behind `tf.cond` on a flag the callback arms. A step that is not
  logged skips them; training computes exactly what it computes without the
  monitor. A train function Keras traced before the monitor was attached is
  retraced once, when that provably trains the same
  (`kgrad.monitor.train_function.same_trace`).
- The variables an optimizer updates are known when `apply` is traced (a model
  may build its layers in that very trace): each distinct list makes a
  `kgrad.monitor.step.records.Record`, with its own layout and tag names. Each
  optimizer has one statistics vector (a channel), of unknown length until a
  record sizes it, read by the host with a single transfer (`read`).
- The flag holds `2 * arm + histograms`, where `arm` counts the arming calls.
  A channel captures when the flag's `arm` is newer than the last it
  captured, so it captures once per arming: the first step of a
  `steps_per_execution` chunk, the first `apply` of an optimizer applied
  several times in one step (a WGAN critic).
- On an armed step, the gradients' statistics run before `apply` (a pure
  function of them, so they delay no update), the weights are read before
  `apply`, and the update ratio and the packing after it. Under several
  replicas the gradients are taken where Keras has all-reduced them
  (`keras_hooks.gradient_reduction_wrapper`): after its per-replica clipping,
  when the optimizer clips. Without clipping they are the gradients applied.
- With `gradient_accumulation_steps`, the gradient logged is the one applied
  (the average of the accumulated batches) at the batch that updates; the
  batches that only accumulate, like the steps a loss-scale optimizer skips,
  are marked not `applied`, and the callback arms the next batch instead.

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

import threading
import weakref

import numpy as np
import tensorflow as tf

from kgrad import checks
from kgrad.monitor.step import branch
from kgrad.monitor.step import stats as stats_lib
from kgrad.monitor.step.forward_probes import ForwardProbes
from kgrad.monitor.step.increments import Increments
from kgrad.monitor.step.optimizers import find_optimizers
from kgrad.monitor.step.packed import (
    HEADER,
    TEMPORAL_POINTS,
    fields_of_table,
    gradient_table,
)
from kgrad.monitor.step.per_example import (
    packed_per_example,
    per_example_probe,
    taken_per_example,
)
from kgrad.monitor.step.records import LayerOwners, Record
from kgrad.monitor.step.replicas import all_reduce
from kgrad.monitor.step.temporal import TemporalProbe
from kgrad.monitor.step.temporal import norms as temporal_norms
from kgrad.monitor.step.temporal import sampled as temporal_sampled
from kgrad.monitor.train_function import keras_hooks

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
        self.stats = tf.Variable(
            tf.zeros([0], tf.float64),
            shape=tf.TensorShape([None]),
            trainable=False,
            name="kgrad_stats",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.update_sq = tf.Variable(  # see `kgrad.monitor.step.increments`
            tf.zeros([0], tf.float64),
            shape=tf.TensorShape([None]),
            trainable=False,
            name="kgrad_update_sq",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.last_arm = tf.Variable(
            tf.constant(0, tf.int64),
            trainable=False,
            name="kgrad_last_arm",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
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
        self._owners = LayerOwners(model)
        self._explicit = optimizers
        self._restore = []
        self._wrappers = None
        self._reduced = {}  # thread -> gradients all-reduced by Keras
        self._warned = set()
        self._arms = 0
        self.known_functions = weakref.WeakSet()  # traced with these wrappers
        # Functions traced from now on hold the histogram code only when True;
        # those traced without it are in `without_histograms`.
        self.trace_histograms = True
        self.without_histograms = weakref.WeakSet()
        self.traces = 0  # `apply` calls traced under the wrappers
        self.replicated = model.distribute_strategy.num_replicas_in_sync > 1
        with model.distribute_strategy.scope():
            self._flag = tf.Variable(
                tf.constant(0, tf.int64),
                trainable=False,
                name="kgrad_flag",
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self.channels = [
                Channel(name, optimizer, self.replicated)
                for name, optimizer in find_optimizers(model, optimizers)
            ]

    def own_variables(self):
        """kgrad's variables in the train step: the flag and each channel's."""
        channels = [(c.stats, c.update_sq, c.last_arm) for c in self.channels]
        return [self._flag, *(v for variables in channels for v in variables)]

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
                (optimizer, "apply", self._wrap_apply(channel, optimizer.apply))
            )
            if self.replicated:
                wrappers.append(
                    keras_hooks.gradient_reduction_wrapper(
                        optimizer, self._keep_reduced
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

    # -- in the traced train step -----------------------------------------
    def _arming(self, channel):
        """`(arm, armed, histograms)` tensors of this step for `channel`.

        `histograms` is Python `False` when `trace_histograms` is: the trace
        leaves the histogram code out (under XLA, most of the statistics'
        compile memory).
        """
        self.traces += 1
        flag = tf.convert_to_tensor(self._flag)
        arm = flag // 2
        armed = arm > tf.convert_to_tensor(channel.last_arm)
        histograms = tf.equal(flag % 2, 1) if self.trace_histograms else False
        return arm, armed, histograms

    def _armed_any(self):
        """Whether a channel will capture this step (read in the forward pass)."""
        arm = tf.convert_to_tensor(self._flag) // 2
        last = [tf.convert_to_tensor(c.last_arm) for c in self.channels]
        return arm > tf.reduce_min(tf.stack(last))

    def _make_record(self, variables):
        def make(number, increments):
            return Record(
                number,
                variables,
                self._owners,
                self.forward.probes,
                self.temporal.layers,
                self.forward.batchnorm_layers,
                self.bins,
                increments,
                per_example=self.per_example is not None,
            )

        return make

    def _keep_reduced(self, grads):
        self._reduced[threading.get_ident()] = grads

    def _wrap_apply(self, channel, apply):
        capture = self
        optimizer = channel.optimizer

        def apply_and_capture(grads, trainable_variables=None):
            grads = list(grads)
            if all(g is None for g in grads):  # Keras raises its own error
                return apply(grads, trainable_variables)
            if trainable_variables is None:
                variables = keras_hooks.optimizer_variables(optimizer)
            else:
                variables = list(trainable_variables)
            keras_hooks.build_optimizer(optimizer, variables)
            record = channel.record_for(variables, capture._make_record(variables))
            channel.traced = True
            seen = capture.forward.take(record.layer_ids)
            record.batchnorm_paths.update(
                layer.path or layer.name for layer in seen.batchnorm.values()
            )
            with tf.name_scope("kgrad"):  # profiles tell kgrad's ops apart
                arm, armed, histograms = capture._arming(channel)
                scale = keras_hooks.loss_scale(optimizer)
                header = dict(
                    record=float(record.number),
                    capture_count=arm,
                    step=tf.cast(optimizer.iterations, tf.float64) + 1.0,
                    applied=keras_hooks.updates_now(optimizer),
                    loss_scale=scale,
                    batch_size=_batch_size(seen),
                )
                activations = capture._activation_statistics(armed, record, seen)
                taken = capture.temporal.take(record.recurrent)
                if capture.replicated:
                    temporal = capture._replicated_temporal_sums(armed, taken)
                else:
                    gradients, temporal = branch.cond(
                        armed,
                        lambda: (
                            capture._gradient_statistics(
                                optimizer, record, grads, variables, scale, histograms
                            ),
                            temporal_sampled(taken),
                        ),
                        lambda: (
                            capture._no_gradient_statistics(record),
                            _no_temporal_sums(len(taken)),
                        ),
                    )
                before = branch.cond(
                    armed,
                    lambda: _weights_before(record),
                    lambda: _no_weights_before(record),
                )
                per_example = taken_per_example(
                    capture.per_example, armed, variables, capture.replicated
                )
            with channel.increments.tracking(
                record.increments, record.variables, armed, channel.update_sq
            ):
                result = apply(grads, trainable_variables)
            with tf.name_scope("kgrad"):
                if capture.replicated:
                    gradients = capture._replicated_gradient_statistics(
                        armed, optimizer, record, variables, histograms
                    )
                # Reads after `apply` are ordered after its updates by automatic
                # control dependencies (same variable resources).
                branch.cond(
                    armed,
                    lambda: capture._assign_statistics(
                        channel,
                        record,
                        header,
                        activations,
                        gradients,
                        temporal,
                        before,
                        per_example,
                    ),
                    lambda: None,
                )
            return result

        return apply_and_capture

    def _activation_statistics(self, armed, record, seen):
        """`[m, 2]` activation statistics of the record's probed layers.

        A branch of their own, which needs only the layers' outputs: it runs
        right after the forward pass, so that the outputs are not held any
        longer than backpropagation holds them. Under several replicas each
        replica summarises its own share of the batch and the rows are
        averaged outside the branch (no all-reduce inside `tf.cond`).
        """
        m = len(record.probes)
        rows = branch.cond(
            armed,
            lambda: _activation_values(record.probes, seen.outputs),
            lambda: tf.fill([m, 2], tf.constant(np.nan, tf.float64)),
        )
        return all_reduce([rows], mean=True)[0] if m else rows

    def _gradient_statistics(self, optimizer, record, grads, variables, scale, hist):
        """`(table, skipped)` of the step's gradients, taken before `apply`.

        `table` is the `[n, 5 + bins]` gradient table (see `gradient_table`);
        `skipped` whether a loss-scale optimizer skips the step.
        """
        skipped = keras_hooks.skipped_by_loss_scaling(optimizer, grads)
        applied = keras_hooks.applied_gradients(optimizer, grads, variables)
        if keras_hooks.is_loss_scaled(optimizer):
            applied = [_divide(g, scale) if g is not None else None for g in applied]
        table, missing = gradient_table(
            applied, variables, record.index, self.bins, hist
        )
        self._warn_once("missing", missing)
        return table, skipped

    def _replicated_gradient_statistics(
        self, armed, optimizer, record, variables, hist
    ):
        """`(table, skipped)` from the gradients Keras all-reduced in `apply`."""
        reduced = self._reduced.pop(threading.get_ident(), None)
        graph = tf.compat.v1.get_default_graph()
        usable = reduced is not None and all(
            g is None or getattr(g, "graph", graph) is graph for g in reduced
        )
        if not usable:
            self._warn_once("unreduced", [optimizer.name])
            return self._no_gradient_statistics(record)
        return branch.cond(
            armed,
            lambda: (
                gradient_table(reduced, variables, record.index, self.bins, hist)[0],
                tf.constant(0.0, tf.float64),
            ),
            lambda: self._no_gradient_statistics(record),
        )

    def _replicated_temporal_sums(self, armed, taken):
        """This step's temporal sums, all-reduced outside the armed branch."""
        sums, lengths = branch.cond(
            armed,
            lambda: temporal_sampled(taken),
            lambda: _no_temporal_sums(len(taken)),
        )
        return all_reduce([sums])[0], lengths

    def _no_gradient_statistics(self, record):
        """What `_gradient_statistics` returns on a step that is not logged."""
        n = len(record.variables)
        return tf.zeros([n, 5 + self.bins], tf.float64), tf.constant(0.0, tf.float64)

    def _assign_statistics(
        self,
        channel,
        record,
        header,
        activations,
        gradients,
        temporal,
        before,
        per_example=None,
    ):
        table, skipped = gradients
        sums, lengths = temporal
        weight_sq, update_sq = _weights_and_updates(channel, record, before)
        values = fields_of_table(table)
        values.update(header)
        values.update(
            skipped=skipped,
            weight_sq=weight_sq,
            update_sq=update_sq,
            activations=activations,
            temporal=temporal_norms(sums, header["loss_scale"]),
            temporal_length=lengths,
        )
        if isinstance(per_example, dict):  # one replica: packed here
            per_example = packed_per_example(per_example, record.variables)
        if per_example is not None:
            values.update(
                per_example_sq=per_example[0], per_example_count=per_example[1]
            )
        channel.stats.assign(record.layout.pack(values))
        channel.last_arm.assign(header["capture_count"])

    def _warn_once(self, cause, names):
        if not names or cause in self._warned:
            return
        self._warned.add(cause)
        if cause == "missing":
            message = (
                f"No gradient for {len(names)} variable(s), skipped: {', '.join(names)}"
            )
        else:
            message = (
                f"kgrad: the all-reduced gradients of {names[0]} are not "
                "reachable in this train step (gradient accumulation under "
                "several replicas): its gradient statistics are not logged."
            )
        checks.warn(message)


def _no_temporal_sums(r):
    nan = tf.fill([r, TEMPORAL_POINTS], tf.constant(np.nan, tf.float64))
    return nan, tf.zeros([r], tf.float64)


def _batch_size(seen):
    if seen.batch_size is None:
        return tf.constant(np.nan, tf.float64)
    return tf.cast(seen.batch_size, tf.float64)


def _weights_before(record):
    """`(matrices, squared_norms)` before `apply`.

    The snapshot variables are copied (as `Blocks` matrices); the variables
    whose update is measured on their increments are only reduced, in place,
    to their squared norms.
    """
    matrices = []
    if record.snapshot_variables:
        matrices = _weight_blocks(record.snapshot_variables).matrices
    squared = tf.zeros([0], tf.float64)
    if record.increments:
        large = [record.variables[i] for i in record.increments]
        squared = stats_lib.sum_of_squares(_weight_blocks(large))
    return matrices, squared


def _no_weights_before(record):
    """What `_weights_before` returns on a step that is not logged: nothing."""
    matrices = []
    if record.snapshot_variables:
        matrices = _no_weight_blocks(record.snapshot_variables)
    return matrices, tf.zeros([len(record.increments)], tf.float64)


def _weights_and_updates(channel, record, before):
    """float64 `(weight_sq, update_sq)` `[n]`: norms before `apply`, updates by it.

    `before` is `_weights_before(record)`. The snapshot variables' updates are
    differences with their copies; the others' are the norms measured on the
    optimizer's increments (`kgrad.monitor.step.increments`).
    """
    n = len(record.variables)
    snapshot, large = record.snapshot_positions, record.increments
    matrices, squared = before
    parts = []
    if snapshot:
        after = _weight_blocks(record.snapshot_variables)
        weights = stats_lib.sum_of_squares(after.with_matrices(matrices))
        updates = stats_lib.sum_of_squared_differences(after, matrices)
        parts.append((snapshot, weights, updates))
    if large:
        parts.append((large, squared, tf.convert_to_tensor(channel.update_sq)))
    if len(parts) == 1 and len(parts[0][0]) == n:
        return parts[0][1], parts[0][2]
    positions = tf.constant([[i] for part in parts for i in part[0]], tf.int32, [n, 1])
    return (
        tf.scatter_nd(positions, tf.concat([p[1] for p in parts], 0), [n]),
        tf.scatter_nd(positions, tf.concat([p[2] for p in parts], 0), [n]),
    )


def _weight_blocks(variables):
    return stats_lib.Blocks([tf.convert_to_tensor(v) for v in variables])


def _no_weight_blocks(variables):
    """Empty stand-ins for `_weight_blocks(...).matrices`: nothing allocated."""
    plan = stats_lib.block_plan(variables)
    return [tf.zeros([0, 0], variables[block[0]].dtype) for block in plan]


def _activation_values(probes, outputs):
    """`[m, 2]` statistics of the probed layers; NaN for those that did not run."""
    m = len(probes)
    ran = [i for i, (layer, _) in enumerate(probes) if id(layer) in outputs]
    if not ran:
        return tf.fill([m, 2], tf.constant(np.nan, tf.float64))
    rows = stats_lib.activation_statistics(
        [_all_calls(outputs[id(probes[i][0])]) for i in ran],
        [probes[i][1] for i in ran],
    )
    missing = tf.fill([m, 2], tf.constant(np.nan, tf.float64))
    return tf.tensor_scatter_nd_update(missing, [[i] for i in ran], rows)


def _all_calls(outputs):
    """The outputs of all calls of a layer in one step, as one batch of units."""
    if len(outputs) == 1:
        return outputs[0]
    units = {x.shape[-1] for x in outputs}
    if len(units) > 1 or None in units:
        return outputs[-1]  # calls on different units cannot be pooled
    return tf.concat([tf.reshape(x, [-1, x.shape[-1]]) for x in outputs], 0)


def _divide(grad, scale):
    if isinstance(grad, tf.IndexedSlices):
        values = grad.values / tf.cast(scale, grad.values.dtype)
        return tf.IndexedSlices(values, grad.indices, grad.dense_shape)
    return grad / tf.cast(scale, grad.dtype)
