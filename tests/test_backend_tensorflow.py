"""The backend seam: TensorFlow's parts on one side, numpy captures on the other."""

import types

import numpy as np
import pytest
import tensorflow as tf

from kgrad.monitor.log.step_logger import StepLogger
from kgrad.monitor.log.tag_filter import TagFilter
from kgrad.monitor.log.worker import Worker
from kgrad.monitor.step import backend_tensorflow
from kgrad.monitor.step.packed import Record


def test_all_reduce_without_a_strategy_returns_the_tensors():
    tensors = [tf.constant([1.0, 2.0])]
    assert backend_tensorflow.all_reduce(tensors) is tensors
    grads = [None, tf.constant(3.0)]
    assert backend_tensorflow.all_reduce_present(grads) == grads


def test_state_variable_is_read_on_the_host_as_written_in_a_function():
    vector = backend_tensorflow.vector_variable("kgrad_test_vector")

    @tf.function
    def write():
        vector.assign(tf.constant([1.0, 2.0], tf.float64))

    write()
    np.testing.assert_array_equal(vector.numpy(), [1.0, 2.0])
    assert (
        backend_tensorflow.replica_count(
            types.SimpleNamespace(distribute_strategy=tf.distribute.get_strategy())
        )
        == 1
    )


def test_the_step_logger_writes_numpy_captures_whatever_made_them(tmp_path, events):
    """What crosses the seam is a numpy dict and its Record: no tensor at all."""
    variables = [types.SimpleNamespace(path="m/d/kernel", name="kernel")]
    record = Record(1, variables, None, (), (), (), bins=3)
    vector = np.zeros(record.layout.size)
    captured = record.layout.unpack(vector)
    captured.update(
        capture_count=1.0, record=1.0, step=1.0, applied=1.0, loss_scale=1.0,
        batch_size=np.nan, has_grad=np.ones(1), grad_sq=np.array([9.0]),
        weight_sq=np.array([4.0]), update_sq=np.array([0.16]),
    )  # fmt: skip
    optimizer = types.SimpleNamespace(iterations=types.SimpleNamespace(numpy=lambda: 0))
    channel = types.SimpleNamespace(name="optimizer", optimizer=optimizer, traced=True)
    model = types.SimpleNamespace(
        name="m", weights=variables, distribute_strategy=tf.distribute.get_strategy()
    )
    logger = StepLogger(tmp_path, Worker())
    logger.begin_fit(model, [channel], lambda paths: TagFilter(paths))
    nonfinite, retry = logger.write(
        [(channel, record, captured)], norms=True, histograms=False, due=1
    )
    logger.worker.drain()
    logger.close(figures=False)
    logger.worker.drain()
    assert (nonfinite, retry) == (False, False)
    logged = events(tmp_path / "train")
    assert logged["grad_norm/m/d/kernel"][0][0] == 1
    assert float(logged["grad_norm/m/d/kernel"][0][1]) == pytest.approx(3.0)
    assert float(logged["update_ratio/m/d/kernel"][0][1]) == pytest.approx(0.2)
