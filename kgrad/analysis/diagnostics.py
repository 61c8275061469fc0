"""Rules that turn logged gradient statistics into plain-language findings.

Pure Python and numpy: no TensorFlow, no matplotlib, nothing written. The
input is `Scalars`, a dict from tag (the scheme of `kgrad.monitor.log.summaries`) to
`[(step, value), ...]` sorted by step, the same whether it was read back from
event files (`kgrad.analysis.report.load_run`) or kept in memory by the callback, and
`run_info`, the JSON object of the `tags.RUN_INFO` tag (may be empty).

Layers are the variable paths without their last component, ordered from input
to output by `run_info["variables"]` (falling back to sorted tags). A layer's
gradient norm combines its variables as the square root of the sum of squares.
The *input side* is the first and the *output side* the last layer that has a
kernel (a variable named `*kernel` or `embeddings`; any layer if none has) and
a finite, non-zero gradient at the step: layers whose gradients are zero,
missing or non-finite do not count as either side.

Rules (thresholds in `Thresholds`):

| kind | severity | when |
|---|---|---|
| `nonfinite` | error | NaN/Inf gradient entries at any logged step |
| `zero_gradients` | error | every gradient exactly 0 at the last `window` steps |
| `exploding` | warning | global norm grows `explosion_growth`-fold over the run, |
|  |  | or a SimpleRNN layer's first timestep gets > |
|  |  | `temporal_explosion` x its last's gradient (over any |
|  |  | `window` logged steps of the run) |
| `vanishing` | warning | input side < `vanishing_ratio` x output side, or its |
|  |  | update ratio < `min_update_ratio` and the output side's not |
|  |  | (unless the loss fell by more than `learned_drop`) |
| `dead_units` | warning | > `dead_share` of a ReLU layer's units dead (not |
|  |  | once the loss fell by more than `learned_drop`) |
| `saturation` | warning | > `saturation_share` of sigmoid/tanh outputs at a bound |
| `batchnorm_small_batch` | warning | BatchNorm, batches < `min_batchnorm_batch` |
| `vanishing_in_time` | warning | SimpleRNN: gradient at the first timestep |
|  |  | < `temporal_ratio_stalled` x at the last and the loss stalled |
|  |  | (< `temporal_ratio` if no loss is logged); gated cells: never |
| `not_learning`, `stalled`, | warning | from the loss, judged with the gradients: |
| `unstable`, `overfitting` |  | see `kgrad.analysis.outcome` |

Vanishing (in depth and in time), dead units and saturation are judged on the
median over the last `window` logged steps, not on one noisy batch. Only
`exploding` and `nonfinite` recommend gradient clipping (clipping caps large
gradients, it cannot enlarge small ones).

Example:

>>> scalars = {
...     tags.tag(tags.GRAD_NORM, "m/d1/kernel"): [(1, 1e-7)],
...     tags.tag(tags.GRAD_NORM, "m/d2/kernel"): [(1, 1e-1)],
... }
>>> [f.kind for f in diagnose(scalars, {})]
['vanishing']
"""

import dataclasses
import math

import numpy as np

from kgrad import tags
from kgrad.analysis import (
    batch_advice,
    layer_profile,
    layer_rules,
    loss_trend,
    outcome,
    temporal_profile,
)
from kgrad.analysis.findings import SEVERITIES, Finding, Thresholds

Scalars = dict[str, list[tuple[int, float]]]

_CLIP_ADVICE = (
    "Clip gradients, e.g. `keras.optimizers.Adam(clipnorm=1.0)` (a norm of about "
    "1.0 is the usual choice), and lower the learning rate"
)


def diagnose(scalars, run_info, thresholds=None):
    """Findings of all rules, most severe first.

    Args:
        scalars: `Scalars` (tag -> `[(step, value)]`, sorted by step).
        run_info: The `tags.RUN_INFO` object, or `None`/`{}`.
        thresholds: A `Thresholds`; the defaults if `None`. Defaults to `None`.

    Returns:
        A list of `Finding`, sorted by severity (error, warning, info).

    Example:

    ```python
    for finding in diagnose(scalars, run_info, Thresholds(vanishing_ratio=1e-4)):
        print(finding.message())
    ```
    """
    t = Thresholds() if thresholds is None else thresholds
    info = run_info or {}
    steps = layer_profile.norm_steps(scalars)
    last = int(steps[-1]) if steps else None
    finite = _before_nonfinite(scalars)
    findings = (
        _nonfinite(scalars, info)
        + _zero_gradients(scalars, info, t)
        + _exploding(scalars, info, t)
        + _vanishing(finite, info, t)
        + layer_rules.activations(finite, info, t, tags.DEAD_UNITS)
        + layer_rules.activations(finite, info, t, tags.SATURATION)
        + layer_rules.batchnorm(info, t)
        + _vanishing_in_time(finite, info, t)
    )
    findings += outcome.findings(scalars, info, t, {f.kind for f in findings})
    findings += batch_advice.batch_size(scalars, t.window)
    findings = [dataclasses.replace(f, step=last) for f in findings]
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def _before_nonfinite(scalars):
    """The scalars logged before the first step with NaN/Inf gradients.

    Once a gradient is NaN the weights are too, and so is every statistic
    after it (a NaN activation counts as a dead unit): the rules on layers
    judge the steps before.
    """
    bad = [s for s, v in scalars.get(tags.GLOBAL_NONFINITE, []) if v != 0]
    bad += [
        s for s, v in scalars.get(tags.GLOBAL_GRAD_NORM, []) if not math.isfinite(v)
    ]
    if not bad:
        return scalars
    first = min(bad)
    return {
        tag: [(s, v) for s, v in values if s < first] for tag, values in scalars.items()
    }


def _median(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.median(values)) if values else math.nan


# -- rules -------------------------------------------------------------------
def _vanishing(scalars, info, t):
    steps = layer_profile.norm_steps(scalars)[-t.window :]
    if not steps:
        return []
    profiles = [layer_profile.layer_profile(scalars, info, s) for s in steps]
    names = [r.layer for r in profiles[-1]]
    layers = layer_profile.layers(scalars, info)
    kernels = [layer_profile.has_kernel(p) for _, p in layers]
    norm = [_median([p[i].grad_norm for p in profiles]) for i in range(len(names))]
    ratio = [_median([p[i].ratio for p in profiles]) for i in range(len(names))]
    update = [_median([p[i].update_ratio for p in profiles]) for i in range(len(names))]
    sides = layer_profile.sides(norm, kernels)
    if sides is None:
        return []
    first, last = sides
    span = (
        f"median over steps {steps[0]}-{steps[-1]}"
        if len(steps) > 1
        else f"step {steps[0]}"
    )
    advice = (
        "Keep the gradient alive across depth: ReLU-family activations with He "
        "initialisation (Var(W) = 2/n_in), or Glorot/Xavier initialisation for "
        "tanh/sigmoid; residual connections; BatchNorm or LayerNorm. (Gradient "
        "clipping only caps large gradients; it does not help here.)"
    )
    if ratio[first] < t.vanishing_ratio:
        concerned = [
            names[i]
            for i in range(len(names))
            if ratio[i] < t.vanishing_ratio and norm[i] > 0 and i != last
        ]
        evidence = (
            f"The input-side layer {names[first]} has gradient norm "
            f"{norm[first]:.2e}, {1 / ratio[first]:.1e} times "
            f"({-math.log10(ratio[first]):.1f} orders of magnitude) below the "
            f"output-side layer {names[last]} "
            f"({norm[last]:.2e}) ({span}; threshold: {t.vanishing_ratio:g})."
        )
        if not math.isnan(update[first]) and not math.isnan(update[last]):
            evidence += (
                f" Its weights move {update[first]:.1e} of their norm per step, "
                f"against {update[last]:.1e} at the output side."
            )
        numbers = (
            ("input_norm", norm[first]),
            ("output_norm", norm[last]),
            ("ratio", ratio[first]),
            ("threshold", t.vanishing_ratio),
        )
        statistic = tags.GRAD_NORM
    elif (
        update[first] < t.min_update_ratio <= update[last]
        and not loss_trend.improvement(scalars) > t.learned_drop
    ):  # weights that stop moving once the task is learned are not vanishing
        concerned = [
            names[i] for i in range(len(names)) if update[i] < t.min_update_ratio
        ]
        evidence = (
            f"The weights of the input-side layer {names[first]} barely move: "
            f"update/weight norm ratio {update[first]:.1e} against {update[last]:.1e} "
            f"at the output side {names[last]} ({span}; threshold: "
            f"{t.min_update_ratio:g})."
        )
        numbers = (
            ("input_update_ratio", update[first]),
            ("output_update_ratio", update[last]),
            ("threshold", t.min_update_ratio),
        )
        statistic = tags.UPDATE_RATIO
    else:
        return []
    return [
        Finding(
            "vanishing",
            "warning",
            tuple(concerned),
            evidence,
            advice,
            numbers=numbers,
            statistic=statistic,
            reference_layers=(names[last],),
        )
    ]


def _growth(values, k):
    """Largest median of `k` consecutive values over the median of the first `k`."""
    values = np.asarray(values, dtype=np.float64)
    base = float(np.median(values[:k]))
    windows = np.lib.stride_tricks.sliding_window_view(values, k)[1:]
    if base <= 0 or not len(windows):
        return 0.0, base, base, 0
    peaks = np.median(windows, axis=1)  # all windows at once: fast at 20,000 steps
    i = int(np.argmax(peaks))
    return float(peaks[i]) / base, base, float(peaks[i]), i + 1


def _exploding(scalars, info, t):
    return _exploding_over_steps(scalars, info, t) or _exploding_in_time(
        scalars, info, t
    )


def _exploding_in_time(scalars, info, t):
    found = temporal_profile.exploding_in_time(
        scalars, info, t.temporal_explosion, t.window
    )
    if found is None:
        return []
    layers, evidence = found
    return [
        Finding(
            "exploding",
            "warning",
            tuple(layers),
            evidence,
            f"{_CLIP_ADVICE}; lower the gain of the recurrent initialisation "
            "(an orthogonal recurrent kernel of gain 1) or use a saturating "
            "activation (tanh).",
            statistic=tags.TEMPORAL_GRAD,
        )
    ]


def _exploding_over_steps(scalars, info, t):
    series = [
        (s, v) for s, v in scalars.get(tags.GLOBAL_GRAD_NORM, []) if math.isfinite(v)
    ]
    if len(series) < 2:
        return []
    k = min(t.window, len(series) // 2)
    values = [v for _, v in series]
    growth, base, peak, at = _growth(values, k)
    if growth < t.explosion_growth:
        return []
    concerned = []
    for layer, paths in layer_profile.layers(scalars, info):
        norms = {}
        for p in paths:
            for s, v in scalars.get(tags.tag(tags.GRAD_NORM, p), []):
                norms[s] = norms.get(s, 0.0) + v * v
        layer_values = [
            math.sqrt(v) for _, v in sorted(norms.items()) if math.isfinite(v)
        ]
        if len(layer_values) >= 2 and _growth(layer_values, k)[0] >= t.explosion_growth:
            concerned.append(layer)
    first, last = series[0][0], series[k - 1][0]
    evidence = (
        f"The global gradient norm grew {growth:.1e}-fold: median {base:.2e} over "
        f"steps {first}-{last}, {peak:.2e} over steps "
        f"{series[at][0]}-{series[at + k - 1][0]} "
        f"(threshold: {t.explosion_growth:g}-fold)."
    )
    advice = f"{_CLIP_ADVICE}; check the initialisation (weights too large)"
    cells = set((info.get("recurrent_cells") or {}).values())
    if cells - set(temporal_profile.GATED_CELLS):
        advice += (
            " and the recurrent initialisation (an orthogonal recurrent kernel of "
            "gain 1 at most); LSTM/GRU cells explode less than SimpleRNN"
        )
    advice += "."
    numbers = (
        ("growth", growth),
        ("start_norm", base),
        ("peak_norm", peak),
        ("threshold", t.explosion_growth),
    )
    return [
        Finding(
            "exploding", "warning", tuple(concerned), evidence, advice, numbers=numbers
        )
    ]


def _nonfinite(scalars, info):
    bad = [
        s
        for s, v in scalars.get(tags.GLOBAL_NONFINITE, [])
        if v > 0 or not math.isfinite(v)
    ]
    bad += [
        s for s, v in scalars.get(tags.GLOBAL_GRAD_NORM, []) if not math.isfinite(v)
    ]
    if not bad:
        return []
    step = min(bad)
    steps = sorted(set(bad))
    affected, entries = [], 0
    for layer, paths in layer_profile.layers(scalars, info):
        counts = [
            layer_profile.value_at(scalars, tags.tag(tags.GRAD_NONFINITE, p), step) or 0
            for p in paths
        ]
        norms = [
            layer_profile.value_at(scalars, tags.tag(tags.GRAD_NORM, p), step)
            for p in paths
        ]
        if sum(counts) > 0 or any(
            n is not None and not math.isfinite(n) for n in norms
        ):
            affected.append(layer)
            entries += int(sum(counts))
    origin = tuple(affected[-1:])
    where = (
        f" in {len(affected)} layer(s); scanning from the output side, they first "
        f"appear in {origin[0]} and propagate from there to every layer below it"
        if origin
        else ""
    )
    count = f"{entries} NaN/Inf gradient entries" if entries else "NaN/Inf gradients"
    evidence = (
        f"{count} at step {step}{where}; {len(steps)} of "
        f"{len(layer_profile.norm_steps(scalars))} logged steps are non-finite."
    )
    advice = (
        f"{_CLIP_ADVICE}. If the origin is the output layer, the loss itself was "
        "NaN/Inf: check the inputs and labels for NaN and the loss for log(0)."
    )
    numbers = (
        ("first_step", step),
        ("entries", entries),
        ("nonfinite_steps", len(steps)),
    )
    return [Finding("nonfinite", "error", origin, evidence, advice, numbers=numbers)]


def _zero_gradients(scalars, info, t):
    series = scalars.get(tags.GLOBAL_GRAD_NORM, [])[-t.window :]
    if not series or any(v != 0.0 for _, v in series):
        return []
    layers = tuple(layer for layer, _ in layer_profile.layers(scalars, info))
    first, last = series[0][0], series[-1][0]
    span = f"step {first}" if first == last else f"steps {first}-{last}"
    evidence = (
        f"The gradient of every variable is exactly 0.0 at {span} "
        f"({len(series)} logged step(s)): no weight moves, the model does not "
        "train, and the other rules have nothing to judge."
    )
    advice = (
        "Usual causes: a saturated softmax/sigmoid output (a `from_logits` "
        "mismatch: a model that outputs logits needs e.g. "
        "`SparseCategoricalCrossentropy(from_logits=True)`; one that ends in a "
        "softmax needs `from_logits=False`), a dead network (every ReLU unit off: "
        "check the initialisation and the learning rate), a `stop_gradient` or "
        "a non-differentiable op (argmax, rounding, casting to int) between the "
        "weights and the loss, or a loss that does not depend on the outputs."
    )
    return [Finding("zero_gradients", "error", layers, evidence, advice)]


def _vanishing_in_time(scalars, info, t):
    """Recurrent layers pass (almost) no gradient back to their first timesteps.

    See `temporal_profile.vanishing_in_time` for the rule and its calibration.
    """
    found = temporal_profile.vanishing_in_time(scalars, info, t)
    if found is None:
        return []
    layers, evidence = found
    return [
        Finding(
            kind="vanishing_in_time",
            severity="warning",
            layers=tuple(layers),
            evidence=evidence,
            advice=(
                "Use LSTM or GRU cells (their gates carry the gradient through "
                "time; gated cells are never concerned by this rule); gradient "
                "clipping does not help (it only caps large gradients); shorten "
                "the sequences or the truncation of backpropagation through "
                "time, or add skip connections in time (attention, dilated or "
                "skip RNNs)."
            ),
        )
    ]
