"""Pure JAX statistics of gradients and weights, traced into Keras's step.

The JAX twin of `kgrad.monitor.step.stats`, for
`kgrad.monitor.step.jax_capture`. JAX runs without float64 unless the user
enables it (`jax_enable_x64`), so the statistics are float32 and the packed
vector carries *norms*, not squared norms: the square of a vanishing 1e-30
gradient norm does not exist in float32, its norm does. A norm is taken on
one dot product per tensor (`dot_norms`), taken again on the tensor scaled by
2^63 when its sum of squares may have underflowed; NaN and Inf propagate as
in the true norm. The host squares the norms in float64
(`kgrad.monitor.step.jax_capture`), and from there on everything is the
TensorFlow path's.

Dot products are what compiles fastest into Keras's jitted step; the
histograms and the non-finite counts (computed only when a norm is not
finite, as on TensorFlow) are fused: tensors of one shape are stacked into a
block (`block_plan`) and reduced together.

Histograms follow TensorBoard's convention as `kgrad.monitor.step.stats`
does: `bins` equal buckets from the finite minimum to the finite maximum, all
values in the last bucket when they are all equal, NaN/Inf not counted. The
bucket edges are computed in float32 (float64 on TensorFlow), so a value on
an edge may fall in the neighbouring bucket.

Tested in tests/jax/test_jax_capture.py.

Example:

>>> import jax.numpy as jnp
>>> f"{float(dot_norms([jnp.array([3e-30, 4e-30])])[0]):.4g}"
'5e-30'
>>> per_tensor([jnp.array([0.0, 1.0, 1.0, 4.0])], histograms(bins=4))[2].tolist()
[[1.0, 2.0, 0.0, 1.0]]
"""

import jax
import jax.numpy as jnp
import numpy as np

STACK_LIMIT = 1 << 16  # entries; larger tensors are reduced on their own


def block_plan(shapes):
    """Groups of positions whose tensors are stacked into one `[k, m]` block.

    Tensors of one shape and at most `STACK_LIMIT` entries share a block (the
    hidden layers of a deep network do), so that a statistic is one reduction
    per block: the ops of a logged step, and Keras's compile time, grow with
    the number of distinct shapes, not with depth.

    >>> block_plan([(2, 3), (4,), (2, 3), (100000,)])
    [[0, 2], [1], [3]]
    """
    groups, plan = {}, []
    for i, shape in enumerate(shapes):
        size = int(np.prod(shape))
        if size > STACK_LIMIT:
            plan.append([i])
            continue
        if tuple(shape) not in groups:
            groups[tuple(shape)] = [i]
            plan.append(groups[tuple(shape)])
        else:
            groups[tuple(shape)].append(i)
    return plan


def per_tensor(tensors, reduce):
    """`reduce` of each tensor, one call per block, back in input order.

    Args:
        tensors: A list of tensors.
        reduce: `[k, m]` float32 matrix -> a tuple of arrays with `k` rows.

    Returns:
        The tuple of `reduce`'s outputs with one row per tensor, in order.
    """
    plan = block_plan([t.shape for t in tensors])
    parts, order = [], []
    for block in plan:
        rows = jnp.stack([jnp.ravel(tensors[i]) for i in block])
        parts.append(reduce(rows.astype(jnp.float32)))
        order += block
    inverse = np.argsort(np.asarray(order, np.int64))
    return tuple(
        jnp.concatenate([part[j] for part in parts])[inverse]
        for j in range(len(parts[0]))
    )


_UP = 2.0**63  # exact power-of-two scalings of `dot_norms`
_TINY = 2.0**-100  # a sum of squares below this may have lost entries


def dot_norms(tensors):
    """float32 `[n]` norms of `tensors`, one dot product each.

    A dot product compiles to a library call (the cheapest op to add to
    Keras's jitted step); a sum of squares that may have underflowed (below
    2^-100: every entry under about 2^-50) is taken again on the tensor
    scaled by 2^63, exactly. NaN and Inf propagate.

    >>> [f"{float(v):.3e}" for v in dot_norms([jnp.full([4], 1e-30), jnp.ones([9])])]
    ['2.000e-30', '3.000e+00']
    """
    out = []
    for x in tensors:
        x = jnp.ravel(x).astype(jnp.float32)
        plain = jnp.vdot(x, x)
        scaled = x * _UP
        tiny = jnp.sqrt(jnp.vdot(scaled, scaled)) / _UP
        out.append(jnp.where(plain < _TINY, tiny, jnp.sqrt(plain)))
    return jnp.stack(out) if out else jnp.zeros([0], jnp.float32)


def nonfinite_counts(tensors, norms):
    """float32 `[n]` NaN/Inf counts, counted only when a norm is not finite."""

    def count(tensors):
        return per_tensor(tensors, _nonfinite_rows)[0]

    return jax.lax.cond(
        jnp.all(jnp.isfinite(norms)),
        lambda tensors: jnp.zeros([len(tensors)], jnp.float32),
        count,
        tensors,
    )


def _nonfinite_rows(m):
    return (jnp.sum(~jnp.isfinite(m), axis=1).astype(jnp.float32),)


def histograms(bins):
    """A `reduce` for `per_tensor`: `(low, high, counts [k, bins])` per row."""

    def reduce(m):
        finite = jnp.isfinite(m)
        low = jnp.min(jnp.where(finite, m, jnp.inf), axis=1, initial=jnp.inf)
        high = jnp.max(jnp.where(finite, m, -jnp.inf), axis=1, initial=-jnp.inf)
        empty = jnp.isinf(low)
        low = jnp.where(empty, 0.0, low)
        high = jnp.where(empty, 0.0, high)
        width = (high - low) / bins
        safe = jnp.where(width > 0, width, 1.0)[:, None]
        index = jnp.floor((jnp.where(finite, m, low[:, None]) - low[:, None]) / safe)
        index = jnp.where(width[:, None] > 0, index, bins - 1.0)
        index = jnp.clip(index, 0.0, bins - 1.0).astype(jnp.int32)
        k = m.shape[0]
        cells = index + bins * jnp.arange(k, dtype=jnp.int32)[:, None]
        counts = jnp.zeros([k * bins], jnp.float32)
        counts = counts.at[jnp.ravel(cells)].add(jnp.ravel(finite).astype(jnp.float32))
        return low, high, counts.reshape(k, bins)

    return reduce
