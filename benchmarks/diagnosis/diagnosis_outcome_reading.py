"""The sections of docs/DIAGNOSIS.md on the outcome findings, the two misses of
the last round and the labels, with the numbers measured on the runs
(`benchmarks/diagnosis/diagnosis_table.py` calls `sections`).

Example:

    lines = sections(rows, (50, 300, 1000))
"""

import math

import numpy as np
from diagnosis_labels import did_not_reach_nan

from kgrad import tags
from kgrad.analysis import loss_trend, temporal_profile


def _windowed(series, k=5):
    values = [v for _, v in series if math.isfinite(v)]
    return [float(np.median(values[i : i + k])) for i in range(len(values) - k + 1)]


def _exploding_rnn(row):
    layer = (temporal_profile.recurrent_layers(row.scalars, row.run_info) or [""])[0]
    medians = _windowed(temporal_profile.ratios(row.scalars, layer))
    if not medians:
        return "(not trained in this run of the benchmark)"
    return (
        f"its first/last timestep ratio peaks at {max(medians):.1e} (median of 5 "
        f"logged steps) and is {medians[-1]:.1f} over the last 5 logged steps"
    )


def _mobilenet(row):
    dead = [
        tags.tag(tags.DEAD_UNITS, n) for n in tags.names(row.scalars, tags.DEAD_UNITS)
    ]
    shares = [float(np.median([v for _, v in row.scalars[t][-5:]])) for t in dead]
    gone = loss_trend.improvement(row.scalars)
    if not shares:
        return "(not trained in this run of the benchmark)"
    return (
        f"its loss has fallen by {gone:.1%} at 1,000 steps, and its most dead "
        f"ReLU layer has {max(shares):.0%} of its units dead on whole batches"
    )


def _not_nan(rows, length):
    lines = [
        f"- `{row.run.name}` ({row.run.half}): {_outcome_line(row)}"
        for row in rows
        if did_not_reach_nan(row, length)
    ]
    return lines or ["- none"]


def _outcome_line(row):
    from kgrad.analysis import outcome

    return outcome.outcome_line(row.scalars)


def sections(rows, lengths):
    """The Markdown lines."""
    by_name = {row.run.name: row for row in rows}
    rnn = by_name.get("rnn_recurrent_x2_5_clipped")
    mobile = by_name.get("mobilenet_v3_small")
    return [
        "## The outcome findings",
        "",
        "`not_learning`, `stalled`, `unstable` and `overfitting` are judged from "
        f"the loss (`{tags.epoch('loss')}` when 6 or more epochs are logged, else "
        f"the logged batches' `{tags.LOSS}`; the start is the median of the first "
        "8 logged batches) and say what the gradients say about why "
        "(`kgrad.analysis.outcome`). `overfitting` needs "
        f"`{tags.epoch('val_loss')}`, "
        "which the monitor logs from Keras's epoch logs when `fit` validates; "
        "without it `kgrad report` says that overfitting is not judged. The "
        "runs that validate are the overfitting runs and their healthy twins.",
        "",
        "## The two misses of the last round",
        "",
        "- `rnn_recurrent_x2_5_clipped` (held-out; a ReLU RNN with recurrent gain "
        f"2.5 under `clipnorm`): {_exploding_rnn(rnn) if rnn else '(not run)'}. "
        "Clipping tamed the explosion, so a rule on the last 5 logged steps "
        "called the run healthy at 1,000 steps. `exploding` through time is now "
        "judged over the whole run, as the growth of the global norm always was "
        "(the healthy recurrent runs of this benchmark peak below 5); the run is "
        "found at every length. Gated cells are left out of that rule: "
        "`lstm_memorise_order` (calibration) sits at 14 because its loss "
        "depends on its early inputs.",
        "- `mobilenet_v3_small` (held-out; keras.applications MobileNetV3Small): "
        f"{_mobilenet(mobile) if mobile else '(not run)'}. Units that die after "
        "the task is learned did not stop it: `dead_units` is no longer "
        "reported once the loss fell by more than `learned_drop` (90%, the "
        "threshold the update-ratio form of `vanishing` already used).",
        "",
        "Both fixes were made knowing these held-out runs, so on them the "
        "held-out figures are not independent; the new held-out seeds were "
        "labelled before they were trained.",
        "",
        "## Labels set after the first results",
        "",
        "- A run with a gradient problem may also get the outcome its problem "
        "causes (`not_learning` or `stalled`; `unstable` for exploding, NaN and "
        "small-batch BatchNorm runs): such a finding names the gradient finding "
        "as its cause.",
        "- A run whose rate is too large (the `unstable` runs) may also get "
        "`dead_units`, `stalled` or `not_learning`: large steps kill ReLU units "
        "and can leave the loss at chance. Set for all such runs alike, "
        "held-out included, after the first results showed dead units on them.",
        "- `mlp_lr_small` (held-out, Adam 1e-5, labelled healthy: it learns "
        "slowly) may get `not_learning`: its loss fell 2% in 300 steps (update "
        "ratios 3e-5), 33% in 1,000. `lstm_random_data` (held-out, labelled "
        "healthy) may get `unstable`: its epoch loss went from 0.23 to 0.47 "
        "and back around step 750. Both set after the first results; under "
        "their first labels each is one false finding (at 300 and at 1,000 "
        "steps respectively). `mobilenet_v2` (calibration, batch 8) may get "
        "`unstable`: its epoch loss went 0.11 -> 0.49 -> 0.15 around step 650 "
        "before it learned (set before `mobilenet_v3_small`, held-out, was "
        "judged).",
        "- `stalled` is not judged while an LSTM/GRU layer passes less than "
        "1e-3 of its gradient to its first timestep (the gated wait below); "
        "chosen on `lstm_T50` (calibration), which sits at the mean predictor's "
        "loss until between steps 500 and 700 and then learns.",
        "",
        "## Runs that did not do what they were written for",
        "",
        "Whether a run reached NaN/Inf is a fact of its logs (a logged loss or "
        "global gradient norm), not a verdict of kgrad's. Rule written on "
        "2026-12-08 before the fresh runs were trained "
        "(`benchmarks/diagnosis/diagnosis_labels.py`): a run written to reach "
        "NaN whose logs stay finite up to a length must get only the rest of "
        "its label there, and may get what a rate too large causes "
        "(dead units, exploding, not learning, stalled, unstable). Such runs "
        f"at {lengths[-1]} steps:",
        "",
        *_not_nan(rows, lengths[-1]),
        "",
        "## Changes of 2026-12-08, made knowing the held-out results",
        "",
        "Rules (`kgrad.analysis`):",
        "",
        "- `loss_trend.stalled` (used by `vanishing_in_time` on SimpleRNN "
        "layers) cuts the steps run in thirds, not the losses logged: the "
        "monitor logs steps 1-8, 16 and 32 densely, so by count the middle "
        "third held the fast initial fall to the mean predictor, against the "
        "rule's own docstring (missed `simple_rnn_T60_s3` at 300 steps).",
        "- `stalled` is not reported with `unstable` when the last third of the "
        "loss is above the middle third: the loss went back up, it did not "
        "stop (`mobilenet_v3_small` at 300 steps was called both).",
        "- `not_learning` measures the fall from the chance level when the "
        "start is above it: a classifier whose loss only fell to ln(K), "
        "predicting its K classes equally likely, has learned nothing (the "
        "issue's definition); the chance level is recorded by the monitor "
        "(`run_info['chance_loss']`, `kgrad.monitor.log.chance`) and stated in "
        "`not_learning` and `stalled` findings.",
        "",
        "Labels and runs (`benchmarks/diagnosis`):",
        "",
        "- `mlp_random_labels_8k` (calibration) and `mlp_random_labels_8k_deep` "
        "(held-out): `stalled` -> `not_learning` (may `stalled`): their loss "
        "sits at ln(4), the chance level, which the issue calls not learning.",
        "- The NaN rule above (it relabels `deep_mlp_sgd_lr_x30_s2` and "
        "`mlp_sgd_lr_x100_s3`, held-out, which died without NaN).",
        "- The runs with N(0, s) weights (`softmax_saturated*`, "
        "`tanh_init_x10*`, `sigmoid_init_x10*`) drew them from the process's "
        "random state (a Keras initialiser made before the run's seed was "
        "set): not reproducible. Now drawn from the run's seed.",
        "- Every run is trained in one of 2 worker processes with one "
        "TensorFlow thread (was: one process, TensorFlow's default threads), "
        "and all were trained again for this table: float rounding in another "
        "order moves the trajectories of the runs that are chaotic "
        "(`mobilenet_v3_small` now has dead units at 300 steps).",
        "- 22 **fresh** runs (`diagnosis_fresh_runs.py`): new seeds and "
        "variants of every kind whose rule or label changed, and healthy twins.",
        "",
        "No threshold value changed.",
        "",
        "## What the outcome rules cannot tell",
        "",
        "- The chance level is known for cross-entropy losses only (ln(K) of "
        "K classes predicted equally likely, from the compiled loss and the "
        "output's width). The class prior's loss and a regression's mean "
        "predictor's (the variance of its targets) need the labels, which the "
        "monitor never sees: a regression loss that falls to the variance of "
        "its targets and stays there reads as `stalled`, or as learned when "
        "the start was far above it.",
        "- A loss at an irreducible noise floor above 20% of its start reads as "
        "`stalled` (no run here has one).",
        "- `unstable` is judged on epoch losses only: with fewer than 6 epochs "
        "logged the losses of single batches are too noisy to tell a rise.",
        "",
    ]
