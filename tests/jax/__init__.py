"""The JAX suite: `KERAS_BACKEND=jax pytest -q tests/jax`."""
