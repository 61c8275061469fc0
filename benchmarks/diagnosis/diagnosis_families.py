"""The labelled run and the builders of the runs that come in several seeds
and sizes (`benchmarks/diagnosis/diagnosis_runs.py` and
`diagnosis_fresh_runs.py` list the runs).

A `LabelledRun` builds a compiled tiny model and its training data, and says
which findings the diagnosis must make (`must`) and which it may make without
being wrong (`may`). A kind whose runs differ only in seed and size has one
builder here (`nan_mlp`, `saturated_softmax`, `dead_relu`, ...): a run is its
name, half, description and the parameters that differ.

Example:

    run = dead_relu("relu_bias_minus5", "calibration", "bias -5: dead", -5.0)
    model, x, y, batch = run.build()
"""

import dataclasses

from diagnosis_models import adding_run, mlp_run
from diagnosis_outcome_models import classify_run


@dataclasses.dataclass(frozen=True)
class LabelledRun:
    """One run of the benchmark and the verdict it must get.

    Attributes:
        name: Unique name, the row of the table.
        half: `"calibration"` or `"held_out"`.
        what: What goes wrong (or right), in a few words.
        build: `() -> (model, x, y, batch_size)`, the model compiled.
        must: Finding kinds the run must get at the middle and longest lengths.
        may: Finding kinds that are not wrong (a NaN run may also explode).
        validation: Share of the data `fit` holds out for validation
            (`validation_split`); 0 for none.
    """

    name: str
    half: str
    what: str
    build: object
    must: tuple = ()
    may: tuple = ()
    validation: float = 0.0


def nan_mlp(name, half, what, rate, depth=3, seed=0):
    """A ReLU MLP under SGD at `rate`, 30-100x a usable one: NaN (the first
    huge steps may also kill ReLU units)."""
    build = mlp_run(depth=depth, optimizer=("SGD", rate), seed=seed)
    return LabelledRun(
        name, half, what, build, ("nonfinite",), ("exploding", "dead_units")
    )


def saturated_softmax(name, half, what, stddev, seed=0):
    """A hand-written softmax output saturated to 0/1 by N(0, `stddev`)
    weights, fed to a probability loss: zero gradients."""
    build = mlp_run(depth=2, init=float(stddev), softmax=True, logits=False, seed=seed)
    return LabelledRun(name, half, what, build, ("zero_gradients",), ("vanishing",))


def dead_relu(name, half, what, bias, depth=3, seed=0):
    """ReLU layers with a large negative `bias`: dead units."""
    build = mlp_run(depth=depth, bias=bias, seed=seed)
    return LabelledRun(name, half, what, build, ("dead_units",), ("vanishing",))


def saturated_init(name, half, what, activation, stddev, seed=0):
    """A sigmoid/tanh MLP with N(0, `stddev`) weights: saturated."""
    build = mlp_run(activation=activation, init=float(stddev), seed=seed)
    return LabelledRun(name, half, what, build, ("saturation",), ("vanishing",))


def deep_sigmoid(name, half, what, depth, width=32, seed=0):
    """`depth` sigmoid layers with Glorot weights: vanishing in depth."""
    build = mlp_run(
        depth=depth, width=width, activation="sigmoid", init="glorot_uniform", seed=seed
    )
    return LabelledRun(name, half, what, build, ("vanishing",), ("saturation",))


def small_batchnorm(name, half, what, batch, depth=3, seed=0):
    """A BatchNorm MLP trained at a tiny `batch`."""
    build = mlp_run(depth=depth, batchnorm=True, batch=batch, seed=seed)
    return LabelledRun(name, half, what, build, ("batchnorm_small_batch",))


def simple_rnn_adding(name, half, what, length, seed=0):
    """A SimpleRNN on the adding problem of `length` steps: from about 50 on,
    stuck at the mean predictor's loss (vanishing through time)."""
    build = adding_run("simple", length, seed=seed)
    return LabelledRun(name, half, what, build, ("vanishing_in_time",))


def relu_rnn(name, half, what, gain, length=30, clipnorm=1.0, seed=0):
    """A ReLU RNN with its recurrent weights `gain` x orthogonal, under SGD:
    explodes through time (NaN without `clipnorm`)."""
    build = adding_run(
        "simple",
        length,
        lr=1e-2,
        recurrent_scale=gain,
        activation="relu",
        sgd=True,
        clipnorm=clipnorm,
        seed=seed,
    )
    must, other = ("exploding", "nonfinite") if clipnorm else ("nonfinite", "exploding")
    return LabelledRun(name, half, what, build, (must,), (other, "vanishing_in_time"))


def lr_drop(name, half, what, optimizer, lr, at, depth=2, seed=0):
    """Learns at `lr`, then the rate drops to 1e-9 from step `at`: stalled."""
    build = classify_run(
        depth=depth, optimizer=optimizer, lr=lr, schedule=(at, 1e-9), seed=seed
    )
    return LabelledRun(name, half, what, build, ("stalled",))
