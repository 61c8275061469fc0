"""Shared fixtures: quiet TensorFlow, fixed seeds, reading event files back."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

# The scripts in distributed/ run in processes of their own (test_distribute.py);
# importing them here, as `--doctest-modules` would, would set this process's devices.
collect_ignore = ["distributed"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


def read_events(run_dir):
    """Reads a run directory with TensorBoard's own reader.

    Returns:
        Dict from tag to a list of `(step, numpy value)`, in step order.
    """
    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return {
        tag: [
            (e.step, tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)
        ]
        for tag in accumulator.Tags()["tensors"]
    }


@pytest.fixture
def events():
    """The `read_events` function, as a fixture."""
    return read_events


@pytest.fixture
def classification_data():
    """32 examples, 6 features, 3 classes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 3, size=32)
    return x, y
