"""The labelled runs of the diagnosis benchmark (`benchmarks/diagnosis/diagnosis.py`).

Each `LabelledRun` (`diagnosis_families.py`) builds a compiled tiny model and
its training data, and says which findings the diagnosis must make (`must`)
and which it may make without being wrong (`may`); every other kind is a
false positive. Runs come in three named halves: `calibration` (the
thresholds of `kgrad.analysis.findings.Thresholds` were chosen on them),
`held_out` (reported separately; not used to choose a threshold until the
session of 2026-12-08, which changed rules knowing them: docs/DIAGNOSIS.md)
and `fresh` (`diagnosis_fresh_runs.py`: held-out runs written after those
changes, before being trained).

Example:

    run = RUNS[0]
    model, x, y, batch = run.build()
"""

import dataclasses

from diagnosis_families import (
    LabelledRun,
    dead_relu,
    deep_sigmoid,
    nan_mlp,
    relu_rnn,
    saturated_init,
    saturated_softmax,
    simple_rnn_adding,
    small_batchnorm,
)
from diagnosis_fresh_runs import fresh_runs
from diagnosis_models import adding_run, applications_run, mlp_run, transformer_run
from diagnosis_outcome_models import classify_run
from diagnosis_outcome_runs import outcome_runs

C, H = "calibration", "held_out"
RUNS = [
    # non-finite: a learning rate 10-100x too high
    nan_mlp("mlp_sgd_lr_x100", C, "SGD at 100x a usable rate: NaN", 10.0),
    nan_mlp("deep_mlp_sgd_lr_x30", H, "5 layers, SGD at 30x: NaN", 3.0, 5, seed=1),
    # zero gradients: a saturated softmax output fed to a probability loss
    saturated_softmax(
        "softmax_saturated", C, "hand-written softmax saturated to 0/1", 50
    ),
    saturated_softmax(
        "softmax_saturated_deep", H, "2 layers, saturated softmax", 30, seed=1
    ),
    # dead ReLU units: a large negative bias
    dead_relu("relu_bias_minus5", C, "ReLU layers, bias -5: dead", -5.0),
    dead_relu(
        "relu_bias_minus3_deep", H, "5 ReLU layers, bias -3: dead", -3.0, 5, seed=1
    ),
    LabelledRun("relu_he", C, "ReLU + He (healthy twin)", mlp_run()),
    LabelledRun(
        "relu_he_deep", H, "5 ReLU layers + He (healthy twin)", mlp_run(depth=5, seed=1)
    ),
    # saturated sigmoid/tanh: a large initialisation
    saturated_init("tanh_init_x10", C, "tanh, N(0, 3) weights: saturated", "tanh", 3.0),
    saturated_init(
        "sigmoid_init_x10",
        H,
        "sigmoid, N(0, 4) weights: saturated",
        "sigmoid",
        4.0,
        seed=1,
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
    deep_sigmoid("sigmoid_depth12", C, "12 sigmoid layers: vanishing", 12),
    deep_sigmoid(
        "sigmoid_depth15", H, "15 sigmoid layers: vanishing", 15, width=24, seed=1
    ),
    # BatchNorm at batch 2
    small_batchnorm("batchnorm_batch2", C, "BatchNorm MLP at batch 2", 2),
    small_batchnorm(
        "batchnorm_batch4", H, "BatchNorm MLP at batch 4", 4, depth=4, seed=1
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
    simple_rnn_adding(
        "simple_rnn_T50", C, "SimpleRNN, adding T=50: stuck at the mean", 50
    ),
    simple_rnn_adding(
        "simple_rnn_T100", H, "SimpleRNN, adding T=100: stuck", 100, seed=1
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
    relu_rnn(
        "rnn_recurrent_x2_clipped",
        C,
        "ReLU RNN, recurrent gain 2, SGD + clipnorm: explodes",
        2.0,
    ),
    relu_rnn(
        "rnn_recurrent_x2",
        H,
        "ReLU RNN, recurrent gain 2, SGD: NaN",
        2.0,
        clipnorm=None,
        seed=1,
    ),
    relu_rnn(
        "rnn_recurrent_x2_5_clipped",
        H,
        "ReLU RNN, recurrent gain 2.5, SGD + clipnorm: explodes",
        2.5,
        length=20,
        seed=1,
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
RUNS += outcome_runs(LabelledRun)
# Held-out seeds of the gradient kinds' runs (the thresholds were not chosen on
# them)
RUNS += [
    nan_mlp("deep_mlp_sgd_lr_x30_s2", H, "4 layers, SGD at 30x: NaN", 3.0, 4, seed=2),
    saturated_softmax("softmax_saturated_s2", H, "saturated softmax, seed 2", 40, 2),
    dead_relu("relu_bias_minus4_s2", H, "3 ReLU layers, bias -4: dead", -4.0, seed=2),
    saturated_init(
        "tanh_init_x10_s2", H, "tanh, N(0, 3) weights, seed 2", "tanh", 3.0, seed=2
    ),
    deep_sigmoid("sigmoid_depth12_s2", H, "12 sigmoid layers, seed 2", 12, seed=2),
    small_batchnorm(
        "batchnorm_batch2_s2", H, "BatchNorm MLP at batch 2, seed 2", 2, seed=2
    ),
    simple_rnn_adding(
        "simple_rnn_T50_s2", H, "SimpleRNN, adding T=50, seed 2", 50, seed=2
    ),
    relu_rnn(
        "rnn_recurrent_x2_clipped_s2",
        H,
        "ReLU RNN, gain 2, SGD + clipnorm, seed 2",
        2.0,
        seed=2,
    ),
    nan_mlp(
        "mlp_sgd_lr_x100_s3", H, "SGD at 100x a usable rate, seed 3: NaN", 10.0, seed=3
    ),
    LabelledRun(
        "mlp_nan_input",
        H,
        "one example with a NaN input: NaN",
        classify_run(nan_at=300, seed=5),
        ("nonfinite",),
        ("exploding", "dead_units"),
    ),
    deep_sigmoid(
        "sigmoid_depth15_s3", H, "15 sigmoid layers, seed 3", 15, width=24, seed=3
    ),
    relu_rnn(
        "rnn_recurrent_x2_clipped_s3",
        H,
        "ReLU RNN, gain 2, SGD + clipnorm, seed 3",
        2.0,
        seed=3,
    ),
    saturated_softmax("softmax_saturated_s3", H, "saturated softmax, seed 3", 50, 3),
    dead_relu(
        "relu_bias_minus5_s3", H, "4 ReLU layers, bias -5, seed 3", -5.0, 4, seed=3
    ),
    saturated_init(
        "sigmoid_init_x10_s3",
        H,
        "sigmoid, N(0, 4) weights, seed 3",
        "sigmoid",
        4.0,
        seed=3,
    ),
    small_batchnorm(
        "batchnorm_batch4_s3", H, "BatchNorm MLP at batch 4, seed 3", 4, 3, seed=3
    ),
    simple_rnn_adding(
        "simple_rnn_T60_s3", H, "SimpleRNN, adding T=60, seed 3", 60, seed=3
    ),
    LabelledRun("relu_he_s2", H, "ReLU + He, seed 2 (healthy twin)", mlp_run(seed=2)),
]


RUNS += fresh_runs()


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
