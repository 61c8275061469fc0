"""Labelled runs whose outcome is the problem, and more seeds of the others.

Written from the symptoms (a rate too small to move the weights, labels
nothing can learn, a rate schedule that stops a run half way, a model too
small for its task, a rate too large to settle, a large model on a few noisy
examples), not ported from anyone's case files. Appended to
`diagnosis_runs.RUNS`.

Example:

    runs = outcome_runs(LabelledRun)
"""

from diagnosis_outcome_models import adding_lr_run, classify_run, sequence_run

# A rate too large may also kill ReLU units and leave the loss stalled or at
# its start: findings of these kinds on such runs are not wrong (set for every
# rate-too-large run alike, after the first results showed it).
TOO_FAST = ("dead_units", "stalled", "not_learning")


def outcome_runs(labelled_run):
    """The runs, built with the `LabelledRun` class of `diagnosis_runs`."""
    R = labelled_run
    C, H = "calibration", "held_out"
    NL, ST, UN, OV = "not_learning", "stalled", "unstable", "overfitting"

    def too_fast(name, half, what, build):
        """A rate too large to settle: unstable."""
        return R(name, half, what, build, (UN,), TOO_FAST)

    def memorising(name, half, what, build):
        """A large model on a few noisy examples, half held out: overfitting."""
        return R(name, half, what, build, (OV,), validation=0.5)

    return [
        # not learning: the loss stays at its start
        R(
            "mlp_adam_lr_1e-7",
            C,
            "Adam 1e-7: weights do not move",
            classify_run(lr=1e-7),
            (NL,),
        ),
        R(
            "mlp_sgd_lr_1e-5",
            C,
            "SGD 1e-5: weights barely move",
            classify_run(optimizer="sgd", lr=1e-5),
            (NL,),
        ),
        R(
            "lstm_adding_lr_1e-6",
            C,
            "LSTM, Adam 1e-6, adding T=20",
            adding_lr_run("lstm", 1e-6),
            (NL,),
        ),
        R(
            "mlp_random_labels_8k",
            C,
            "8,192 random labels: stuck at chance",
            classify_run(task="random", n=8192),
            (NL,),  # at chance: not learning (was `stalled` until 2026-12-08)
            (ST,),
        ),
        R(
            "mlp_adam_lr_3e-7_deep",
            H,
            "4 layers, Adam 3e-7",
            classify_run(depth=4, lr=3e-7, seed=1),
            (NL,),
        ),
        R(
            "mlp_sgd_lr_3e-5_wide",
            H,
            "width 64, SGD 3e-5",
            classify_run(width=64, optimizer="sgd", lr=3e-5, seed=2),
            (NL,),
        ),
        R(
            "gru_adding_lr_1e-6",
            H,
            "GRU, Adam 1e-6, adding T=20",
            adding_lr_run("gru", 1e-6, seed=1),
            (NL,),
        ),
        R(
            "lstm_order_lr_1e-6",
            H,
            "LSTM, Adam 1e-6, temporal order",
            sequence_run(lr=1e-6, seed=1),
            (NL,),
        ),
        R(
            "mlp_random_labels_8k_deep",
            H,
            "3 layers, 8,192 random labels",
            classify_run(depth=3, task="random", n=8192, seed=1),
            (NL,),  # at chance: not learning (was `stalled` until 2026-12-08)
            (ST,),
        ),
        # stalled: learned, then a plateau far from a fitted loss
        R(
            "mlp_lr_drop_at_100",
            C,
            "Adam 1e-3, then 1e-9 from step 100",
            classify_run(lr=1e-3, schedule=(100, 1e-9)),
            (ST,),
        ),
        R(
            "mlp_sgd_drop_at_150",
            C,
            "SGD 0.05, then 1e-8 from step 150",
            classify_run(optimizer="sgd", lr=0.05, schedule=(150, 1e-8)),
            (ST,),
        ),
        R(
            "mlp_width2_rings",
            C,
            "2 hidden units on ring classes: too small",
            classify_run(width=2, task="rings", lr=1e-2),
            (NL,),
            (ST,),
        ),
        R(
            "mlp_lr_drop_at_60_deep",
            H,
            "3 layers, Adam 3e-3, then 1e-9 from 60",
            classify_run(depth=3, lr=3e-3, schedule=(60, 1e-9), seed=1),
            (ST,),
        ),
        R(
            "mlp_rmsprop_drop_at_120",
            H,
            "RMSprop 1e-3, then 1e-9 from step 120",
            classify_run(optimizer="rmsprop", lr=1e-3, schedule=(120, 1e-9), seed=2),
            (ST,),
        ),
        R(
            "mlp_width3_rings",
            H,
            "3 hidden units on ring classes",
            classify_run(width=3, task="rings", lr=1e-2, seed=3),
            (NL,),
            (ST,),
        ),
        # unstable: a rate too large to settle
        too_fast("mlp_adam_lr_0.05", C, "Adam 0.05: spikes", classify_run(lr=0.05)),
        too_fast(
            "mlp_sgd_momentum_0.99",
            C,
            "SGD 0.05, momentum 0.99: oscillates, dies",
            classify_run(optimizer="sgd", lr=0.05, momentum=0.99),
        ),
        too_fast(
            "mlp_sgd_momentum_0.99_deep",
            C,
            "3 layers, SGD 0.02, momentum 0.99: oscillates",
            classify_run(depth=3, optimizer="sgd", lr=0.02, momentum=0.99, seed=4),
        ),
        too_fast(
            "mlp_adam_lr_0.1_deep",
            H,
            "3 layers, Adam 0.1",
            classify_run(depth=3, lr=0.1, seed=1),
        ),
        too_fast(
            "mlp_rmsprop_lr_0.05",
            H,
            "RMSprop 0.05",
            classify_run(optimizer="rmsprop", lr=0.05, seed=2),
        ),
        too_fast(
            "mlp_sgd_momentum_0.99_wide",
            H,
            "width 64, SGD 0.03 momentum 0.99",
            classify_run(width=64, optimizer="sgd", lr=0.03, momentum=0.99, seed=3),
        ),
        # overfitting: a large model on a few noisy examples, validated
        memorising(
            "mlp_memorise_noisy",
            C,
            "256 wide on 128 examples, half the labels noisy",
            classify_run(depth=3, width=256, n=256, label_noise=0.5),
        ),
        memorising(
            "lstm_memorise_order",
            C,
            "LSTM on 96 sequences, half the labels noisy",
            sequence_run(n=192, label_noise=0.5),
        ),
        memorising(
            "mlp_memorise_random",
            C,
            "256 wide on 128 random labels",
            classify_run(depth=3, width=256, n=256, task="random"),
        ),
        memorising(
            "mlp_memorise_noisy_s1",
            H,
            "128 wide on 128 examples, 40% noisy",
            classify_run(depth=3, width=128, n=256, label_noise=0.4, seed=1),
        ),
        memorising(
            "gru_memorise_order",
            H,
            "GRU on 96 sequences, 60% of the labels noisy",
            sequence_run("gru", n=192, label_noise=0.6, seed=1),
        ),
        memorising(
            "mlp_memorise_rings",
            H,
            "256 wide on 128 ring examples, 30% noisy",
            classify_run(
                depth=3, width=256, n=256, task="rings", label_noise=0.3, seed=2
            ),
        ),
        R(
            "mlp_validated",
            C,
            "4,096 examples, validated (healthy twin)",
            classify_run(n=4096),
            validation=0.2,
        ),
        R(
            "mlp_validated_deep",
            H,
            "3 layers, 4,096 examples, validated (healthy)",
            classify_run(depth=3, n=4096, seed=1),
            validation=0.2,
        ),
        R(
            "lstm_order_validated",
            H,
            "LSTM, 2,048 sequences, validated (healthy)",
            sequence_run(n=2048, seed=2),
            validation=0.2,
        ),
    ]
