"""Pure JAX statistics of gradients and weights, traced into Keras's step.

The JAX twin of `kgrad.monitor.stats`, for `kgrad.monitor.jax_capture`. JAX
runs without float64 unless the user enables it (`jax_enable_x64`), so the
statistics are float32 and the packed vector carries *norms*, not squared
norms: the square of a vanishing 1e-30 gradient norm does not exist in
float32, its norm does. A norm is taken on the tensor scaled by its largest
absolute entry (`scaled_norm`), so that neither 1e-30 nor 1e30 entries
underflow or overflow when squared; NaN and Inf propagate as in the true
norm. The host squares the norms in float64 (`kgrad.monitor.jax_capture`),
and from there on everything is the TensorFlow path's.

Histograms follow TensorBoard's convention as `kgrad.monitor.stats` does:
`bins` equal buckets from the finite minimum to the finite maximum, all
values in the last bucket when they are all equal, NaN/Inf not counted. The
bucket edges are computed in float32 (float64 on TensorFlow), so a value on
an edge may fall in the neighbouring bucket.

The capture computes them for all variables at once (`Rows`): each tensor
goes on whole rows of one `[rows, WIDTH]` matrix, zero padded, and every
statistic is a few operations on that matrix, reduced per row and then per
tensor. A statistic per tensor would add a dozen operations per variable to
Keras's jitted step, and XLA's compile time grows with them (what a fresh
`fit` pays; `benchmarks/perf/jax_fresh_fit.py`).

Tested in tests/jax/test_jax_stats.py.

Example:

>>> import jax.numpy as jnp
>>> f"{float(scaled_norm(jnp.array([3e-30, 4e-30]))):.4g}"
'5e-30'
>>> histogram(jnp.array([0.0, 1.0, 1.0, 4.0]), bins=4)[2].tolist()
[1.0, 2.0, 0.0, 1.0]
>>> rows = Rows([2, 0, 3])
>>> matrix = rows.matrix([jnp.array([3.0, 4.0]), None, jnp.ones(3)])
>>> [round(float(v), 4) for v in rows.norms(matrix)]
[5.0, 0.0, 1.7321]
"""

import jax
import jax.numpy as jnp
import numpy as np

from kgrad.monitor.step.layout import TEMPORAL_POINTS

WIDTH = 1024
"""Entries per row of the `Rows` matrix."""
GROUP = 1 << 22
"""Entries of one `Rows` matrix at most (more tensors: `groups` of them)."""


def scaled_norm(x):
    """float32 L2 norm of `x`, exact for tiny and huge entries (see above)."""
    x = jnp.ravel(x).astype(jnp.float32)
    if x.size == 0:
        return jnp.float32(0.0)
    largest = jnp.max(jnp.abs(x))
    scale = _scale(largest)
    return scale * jnp.sqrt(jnp.sum(jnp.square(x / scale)))


def nonfinite_count(x):
    """float32 number of NaN/Inf entries of `x`."""
    return jnp.sum(~jnp.isfinite(x)).astype(jnp.float32)


def histogram(x, bins):
    """`(low, high, counts)` of the finite entries of `x`, float32.

    Args:
        x: A tensor.
        bins: Number of buckets.

    Returns:
        The finite minimum and maximum (0.0 and 0.0 when there is none) and
        the `[bins]` counts.
    """
    x = jnp.ravel(x).astype(jnp.float32)
    finite = jnp.isfinite(x)
    low = jnp.min(jnp.where(finite, x, jnp.inf), initial=jnp.inf)
    high = jnp.max(jnp.where(finite, x, -jnp.inf), initial=-jnp.inf)
    low, high, width, safe_width = _edges(low, high, bins)
    index = _bucket(x, finite, low, width, safe_width, bins)
    counts = jnp.zeros([bins], jnp.float32).at[index].add(finite.astype(jnp.float32))
    return low, high, counts


def _scale(largest):
    return jnp.where(jnp.isfinite(largest) & (largest > 0), largest, 1.0)


def _edges(low, high, bins):
    empty = jnp.isinf(low)
    low = jnp.where(empty, 0.0, low)
    high = jnp.where(empty, 0.0, high)
    width = (high - low) / bins
    return low, high, width, jnp.where(width > 0, width, 1.0)


def _bucket(x, finite, low, width, safe_width, bins):
    index = jnp.floor((jnp.where(finite, x, low) - low) / safe_width)
    index = jnp.where(width > 0, index, bins - 1.0)
    return jnp.clip(index, 0.0, bins - 1.0).astype(jnp.int32)


def groups(sizes, limit=GROUP):
    """Consecutive index ranges of `sizes` with at most `limit` entries each.

    A tensor larger than `limit` is a group of its own.

    >>> groups([3, 3, 5, 1, 2], limit=6)
    [range(0, 2), range(2, 4), range(4, 5)]
    """
    out, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and total + size > limit:
            out.append(range(start, i))
            start, total = i, 0
        total += size
    if sizes:
        out.append(range(start, len(sizes)))
    return out


class Rows:
    """Statistics of many tensors at once, on one zero-padded matrix.

    Tensor `i` of `sizes` lies on rows `owner == i` of a `[rows, WIDTH]`
    float32 matrix; a size of 0 (or a `None` tensor) has no rows, and its
    statistics are those of an empty tensor (norm 0, no counts).

    Args:
        sizes: Entries of each tensor.
        width: Entries per row. Defaults to `WIDTH`.
    """

    def __init__(self, sizes, width=WIDTH):
        self.sizes = [int(s) for s in sizes]
        self.width = width
        rows = [-(-size // width) for size in self.sizes]
        self.count = len(self.sizes)
        self.owner = np.repeat(np.arange(self.count, dtype=np.int32), rows)
        valid = [
            min(width, size - r * width)
            for size, n in zip(self.sizes, rows, strict=True)
            for r in range(n)
        ]
        self.valid = np.asarray(valid, np.int32).reshape(-1)

    def matrix(self, tensors):
        """The `[rows, width]` float32 matrix of `tensors` (`None`: no rows)."""
        parts = [
            jnp.pad(jnp.ravel(t).astype(jnp.float32), (0, -size % self.width))
            for t, size in zip(tensors, self.sizes, strict=True)
            if size
        ]
        if not parts:
            return jnp.zeros([0, self.width], jnp.float32)
        return jnp.concatenate(parts).reshape(-1, self.width)

    def _per_tensor(self, reduce, per_row):
        return reduce(
            per_row,
            self.owner,
            num_segments=self.count,
            indices_are_sorted=True,
        )

    def norms(self, matrix):
        """`[n]` norms, scaled per tensor as `scaled_norm` does."""
        largest = self._per_tensor(
            jax.ops.segment_max, jnp.max(jnp.abs(matrix), axis=1)
        )
        scale = _scale(largest)
        squares = jnp.sum(jnp.square(matrix / scale[self.owner][:, None]), axis=1)
        return scale * jnp.sqrt(self._per_tensor(jax.ops.segment_sum, squares))

    def nonfinite(self, matrix):
        """`[n]` NaN/Inf counts (the padding is finite)."""
        bad = jnp.sum(~jnp.isfinite(matrix), axis=1).astype(jnp.float32)
        return self._per_tensor(jax.ops.segment_sum, bad)

    def histograms(self, matrix, bins):
        """`([n] low, [n] high, [n, bins] counts)`, as `histogram` per tensor."""
        inside = jnp.arange(self.width)[None, :] < self.valid[:, None]
        finite = jnp.isfinite(matrix) & inside
        low = self._per_tensor(
            jax.ops.segment_min, jnp.min(jnp.where(finite, matrix, jnp.inf), axis=1)
        )
        high = self._per_tensor(
            jax.ops.segment_max, jnp.max(jnp.where(finite, matrix, -jnp.inf), axis=1)
        )
        low, high, width, safe_width = _edges(low, high, bins)
        per_row = [v[self.owner][:, None] for v in (low, width, safe_width)]
        index = _bucket(matrix, finite, *per_row, bins)
        bucket = self.owner[:, None] * bins + index
        counts = jnp.zeros([self.count * bins], jnp.float32)
        counts = counts.at[bucket].add(finite.astype(jnp.float32))
        return low, high, counts.reshape(self.count, bins)


def packed_step(record, tensors, header, histograms, bins, trace_histograms=True):
    """The float32 vector of one armed step, in `record.layout`.

    The statistics of all variables are taken at once (`Rows`), in groups of
    at most `GROUP` entries: a few operations per group, not a dozen per
    variable, keep XLA's compile of the step short.

    Args:
        record: The `JaxRecord` (variables, probes, layout).
        tensors: `(grads, before, after)`: the gradients (`None` for none),
            the variables before and after `apply`, in `record`'s order.
        header: The header fields (`kgrad.monitor.step.layout.HEADER`).
        histograms: Traced bool: whether this step takes histograms.
        bins: Histogram buckets.
        trace_histograms: Whether to trace the histogram code at all.
    """
    grads, before, after = tensors
    n = len(record.variables)
    sizes = [int(np.prod(v.shape)) for v in record.variables]
    columns = {name: [] for name in ("grad_sq", "weight_sq", "update_sq", "nonfinite")}
    taken = []  # (rows, matrix) of the gradients, per group
    for group in groups(sizes):
        grad_rows = Rows([0 if grads[i] is None else sizes[i] for i in group])
        weight_rows = Rows([sizes[i] for i in group])
        g = grad_rows.matrix([grads[i] for i in group])
        w = weight_rows.matrix([before[i] for i in group])
        u = weight_rows.matrix([after[i] for i in group]) - w
        columns["grad_sq"].append(grad_rows.norms(g))
        columns["nonfinite"].append(grad_rows.nonfinite(g))
        columns["weight_sq"].append(weight_rows.norms(w))
        columns["update_sq"].append(weight_rows.norms(u))
        taken.append((grad_rows, g))

    def with_histograms(matrices):
        parts = [
            rows.histograms(matrix, bins)
            for (rows, _), matrix in zip(taken, matrices, strict=True)
        ]
        return tuple(jnp.concatenate([p[k] for p in parts]) for k in range(3))

    def without(matrices):
        return (
            jnp.zeros([n], jnp.float32),
            jnp.zeros([n], jnp.float32),
            jnp.zeros([n, bins], jnp.float32),
        )

    matrices = [matrix for _, matrix in taken]
    hist_min, hist_max, hist_counts = (
        jax.lax.cond(histograms, with_histograms, without, matrices)
        if trace_histograms
        else without(matrices)
    )
    values = dict(header)
    values.update({name: jnp.concatenate(parts) for name, parts in columns.items()})
    values.update(
        has_grad=jnp.asarray([g is not None for g in grads], jnp.float32),
        hist_min=hist_min,
        hist_max=hist_max,
        hist_counts=hist_counts,
        activations=jnp.zeros([len(record.probes), 2], jnp.float32),
        temporal=jnp.zeros([0, TEMPORAL_POINTS], jnp.float32),
        temporal_length=jnp.zeros([0], jnp.float32),
    )
    return jnp.concatenate(
        [
            jnp.ravel(jnp.asarray(values[name], jnp.float32))
            for name, _ in record.layout.fields
        ]
    )


_FLAGGED = {
    "relu": lambda x: x <= 0.0,
    "sigmoid": lambda x: (x < 0.01) | (x > 0.99),
    "tanh": lambda x: jnp.abs(x) > 0.98,
}


def activation_statistics(outputs, kinds):
    """float32 `[n, 2]`: `[zero_or_saturated_share, dead_unit_share]` per layer.

    As `kgrad.monitor.stats.activation_statistics`: the share of flagged
    entries (zero for ReLU, within 1% of the bounds for sigmoid and tanh) and
    the share of units (last axis) flagged on every example. A `None` output
    (a layer that did not run) gives NaN. Each output is reduced once to its
    per-unit shares, which are stacked by unit count and reduced together.

    >>> x = jnp.array([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    >>> [round(float(v), 4) for v in activation_statistics([x], ["relu"])[0]]
    [0.5, 0.3333]
    """
    rows = [jnp.full([2], jnp.nan, jnp.float32)] * len(outputs)
    by_units = {}
    for i, (x, kind) in enumerate(zip(outputs, kinds, strict=True)):
        if x is not None:
            flagged = _FLAGGED[kind](x).astype(jnp.float32)
            per_unit = jnp.mean(flagged, axis=tuple(range(x.ndim - 1)))
            by_units.setdefault(per_unit.shape[0], []).append((i, per_unit))
    for members in by_units.values():
        shares = jnp.stack([per_unit for _, per_unit in members])
        dead = jnp.mean((shares == 1.0).astype(jnp.float32), axis=1)
        both = jnp.stack([jnp.mean(shares, axis=1), dead], axis=1)
        for row, (i, _) in enumerate(members):
            rows[i] = both[row]
    return jnp.stack(rows) if rows else jnp.zeros([0, 2], jnp.float32)
