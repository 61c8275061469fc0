"""Shared fixtures: quiet TensorFlow, fixed seeds, reading event files back
(`tests.support.events`).

The suite runs twice, each run in its own process: `pytest -q` runs every test
on TensorFlow, and `KERAS_BACKEND=jax pytest -q tests/jax` the JAX suite
(tests/jax/). Each run collects only its own tests (`pytest_ignore_collect`),
and says so in its header.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.support.events import read_events  # noqa: E402

# The scripts in distributed/ run in processes of their own (test_distribute.py);
# importing them here, as `--doctest-modules` would, would set this process's devices.
collect_ignore = ["distributed"]
JAX = keras.backend.backend() == "jax"
JAX_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jax")


def pytest_ignore_collect(collection_path, config):
    """Ignores tests/jax on TensorFlow, and everything else on JAX."""
    if str(collection_path) == os.path.dirname(JAX_TESTS):
        return None
    inside = str(collection_path).startswith(JAX_TESTS)
    return True if inside != JAX else None


def pytest_report_header(config):
    if JAX:
        return "kgrad: KERAS_BACKEND=jax: only tests/jax is collected"
    return "kgrad: tests/jax is collected by `KERAS_BACKEND=jax pytest -q tests/jax`"


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
