"""Shared fixtures: quiet TensorFlow, fixed seeds, reading event files back
(`tests.support.events`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.support.events import read_events  # noqa: E402

# The scripts in distributed/ run in processes of their own (test_distribute.py);
# importing them here, as `--doctest-modules` would, would set this process's devices.
collect_ignore = ["distributed"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


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
