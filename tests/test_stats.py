"""Fused statistics against numpy and TensorBoard's own histogram buckets."""

import numpy as np
import tensorflow as tf
from tensorboard.plugins.histogram import summary_v2 as histogram_summary
from tensorboard.util import tensor_util

from kgrad import stats


def reference_histogram(values, bins):
    proto = histogram_summary.histogram_pb("t", values, buckets=bins)
    return tensor_util.make_ndarray(proto.value[0].tensor)


def test_norms_and_nonfinite_counts_per_variable():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4)).astype("float32")
    b = rng.normal(size=5).astype("float32")
    b[1], b[3] = np.nan, np.inf
    flat, sizes, _ = stats.flatten([tf.constant(a), tf.constant(b)])
    out = stats.gradient_statistics(flat, sizes)
    np.testing.assert_allclose(out["sq_norm"][0], np.sum(a.astype("float64") ** 2))
    assert np.isnan(out["sq_norm"][1])  # as the true norm
    assert out["nonfinite"].numpy().tolist() == [0.0, 2.0]


def test_histograms_match_tensorboard_and_handle_edge_cases():
    rng = np.random.default_rng(1)
    a = rng.normal(size=100).astype("float32")
    same = np.full(7, 0.5, "float32")
    with_nan = np.array([1.0, np.nan, 3.0, -2.0], "float32")
    flat, sizes, zeros = stats.flatten([tf.constant(v) for v in (a, same, with_nan)])
    out = stats.histograms(flat, sizes, zeros, bins=6)
    for i, values in enumerate((a, same, with_nan[np.isfinite(with_nan)])):
        expected = reference_histogram(values.astype("float64"), 6)
        np.testing.assert_array_equal(out["hist_counts"][i], expected[:, 2])
        assert out["hist_min"][i] == expected[0, 0]
        assert out["hist_max"][i] == expected[-1, 1]


def test_sparse_gradient_is_its_dense_equivalent():
    values = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    slices = tf.IndexedSlices(values, tf.constant([2, 0, 2]), tf.constant([5, 2]))
    dense = tf.convert_to_tensor(slices).numpy()
    flat, sizes, zeros = stats.flatten([slices], dense_sizes=[10])
    norm = stats.gradient_statistics(flat, sizes)["sq_norm"][0]
    np.testing.assert_allclose(norm, np.sum(dense**2))
    counts = stats.histograms(flat, sizes, zeros, bins=4)["hist_counts"][0]
    np.testing.assert_array_equal(counts, reference_histogram(dense, 4)[:, 2])


def test_sum_of_squares_of_several_columns():
    flat = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = stats.sum_of_squares(flat, tf.constant([2, 1]))
    assert out.numpy().tolist() == [[10.0, 20.0], [25.0, 36.0]]


def test_activation_statistics():
    relu = tf.constant([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    share, dead = stats.activation_statistics(relu, "relu").numpy()
    assert share == 3 / 6 and dead == 1 / 3
    sigmoid = tf.constant([[0.995, 0.5], [0.001, 0.5]])
    share, always = stats.activation_statistics(sigmoid, "sigmoid").numpy()
    assert share == 2 / 4 and always == 1 / 2
