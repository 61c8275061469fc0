"""A compiled zoo model and random data of its input shape, for the benchmarks.

No download: inputs are standard normal, targets random classes (or normal
values for a regression model). Models whose time axis is `None` get
sequences of `SEQUENCE_LENGTH` steps.

Example:

    model, loss = compiled_zoo_model("mlp_relu_he", {"depth": 3})
    x, y = random_examples("mlp_relu_he", model, 64)
    with xla(True):  # compiled with jit_compile=True, here and in child processes
        model, loss = compiled_zoo_model("mlp_relu_he")
"""

import contextlib
import os

import keras
import numpy as np

from kgrad import zoo

SEQUENCE_LENGTH = 50  # for models whose time axis is `None`


JIT_ENV = "KGRAD_BENCH_JIT"
"""`1` compiles every model with XLA (set by `xla`; child processes inherit it)."""


def jit_compile():
    """Whether the benchmark's models are compiled with `jit_compile=True`."""
    return os.environ.get(JIT_ENV) == "1"


@contextlib.contextmanager
def xla(on):
    """Inside, models built here or in child processes use `jit_compile=on`.

    Example:

        with xla(True):
            peak_memory.run(args, command)  # its child processes compile with XLA
    """
    before = os.environ.get(JIT_ENV)
    os.environ[JIT_ENV] = "1" if on else "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[JIT_ENV]
        else:
            os.environ[JIT_ENV] = before


def compiled_zoo_model(name, overrides=None):
    """Builds zoo model `name` (seed 0), compiled with Adam; returns (model, loss).

    With `KGRAD_BENCH_JIT=1` in the environment, compiled with XLA.
    """
    keras.utils.set_random_seed(0)
    model = zoo.build(name, **(overrides or {}))
    if zoo.spec(name).task == "regression":
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss, jit_compile=jit_compile())
    return model, loss


def random_examples(name, model, n, seed=0):
    """`n` random examples `(x, y)` (numpy) for `model`, built from zoo `name`."""
    shape = [SEQUENCE_LENGTH if d is None else d for d in model.input_shape[1:]]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape)).astype("float32")
    if zoo.spec(name).task == "regression":
        y = rng.standard_normal((n, 1)).astype("float32")
    else:
        y = rng.integers(0, model.output_shape[-1], n).astype("int32")
    return x, y
