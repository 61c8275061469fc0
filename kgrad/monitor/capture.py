"""Takes the statistics of the real training gradients out of the train step.

How it works, and why:

- Keras computes gradients inside the compiled train function and hands them
  to `optimizer.apply(grads, variables)`; callbacks never see them. The capture
  wraps `apply` on every optimizer the train step may call (`model.optimizer`
  and those the model holds, see `kgrad.monitor.optimizers`), so it sees
  exactly the gradients each optimizer applies, from any train step
  (Sequential, functional, subclassed, nested, custom `train_step` with
  several optimizers), before clipping and, under mixed precision, divided by
  the loss scale. Each optimizer has its own statistics vector (a channel).
- With `gradient_accumulation_steps`, the gradient logged is the one applied
  (the average of the accumulated batches) at the batch that updates; the
  batches that only accumulate, like the steps a loss-scale optimizer skips,
  are marked not `applied`, and the callback arms the next batch instead.
- The statistics are traced into a train function of kgrad's own, built
  from the model's own `train_step` with `make_train_function` while the
  wrappers are in place; a dispatcher installed as `model.train_function`
  for the duration of `fit` calls it. On one replica without XLA
  (`single_function`), it serves every step: the statistics sit behind
  `tf.cond` on a flag the callback arms, so a step that is not logged skips
  them, and a fit traces one function, once, as a plain fit does. Under
  `tf.distribute` with several replicas (the all-reduces cannot sit in a
  `tf.cond`) or with `jit_compile`, it is a logging *twin* run on armed
  steps only, and the other steps run Keras's own function.
- On an armed step the statistics are computed (fused, see
  `kgrad.monitor.stats`) and assigned to one float64 variable laid out by
  `Layout`; the host reads it with a single transfer (`read`). With
  `steps_per_execution > 1` the first step of the armed chunk is logged.
  The gradients' statistics run before `apply` (the gradients are not held
  longer than the update needs them), the weights are read before `apply`
  on armed steps only, and the update ratio is taken after it.
- Activations of ReLU, sigmoid and tanh layers are summarised during the same
  forward pass (their `activation` function is wrapped while tracing kgrad's
  train function), so dead units cost no extra forward pass and nothing at
  all on steps that are not logged.

Example:

```python
capture = GradientCapture(model, bins=30)
capture.install()
capture.arm(histograms=True)
model.fit(x, y, epochs=1, steps_per_epoch=1)  # logged step
captured = capture.read()
```
"""

import threading
import warnings

import numpy as np
import tensorflow as tf

from kgrad.monitor import branch, keras_hooks, naming
from kgrad.monitor import stats as stats_lib
from kgrad.monitor.activation_probes import probed_layers
from kgrad.monitor.optimizers import find_optimizers
from kgrad.monitor.packed import (
    TEMPORAL_POINTS,
    fields_of_table,
    gradient_table,
    statistics_layout,
)
from kgrad.monitor.replicas import all_reduce, all_reduce_present
from kgrad.monitor.temporal import TemporalProbe


class Channel:
    """One monitored optimizer: its slot name and its statistics vector.

    Attributes:
        name: Slot name (see `kgrad.monitor.optimizers`).
        optimizer: The optimizer.
        traced: Whether the logging twin of the train step calls it.
    """

    def __init__(self, name, optimizer, size):
        self.name = name
        self.optimizer = optimizer
        self.traced = False
        self.captures_read = 0.0
        self.stats = tf.Variable(
            tf.zeros([size], tf.float64),
            trainable=False,
            name="kgrad_stats",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )


class GradientCapture:
    """Installs the capture of gradient statistics into a compiled model.

    Args:
        model: A compiled `keras.Model`.
        bins: Histogram buckets per variable. Defaults to `30`.
        optimizers: Optimizers to monitor, or `None` for every optimizer the
            model holds. Defaults to `None`.
    """

    def __init__(self, model, bins=30, optimizers=None):
        self.model = model
        self.bins = bins
        self.variables = list(model.trainable_variables)
        self.paths = naming.variable_names(self.variables)
        self.probes = probed_layers(model)
        self.layer_names = naming.layer_names([layer for layer, _ in self.probes])
        self.temporal = TemporalProbe(model)
        self.layout = statistics_layout(
            len(self.variables), bins, len(self.probes), len(self.temporal.layers)
        )
        self._index = {id(v): i for i, v in enumerate(self.variables)}
        self._explicit = optimizers
        self._recording = False
        self._armed = False
        self._batch_size = tf.constant(np.nan, tf.float64)
        self._probe_outputs = {}
        self._restore = []
        self._warned_missing = False
        with model.distribute_strategy.scope():
            self._flag = tf.Variable(
                0,
                dtype=tf.int32,
                trainable=False,
                name="kgrad_flag",
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self.channels = [
                Channel(name, optimizer, self.layout.size)
                for name, optimizer in find_optimizers(model, optimizers)
            ]
        self.single_function = (
            model.distribute_strategy.num_replicas_in_sync == 1
            and not model.jit_compile
        )
        self._armed_now = self._histograms_now = None  # set while tracing
        self._plain_function = None
        self._logging_function = None

    @property
    def traced_channels(self):
        """The channels whose optimizer the train step calls (known once traced)."""
        return [c for c in self.channels if c.traced]

    # -- installation -----------------------------------------------------
    def install(self):
        """Wraps the optimizers and activations and installs the dispatcher."""
        if self.installed():  # left over from a `fit` stopped by an exception
            self.uninstall()
        model = self.model
        for channel in self.channels:
            optimizer = channel.optimizer
            wrapped = self._wrap_apply(channel, optimizer.apply)
            self._patch(optimizer, "apply", wrapped)
        for layer, kind in self.probes:
            attribute = keras_hooks.activation_function_of(layer)
            function = getattr(layer, attribute)
            self._patch(layer, attribute, self._wrap_probe(function, layer, kind))
        self.temporal.install(self._patch, lambda: self._recording, self._when_armed)
        self._plain_function = keras_hooks.plain_train_function(model)
        if self._logging_function is None:
            keras_hooks.build_optimizer_before_tracing(model)
            self._logging_function = self._make_logging_function()
        keras_hooks.install_train_function(
            model, self._make_dispatcher(), self._plain_function, self._restore
        )

    def installed(self):
        """Whether the wrappers are in place (between `install` and `uninstall`)."""
        return bool(self._restore)

    def serves(self, model):
        """Whether this capture (and its traced logging function) fits `model`.

        A capture is kept across `fit` calls, so that its logging twin is
        traced once; recompiling or changing the trainable variables needs a
        new one.
        """
        found = find_optimizers(model, self._explicit)
        return (
            model is self.model
            and [id(o) for _, o in found] == [id(c.optimizer) for c in self.channels]
            and [id(v) for v in model.trainable_variables] == list(self._index)
        )

    def uninstall(self):
        """Restores the model, its optimizer and its train function."""
        while self._restore:
            self._restore.pop()()
        self._armed = False

    def _patch(self, obj, name, value):
        keras_hooks.patch(obj, name, value, self._restore)

    def _make_logging_function(self):
        train_step = self.model.train_step
        capture = self

        def train_step_with_batch_size(data):
            first = tf.nest.flatten(data)[0]
            capture._batch_size = tf.cast(tf.shape(first)[0], tf.float64)
            flag = tf.convert_to_tensor(capture._flag)
            capture._armed_now = flag > 0
            capture._histograms_now = flag > 1
            logs = train_step(data)
            # Later steps of a `steps_per_execution` chunk are not captured.
            capture._flag.assign(0)
            return logs

        return keras_hooks.trace_train_function(
            self.model, train_step_with_batch_size, self._restore
        )

    def _make_dispatcher(self):
        capture = self

        def train_function(iterator):
            if not capture._armed and not capture.single_function:
                try:
                    return capture._plain_function(iterator)
                except BaseException:
                    capture.uninstall()  # `fit` fails: leave the model as it was
                    raise
            capture._armed = False
            capture._recording = True
            try:
                return capture._logging_function(iterator)
            except BaseException:
                capture.uninstall()  # `fit` fails: leave the model as it was
                raise
            finally:
                capture._recording = False

        return train_function

    # -- arming and reading -----------------------------------------------
    def arm(self, histograms):
        """Makes the next call of the train function capture statistics.

        Args:
            histograms: Whether to compute histograms too.
        """
        self._flag.assign(2 if histograms else 1)
        self._armed = True

    def read(self):
        """Returns `[(channel, statistics)]` of the channels that captured.

        One host transfer per optimizer the train step calls; the statistics
        are a dict of numpy arrays. A channel is left out when nothing new was
        captured since the last read (its `capture_count` did not change).
        """
        out = []
        for channel in self.traced_channels:
            values = self.layout.unpack(channel.stats.numpy())
            if values["capture_count"] != channel.captures_read:
                channel.captures_read = values["capture_count"]
                out.append((channel, values))
        return out

    # -- in the traced train step -----------------------------------------
    def _wrap_probe(self, function, layer, kind):
        capture = self

        def probe(*args, **kwargs):
            outputs = function(*args, **kwargs)
            if capture._recording:  # a shared layer runs several times
                mine = capture._probe_outputs.setdefault(threading.get_ident(), {})
                mine.setdefault(id(layer), []).append(outputs)
            return outputs

        probe.__name__ = getattr(function, "__name__", "probe")
        return probe

    def _wrap_apply(self, channel, apply):
        capture = self
        optimizer = channel.optimizer

        def apply_and_capture(grads, trainable_variables=None):
            if not capture._recording:
                return apply(grads, trainable_variables)
            channel.traced = True
            grads = list(grads)
            if trainable_variables is None:
                variables = keras_hooks.optimizer_variables(optimizer)
            else:
                variables = list(trainable_variables)
            keras_hooks.build_optimizer(optimizer, variables)
            with tf.name_scope("kgrad"):  # profiles tell kgrad's ops apart
                scale = keras_hooks.loss_scale(optimizer)
                header = dict(
                    scale=scale,
                    applied=keras_hooks.updates_now(optimizer),
                    step=tf.cast(optimizer.iterations, tf.float64) + 1.0,
                )
                # Under tf.distribute the gradients here are one replica's share:
                # sum them as the optimizer will. All-reduces must stay outside
                # `tf.cond` (no cross-replica sync inside control flow).
                reduced = all_reduce_present(grads)
                # Three branches before `apply`, each with only the inputs it
                # needs, so that none holds tensors longer than the step does:
                # activations (run after the forward pass), gradients (a pure
                # function of them) and the weights before the update.
                activations = capture._activation_statistics()
                gradients = capture._when_armed(
                    lambda: capture._gradient_statistics(
                        channel, grads, reduced, variables, scale
                    ),
                    capture._no_gradient_statistics,
                )
                before = capture._when_armed(
                    lambda: capture._weight_blocks().matrices,
                    capture._no_weight_blocks,
                )
            result = apply(grads, trainable_variables)
            # Reads after `apply` are ordered after its updates by automatic
            # control dependencies (same variable resources).
            with tf.name_scope("kgrad"):
                branch.cond(
                    capture._armed_now,
                    lambda: capture._assign_statistics(
                        channel, header, activations, *gradients, before
                    ),
                    lambda: None,
                )
            return result

        return apply_and_capture

    def _when_armed(self, compute, otherwise):
        """`compute()` on armed steps only, when plain steps share the function.

        With one train function for every step (`single_function`), the
        statistics sit behind `tf.cond` on the armed flag: a step that is not
        logged skips them. The logging twin of a replicated or XLA-compiled
        model runs on armed steps only and all-reduces inside `compute`, which
        must then run outside any `tf.cond`.
        """
        if not self.single_function:
            return compute()
        return branch.cond(self._armed_now, compute, otherwise)

    def _activation_statistics(self):
        """`[m, 2]` activation statistics of this step (see `_activation_values`).

        A branch of their own, which needs only the layers' outputs: it runs
        right after the forward pass, so that the outputs are not held any
        longer than backpropagation holds them.
        """
        outputs = self._probe_outputs.pop(threading.get_ident(), {})
        m = len(self.probes)
        return self._when_armed(
            lambda: self._activation_values(outputs),
            lambda: tf.fill([m, 2], tf.constant(np.nan, tf.float64)),
        )

    def _gradient_statistics(self, channel, grads, reduced, variables, scale):
        """The statistics of the step's gradients, taken before `apply`.

        Returns:
            `(table, skipped, temporal, temporal_length)`: the `[n, 5 + bins]`
            gradient table (see `gradient_table`), whether a loss-scale
            optimizer skips the step, and the temporal profile.
        """
        optimizer = channel.optimizer
        skipped = keras_hooks.skipped_by_loss_scaling(optimizer, grads)
        reduced = keras_hooks.applied_gradients(optimizer, reduced, variables)
        if keras_hooks.is_loss_scaled(optimizer):
            reduced = [_divide(g, scale) if g is not None else None for g in reduced]
        table, missing = gradient_table(
            reduced, variables, self._index, self.bins, self._histograms_now
        )
        self._report_missing(missing)
        temporal, lengths = self.temporal.values(scale)
        return table, skipped, temporal, lengths

    def _no_gradient_statistics(self):
        """What `_gradient_statistics` returns on a step that is not logged."""
        n, r = len(self.variables), len(self.temporal.layers)
        return (
            tf.zeros([n, 5 + self.bins], tf.float64),
            tf.constant(0.0, tf.float64),
            tf.fill([r, TEMPORAL_POINTS], tf.constant(np.nan, tf.float64)),
            tf.zeros([r], tf.float64),
        )

    def _weight_blocks(self):
        return stats_lib.Blocks([tf.convert_to_tensor(v) for v in self.variables])

    def _no_weight_blocks(self):
        """Empty stand-ins for `_weight_blocks().matrices`: nothing allocated."""
        plan = stats_lib.block_plan(self.variables)
        return [tf.zeros([0, 0], self.variables[block[0]].dtype) for block in plan]

    def _assign_statistics(
        self, channel, header, activations, table, skipped, temporal, lengths, before
    ):
        after = self._weight_blocks()
        values = fields_of_table(table)
        values.update(
            capture_count=channel.stats[0] + 1.0,  # tells the host a capture is new
            step=header["step"],
            skipped=skipped,
            applied=header["applied"],
            loss_scale=header["scale"],
            batch_size=self._batch_size,
            weight_sq=stats_lib.sum_of_squares(after.with_matrices(before)),
            update_sq=stats_lib.sum_of_squared_differences(after, before),
            activations=activations,
            temporal=temporal,
            temporal_length=lengths,
        )
        channel.stats.assign(self.layout.pack(values))

    def _activation_values(self, outputs):
        """`[m, 2]` statistics of the probed layers; NaN for those that did not run.

        Each replica of a `MirroredStrategy` traces its step in its own thread:
        the outputs are kept per thread, so that each replica summarises its
        own share of the batch before the replicas' rows are averaged.
        """
        m = len(self.probes)
        ran = [i for i, (layer, _) in enumerate(self.probes) if id(layer) in outputs]
        if not ran:
            return tf.fill([m, 2], tf.constant(np.nan, tf.float64))
        rows = stats_lib.activation_statistics(
            [_all_calls(outputs[id(self.probes[i][0])]) for i in ran],
            [self.probes[i][1] for i in ran],
        )
        rows = all_reduce([rows], mean=True)[0]
        missing = tf.fill([m, 2], tf.constant(np.nan, tf.float64))
        return tf.tensor_scatter_nd_update(missing, [[i] for i in ran], rows)

    def _report_missing(self, missing):
        if not missing or self._warned_missing:
            return
        self._warned_missing = True
        warnings.warn(
            f"No gradient for {len(missing)} variable(s), skipped: "
            f"{', '.join(missing)}",
            stacklevel=2,
        )


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
