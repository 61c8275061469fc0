"""JAX statistics: per tensor, and all tensors at once on one matrix (`Rows`)."""

import jax.numpy as jnp
import numpy as np
import pytest

from kgrad.monitor.step import jax_stats


def test_statistics_of_tiny_huge_and_nonfinite_entries():
    assert f"{float(jax_stats.scaled_norm(jnp.full([4], 1e-30))):.4e}" == "2.0000e-30"
    assert float(jax_stats.scaled_norm(jnp.array([1e30, 1e30]))) == pytest.approx(
        np.sqrt(2) * 1e30, rel=1e-6
    )
    assert np.isnan(jax_stats.scaled_norm(jnp.array([1.0, np.nan])))
    assert np.isinf(jax_stats.scaled_norm(jnp.array([1.0, np.inf])))
    assert float(jax_stats.nonfinite_count(jnp.array([1.0, np.nan, np.inf]))) == 2
    low, high, counts = jax_stats.histogram(jnp.array([2.0, 2.0, np.nan]), bins=3)
    assert (float(low), float(high), counts.tolist()) == (2.0, 2.0, [0.0, 0.0, 2.0])
    rng = np.random.RandomState(0)
    values = rng.randn(1000).astype("float32")
    low, high, counts = jax_stats.histogram(jnp.asarray(values), bins=7)
    expected, _ = np.histogram(values, bins=7, range=(float(low), float(high)))
    assert np.abs(np.asarray(counts) - expected).sum() <= 2  # float32 edges


def _tensors():
    """Tensors of many sizes and scales, with NaN, Inf, equal and no entries."""
    rng = np.random.RandomState(1)
    tensors = [
        rng.randn(3, 5) * 1e-30,
        rng.randn(2500) * 1e30,  # three rows of 1024, the last one part-filled
        np.full([7], 2.5),
        rng.randn(1024),  # exactly one row
        np.array([1.0, np.nan, 3.0]),
        np.array([np.inf, -np.inf, 1.0, 2.0]),
        np.array([np.inf, 4.0]),
        np.full([5], np.nan),
        rng.randn(4, 4, 3),
    ]
    return [jnp.asarray(t, jnp.float32) for t in tensors]


def test_rows_give_the_statistics_of_each_tensor():
    tensors = _tensors()
    rows = jax_stats.Rows([t.size for t in tensors])
    matrix = rows.matrix(tensors)
    assert matrix.shape == (sum(-(-t.size // 1024) for t in tensors), 1024)
    norms = np.asarray(rows.norms(matrix))
    expected = np.array([float(jax_stats.scaled_norm(t)) for t in tensors])
    np.testing.assert_allclose(norms, expected, rtol=1e-6)
    assert norms[0] < 1e-29 and norms[1] > 1e31  # no underflow, no overflow
    np.testing.assert_array_equal(
        rows.nonfinite(matrix), [jax_stats.nonfinite_count(t) for t in tensors]
    )
    low, high, counts = rows.histograms(matrix, bins=6)
    for i, tensor in enumerate(tensors):
        one = jax_stats.histogram(tensor, bins=6)
        assert (float(low[i]), float(high[i])) == (float(one[0]), float(one[1]))
        np.testing.assert_array_equal(counts[i], one[2])
    assert counts[1].sum() == 2500  # the padding of its last row is not counted


def test_an_absent_or_empty_tensor_has_no_rows_and_empty_statistics():
    rows = jax_stats.Rows([0, 3, 0])
    matrix = rows.matrix([None, jnp.array([1.0, 2.0, 2.0]), jnp.zeros([0])])
    assert matrix.shape == (1, 1024)
    np.testing.assert_allclose(rows.norms(matrix), [0.0, 3.0, 0.0], rtol=1e-6)
    assert rows.nonfinite(matrix).tolist() == [0.0, 0.0, 0.0]
    low, high, counts = rows.histograms(matrix, bins=2)
    assert (low.tolist(), high.tolist()) == ([0.0, 1.0, 0.0], [0.0, 2.0, 0.0])
    assert counts.tolist() == [[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]


def test_groups_bound_the_entries_of_one_matrix():
    assert jax_stats.groups([]) == []
    assert jax_stats.groups([10, 10, 10], limit=20) == [range(0, 2), range(2, 3)]
    assert jax_stats.groups([50, 1, 1], limit=20) == [range(0, 1), range(1, 3)]
