"""The JAX suite: run with `KERAS_BACKEND=jax pytest -q tests/jax`.

tests/conftest.py collects this folder only under `KERAS_BACKEND=jax`; run
here on another backend, every test fails at once, naming the command.
"""

import keras
import pytest


@pytest.fixture(autouse=True)
def _on_jax():
    if keras.backend.backend() != "jax":
        pytest.fail("tests/jax runs with `KERAS_BACKEND=jax pytest -q tests/jax`")
