"""Fused statistics against numpy and TensorBoard's own histogram buckets."""

import numpy as np
import tensorflow as tf
from tensorboard.plugins.histogram import summary_v2 as histogram_summary
from tensorboard.util import tensor_util

from kgrad.monitor import stats


def reference_histogram(values, bins):
    proto = histogram_summary.histogram_pb("t", values, buckets=bins)
    return tensor_util.make_ndarray(proto.value[0].tensor)


def test_norms_and_nonfinite_counts_per_variable():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4)).astype("float32")
    b = rng.normal(size=5).astype("float32")
    b[1], b[3] = np.nan, np.inf
    c = rng.normal(size=(3, 4)).astype("float32")
    out = stats.gradient_statistics(stats.Rows([tf.constant(v) for v in (a, b, c)]))
    np.testing.assert_allclose(out["sq_norm"][0], np.sum(a.astype("float64") ** 2))
    assert np.isnan(out["sq_norm"][1])  # as the true norm
    np.testing.assert_allclose(out["sq_norm"][2], np.sum(c.astype("float64") ** 2))
    assert out["nonfinite"].numpy().tolist() == [0.0, 2.0, 0.0]


def test_squares_of_vanishing_gradients_do_not_underflow():
    small, large = tf.fill([4], 1e-30), tf.fill([stats.STACK_LIMIT + 1], 1e-30)
    norms = np.sqrt(stats.sum_of_squares(stats.Rows([small, large])).numpy())
    np.testing.assert_allclose(norms, [2e-30, 1e-30 * np.sqrt(stats.STACK_LIMIT + 1)])


def test_large_tensors_keep_non_finite_norms():
    large = np.ones(stats.STACK_LIMIT + 1, "float32")
    with_inf, with_nan = large.copy(), large.copy()
    with_inf[3], with_nan[5] = np.inf, np.nan
    rows = stats.Rows([tf.constant(with_inf), tf.constant(with_nan)])
    out = stats.gradient_statistics(rows)
    assert np.isposinf(out["sq_norm"][0]) and np.isnan(out["sq_norm"][1])
    assert out["nonfinite"].numpy().tolist() == [1.0, 1.0]


def test_small_tensors_share_a_flat_block_and_large_ones_stay_apart():
    big = tf.zeros([stats.STACK_LIMIT + 1])
    tensors = [tf.ones([2, 3]), big, tf.ones([4]), 2 * tf.ones([2, 3]), big]
    assert stats.row_plan(tensors) == [[0, 2, 3], [1], [4]]
    rows = stats.Rows(tensors)
    assert [b.values.shape.as_list() for b in rows.blocks] == [
        [16],
        [stats.STACK_LIMIT + 1],
        [stats.STACK_LIMIT + 1],
    ]
    # results come back in the order of the inputs
    assert stats.sum_of_squares(rows).numpy().tolist() == [6.0, 0.0, 4.0, 24.0, 0.0]


def test_ops_added_grow_by_one_reshape_per_small_tensor():
    def op_count(depth):
        grads = [tf.TensorSpec([32, 32])] * depth + [tf.TensorSpec([32])] * depth

        def statistics(*grads):
            rows = stats.Rows(list(grads))
            return stats.gradient_statistics(rows), stats.histograms(rows, 30)

        graph = tf.function(statistics).get_concrete_function(*grads).graph
        return sum(op.type != "Placeholder" for op in graph.get_operations())

    assert op_count(100) - op_count(10) == 2 * 90  # one Reshape per tensor


def test_histograms_match_tensorboard_and_handle_edge_cases():
    rng = np.random.default_rng(1)
    a = rng.normal(size=100).astype("float32")
    b = rng.normal(size=100).astype("float32") * 1e-3
    same = np.full(7, 0.5, "float32")
    with_nan = np.array([1.0, np.nan, 3.0, -2.0], "float32")
    tensors = (a, same, with_nan, b)
    rows = stats.Rows([tf.constant(v) for v in tensors])
    assert len(rows.blocks) == 1  # all small: one flat block
    out = stats.histograms(rows, bins=6)
    for i, values in enumerate(tensors):
        values = values[np.isfinite(values)]
        expected = reference_histogram(values.astype("float64"), 6)
        np.testing.assert_array_equal(out["hist_counts"][i], expected[:, 2])
        assert out["hist_min"][i] == expected[0, 0]
        assert out["hist_max"][i] == expected[-1, 1]


def test_sparse_gradient_is_its_dense_equivalent():
    values = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    slices = tf.IndexedSlices(values, tf.constant([2, 0, 2]), tf.constant([5, 2]))
    dense = tf.convert_to_tensor(slices).numpy()
    rows = stats.Rows([tf.ones([3]), slices], dense_sizes=[3, 10])
    norm = stats.gradient_statistics(rows)["sq_norm"][1]
    np.testing.assert_allclose(norm, np.sum(dense**2))
    counts = stats.histograms(rows, bins=4)["hist_counts"][1]
    np.testing.assert_array_equal(counts, reference_histogram(dense, 4)[:, 2])


def test_activation_statistics_fused_over_layers_of_any_batch():
    relu = tf.constant([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    relu_long = tf.constant([[0.0, -1.0, 2.0]] * 3 + [[1.0, 0.0, 0.0]])
    sigmoid = tf.constant([[0.995, 0.5], [0.001, 0.5]])
    sequence = tf.constant([[[0.0, 1.0, 0.0], [0.0, 0.0, 5.0]]] * 2)  # [b, t, u]
    tensors = [relu, sigmoid, relu_long, sequence]
    kinds = ["relu", "sigmoid", "relu", "relu"]
    expected = [[3 / 6, 1 / 3], [2 / 4, 1 / 2], [8 / 12, 1 / 3], [8 / 12, 1 / 3]]

    assert stats.activation_statistics(tensors, kinds).numpy().tolist() == expected
    dynamic = tf.function(
        lambda *xs: stats.activation_statistics(list(xs), kinds),
        input_signature=[
            tf.TensorSpec([None] * (t.shape.rank - 1) + [t.shape[-1]]) for t in tensors
        ],
    )
    assert dynamic(*tensors).numpy().tolist() == expected
    unknown = tf.function(  # units unknown when traced: blocks of their own
        lambda *xs: stats.activation_statistics(list(xs), kinds),
        input_signature=[tf.TensorSpec([None] * t.shape.rank) for t in tensors],
    )
    assert unknown(*tensors).numpy().tolist() == expected
