"""Pure tensor statistics of gradients, weights and activations.

Everything here is a TensorFlow function of tensors, traced into the training
step and run on the steps that are logged. Per-variable statistics are
*fused*: `Blocks` stacks the variables that share a shape (the hidden layers
of a deep network do) into one `[k, m]` matrix each, and every statistic is
one reduction over a block's rows. The ops added to a logged step grow with
the number of distinct shapes, not with depth. Tensors of more than
`STACK_LIMIT` entries are blocks of their own, reduced in place: stacking
them would only copy memory.

Sums of squares are exact for vanishing gradients (squares of 1e-30 do not
underflow): small blocks are summed in float64, and a large tensor is scaled
by its largest entry before it is squared in its own dtype, so that no
float64 copy of it is made. Histograms are bucketed in float64, as
TensorBoard's own `histogram_pb` does, and counted with `bincount`.

Tested in tests/test_stats.py.

Example:

>>> import tensorflow as tf
>>> blocks = Blocks([tf.ones([2, 3]), tf.ones([4]), tf.ones([2, 3])])
>>> len(blocks.matrices)   # the two [2, 3] tensors share a block
2
>>> gradient_statistics(blocks)["sq_norm"].numpy().tolist()
[6.0, 4.0, 6.0]
>>> histograms(blocks, bins=4)["hist_counts"].numpy()[1].tolist()
[0.0, 0.0, 0.0, 4.0]
"""

import numpy as np
import tensorflow as tf

STACK_LIMIT = 1 << 16  # entries; larger tensors are not stacked


class Blocks:
    """Tensors (dense or `tf.IndexedSlices`) as a few `[k, m]` matrices.

    An `IndexedSlices` gradient (from `Embedding`) is summed over repeated
    indices and only its touched rows are kept, in a block of its own: its
    norm is the norm of the dense equivalent, computed without densifying the
    table. The rows it leaves out are zeros, counted in `implicit_zeros` for
    the histograms.

    Args:
        tensors: List of tensors or `tf.IndexedSlices`.
        dense_sizes: Number of entries of each tensor's dense equivalent, needed
            for `tf.IndexedSlices`. Defaults to `None` (all tensors dense).

    Attributes:
        matrices: List of `[k, m]` tensors in the tensors' own dtype.
        order: The index in `tensors` of each row, blocks one after another.
        implicit_zeros: float64 vector, implicit zero entries of each row.
    """

    def __init__(self, tensors, dense_sizes=None):
        self.matrices, self.order, zeros = [], [], []
        for indices in block_plan(tensors):
            self.order += indices
            first = tensors[indices[0]]
            if isinstance(first, tf.IndexedSlices):
                rows = _touched_rows(first)
                self.matrices.append(tf.reshape(rows, [1, -1]))
                zeros.append(
                    tf.cast(dense_sizes[indices[0]] - tf.size(rows), tf.float64)
                )
                continue
            if len(indices) == 1:  # a view, not a copy
                self.matrices.append(tf.reshape(first, [1, -1]))
            else:
                stacked = tf.stack([tensors[i] for i in indices])
                self.matrices.append(tf.reshape(stacked, [len(indices), -1]))
            zeros += [tf.constant(0.0, tf.float64)] * len(indices)
        self.implicit_zeros = tf.stack(zeros)
        self._inverse = np.argsort(np.asarray(self.order, np.int32)).astype(np.int32)

    def with_matrices(self, matrices):
        """The same layout over other matrices of the same shapes."""
        blocks = object.__new__(Blocks)
        blocks.__dict__.update(self.__dict__, matrices=list(matrices))
        return blocks

    def in_input_order(self, rows):
        """Reorders per-row values (blocks one after another) as the inputs."""
        return tf.gather(rows, self._inverse)

    def per_row(self, reduce):
        """Applies `reduce` (float64 `[k, m]` -> `[k, ...]`) to every block.

        Returns the results concatenated in the order of the inputs.
        """
        rows = [reduce(tf.cast(m, tf.float64)) for m in self.matrices]
        return self.in_input_order(tf.concat(rows, 0))


def block_plan(tensors):
    """The indices of `tensors` that each block of `Blocks(tensors)` holds.

    Reads only shapes, dtypes and types, so it also plans for variables:

    >>> block_plan([tf.ones([2]), tf.ones([3]), tf.ones([2])])
    [[0, 2], [1]]
    """
    groups, singles = {}, []
    for i, tensor in enumerate(tensors):
        entries = tf.TensorShape(tensor.shape).num_elements()
        if isinstance(tensor, tf.IndexedSlices) or not entries or entries > STACK_LIMIT:
            singles.append([i])
        else:
            groups.setdefault((tuple(tensor.shape), tensor.dtype), []).append(i)
    return list(groups.values()) + singles


def _touched_rows(slices):
    unique, position = tf.unique(slices.indices)
    return tf.math.unsorted_segment_sum(slices.values, position, tf.size(unique))


def sum_of_squares(blocks):
    """float64 sum of squares of each tensor of `blocks`, in input order.

    >>> tiny = [tf.fill([4], 1e-30), tf.fill([STACK_LIMIT + 1], 1e-30)]
    >>> [f"{v:.4e}" for v in sum_of_squares(Blocks(tiny)).numpy()]
    ['4.0000e-60', '6.5537e-56']
    """
    rows = one_large_at_a_time(blocks.matrices, _block_sum_of_squares)
    return blocks.in_input_order(tf.concat(rows, 0))


def is_large(matrix):
    """Whether `matrix` (a block) is one tensor of more than `STACK_LIMIT` entries."""
    entries = matrix.shape[1]
    return matrix.shape[0] == 1 and (entries is None or entries > STACK_LIMIT)


def one_large_at_a_time(matrices, reduce):
    """`[reduce(m) for m in matrices]`, the large blocks reduced one after another.

    Each large block's reduction waits for the previous one's result (a
    control dependency), so that the temporaries of only one large tensor are
    alive at a time: the peak memory of a logged step is bounded by the
    largest variable, not by the sum of all of them. Small (stacked) blocks
    run freely.
    """
    out, previous = [], []
    for matrix in matrices:
        if not is_large(matrix):
            out.append(reduce(matrix))
            continue
        with tf.control_dependencies(previous):
            result = reduce(tf.identity(matrix))
        previous = [result]
        out.append(result)
    return out


def sum_of_squared_differences(after, before):
    """float64 `sum((after - before)**2)` per tensor, `before` as `after.matrices`."""
    matrices = [a - b for a, b in zip(after.matrices, before, strict=True)]
    return sum_of_squares(after.with_matrices(matrices))


def _block_sum_of_squares(matrix):
    if not is_large(matrix):
        return tf.reduce_sum(tf.square(tf.cast(matrix, tf.float64)), 1)
    # One large tensor: scaled by its largest entry, squared in its own dtype.
    top = tf.maximum(tf.reduce_max(matrix), -tf.reduce_min(matrix))  # no copy
    scale = tf.where(tf.math.is_finite(top) & (top > 0), top, tf.ones_like(top))
    scaled = tf.cast(tf.reduce_sum(tf.square(matrix / scale)), tf.float64)
    return tf.reshape(scaled * tf.square(tf.cast(scale, tf.float64)), [1])


def gradient_statistics(blocks):
    """Squared norms and non-finite counts of gradients.

    Args:
        blocks: The gradients as `Blocks`.

    Returns:
        Dict of float64 vectors `[n]` in input order: `sq_norm` (NaN/Inf
        propagate, as in the true norm) and `nonfinite`. Non-finite entries
        are counted only when some norm is not finite (nothing to count
        otherwise).
    """
    sq_norm = sum_of_squares(blocks)

    def count():
        return blocks.per_row(
            lambda x: tf.reduce_sum(tf.cast(~tf.math.is_finite(x), tf.float64), 1)
        )

    nonfinite = tf.cond(
        tf.reduce_all(tf.math.is_finite(sq_norm)),
        lambda: tf.zeros_like(sq_norm),
        count,
    )
    return {"sq_norm": sq_norm, "nonfinite": nonfinite}


def histograms(blocks, bins):
    """Per-tensor histograms of gradients.

    TensorBoard's convention: `bins` equal buckets from the minimum to the
    maximum, all values in the last bucket when they are all equal. Only
    finite values are counted (NaN/Inf are `gradient_statistics`'s
    `nonfinite`); implicit zeros of sparse gradients go in the bucket of zero.
    A large tensor is bucketed `HISTOGRAM_CHUNK` entries at a time, one large
    tensor after another, so that its float64 temporaries never outgrow it.

    Args:
        blocks: The gradients as `Blocks`.
        bins: Number of buckets.

    Returns:
        Dict of float64 tensors in input order: `hist_min` [n], `hist_max`
        [n], `hist_counts` [n, bins].
    """
    zeros, start = [], 0
    for matrix in blocks.matrices:
        zeros.append(blocks.implicit_zeros[start : start + matrix.shape[0]])
        start += matrix.shape[0]
    pending = iter(zeros)
    rows = one_large_at_a_time(
        blocks.matrices, lambda m: _block_histograms(m, next(pending), bins)
    )
    packed = blocks.in_input_order(tf.concat(rows, 0))
    return {
        "hist_min": packed[:, 0],
        "hist_max": packed[:, 1],
        "hist_counts": packed[:, 2:],
    }


HISTOGRAM_CHUNK = 1 << 18  # entries of a large tensor bucketed at once


def _block_histograms(matrix, implicit_zeros, bins):
    """`[k, 2 + bins]`: min, max and bucket counts of each row of `matrix`."""
    chunked = is_large(matrix) and matrix.shape[1] is not None
    if chunked:
        low, high = _large_range(tf.reshape(matrix, [-1]))
        low, high = low[None], high[None]
    else:
        x = tf.cast(matrix, tf.float64)
        finite = tf.math.is_finite(x)
        inf = tf.constant(float("inf"), tf.float64)
        low = tf.reduce_min(tf.where(finite, x, inf), 1)
        high = tf.reduce_max(tf.where(finite, x, -inf), 1)
    has_zeros = implicit_zeros > 0
    low = tf.where(has_zeros, tf.minimum(low, 0.0), low)
    high = tf.where(has_zeros, tf.maximum(high, 0.0), high)
    empty = tf.math.is_inf(low)
    low = tf.where(empty, tf.zeros_like(low), low)
    high = tf.where(empty, tf.zeros_like(high), high)
    width = (high - low) / bins
    if chunked:
        counts = _chunked_counts(tf.reshape(matrix, [-1]), low, width, bins)
    else:
        counts = _bucket_counts(x, low, width, bins)
    zero_bucket = _bucket_of(tf.zeros([1, 1], tf.float64), low, width, bins)[:, 0]
    counts += tf.one_hot(zero_bucket, bins, dtype=tf.float64) * implicit_zeros[:, None]
    return tf.concat([low[:, None], high[:, None], counts], 1)


def _large_range(flat):
    """float64 `(min, max)` of the finite entries of a large 1-D tensor.

    Read in place when every entry is finite (the usual case); the copies
    that mask non-finite entries are made only when there are some.
    """

    def in_place():
        return (
            tf.cast(tf.reduce_min(flat), tf.float64),
            tf.cast(tf.reduce_max(flat), tf.float64),
        )

    def masked():
        x = tf.cast(flat, tf.float64)
        finite = tf.math.is_finite(x)
        inf = tf.constant(float("inf"), tf.float64)
        return (
            tf.reduce_min(tf.where(finite, x, inf)),
            tf.reduce_max(tf.where(finite, x, -inf)),
        )

    return tf.cond(tf.reduce_all(tf.math.is_finite(flat)), in_place, masked)


def _chunked_counts(flat, low, width, bins):
    """`[1, bins]` counts of a large 1-D tensor, `HISTOGRAM_CHUNK` at a time."""
    size = flat.shape[0]
    counts, previous = [], []
    for begin in range(0, size, HISTOGRAM_CHUNK):
        with tf.control_dependencies(previous):
            chunk = tf.cast(flat[begin : begin + HISTOGRAM_CHUNK], tf.float64)
            result = _bucket_counts(chunk[None], low, width, bins)
        previous = [result]
        counts.append(result)
    return tf.add_n(counts)


def _bucket_of(values, low, width, bins):
    """int32 bucket of each float64 entry of `values` `[k, m]` (finite only)."""
    safe_width = tf.where(width > 0, width, tf.ones_like(width))[:, None]
    index = tf.floor((values - low[:, None]) / safe_width)
    index = tf.where(width[:, None] > 0, index, bins - 1.0)
    return tf.cast(tf.clip_by_value(index, 0.0, bins - 1.0), tf.int32)


def _bucket_counts(x, low, width, bins):
    """`[k, bins]` float64 counts of the finite entries of each row of `x`."""
    k = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
    finite = tf.math.is_finite(x)
    buckets = _bucket_of(tf.where(finite, x, low[:, None]), low, width, bins)
    ids = buckets + bins * tf.range(k)[:, None]
    ids = tf.where(finite, ids, k * bins)  # non-finite: one bucket past the end
    # The raw op takes the number of buckets as is: XLA needs it constant.
    counts = tf.raw_ops.DenseBincount(
        input=tf.reshape(ids, [-1]),
        size=k * bins + 1,
        weights=tf.constant([], tf.float64),
    )
    return tf.reshape(counts[: k * bins], [k, bins])


def activation_statistics(outputs, kinds):
    """Statistics of layers' activations on a batch, fused by unit count.

    Each output is reduced once, over all axes but the last, to the share of
    flagged entries per unit; these per-unit shares are stacked by shape
    (`Blocks`) and reduced together. Nothing is copied: a reduction reads each
    output once, where concatenating the outputs first (an earlier design) cost
    about three times as long.

    Args:
        outputs: The layers' output tensors, batch first, units last.
        kinds: Each layer's `"relu"`, `"sigmoid"` or `"tanh"`.

    Returns:
        float64 `[n, 2]`, one row per layer in input order:
        `[zero_or_saturated_share, dead_unit_share]`. For ReLU layers: the
        share of outputs that are zero, and the share of units (last axis)
        that are zero for every example of the batch (dead units). For
        sigmoid/tanh: the share of outputs within 1% of the function's bounds
        (saturated), and the share of units saturated on every example.

    Example:

    >>> relu = tf.constant([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    >>> activation_statistics([relu], ["relu"]).numpy().tolist()
    [[0.5, 0.3333333333333333]]
    """
    per_unit = []
    for x, kind in zip(outputs, kinds, strict=True):
        if kind not in _FLAGGED:
            raise ValueError(f"Unknown activation kind. Received: kind={kind}")
        if x.shape.rank is None:
            x = tf.reshape(x, [-1, tf.shape(x)[-1]])
        flagged = tf.cast(_FLAGGED[kind](x), tf.float64)
        per_unit.append(tf.reduce_mean(flagged, axis=list(range(x.shape.rank - 1))))

    def shares(rows):  # [layers, units] per-unit shares -> [layers, 2]
        always = tf.cast(tf.equal(rows, 1.0), tf.float64)
        return tf.stack([tf.reduce_mean(rows, 1), tf.reduce_mean(always, 1)], 1)

    return Blocks(per_unit).per_row(shares)


_FLAGGED = {
    "relu": lambda x: x <= 0.0,
    "sigmoid": lambda x: tf.logical_or(x < 0.01, x > 0.99),
    "tanh": lambda x: tf.abs(x) > 0.98,
}
