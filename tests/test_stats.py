"""Fused statistics against numpy and TensorBoard's own histogram buckets."""

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.plugins.histogram import summary_v2 as histogram_summary
from tensorboard.util import tensor_util

from kgrad.monitor.step import stats


def reference_histogram(values, bins):
    proto = histogram_summary.histogram_pb("t", values, buckets=bins)
    return tensor_util.make_ndarray(proto.value[0].tensor)


def test_norms_and_nonfinite_counts_per_variable():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4)).astype("float32")
    b = rng.normal(size=5).astype("float32")
    b[1], b[3] = np.nan, np.inf
    c = rng.normal(size=(3, 4)).astype("float32")
    out = stats.gradient_statistics(stats.Blocks([tf.constant(v) for v in (a, b, c)]))
    np.testing.assert_allclose(out["sq_norm"][0], np.sum(a.astype("float64") ** 2))
    assert np.isnan(out["sq_norm"][1])  # as the true norm
    np.testing.assert_allclose(out["sq_norm"][2], np.sum(c.astype("float64") ** 2))
    assert out["nonfinite"].numpy().tolist() == [0.0, 2.0, 0.0]


def test_squares_of_vanishing_gradients_do_not_underflow():
    small, large = tf.fill([4], 1e-30), tf.fill([stats.STACK_LIMIT + 1], 1e-30)
    norms = np.sqrt(stats.sum_of_squares(stats.Blocks([small, large])).numpy())
    expected = [2e-30, 1e-30 * np.sqrt(stats.STACK_LIMIT + 1)]
    np.testing.assert_allclose(norms, expected, rtol=1e-6)


def test_large_tensors_keep_their_norms_and_non_finite_entries():
    rng = np.random.default_rng(2)
    plain = rng.normal(size=stats.STACK_LIMIT + 1).astype("float32")
    with_inf, with_nan = plain.copy(), plain.copy()
    with_inf[3], with_nan[5] = np.inf, np.nan
    blocks = stats.Blocks([tf.constant(v) for v in (plain, with_inf, with_nan)])
    out = stats.gradient_statistics(blocks)
    expected = np.sum(plain.astype("float64") ** 2)
    np.testing.assert_allclose(out["sq_norm"][0], expected, rtol=1e-5)
    assert np.isposinf(out["sq_norm"][1]) and np.isnan(out["sq_norm"][2])
    assert out["nonfinite"].numpy().tolist() == [0.0, 1.0, 1.0]


def test_blocks_stack_same_shapes_and_keep_large_tensors_apart():
    big = tf.zeros([stats.STACK_LIMIT + 1])
    tensors = [tf.ones([2, 3]), big, tf.ones([4]), 2 * tf.ones([2, 3]), big]
    assert stats.block_plan(tensors) == [[0, 3], [2], [1], [4]]
    blocks = stats.Blocks(tensors)
    assert [m.shape.as_list() for m in blocks.matrices] == [
        [2, 6],
        [1, 4],
        [1, stats.STACK_LIMIT + 1],
        [1, stats.STACK_LIMIT + 1],
    ]
    # results come back in the order of the inputs
    assert stats.sum_of_squares(blocks).numpy().tolist() == [6.0, 0.0, 4.0, 24.0, 0.0]


def test_ops_added_do_not_grow_with_depth():
    def op_count(depth):
        grads = [tf.TensorSpec([32, 32])] * depth + [tf.TensorSpec([32])] * depth

        def statistics(*grads):
            blocks = stats.Blocks(list(grads))
            return stats.gradient_statistics(blocks), stats.histograms(blocks, 30)

        graph = tf.function(statistics).get_concrete_function(*grads).graph
        return sum(op.type != "Placeholder" for op in graph.get_operations())

    assert op_count(10) == op_count(100)


def test_histograms_match_tensorboard_and_handle_edge_cases():
    rng = np.random.default_rng(1)
    a = rng.normal(size=100).astype("float32")
    b = rng.normal(size=100).astype("float32") * 1e-3
    same = np.full(7, 0.5, "float32")
    with_nan = np.array([1.0, np.nan, 3.0, -2.0], "float32")
    tensors = (a, same, with_nan, b)
    blocks = stats.Blocks([tf.constant(v) for v in tensors])
    assert len(blocks.matrices) == 3  # a and b share one
    out = stats.histograms(blocks, bins=6)
    for i, values in enumerate(tensors):
        values = values[np.isfinite(values)]
        expected = reference_histogram(values.astype("float64"), 6)
        np.testing.assert_array_equal(out["hist_counts"][i], expected[:, 2])
        assert out["hist_min"][i] == expected[0, 0]
        assert out["hist_max"][i] == expected[-1, 1]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_large_tensors_are_bucketed_in_chunks_as_tensorboard_buckets_them(
    jit_compile,
):
    rng = np.random.default_rng(2)
    size = 2 * stats.HISTOGRAM_CHUNK + 123  # three chunks, the last one short
    plain = rng.normal(size=size).astype("float32")
    with_inf = plain.copy()
    with_inf[[5, size - 1]] = [np.inf, np.nan]
    tensors = (plain, with_inf, np.full(stats.STACK_LIMIT + 1, -2.0, "float32"))
    traced = tf.function(
        lambda *t: stats.histograms(stats.Blocks(list(t)), bins=30),
        jit_compile=jit_compile,
    )
    out = traced(*[tf.constant(v) for v in tensors])
    for i, values in enumerate(tensors):
        values = values[np.isfinite(values)].astype("float64")
        expected = reference_histogram(values, 30)
        np.testing.assert_array_equal(out["hist_counts"][i], expected[:, 2])
        assert out["hist_min"][i] == expected[0, 0]
        assert out["hist_max"][i] == expected[-1, 1]


def test_sparse_gradient_is_its_dense_equivalent():
    values = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    slices = tf.IndexedSlices(values, tf.constant([2, 0, 2]), tf.constant([5, 2]))
    dense = tf.convert_to_tensor(slices).numpy()
    blocks = stats.Blocks([tf.ones([3]), slices], dense_sizes=[3, 10])
    norm = stats.gradient_statistics(blocks)["sq_norm"][1]
    np.testing.assert_allclose(norm, np.sum(dense**2))
    counts = stats.histograms(blocks, bins=4)["hist_counts"][1]
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
