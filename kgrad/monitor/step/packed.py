"""The packed statistics vector: its layout, and the fused fields that fill it.

GradientCapture assigns one float64 vector per logged step, so that the host
reads everything with a single transfer; `Layout` (in
`kgrad.monitor.step.layout`, shared with the JAX capture) says where each
field lies. `gradient_table` turns a list of gradients into the per-variable fields with
a handful of fused ops (see `kgrad.monitor.step.stats`), and
`record_statistics` packs the statistics of gradients handed over by a
custom training loop.

Example:

>>> layout = statistics_layout(n=2, bins=3)
>>> {"grad_sq", "has_grad"} <= set(layout.unpack(np.zeros(layout.size)))
True
"""

import numpy as np
import tensorflow as tf

from kgrad import checks
from kgrad.monitor.step import stats as stats_lib
from kgrad.monitor.step.layout import (  # noqa: F401  (the layout's home)
    HEADER,
    TEMPORAL_POINTS,
    Layout,
    sampled_timesteps,
    statistics_layout,
)
from kgrad.monitor.step.replicas import all_reduce_present


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
