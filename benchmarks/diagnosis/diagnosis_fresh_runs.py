"""Fresh held-out runs, written on 2026-12-08 before any of them was trained.

The rules were changed in that session knowing the `held_out` runs' results
(docs/DIAGNOSIS.md lists each change), so those runs no longer test the
rules independently. These runs, one new seed or variant of each kind whose
rule or label changed (`nonfinite`, `vanishing_in_time`, `not_learning`,
`stalled`, `unstable`) and of the healthy runs, are the half `fresh`:
reported apart, never used to choose a threshold or a label.

Example:

    runs = fresh_runs()
"""

from diagnosis_families import (
    LabelledRun,
    lr_drop,
    nan_mlp,
    relu_rnn,
    simple_rnn_adding,
)
from diagnosis_models import adding_run, mlp_run
from diagnosis_outcome_models import classify_run
from diagnosis_outcome_runs import TOO_FAST

F = "fresh"
NL, ST, UN = "not_learning", "stalled", "unstable"


def fresh_runs():
    """The runs of the half `fresh`."""
    return [
        # NaN: a rate far too large, a NaN input, an exploding RNN unclipped
        nan_mlp(
            "fresh_mlp_sgd_lr_x100_s4", F, "SGD at 100x, seed 4: NaN", 10.0, seed=4
        ),
        nan_mlp(
            "fresh_deep_mlp_sgd_lr_x50_s5", F, "4 layers, SGD at 50x: NaN", 5.0, 4, 5
        ),
        LabelledRun(
            "fresh_mlp_nan_input_s6",
            F,
            "3 layers, a NaN input at example 100: NaN",
            classify_run(depth=3, nan_at=100, seed=6),
            ("nonfinite",),
            ("exploding", "dead_units"),
        ),
        relu_rnn(
            "fresh_rnn_recurrent_x2_s4",
            F,
            "ReLU RNN, gain 2, SGD, seed 4: NaN",
            2.0,
            clipnorm=None,
            seed=4,
        ),
        # vanishing through time: SimpleRNN on long adding problems
        simple_rnn_adding(
            "fresh_simple_rnn_T50_s4", F, "SimpleRNN, adding T=50, seed 4", 50, 4
        ),
        simple_rnn_adding(
            "fresh_simple_rnn_T70_s5", F, "SimpleRNN, adding T=70, seed 5", 70, 5
        ),
        simple_rnn_adding(
            "fresh_simple_rnn_T80_s6", F, "SimpleRNN, adding T=80, seed 6", 80, 6
        ),
        # stalled: learned, then the rate schedule went to ~0
        lr_drop(
            "fresh_mlp_adam_drop_at_80_s6",
            F,
            "Adam 1e-3, then 1e-9 from step 80",
            "adam",
            1e-3,
            80,
            seed=6,
        ),
        lr_drop(
            "fresh_mlp_sgd_drop_at_120_s7",
            F,
            "SGD 0.05, then 1e-9 from step 120",
            "sgd",
            0.05,
            120,
            seed=7,
        ),
        lr_drop(
            "fresh_mlp_rmsprop_drop_at_200_s8",
            F,
            "3 layers, RMSprop 3e-4, then 1e-9 from step 200",
            "rmsprop",
            3e-4,
            200,
            depth=3,
            seed=8,
        ),
        # not learning: a rate too small, labels at chance, a model too small
        LabelledRun(
            "fresh_mlp_adam_lr_1e-7_s8",
            F,
            "3 layers, Adam 1e-7",
            classify_run(depth=3, lr=1e-7, seed=8),
            (NL,),
        ),
        LabelledRun(
            "fresh_mlp_sgd_lr_1e-5_s10",
            F,
            "width 48, SGD 1e-5",
            classify_run(width=48, optimizer="sgd", lr=1e-5, seed=10),
            (NL,),
        ),
        LabelledRun(
            "fresh_mlp_random_labels_8k_s9",
            F,
            "8,192 random labels, seed 9: at chance",
            classify_run(task="random", n=8192, seed=9),
            (NL,),
            (ST,),
        ),
        LabelledRun(
            "fresh_mlp_width2_rings_s7",
            F,
            "2 hidden units on ring classes, seed 7",
            classify_run(width=2, task="rings", lr=1e-2, seed=7),
            (NL,),
            (ST,),
        ),
        # unstable: a rate too large to settle
        LabelledRun(
            "fresh_mlp_adam_lr_0.08_s11",
            F,
            "Adam 0.08",
            classify_run(lr=0.08, seed=11),
            (UN,),
            TOO_FAST,
        ),
        LabelledRun(
            "fresh_mlp_sgd_momentum_0.99_s12",
            F,
            "SGD 0.04, momentum 0.99",
            classify_run(optimizer="sgd", lr=0.04, momentum=0.99, seed=12),
            (UN,),
            TOO_FAST,
        ),
        LabelledRun(
            "fresh_mlp_rmsprop_lr_0.1_s13",
            F,
            "RMSprop 0.1",
            classify_run(optimizer="rmsprop", lr=0.1, seed=13),
            (UN,),
            TOO_FAST,
        ),
        # healthy: must stay silent
        LabelledRun("fresh_relu_he_s7", F, "ReLU + He, seed 7", mlp_run(seed=7)),
        LabelledRun(
            "fresh_mlp_adam_s15", F, "Adam 1e-3, linear task", classify_run(seed=15)
        ),
        LabelledRun(
            "fresh_mlp_validated_s14",
            F,
            "4,096 examples, validated",
            classify_run(n=4096, seed=14),
            validation=0.2,
        ),
        LabelledRun(
            "fresh_simple_rnn_T10_s4",
            F,
            "SimpleRNN, adding T=10, seed 4: learns",
            adding_run("simple", 10, seed=4),
        ),
        LabelledRun(
            "fresh_lstm_T10_s5",
            F,
            "LSTM, adding T=10, seed 5",
            adding_run("lstm", 10, seed=5),
        ),
    ]
