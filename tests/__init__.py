"""kgrad's tests (a package, so that tests/jax is `tests.jax`, never `jax`)."""
