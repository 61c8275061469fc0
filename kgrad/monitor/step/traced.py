"""The traced step: the statistics put into Keras's trace of `optimizer.apply`.

`TracedStep.wrap_apply` makes the wrapper the host side
(`kgrad.monitor.step.host.GradientCapture`) installs on an optimizer. When
Keras traces its train step, the wrapper puts into that trace, behind conds
on the arming flag (`backend.cond`, a branch that runs on logged steps only):

1. the activation statistics of the layers whose forward pass went with the
   variables (`kgrad.monitor.step.forward_probes`), right after it;
2. the gradients' table (`kgrad.monitor.step.packed.gradient_table`): norms,
   non-finite counts, histograms, taken before `apply` (unscaled, averaged
   over accumulated batches, see `keras_hooks.applied_gradients`); under
   several replicas from the gradients Keras all-reduced, after `apply`;
3. the temporal sums of recurrent layers (`kgrad.monitor.step.temporal`);
4. the weights before `apply` (a copy of the small variables; the large ones'
   updates are measured on the optimizer's increments,
   `kgrad.monitor.step.increments`);
5. Keras's own `apply`, unchanged;
6. the packing of everything into the channel's vector (`Layout.pack`) and
   the arm it captured, after `apply` (ordered by automatic control
   dependencies on the same variables).

The arming flag holds `2 * arm + histograms`: a channel captures when the
flag's `arm` is newer than the last it captured, once per arming. The
backend's parts (cond, state variables, cross-replica sums) come from
`kgrad.monitor.step.backend_tensorflow`. Tested in tests/test_callback.py,
tests/test_distribute.py and tests/test_temporal.py.

Example:

```python
step = TracedStep(model, 30, flag, (forward, temporal, None), trace_log)
wrapper = step.wrap_apply(channel, optimizer.apply)  # installed as optimizer.apply
```
"""

import threading

import numpy as np
import tensorflow as tf

from kgrad import checks
from kgrad.monitor.step import backend_tensorflow as backend
from kgrad.monitor.step import stats as stats_lib
from kgrad.monitor.step.packed import (
    TEMPORAL_POINTS,
    LayerOwners,
    Record,
    fields_of_table,
    gradient_table,
)
from kgrad.monitor.step.per_example import packed_per_example, taken_per_example
from kgrad.monitor.step.temporal import norms as temporal_norms
from kgrad.monitor.step.temporal import sampled as temporal_sampled
from kgrad.monitor.train_function import keras_hooks


class TracedStep:
    """What runs in the traced `optimizer.apply` of every monitored optimizer.

    Args:
        model: The model.
        bins: Histogram buckets per variable.
        flag: The arming flag (`2 * arm + histograms`), a state variable.
        probes: The model's `(ForwardProbes, TemporalProbe, PerExampleProbe)`,
            the last `None` without the noise scale.
        trace_log: The `kgrad.monitor.train_function.function_watch.TraceLog`
            told of each trace (and whether it holds the histogram code).
    """

    def __init__(self, model, bins, flag, probes, trace_log):
        self.bins = bins
        self.forward, self.temporal, self.per_example = probes
        self.trace_log = trace_log
        self.replicated = backend.replica_count(model) > 1
        self._flag = flag
        self._owners = LayerOwners(model)
        self._reduced = {}  # thread -> gradients all-reduced by Keras
        self._warned = set()

    def keep_reduced(self, grads):
        """Keeps the gradients Keras all-reduced (several replicas)."""
        self._reduced[threading.get_ident()] = grads

    def wrap_apply(self, channel, apply):
        """`apply` of `channel`'s optimizer with the statistics in its trace."""
        traced = self
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
            record = channel.record_for(variables, traced._make_record(variables))
            channel.traced = True
            seen = traced.forward.take(record.layer_ids)
            record.batchnorm_paths.update(
                layer.path or layer.name for layer in seen.batchnorm.values()
            )
            with tf.name_scope("kgrad"):  # profiles tell kgrad's ops apart
                arm, armed, histograms = traced._arming(channel)
                scale = keras_hooks.loss_scale(optimizer)
                header = dict(
                    record=float(record.number),
                    capture_count=arm,
                    step=tf.cast(optimizer.iterations, tf.float64) + 1.0,
                    applied=keras_hooks.updates_now(optimizer),
                    loss_scale=scale,
                    batch_size=_batch_size(seen),
                )
                activations = traced._activation_statistics(armed, record, seen)
                taken = traced.temporal.take(record.recurrent)
                if traced.replicated:
                    temporal = traced._replicated_temporal_sums(armed, taken)
                else:
                    gradients, temporal = backend.cond(
                        armed,
                        lambda: (
                            traced._gradient_statistics(
                                optimizer, record, grads, variables, scale, histograms
                            ),
                            temporal_sampled(taken),
                        ),
                        lambda: (
                            traced._no_gradient_statistics(record),
                            _no_temporal_sums(len(taken)),
                        ),
                    )
                before = backend.cond(
                    armed,
                    lambda: _weights_before(record),
                    lambda: _no_weights_before(record),
                )
                per_example = taken_per_example(
                    traced.per_example, armed, variables, traced.replicated
                )
            with channel.increments.tracking(
                record.increments, record.variables, armed, channel.update_sq
            ):
                result = apply(grads, trainable_variables)
            with tf.name_scope("kgrad"):
                if traced.replicated:
                    gradients = traced._replicated_gradient_statistics(
                        armed, optimizer, record, variables, histograms
                    )
                # Reads after `apply` are ordered after its updates by automatic
                # control dependencies (same variable resources).
                backend.cond(
                    armed,
                    lambda: traced._assign_statistics(
                        channel,
                        record,
                        header,
                        (activations, gradients, temporal, before, per_example),
                    ),
                    lambda: None,
                )
            return result

        return apply_and_capture

    def _arming(self, channel):
        """`(arm, armed, histograms)` tensors of this step for `channel`.

        `histograms` is Python `False` when the trace log says this trace
        leaves the histogram code out (under XLA, most of the statistics'
        compile memory).
        """
        self.trace_log.traced()
        flag = tf.convert_to_tensor(self._flag)
        arm = flag // 2
        armed = arm > tf.convert_to_tensor(channel.last_arm)
        histograms = tf.equal(flag % 2, 1) if self.trace_log.histograms else False
        return arm, armed, histograms

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

    def _activation_statistics(self, armed, record, seen):
        """`[m, 2]` activation statistics of the record's probed layers.

        A branch of their own, which needs only the layers' outputs: it runs
        right after the forward pass, so that the outputs are not held any
        longer than backpropagation holds them. Under several replicas each
        replica summarises its own share of the batch and the rows are
        averaged outside the branch (no all-reduce inside `tf.cond`).
        """
        m = len(record.probes)
        rows = backend.cond(
            armed,
            lambda: _activation_values(record.probes, seen.outputs),
            lambda: tf.fill([m, 2], tf.constant(np.nan, tf.float64)),
        )
        return backend.all_reduce([rows], mean=True)[0] if m else rows

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
        if not backend.in_current_graph(reduced):
            self._warn_once("unreduced", [optimizer.name])
            return self._no_gradient_statistics(record)
        return backend.cond(
            armed,
            lambda: (
                gradient_table(reduced, variables, record.index, self.bins, hist)[0],
                tf.constant(0.0, tf.float64),
            ),
            lambda: self._no_gradient_statistics(record),
        )

    def _replicated_temporal_sums(self, armed, taken):
        """This step's temporal sums, all-reduced outside the armed branch."""
        sums, lengths = backend.cond(
            armed,
            lambda: temporal_sampled(taken),
            lambda: _no_temporal_sums(len(taken)),
        )
        return backend.all_reduce([sums])[0], lengths

    def _no_gradient_statistics(self, record):
        """What `_gradient_statistics` returns on a step that is not logged."""
        n = len(record.variables)
        return tf.zeros([n, 5 + self.bins], tf.float64), tf.constant(0.0, tf.float64)

    def _assign_statistics(self, channel, record, header, taken):
        """Packs the step's statistics into the channel (after `apply`).

        `taken` is `(activations, gradients, temporal, before, per_example)`,
        what the branches before (and, under replicas, after) `apply` took.
        """
        activations, gradients, temporal, before, per_example = taken
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
        if isinstance(per_example, list):  # one replica: packed here
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
                f"kgrad: no gradient for {len(names)} variable(s), skipped: "
                f"{', '.join(names)}"
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
