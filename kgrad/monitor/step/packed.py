"""The packed statistics vector: its records, and the fields that fill it.

The capture assigns one float64 vector per optimizer on a logged step, so
that the host reads everything with a single transfer; `Layout`
(`kgrad.monitor.step.layout`, shared with the JAX capture, no TensorFlow)
says where each field lies.
`gradient_table` turns a list of gradients into the per-variable fields with
a handful of fused ops (see `kgrad.monitor.step.stats`), and
`record_statistics` packs the statistics of gradients handed over by a
custom training loop (`GradientMonitor.record`, `histograms_flag` its
argument).

A `Record` is what one traced `optimizer.apply` captures: the variables it
received, their unique tag names (`kgrad.monitor.step.naming`:
`variable.path`, or the name, with `_2`, `_3`, ... for repeats), the layers
that go with them
(`LayerOwners`: a layer without variables goes with its closest enclosing
layer that has some) and the `Layout`. Its number travels in the vector's
`record` field, so the host unpacks each capture with the layout it was
packed with.

Tested in tests/test_temporal.py, tests/test_callback.py and tests/test_record.py.

Example:

>>> layout = statistics_layout(n=2, bins=3)
>>> {"grad_sq", "has_grad"} <= set(layout.unpack(np.zeros(layout.size)))
True
"""

import numpy as np
import tensorflow as tf

from kgrad import checks
from kgrad.monitor.step import naming
from kgrad.monitor.step import stats as stats_lib
from kgrad.monitor.step.backend_tensorflow import all_reduce_present
from kgrad.monitor.step.layout import (  # noqa: F401  (the layout's home)
    HEADER,
    TEMPORAL_POINTS,
    Layout,
    sampled_timesteps,
    statistics_layout,
)
from kgrad.monitor.train_function import keras_hooks


def gradient_table(grads, variables, index, bins, histograms):
    """Fused gradient statistics, one row per variable in the layout's order.

    Args:
        grads: Gradients (tensors, `IndexedSlices` or `None`), one per variable.
        variables: The variables the gradients are for.
        index: Dict from `id(variable)` to its position in the layout.
        bins: Histogram buckets.
        histograms: Python bool or boolean tensor: compute histograms
            (Python `False` leaves their code out of the graph).

    Returns:
        `(table, missing)`: float64 `[n, 5 + bins]`, the columns `has_grad`,
        `grad_sq`, `nonfinite`, `hist_min`, `hist_max` and the bucket counts
        (read with `fields_of_table`), and the paths of the variables without
        a gradient (or unknown to `index`).
    """
    n = len(index)
    present, tensors, sizes, missing = [], [], [], []
    for grad, variable in zip(grads, variables, strict=True):
        position = index.get(id(variable))
        if grad is None or position is None:
            missing.append(getattr(variable, "path", str(variable)))
            continue
        present.append(position)
        tensors.append(grad)
        sizes.append(int(np.prod(variable.shape)))
    k = len(present)
    blocks = stats_lib.Blocks(tensors, sizes)
    norms = stats_lib.gradient_statistics(blocks)
    if histograms is False:  # not traced at all
        hist = tf.zeros([k, bins + 2], tf.float64)
    else:
        hist = tf.cond(
            tf.convert_to_tensor(histograms),
            lambda: _packed_histograms(blocks, bins),
            lambda: tf.zeros([k, bins + 2], tf.float64),
        )
    columns = tf.concat(
        [
            tf.ones([k, 1], tf.float64),
            norms["sq_norm"][:, None],
            norms["nonfinite"][:, None],
            hist,
        ],
        axis=1,
    )
    if k == n and present == list(range(n)):
        return columns, missing
    table = tf.scatter_nd(
        tf.constant(present, tf.int32, [k, 1]), columns, [n, 5 + bins]
    )
    return table, missing


def fields_of_table(table):
    """The layout's fields of a `gradient_table`, by name."""
    return {
        "has_grad": table[:, 0],
        "grad_sq": table[:, 1],
        "nonfinite": table[:, 2],
        "hist_min": table[:, 3],
        "hist_max": table[:, 4],
        "hist_counts": table[:, 5:],
    }


def record_statistics(grads, variables, step, bins, histograms):
    """Packed statistics of gradients handed over by a custom training loop.

    Works eagerly and inside `tf.function`. No update ratio (the weights before
    the update are unknown here): `update_sq` is NaN.

    Args:
        grads: Gradients, one per variable (`None` allowed).
        variables: The variables.
        step: The training step (int or scalar tensor).
        bins: Histogram buckets.
        histograms: Whether to compute histograms (Python bool).

    Returns:
        `(packed, layout)`: the float64 vector and its `Layout`.

    Raises:
        ValueError: If `grads` and `variables` differ in length, or `step` is
            negative (a tensor `step` inside `tf.function` fails when run).
        TypeError: If `step` is neither an integer nor a scalar tensor.
    """
    grads, variables, step = _record_arguments(grads, variables, step)
    index = {id(v): i for i, v in enumerate(variables)}
    layout = statistics_layout(len(variables), bins)
    grads = all_reduce_present(grads)
    table, _ = gradient_table(grads, variables, index, bins, histograms)
    fields = fields_of_table(table)
    weights = stats_lib.Blocks([tf.convert_to_tensor(v) for v in variables])
    fields.update(
        capture_count=1.0,
        record=0.0,
        step=step,
        skipped=0.0,
        applied=1.0,
        loss_scale=1.0,
        batch_size=np.nan,
        weight_sq=stats_lib.sum_of_squares(weights),
        update_sq=tf.fill([len(variables)], tf.constant(np.nan, tf.float64)),
        activations=tf.zeros([0, 2], tf.float64),
        temporal=tf.zeros([0, TEMPORAL_POINTS], tf.float64),
        temporal_length=tf.zeros([0], tf.float64),
    )
    return layout.pack(fields), layout


def _record_arguments(grads, variables, step):
    """`(grads, variables, step)` of `record`, checked; lists for the first two."""
    grads, variables = list(grads), list(variables)
    if len(grads) != len(variables):
        raise ValueError(
            "`grads` and `variables` must have the same length (one gradient "
            f"per variable). Received: {len(grads)} grads for {len(variables)} "
            "variables"
        )
    if not tf.is_tensor(step):
        checks.non_negative_int("step", step)
        return grads, variables, step
    if step.shape.rank != 0 or not (step.dtype.is_integer or step.dtype.is_floating):
        raise TypeError(
            f"`step` must be a non-negative integer. Received: step={step!r}"
        )
    if tf.executing_eagerly():
        checks.non_negative_int("step", int(step.numpy()))
        return grads, variables, step
    check = tf.debugging.assert_non_negative(
        step, message="kgrad: `step` of `record` must be non-negative"
    )
    with tf.control_dependencies([check]):
        return grads, variables, tf.identity(step)


def _packed_histograms(blocks, bins):
    hist = stats_lib.histograms(blocks, bins)
    return tf.concat(
        [hist["hist_min"][:, None], hist["hist_max"][:, None], hist["hist_counts"]],
        axis=1,
    )


class LayerOwners:
    """Which variables a layer's statistics go with.

    A layer that holds trainable variables goes with them; one that holds
    none (an `Activation` or `ReLU` layer) goes with those of the closest
    enclosing layer or model that does.

    Args:
        model: The `keras.Model` (its layers may not be built yet).
    """

    def __init__(self, model):
        self._parent = {}
        stack = [model]
        while stack:
            layer = stack.pop()
            for child in keras_hooks.child_layers(layer):
                self._parent.setdefault(id(child), layer)
                stack.append(child)

    def variable_ids(self, layer):
        """`id`s of the trainable variables `layer`'s statistics go with."""
        while layer is not None:
            found = {id(v) for v in layer.trainable_variables}
            if found:
                return found
            layer = self._parent.get(id(layer))
        return set()


class Record:
    """The capture of one optimizer applied to one list of variables.

    Args:
        number: The record's number (>= 1), packed in the `record` field.
        variables: The variables `apply` received, in its order.
        owners: The model's `LayerOwners`.
        probes: `[(layer, kind)]` of every activation probe of the model.
        recurrent: Every recurrent layer with a temporal profile.
        batchnorm: Every BatchNormalization layer of the model.
        bins: Histogram buckets.
        increments: Positions of the variables whose update is measured on
            the optimizer's increments (`kgrad.monitor.step.increments`). Defaults
            to `()`: every update is measured on a snapshot.
        per_example: Whether the layout holds per-example gradient norms
            (`kgrad.monitor.step.per_example`). Defaults to `False`.
        model_name: The name of the model, taken off the front of the tag
            names (`kgrad.monitor.step.naming`). Defaults to `None`: none is.

    Attributes:
        paths: Unique tag names of the variables.
        index: `id(variable) -> row` of the statistics table.
        probes: `[(layer, kind)]` of the probes that go with the variables.
        layer_names: Tag names of those probes, in the same order.
        recurrent: The recurrent layers that go with the variables.
        recurrent_names: Their tag names, in the same order.
        batchnorm_ids: `id`s of the BatchNorm layers that go with them.
        batchnorm_paths: Paths of those seen training in a traced step.
        layout: The packed vector's `Layout`.
        snapshot_positions: Positions of the other variables, whose update
            is the difference with a copy taken before `apply`.
        snapshot_variables: Those variables.
    """

    def __init__(
        self,
        number,
        variables,
        owners,
        probes,
        recurrent,
        batchnorm,
        bins,
        increments=(),
        per_example=False,
        model_name=None,
    ):
        self.number = number
        self.variables = list(variables)
        self.increments = list(increments)
        measured = set(self.increments)
        self.snapshot_positions = [
            i for i in range(len(self.variables)) if i not in measured
        ]
        self.snapshot_variables = [self.variables[i] for i in self.snapshot_positions]
        self.paths = naming.variable_names(self.variables, model_name)
        self.index = {id(v): i for i, v in enumerate(self.variables)}
        mine = set(self.index)

        def goes_with_me(layer):
            return bool(owners.variable_ids(layer) & mine)

        self.probes = [(layer, kind) for layer, kind in probes if goes_with_me(layer)]
        self.layer_names = naming.layer_names(
            [layer for layer, _ in self.probes], model_name
        )
        self.recurrent = [layer for layer in recurrent if goes_with_me(layer)]
        self.recurrent_names = naming.layer_names(self.recurrent, model_name)
        self.batchnorm_ids = {
            id(layer)
            for layer in batchnorm
            if goes_with_me(layer) or not layer.trainable_variables
        }
        self.batchnorm_paths = set()
        self.layout = statistics_layout(
            len(self.variables),
            bins,
            len(self.probes),
            len(self.recurrent),
            per_example,
        )

    @property
    def layer_ids(self):
        """`id`s of the probed and BatchNorm layers whose forward pass it takes."""
        return {id(layer) for layer, _ in self.probes} | self.batchnorm_ids


def histograms_flag(value):
    """`histograms` of `record`: a Python bool or a scalar bool tensor."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if tf.is_tensor(value) and value.dtype == tf.bool and value.shape.rank == 0:
        return value
    raise TypeError(
        "`histograms` must be True, False or a scalar bool tensor (e.g. "
        f"`step % 500 == 0` inside tf.function). Received: histograms={value!r}"
    )
