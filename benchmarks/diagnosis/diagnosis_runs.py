"""The labelled runs of the diagnosis benchmark (`benchmarks/diagnosis/diagnosis.py`).

Each `LabelledRun` builds a compiled tiny model and its training data, and
says which findings the diagnosis must make (`must`) and which it may make
without being wrong (`may`); every other kind is a false positive. Runs come
in two named halves: `calibration` (the thresholds of
`kgrad.analysis.findings.Thresholds` were chosen on them) and `held_out`
(reported separately, never used to choose a threshold).

Example:

    run = RUNS[0]
    model, x, y, batch = run.build()
"""

import dataclasses

import keras
from diagnosis_models import adding_run, applications_run, mlp_run, transformer_run
from diagnosis_outcome_runs import more_seeds, outcome_runs


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


C, H = "calibration", "held_out"
RUNS = [
    # non-finite: a learning rate 10-100x too high
    LabelledRun(
        "mlp_sgd_lr_x100",
        C,
        "SGD at 100x a usable rate: NaN",
        mlp_run(optimizer=("SGD", 10.0)),
        ("nonfinite",),
        ("exploding", "dead_units"),  # the first huge steps kill ReLU units
    ),
    LabelledRun(
        "deep_mlp_sgd_lr_x30",
        H,
        "5 layers, SGD at 30x: NaN",
        mlp_run(depth=5, optimizer=("SGD", 3.0), seed=1),
        ("nonfinite",),
        ("exploding", "dead_units"),  # the first huge steps kill ReLU units
    ),
    # zero gradients: a saturated softmax output fed to a probability loss
    LabelledRun(
        "softmax_saturated",
        C,
        "hand-written softmax saturated to 0/1",
        mlp_run(
            depth=2,
            init=keras.initializers.RandomNormal(stddev=50),
            softmax=True,
            logits=False,
        ),
        ("zero_gradients",),
        ("vanishing",),
    ),
    LabelledRun(
        "softmax_saturated_deep",
        H,
        "2 layers, saturated softmax",
        mlp_run(
            depth=2,
            init=keras.initializers.RandomNormal(stddev=30),
            softmax=True,
            logits=False,
            seed=1,
        ),
        ("zero_gradients",),
        ("vanishing",),
    ),
    # dead ReLU units: a large negative bias
    LabelledRun(
        "relu_bias_minus5",
        C,
        "ReLU layers, bias -5: dead",
        mlp_run(bias=-5.0),
        ("dead_units",),
        ("vanishing",),
    ),
    LabelledRun(
        "relu_bias_minus3_deep",
        H,
        "5 ReLU layers, bias -3: dead",
        mlp_run(depth=5, bias=-3.0, seed=1),
        ("dead_units",),
        ("vanishing",),
    ),
    LabelledRun("relu_he", C, "ReLU + He (healthy twin)", mlp_run()),
    LabelledRun(
        "relu_he_deep", H, "5 ReLU layers + He (healthy twin)", mlp_run(depth=5, seed=1)
    ),
    # saturated sigmoid/tanh: a large initialisation
    LabelledRun(
        "tanh_init_x10",
        C,
        "tanh, N(0, 3) weights: saturated",
        mlp_run(activation="tanh", init=keras.initializers.RandomNormal(stddev=3.0)),
        ("saturation",),
        ("vanishing",),
    ),
    LabelledRun(
        "sigmoid_init_x10",
        H,
        "sigmoid, N(0, 4) weights: saturated",
        mlp_run(
            activation="sigmoid",
            seed=1,
            init=keras.initializers.RandomNormal(stddev=4.0),
        ),
        ("saturation",),
        ("vanishing",),
    ),
    LabelledRun(
        "tanh_glorot",
        C,
        "tanh + Glorot (healthy twin)",
        mlp_run(activation="tanh", init="glorot_uniform"),
    ),
    LabelledRun(
        "sigmoid_glorot",
        H,
        "sigmoid + Glorot, 3 layers (healthy twin)",
        mlp_run(activation="sigmoid", init="glorot_uniform", seed=1),
    ),
    # vanishing in depth
    LabelledRun(
        "sigmoid_depth12",
        C,
        "12 sigmoid layers: vanishing",
        mlp_run(depth=12, activation="sigmoid", init="glorot_uniform"),
        ("vanishing",),
        ("saturation",),
    ),
    LabelledRun(
        "sigmoid_depth15",
        H,
        "15 sigmoid layers: vanishing",
        mlp_run(
            depth=15, width=24, activation="sigmoid", init="glorot_uniform", seed=1
        ),
        ("vanishing",),
        ("saturation",),
    ),
    # BatchNorm at batch 2
    LabelledRun(
        "batchnorm_batch2",
        C,
        "BatchNorm MLP at batch 2",
        mlp_run(batchnorm=True, batch=2),
        ("batchnorm_small_batch",),
    ),
    LabelledRun(
        "batchnorm_batch4",
        H,
        "BatchNorm MLP at batch 4",
        mlp_run(depth=4, batchnorm=True, batch=4, seed=1),
        ("batchnorm_small_batch",),
    ),
    LabelledRun(
        "batchnorm_batch32",
        C,
        "BatchNorm MLP at batch 32 (healthy twin)",
        mlp_run(batchnorm=True),
    ),
    # recurrent cells on the adding problem
    LabelledRun(
        "simple_rnn_T10", C, "SimpleRNN, adding T=10: learns", adding_run("simple", 10)
    ),
    LabelledRun(
        "simple_rnn_T50",
        C,
        "SimpleRNN, adding T=50: stuck at the mean",
        adding_run("simple", 50),
        ("vanishing_in_time",),
    ),
    LabelledRun(
        "simple_rnn_T100",
        H,
        "SimpleRNN, adding T=100: stuck",
        adding_run("simple", 100, seed=1),
        ("vanishing_in_time",),
    ),
    LabelledRun("lstm_T10", H, "LSTM, adding T=10", adding_run("lstm", 10, seed=1)),
    LabelledRun("lstm_T50", C, "LSTM, adding T=50", adding_run("lstm", 50)),
    LabelledRun(
        "lstm_T100",
        H,
        "LSTM, adding T=100 (slow to start)",
        adding_run("lstm", 100, seed=1),
    ),
    LabelledRun("gru_T10", C, "GRU, adding T=10", adding_run("gru", 10)),
    LabelledRun(
        "gru_T50", H, "GRU, adding T=50 (learns late)", adding_run("gru", 50, seed=1)
    ),
    LabelledRun(
        "gru_T100", C, "GRU, adding T=100 (slow to start)", adding_run("gru", 100)
    ),
    # exploding through time: a too-large recurrent initialisation
    LabelledRun(
        "rnn_recurrent_x2_clipped",
        C,
        "ReLU RNN, recurrent gain 2, SGD + clipnorm: explodes",
        adding_run(
            "simple",
            30,
            lr=1e-2,
            recurrent_scale=2.0,
            activation="relu",
            sgd=True,
            clipnorm=1.0,
        ),
        ("exploding",),
        ("nonfinite", "vanishing_in_time"),
    ),
    LabelledRun(
        "rnn_recurrent_x2",
        H,
        "ReLU RNN, recurrent gain 2, SGD: NaN",
        adding_run(
            "simple",
            30,
            lr=1e-2,
            recurrent_scale=2.0,
            activation="relu",
            sgd=True,
            seed=1,
        ),
        ("nonfinite",),
        ("exploding", "vanishing_in_time"),
    ),
    LabelledRun(
        "rnn_recurrent_x2_5_clipped",
        H,
        "ReLU RNN, recurrent gain 2.5, SGD + clipnorm: explodes",
        adding_run(
            "simple",
            20,
            lr=1e-2,
            recurrent_scale=2.5,
            activation="relu",
            sgd=True,
            clipnorm=1.0,
            seed=1,
        ),
        ("exploding",),
        ("nonfinite", "vanishing_in_time"),
    ),
    # Transformers: all learn (no LayerNorm more slowly); see docs/DIAGNOSIS.md
    LabelledRun("transformer_pre_ln", C, "pre-LN, 3 blocks", transformer_run("pre", 3)),
    LabelledRun(
        "transformer_post_ln_deep",
        H,
        "post-LN, 6 blocks",
        transformer_run("post", 6, seed=1),
    ),
    LabelledRun(
        "transformer_no_norm",
        C,
        "no LayerNorm, 3 blocks: learns, later",
        transformer_run("none", 3),
    ),
    LabelledRun(
        "transformer_no_norm_deep",
        H,
        "no LayerNorm, 6 blocks: learns, later",
        transformer_run("none", 6, seed=1),
    ),
    # healthy runs that must stay silent
    LabelledRun(
        "mlp_random_labels",
        C,
        "random labels: nothing to learn",
        mlp_run(random_labels=True),
    ),
    LabelledRun(
        "lstm_random_data",
        H,
        "LSTM, random inputs and targets (T=50)",
        adding_run("lstm", 50, random=True, seed=1),
        may=("unstable",),  # after the first results: its epoch loss doubles at 750
    ),
    LabelledRun(
        "mlp_lr_small",
        H,
        "Adam 1e-5: learns slowly",
        mlp_run(optimizer=("adam", 1e-5), seed=1),
        may=("not_learning",),  # after the first results: 2% gone at 300 steps
    ),
    LabelledRun(
        "mobilenet_v2",
        C,
        "keras.applications MobileNetV2 (alpha 0.35)",
        applications_run(2),
        may=("unstable",),  # after the first results: epoch loss 0.11 -> 0.49 -> 0.15
    ),
    LabelledRun(
        "mobilenet_v3_small",
        H,
        "keras.applications MobileNetV3Small (minimalistic)",
        applications_run(3, seed=1),
    ),
]
RUNS += outcome_runs(LabelledRun) + more_seeds(LabelledRun)


def _outcomes_of_gradient_problems(run):
    """A run with a gradient problem may also get the outcome findings that
    problem causes: its loss does not fall or stalls (the outcome finding
    names the gradient finding as its cause); an exploding or small-batch
    BatchNorm run may also be unstable."""
    gradient = set(run.must) - set(OUTCOMES)
    if not gradient:
        return run
    may = ["not_learning", "stalled"]
    if gradient & {"exploding", "nonfinite", "batchnorm_small_batch"}:
        may.append("unstable")
    extra = tuple(k for k in may if k not in run.must + run.may)
    return dataclasses.replace(run, may=run.may + extra)


OUTCOMES = ("not_learning", "stalled", "unstable", "overfitting")
RUNS = [_outcomes_of_gradient_problems(run) for run in RUNS]
