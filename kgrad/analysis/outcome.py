"""What the run did, from its loss: the outcome line and the outcome findings.

Pure Python and numpy; part of `kgrad.analysis.diagnostics` (tested in
tests/test_outcome.py). The loss is read from `tags.epoch("loss")` (Keras's mean
over each epoch: smooth) when at least `MIN_EPOCHS` epochs are logged, else
from `tags.LOSS` (the loss of each logged step) smoothed by a running median.
The start is the median of the first `START_STEPS` logged step losses (before
the first epoch's mean has averaged the fall away).

| kind | when |
|---|---|
| `not_learning` | the loss fell less than `fell_drop` of its start, or of the |
|  | chance level when the start was above it (a classifier that |
|  | only learned to predict its classes equally likely learned |
|  | nothing; `run_info["chance_loss"]`, `kgrad.monitor.log.chance`) |
| `stalled` | it fell more, then over the last third of the steps it fell |
|  | less than `plateau_drop` below the middle third's level, far from |
|  | fitted (still above `stall_remaining` of its start); not while an |
|  | LSTM/GRU layer waits (first/last timestep ratio < `temporal_ratio`), |
|  | nor when the last third rose above the middle one and `unstable` |
|  | is found (the loss went back up: that finding names it) |
| `unstable` | the epoch loss rose back by more than `unstable_rise` of what |
|  | it had learned (once it had lost `LEARNED` = half its start), at |
|  | least `unstable_rises` times (not judged on the |
|  | losses of single batches: too noisy); a gradient norm spike of |
|  | `unstable_spike` x its median before with it points to the rate |
| `overfitting` | the validation loss rose `overfit_rise` above its lowest while |
|  | the training loss kept falling |

All four need `min_outcome_steps` steps. Each finding says what the gradients
say about why: update ratios below `tiny_update` mean a learning rate too
small (or a schedule that went to zero); other gradient findings are named;
healthy gradients with a flat loss point to the labels, the data or the
model's size.

Example:

>>> scalars = {tags.LOSS: [(s, 2.3 - s * 1e-4) for s in range(1, 401)]}
>>> outcome_line(scalars)
'loss did not fall: 2.30 -> 2.26 (2%)'
"""

import math

import numpy as np

from kgrad import tags
from kgrad.analysis import layer_profile, loss_trend, temporal_profile
from kgrad.analysis.findings import Finding

EPOCH_LOSS = tags.epoch("loss")
VAL_LOSS = tags.epoch("val_loss")
MIN_EPOCHS = 6
START_STEPS = 8
SMOOTH = 5  # logged step losses per running median, without epoch losses
LEARNED = 0.5  # a rise counts once the loss had lost this share of its start
OUTCOME_KINDS = ("not_learning", "stalled", "unstable", "overfitting")
_CAUSES = {
    "vanishing": "vanishing gradients",
    "vanishing_in_time": "vanishing gradients through time",
    "dead_units": "dead ReLU units",
    "saturation": "saturated activations",
    "zero_gradients": "zero gradients",
    "nonfinite": "NaN/Inf gradients",
    "exploding": "exploding gradients",
}


def curve(scalars):
    """`(start, [(step, loss)])`: the loss at the start and its smooth curve.

    `start` is NaN when no finite loss is logged.
    """
    steps = loss_trend.losses(scalars)
    if not steps:
        return math.nan, []
    start = float(np.median([v for _, v in steps[:START_STEPS]]))
    epochs = _epochs(scalars)
    if epochs:
        return start, epochs
    values = [v for _, v in steps]
    smooth = [
        float(np.median(values[max(0, i - SMOOTH + 1) : i + 1]))
        for i in range(len(values))
    ]
    return start, [(s, v) for (s, _), v in zip(steps, smooth, strict=True)]


def _epochs(scalars):
    """The finite epoch losses, if at least `MIN_EPOCHS`; else `[]`."""
    epochs = [(s, v) for s, v in scalars.get(EPOCH_LOSS, []) if math.isfinite(v)]
    return epochs if len(epochs) >= MIN_EPOCHS else []


def _nonfinite_step(scalars):
    bad = [s for s, v in scalars.get(tags.LOSS, []) if not math.isfinite(v)]
    return min(bad) if bad else None


def outcome_line(scalars, fell_drop=0.15):
    """One sentence: what the loss did, e.g. `loss fell 2.30 -> 0.18 (92%)`.

    The loss "did not fall" when less than `fell_drop` of its start is gone
    (`Thresholds.fell_drop`). Defaults to `0.15`.

    Example:

    >>> outcome_line({})
    'no loss logged: the outcome of the run is unknown'
    """
    nan_at = _nonfinite_step(scalars)
    start, points = curve(scalars)
    if nan_at is not None:
        return f"loss became NaN/Inf at step {nan_at}: the run diverged"
    if not points:
        return "no loss logged: the outcome of the run is unknown"
    end = points[-1][1]
    gone = 1.0 - end / start if start > 0 else math.nan
    span = f"{_loss(start)} -> {_loss(end)}"
    if not math.isfinite(gone):
        return f"loss {span}"
    if end > start:
        return f"loss rose: {span} (+{end / start - 1:.0%})"
    if gone < fell_drop:
        return f"loss did not fall: {span} ({gone:.0%})"
    return f"loss fell {span} ({gone:.0%})"


def _loss(value):
    """`2.30`, `0.18`, `7.2e-05`: a loss as people read it."""
    return f"{value:.2f}" if 0.1 <= abs(value) < 1000 else f"{value:.2g}"


def validation_note(scalars):
    """A sentence when no validation loss is logged (overfitting unjudged)."""
    if scalars.get(VAL_LOSS):
        return None
    return (
        "no validation loss logged, so overfitting is not judged (pass "
        "`validation_data` or `validation_split` to `fit`)"
    )


def findings(scalars, info, t, gradient_kinds):
    """The outcome findings, given the kinds the gradient rules found."""
    steps = layer_profile.norm_steps(scalars) or [
        s for s, _ in loss_trend.losses(scalars)
    ]
    if not steps or steps[-1] < t.min_outcome_steps:
        return []
    if _nonfinite_step(scalars) is not None or "nonfinite" in gradient_kinds:
        return []  # the NaN finding says it all
    start, points = curve(scalars)
    if len(points) < 3 or not start > 0:
        return []
    causes = [_CAUSES[k] for k in _CAUSES if k in gradient_kinds]
    found = _progress(scalars, info, t, start, points, causes)
    if _epochs(scalars):  # a batch's loss is too noisy to tell rises apart
        unstable = _unstable(scalars, t, start, points)
        if unstable:  # a last third above the middle one rose, not stalled
            found = [f for f in found if not _rose(f)]
        found += unstable
    found += _overfitting(scalars, t)
    return found


def _rose(finding):
    return finding.kind == "stalled" and dict(finding.numbers)["fell"] < 0


def _chance(info, end):
    """A sentence on the chance level, or `""` when it is unknown."""
    chance = (info or {}).get("chance_loss")
    if not chance:
        return ""
    where = (
        "at it"
        if abs(end / chance - 1) <= 0.05
        else (f"{1 - end / chance:.0%} below it" if end < chance else "above it")
    )
    return (
        f" Chance level (every class predicted equally likely) is {chance:.3g}: "
        f"the loss is {where}."
    )


def _update_ratio(scalars, early=False):
    """The largest median update ratio of a kernel over the last (or, with
    `early`, the first) logged steps; NaN when none is logged.

    Kernels only: a bias that starts at zero moves a large share of its
    small norm at any learning rate.
    """
    paths = tags.names(scalars, tags.UPDATE_RATIO)
    kernels = [p for p in paths if p.endswith(("kernel", "embeddings"))]
    best = math.nan
    for path in kernels or paths:
        series = scalars[tags.tag(tags.UPDATE_RATIO, path)]
        values = series[:START_STEPS] if early else series[-5:]
        picked = [v for _, v in values if math.isfinite(v)]
        if picked:
            value = float(np.median(picked))
            best = value if math.isnan(best) else max(best, value)
    return best


def _why_flat(scalars, t, causes):
    """What the gradients say about a loss that does not fall."""
    update = _update_ratio(scalars)
    early = _update_ratio(scalars, early=True)
    if causes:
        return (
            f"The gradients say why: {', '.join(causes)} (see that finding).",
            "Fix the gradient problem first.",
        )
    if update < t.tiny_update:
        moved = (
            f" (they moved {early:.1e} at the start: the rate has decayed or a "
            "schedule took it to ~0)"
            if early >= 10 * update and early >= t.tiny_update
            else ""
        )
        return (
            f"The gradients are healthy but the weights barely move: at most "
            f"{update:.1e} of their norm per step (healthy: ~1e-3; threshold "
            f"{t.tiny_update:g}){moved}. The learning rate is too small.",
            "Raise the learning rate (e.g. 10x; Adam's usual 1e-3), or fix the "
            "schedule so that it does not go to zero.",
        )
    where = (
        f" (at most {update:.1e} of their norm per step)" if update == update else ""
    )
    return (
        f"The gradients are healthy and the weights move{where}, yet the loss "
        "does not fall: the labels may not follow from the inputs, or the model "
        "is too small for the task.",
        "Check that inputs and labels are paired (shuffled together), that the "
        "loss matches the labels (from_logits, sparse or one-hot), that the "
        "inputs are normalised; then try a larger model.",
    )


def _progress(scalars, info, t, start, points, causes):
    values = [v for _, v in points]
    end = values[-1]
    chance = (info or {}).get("chance_loss") or math.inf
    base = min(start, chance)  # reaching chance from a worse start is no learning
    gone = 1.0 - end / base
    span = f"steps {points[0][0]}-{points[-1][0]}"
    if gone < t.fell_drop:
        why, advice = _why_flat(scalars, t, causes)
        fell = f"{1.0 - end / start:.0%} gone"
        if base != start:  # measured from the chance level, below the start
            below = f"{gone:.0%} below" if gone > 0 else "not below"
            fell += f", {below} the chance level"
        evidence = (
            f"The loss did not fall: {start:.3g} at the start, {end:.3g} now "
            f"({fell}; threshold {t.fell_drop:.0%}; {span}).{_chance(info, end)} {why}"
        )
        numbers = (("start_loss", start), ("loss", end), ("fell", gone))
        return [
            Finding("not_learning", "warning", (), evidence, advice, numbers=numbers)
        ]
    last_step = points[-1][0]
    middle = [v for s, v in points if last_step / 3 < s <= 2 * last_step / 3]
    recent = [v for s, v in points if s > 2 * last_step / 3]
    if len(middle) < 2 or len(recent) < 2:
        return []
    middle, last = float(np.median(middle)), float(np.median(recent))
    plateau = 1.0 - last / middle if middle > 0 else math.nan
    if not (plateau < t.plateau_drop and end > t.stall_remaining * start):
        return []
    if _gated_wait(scalars, info, t):
        return []
    why, advice = _why_flat(scalars, t, causes)
    evidence = (
        f"The loss fell from {start:.3g} to {middle:.3g}, then stopped: "
        f"{last:.3g} over the last third of the run ({plateau:.0%} lower than "
        f"the middle third; threshold {t.plateau_drop:.0%}), still "
        f"{end / start:.0%} of its start.{_chance(info, end)} {why}"
    )
    numbers = (("start_loss", start), ("plateau_loss", last), ("fell", plateau))
    return [Finding("stalled", "warning", (), evidence, advice, numbers=numbers)]


def _gated_wait(scalars, info, t):
    """Whether an LSTM/GRU layer still passes less than `t.temporal_ratio` of
    its gradient to its first timestep: gated cells sit at the mean
    predictor's loss until they learn the long dependency (docs/DIAGNOSIS.md,
    "Gated cells wait, then learn"), a wait no statistic tells from a stall."""
    for layer in temporal_profile.recurrent_layers(scalars, info):
        if temporal_profile.cell_of(info, layer) not in temporal_profile.GATED_CELLS:
            continue
        values = [v for _, v in temporal_profile.ratios(scalars, layer)[-t.window :]]
        values = [v for v in values if math.isfinite(v)]
        if values and float(np.median(values)) < t.temporal_ratio:
            return True
    return False


def _unstable(scalars, t, start, points):
    """Rises of the loss that give back a share of what was learned."""
    rises, low, rising = [], math.inf, False
    for step, value in points:
        learned = start - low
        share = (value - low) / learned if learned > LEARNED * start else 0.0
        up = share > t.unstable_rise
        if up and not rising:
            rises.append((step, share))
        elif up and share > rises[-1][1]:
            rises[-1] = (rises[-1][0], share)
        rising = up
        low = min(low, value)
    if len(rises) < t.unstable_rises:
        return []
    step, share = max(rises, key=lambda r: r[1])
    norms = [
        (s, v) for s, v in scalars.get(tags.GLOBAL_GRAD_NORM, []) if math.isfinite(v)
    ]
    spikes = [_norm_spike(norms, s) for s, _ in rises]
    spike = max([x for x in spikes if x is not None], default=None)
    evidence = (
        f"The loss rose back {len(rises)} time(s), giving back up to {share:.0%} "
        f"of what it had learned (from step {step}; threshold "
        f"{t.unstable_rise:.0%})."
    )
    if spike is not None and spike >= t.unstable_spike:
        evidence += (
            f" The global gradient norm spiked with it ({spike:.1f}x its median "
            "before): steps too large for the curvature."
        )
        advice = (
            "Lower the learning rate (e.g. 3-10x), add a warmup, or clip "
            "gradients (`clipnorm=1.0`); with SGD, lower the momentum."
        )
    else:
        evidence += " The global gradient norm did not spike with it" + (
            f" (at most {spike:.1f}x its median before)." if spike else "."
        )
        advice = (
            "Lower the learning rate (or the momentum); check for bad batches "
            "(outliers, wrong labels) and shuffle the data."
        )
    numbers = (("rises", len(rises)), ("largest_share", share))
    return [Finding("unstable", "warning", (), evidence, advice, numbers=numbers)]


def _norm_spike(norms, step, around_steps=50):
    """The largest norm logged in the `around_steps` up to `step`, over the
    median of the 10 logged before them."""
    before = [v for s, v in norms if s < step - around_steps][-10:]
    around = [v for s, v in norms if step - around_steps <= s <= step]
    if len(before) < 3 or not around:
        return None
    base = float(np.median(before))
    return max(around) / base if base > 0 else None


def _overfitting(scalars, t):
    val = [(s, v) for s, v in scalars.get(VAL_LOSS, []) if math.isfinite(v)]
    train = dict(scalars.get(EPOCH_LOSS, []))
    if len(val) < 3:
        return []
    low_step, low = min(val, key=lambda p: p[1])
    end_step, end = val[-1]
    train_low, train_end = train.get(low_step), train.get(end_step)
    if train_low is None or train_end is None or not low > 0:
        return []
    if not (end > (1 + t.overfit_rise) * low and train_end < train_low):
        return []
    norms = dict(scalars.get(tags.GLOBAL_GRAD_NORM, []))
    evidence = (
        f"The validation loss rose from {low:.3g} (step {low_step}) to "
        f"{end:.3g} (+{end / low - 1:.0%}; threshold {t.overfit_rise:.0%}) while "
        f"the training loss fell from {train_low:.3g} to {train_end:.3g}: the "
        "model fits its training examples, not the task."
    )
    if low_step in norms and end_step in norms and norms[end_step] > 0:
        fold = norms[low_step] / norms[end_step]
        if fold > 1:
            evidence += (
                f" The training gradient shrank {fold:.1f}-fold meanwhile: the "
                "training batches are learned by heart."
            )
    advice = (
        "Stop at the validation minimum (`keras.callbacks.EarlyStopping("
        "restore_best_weights=True)`), get more data or augment it, add "
        "dropout or weight decay, or use a smaller model."
    )
    numbers = (("val_low", low), ("val_loss", end), ("train_loss", train_end))
    return [Finding("overfitting", "warning", (), evidence, advice, numbers=numbers)]
