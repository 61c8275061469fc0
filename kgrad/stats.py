"""Pure tensor statistics of gradients, weights and activations.

Everything here is a TensorFlow function of tensors, traced into the training
step on the steps that are logged. Per-variable statistics are *fused*: the
tensors of all variables are flattened into one vector and reduced with segment
sums, so the work added to a logged step is a handful of ops whatever the number
of variables (one small op per variable per statistic would cost milliseconds on
a deep model). Sums are accumulated in float64 so that norms of millions of
float32 entries keep their precision (float32 segment sums lose 1e-4).

Example:

>>> import tensorflow as tf
>>> flat, sizes, zeros = flatten([tf.ones([2, 3]), tf.ones([4])])
>>> gradient_statistics(flat, sizes)["sq_norm"].numpy().tolist()
[6.0, 4.0]
>>> histograms(flat, sizes, zeros, bins=4)["hist_counts"].numpy()[0].tolist()
[0.0, 0.0, 0.0, 6.0]
"""

import tensorflow as tf


def flatten(tensors, dense_sizes=None):
    """Flattens tensors (dense or `tf.IndexedSlices`) into one vector.

    An `IndexedSlices` gradient (from `Embedding`) is summed over repeated
    indices and only its touched rows are kept: its norm is the norm of the
    dense equivalent, computed without densifying the table. The rows it
    leaves out are zeros, counted in `implicit_zeros` for the histograms.

    Args:
        tensors: List of tensors or `tf.IndexedSlices`.
        dense_sizes: Number of entries of each tensor's dense equivalent, needed
            for `tf.IndexedSlices`. Defaults to `None` (all tensors dense).

    Returns:
        `(flat, sizes, implicit_zeros)`: the float32 vector, an int32 vector with
        the number of entries each tensor contributed, and a float64 vector with
        the number of implicit zero entries of each tensor.
    """
    parts, sizes, zeros = [], [], []
    for i, tensor in enumerate(tensors):
        if isinstance(tensor, tf.IndexedSlices):
            unique, position = tf.unique(tensor.indices)
            rows = tf.math.unsorted_segment_sum(
                tensor.values, position, tf.size(unique)
            )
            part = tf.reshape(tf.cast(rows, tf.float32), [-1])
            size = tf.size(part)
            zeros.append(tf.cast(dense_sizes[i] - size, tf.float64))
        else:
            part = tf.reshape(tf.cast(tensor, tf.float32), [-1])
            size = tf.size(part)
            zeros.append(tf.constant(0.0, tf.float64))
        parts.append(part)
        sizes.append(size)
    return tf.concat(parts, 0), tf.stack(sizes), tf.stack(zeros)


def segment_ids(sizes):
    """Returns the segment id of every entry of a flattened vector.

    Args:
        sizes: int32 vector, the number of entries of each segment.

    Returns:
        An int32 vector of length `sum(sizes)`: entry j belongs to segment i.
    """
    return tf.repeat(tf.range(tf.size(sizes)), sizes)


def sum_of_squares(flat, sizes):
    """Per-segment sum of squares, accumulated in float64.

    Args:
        flat: Concatenated values: a vector, or `[N, k]` for k columns at once
            (e.g. weights and their update) that share the segment ids.
        sizes: int32 vector of segment sizes.

    Returns:
        float64 tensor with one sum per segment (`[n]` or `[n, k]`).
    """
    values = tf.cast(flat, tf.float64)
    return tf.math.unsorted_segment_sum(
        tf.square(values), segment_ids(sizes), tf.size(sizes)
    )


def gradient_statistics(flat, sizes):
    """Squared norms and non-finite counts of concatenated gradients.

    Args:
        flat: float32 vector of concatenated gradients (see `flatten`).
        sizes: int32 vector, entries per variable.

    Returns:
        Dict of float64 vectors `[n]`: `sq_norm` (NaN/Inf propagate, as in the
        true norm) and `nonfinite`.
    """
    n = tf.size(sizes)
    ids = segment_ids(sizes)
    values = tf.cast(flat, tf.float64)
    finite = tf.math.is_finite(values)
    return {
        "sq_norm": tf.math.unsorted_segment_sum(tf.square(values), ids, n),
        "nonfinite": tf.math.unsorted_segment_sum(
            tf.cast(tf.logical_not(finite), tf.float64), ids, n
        ),
    }


def histograms(flat, sizes, implicit_zeros, bins):
    """Per-variable histograms of concatenated gradients.

    TensorBoard's convention: `bins` equal buckets from the minimum to the
    maximum, all values in the last bucket when they are all equal. Only
    finite values are counted (NaN/Inf are `gradient_statistics`'s
    `nonfinite`); implicit zeros of sparse gradients go in the bucket of zero.

    Args:
        flat: float32 vector of concatenated gradients (see `flatten`).
        sizes: int32 vector, entries per variable.
        implicit_zeros: float64 vector, implicit zero entries per variable.
        bins: Number of buckets.

    Returns:
        Dict of float64 tensors: `hist_min` [n], `hist_max` [n],
        `hist_counts` [n, bins].
    """
    n = tf.size(sizes)
    ids = segment_ids(sizes)
    values = tf.cast(flat, tf.float64)
    finite = tf.math.is_finite(values)
    has_zeros = implicit_zeros > 0
    inf = tf.constant(float("inf"), tf.float64)
    low = tf.math.unsorted_segment_min(tf.where(finite, values, inf), ids, n)
    high = tf.math.unsorted_segment_max(tf.where(finite, values, -inf), ids, n)
    low = tf.where(has_zeros, tf.minimum(low, 0.0), low)
    high = tf.where(has_zeros, tf.maximum(high, 0.0), high)
    empty = tf.math.is_inf(low)
    low = tf.where(empty, tf.zeros_like(low), low)
    high = tf.where(empty, tf.zeros_like(high), high)
    width = (high - low) / bins

    def bucket_of(x, segment):
        safe_width = tf.where(width > 0, width, tf.ones_like(width))
        index = tf.floor((x - tf.gather(low, segment)) / tf.gather(safe_width, segment))
        index = tf.where(tf.gather(width, segment) > 0, index, bins - 1.0)
        return tf.cast(tf.clip_by_value(index, 0.0, bins - 1.0), tf.int32)

    flat_bucket = ids * bins + bucket_of(tf.where(finite, values, 0.0), ids)
    counts = tf.math.unsorted_segment_sum(
        tf.cast(finite, tf.float64), flat_bucket, n * bins
    )
    segments = tf.range(n)
    zero_bucket = segments * bins + bucket_of(tf.zeros_like(low), segments)
    counts += tf.math.unsorted_segment_sum(implicit_zeros, zero_bucket, n * bins)
    return {
        "hist_min": low,
        "hist_max": high,
        "hist_counts": tf.reshape(counts, [n, bins]),
    }


def activation_statistics(outputs, kind):
    """Statistics of one layer's activations on a batch.

    Args:
        outputs: The layer's output tensor, batch first, units last.
        kind: `"relu"` or `"sigmoid"` / `"tanh"`.

    Returns:
        float64 vector `[zero_or_saturated_share, dead_unit_share]`. For ReLU
        layers: the share of outputs that are zero, and the share of units
        (last axis) that are zero for every example of the batch (dead units).
        For sigmoid/tanh: the share of outputs within 1% of the function's
        bounds (saturated), and the share of units saturated on every example.
    """
    x = tf.cast(outputs, tf.float32)
    units = tf.shape(x)[-1]
    x = tf.reshape(x, [-1, units])
    if kind == "relu":
        flagged = x <= 0.0
    elif kind == "sigmoid":
        flagged = tf.logical_or(x < 0.01, x > 0.99)
    elif kind == "tanh":
        flagged = tf.abs(x) > 0.98
    else:
        raise ValueError(f"Unknown activation kind. Received: kind={kind}")
    share = tf.reduce_mean(tf.cast(flagged, tf.float64))
    always = tf.reduce_mean(tf.cast(tf.reduce_all(flagged, axis=0), tf.float64))
    return tf.stack([share, always])
