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

Tested in tests/jax/test_jax_capture.py.

Example:

>>> import jax.numpy as jnp
>>> f"{float(scaled_norm(jnp.array([3e-30, 4e-30]))):.4g}"
'5e-30'
>>> histogram(jnp.array([0.0, 1.0, 1.0, 4.0]), bins=4)[2].tolist()
[1.0, 2.0, 0.0, 1.0]
"""

import jax.numpy as jnp


def scaled_norm(x):
    """float32 L2 norm of `x`, exact for tiny and huge entries (see above)."""
    x = jnp.ravel(x).astype(jnp.float32)
    if x.size == 0:
        return jnp.float32(0.0)
    largest = jnp.max(jnp.abs(x))
    scale = jnp.where(jnp.isfinite(largest) & (largest > 0), largest, 1.0)
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
    empty = jnp.isinf(low)
    low = jnp.where(empty, 0.0, low)
    high = jnp.where(empty, 0.0, high)
    width = (high - low) / bins
    safe_width = jnp.where(width > 0, width, 1.0)
    index = jnp.floor((jnp.where(finite, x, low) - low) / safe_width)
    index = jnp.where(width > 0, index, bins - 1.0)
    index = jnp.clip(index, 0.0, bins - 1.0).astype(jnp.int32)
    counts = jnp.zeros([bins], jnp.float32).at[index].add(finite.astype(jnp.float32))
    return low, high, counts
