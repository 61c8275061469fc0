"""Pure tensor statistics of gradients, weights and activations.

Everything here is a TensorFlow function of tensors, traced into the training
step and run on the steps that are logged. Per-tensor statistics are *fused*:
`Rows` concatenates the small tensors of one dtype into one flat vector and
reduces it by segments (`unsorted_segment_*`), so the ops a logged step adds,
and the time the first step spends tracing them, grow with the number of
dtypes and large tensors, not with depth. A tensor of more than `STACK_LIMIT`
entries is a block of its own, reduced in place: concatenating it would only
copy memory.

Sums of squares are exact for vanishing gradients: small tensors are summed
in float64, and a large tensor is scaled by its largest entry before it is
squared in float32, so entries of 1e-30 do not underflow, and no float64 copy
of a large tensor is made. Histograms are bucketed in float64, as
TensorBoard's own `histogram_pb` does.

Example:

>>> import tensorflow as tf
>>> rows = Rows([tf.ones([2, 3]), tf.ones([4]), tf.ones([2, 3])])
>>> len(rows.blocks)   # three small float32 tensors: one flat block
1
>>> gradient_statistics(rows)["sq_norm"].numpy().tolist()
[6.0, 4.0, 6.0]
>>> histograms(rows, bins=4)["hist_counts"].numpy()[1].tolist()
[0.0, 0.0, 0.0, 4.0]
"""

import numpy as np
import tensorflow as tf

STACK_LIMIT = 1 << 16  # entries; larger tensors are blocks of their own


class Block:
    """Some tensors flattened into one vector.

    Attributes:
        values: 1-D tensor, the tensors' entries one after another.
        ids: int32 segment id (row) of each entry, or `None` for one row.
        rows: Number of tensors in the block.
        large: Whether the block is one large dense tensor (reduced in place).
    """

    def __init__(self, values, ids, rows, large=False):
        self.values, self.ids, self.rows, self.large = values, ids, rows, large

    def reduce(self, x, kind):
        """Per-row `"sum"`, `"min"` or `"max"` of `x` (laid out as `values`)."""
        if self.ids is None:
            return tf.reshape(_REDUCE[kind][0](x), [1])
        return _REDUCE[kind][1](x, self.ids, self.rows)

    def expand(self, per_row):
        """Per-row values repeated for each entry (a scalar for one row)."""
        if self.ids is None:
            return per_row[0]
        return tf.gather(per_row, self.ids)


_REDUCE = {
    "sum": (tf.reduce_sum, tf.math.unsorted_segment_sum),
    "min": (tf.reduce_min, tf.math.unsorted_segment_min),
    "max": (tf.reduce_max, tf.math.unsorted_segment_max),
}


class Rows:
    """Tensors (dense or `tf.IndexedSlices`) as rows of a few flat blocks.

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
        blocks: List of `Block`.
        order: The index in `tensors` of each row, blocks one after another.
        implicit_zeros: float64 vector, implicit zero entries of each row.
    """

    def __init__(self, tensors, dense_sizes=None):
        self.blocks, self.order, zeros = [], [], []
        for indices in row_plan(tensors):
            self.order += indices
            first = tensors[indices[0]]
            if isinstance(first, tf.IndexedSlices):
                rows = _touched_rows(first)
                self.blocks.append(Block(tf.reshape(rows, [-1]), None, 1))
                zeros.append(
                    tf.cast(dense_sizes[indices[0]] - tf.size(rows), tf.float64)
                )
                continue
            self.blocks.append(_flat_block([tensors[i] for i in indices]))
            zeros += [0.0] * len(indices)
        self.implicit_zeros = _float64_vector(zeros)
        self._inverse = np.argsort(np.asarray(self.order, np.int32)).astype(np.int32)

    def with_values(self, values):
        """The same layout over other block vectors (`[b.values for b in blocks]`)."""
        rows = object.__new__(Rows)
        rows.__dict__.update(self.__dict__)
        rows.blocks = [
            Block(v, b.ids, b.rows, b.large)
            for v, b in zip(values, self.blocks, strict=True)
        ]
        return rows

    @property
    def values(self):
        """The blocks' flat vectors, one per block."""
        return [block.values for block in self.blocks]

    def in_input_order(self, rows):
        """Reorders per-row values (blocks one after another) as the inputs."""
        if len(self.order) == 0:
            return rows
        return tf.gather(rows, self._inverse)

    def per_row(self, reduce):
        """Applies `reduce(block) -> [rows, ...]` to every block, in input order."""
        if not self.blocks:
            return tf.zeros([0], tf.float64)
        return self.in_input_order(tf.concat([reduce(b) for b in self.blocks], 0))


def row_plan(tensors):
    """The indices of `tensors` that each block of `Rows(tensors)` holds.

    Small tensors of one dtype share a block; a large tensor, one of unknown
    size or an `IndexedSlices` has its own. Reads only shapes, dtypes and
    types, so it also plans for variables:

    >>> row_plan([tf.ones([2]), tf.ones([70000]), tf.ones([3])])
    [[0, 2], [1]]
    """
    groups, singles = {}, []
    for i, tensor in enumerate(tensors):
        entries = tf.TensorShape(tensor.shape).num_elements()
        if isinstance(tensor, tf.IndexedSlices) or entries is None:
            singles.append([i])
        elif entries > STACK_LIMIT:
            singles.append([i])
        else:
            groups.setdefault(tensor.dtype, []).append(i)
    return list(groups.values()) + singles


def _float64_vector(values):
    """Python floats and float64 scalars as one vector (a constant if it can)."""
    if all(isinstance(v, float) for v in values):
        return tf.constant(values, tf.float64, [len(values)])
    return tf.stack(
        [tf.constant(v, tf.float64) if isinstance(v, float) else v for v in values]
    )


def _flat_block(tensors):
    flat_shape = tf.constant([-1])  # one shape for every reshape
    flat = [tf.reshape(t, flat_shape) for t in tensors]
    sizes = [tf.TensorShape(t.shape).num_elements() for t in tensors]
    if len(tensors) == 1:
        return Block(flat[0], None, 1, large=not sizes[0] or sizes[0] > STACK_LIMIT)
    ends = np.cumsum(sizes)
    ids = tf.raw_ops.Bucketize(
        input=tf.range(int(ends[-1])), boundaries=[float(e) for e in ends[:-1]]
    )
    return Block(tf.concat(flat, 0), ids, len(tensors))


def _touched_rows(slices):
    unique, position = tf.unique(slices.indices)
    return tf.math.unsorted_segment_sum(slices.values, position, tf.size(unique))


def _block_sum_of_squares(block):
    if not block.large:
        return block.reduce(tf.square(tf.cast(block.values, tf.float64)), "sum")
    # One large tensor: scaled by its largest entry, squared in its own dtype.
    x = block.values
    top = tf.reduce_max(tf.abs(x))
    scale = tf.where(tf.math.is_finite(top) & (top > 0), top, tf.ones_like(top))
    scaled = tf.cast(tf.reduce_sum(tf.square(x / scale)), tf.float64)
    return tf.reshape(scaled * tf.square(tf.cast(scale, tf.float64)), [1])


def sum_of_squares(rows):
    """float64 sum of squares of each tensor of `rows`, in input order.

    >>> tiny = [tf.fill([4], 1e-30), tf.fill([STACK_LIMIT + 1], 1e-30)]  # small, large
    >>> [f"{v:.4e}" for v in sum_of_squares(Rows(tiny)).numpy()]
    ['4.0000e-60', '6.5537e-56']
    """
    return rows.per_row(_block_sum_of_squares)


def sum_of_squared_differences(after, before):
    """float64 `sum((after - before)**2)` per tensor, for `Rows` of one layout."""
    return sum_of_squares(
        after.with_values([a - b for a, b in zip(after.values, before, strict=True)])
    )


def gradient_statistics(rows):
    """Squared norms and non-finite counts of gradients.

    Args:
        rows: The gradients as `Rows`.

    Returns:
        Dict of float64 vectors `[n]` in input order: `sq_norm` (NaN/Inf
        propagate, as in the true norm) and `nonfinite`. Non-finite entries
        are counted only when some norm is not finite (nothing to count
        otherwise).
    """
    sq_norm = sum_of_squares(rows)

    def count():
        return rows.per_row(
            lambda b: b.reduce(tf.cast(~tf.math.is_finite(b.values), tf.float64), "sum")
        )

    nonfinite = tf.cond(
        tf.reduce_all(tf.math.is_finite(sq_norm)),
        lambda: tf.zeros_like(sq_norm),
        count,
    )
    return {"sq_norm": sq_norm, "nonfinite": nonfinite}


def histograms(rows, bins):
    """Per-tensor histograms of gradients.

    TensorBoard's convention: `bins` equal buckets from the minimum to the
    maximum, all values in the last bucket when they are all equal. Only
    finite values are counted (NaN/Inf are `gradient_statistics`'s
    `nonfinite`); implicit zeros of sparse gradients go in the bucket of zero.

    Args:
        rows: The gradients as `Rows`.
        bins: Number of buckets.

    Returns:
        Dict of float64 tensors in input order: `hist_min` [n], `hist_max`
        [n], `hist_counts` [n, bins].
    """
    parts, start = [], 0
    for block in rows.blocks:
        zeros = rows.implicit_zeros[start : start + block.rows]
        parts.append(_block_histograms(block, zeros, bins))
        start += block.rows
    if not parts:
        empty = tf.zeros([0], tf.float64)
        return {"hist_min": empty, "hist_max": empty, "hist_counts": empty[:, None]}
    packed = rows.in_input_order(tf.concat(parts, 0))
    return {
        "hist_min": packed[:, 0],
        "hist_max": packed[:, 1],
        "hist_counts": packed[:, 2:],
    }


def _block_histograms(block, implicit_zeros, bins):
    """`[rows, 2 + bins]`: min, max and bucket counts of each row of `block`."""
    x = tf.cast(block.values, tf.float64)
    finite = tf.math.is_finite(x)
    inf = tf.constant(float("inf"), tf.float64)
    low = block.reduce(tf.where(finite, x, inf), "min")
    high = block.reduce(tf.where(finite, x, -inf), "max")
    has_zeros = implicit_zeros > 0
    low = tf.where(has_zeros, tf.minimum(low, 0.0), low)
    high = tf.where(has_zeros, tf.maximum(high, 0.0), high)
    empty = tf.math.is_inf(low)
    low = tf.where(empty, tf.zeros_like(low), low)
    high = tf.where(empty, tf.zeros_like(high), high)
    width = (high - low) / bins
    safe_width = tf.where(width > 0, width, tf.ones_like(width))

    def bucket_of(values, low, width, safe_width):
        index = tf.floor((values - low) / safe_width)
        index = tf.where(width > 0, index, bins - 1.0)
        return tf.cast(tf.clip_by_value(index, 0.0, bins - 1.0), tf.int32)

    entry_low = block.expand(low)
    buckets = bucket_of(
        tf.where(finite, x, entry_low),
        entry_low,
        block.expand(width),
        block.expand(safe_width),
    )
    if block.ids is not None:
        buckets += bins * block.ids
    counts = tf.math.unsorted_segment_sum(
        tf.cast(finite, tf.float64), buckets, block.rows * bins
    )
    counts = tf.reshape(counts, [block.rows, bins])
    zero_bucket = bucket_of(tf.zeros_like(low), low, width, safe_width)
    counts += tf.one_hot(zero_bucket, bins, dtype=tf.float64) * implicit_zeros[:, None]
    return tf.concat([low[:, None], high[:, None], counts], 1)


def activation_statistics(outputs, kinds):
    """Statistics of layers' activations on a batch, fused over layers.

    Each output is reduced once, over all axes but the last, to the share of
    flagged entries per unit; these per-unit shares of all layers are then
    reduced together (`Rows`). Nothing is copied but the per-unit shares.

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

    def shares(block):  # per-unit shares -> [rows, 2]
        units = block.reduce(tf.ones_like(block.values), "sum")
        always = tf.cast(tf.equal(block.values, 1.0), tf.float64)
        return (
            tf.stack(
                [block.reduce(block.values, "sum"), block.reduce(always, "sum")], 1
            )
            / units[:, None]
        )

    return Rows(per_unit).per_row(shares)


_FLAGGED = {
    "relu": lambda x: x <= 0.0,
    "sigmoid": lambda x: tf.logical_or(x < 0.01, x > 0.99),
    "tanh": lambda x: tf.abs(x) > 0.98,
}
