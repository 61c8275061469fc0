"""The temporal gradient profile of recurrent layers, read from logged scalars.

Pure Python and numpy. The input is `kgrad.analysis.diagnostics.Scalars`; the
profile of a recurrent layer `<rnn>` is logged as `tags.temporal(rnn, k)`
(the loss gradient's norm at the layer's input, timestep `k`) and
`tags.temporal_ratio(rnn)` (the tag contract is `kgrad.tags`).

Example:

>>> scalars = {
...     tags.temporal("m/rnn", 0, last=9): [(1, 1e-6)],
...     tags.temporal("m/rnn", 9, last=9): [(1, 1e-1)],
... }
>>> recurrent_layers(scalars, {})
['m/rnn']
>>> profile(scalars, "m/rnn")
[(0, 1e-06), (9, 0.1)]
"""

import math

import numpy as np

from kgrad import tags
from kgrad.analysis import loss_trend


def recurrent_layers(scalars, run_info):
    """Layers with a temporal profile, in the model's order when known."""
    found = tags.recurrent_layers(scalars)
    return tags.in_model_order(found, tags.recurrent_order(run_info))


def _series(scalars, layer):
    """`{timestep: {step: value}}` of one layer."""
    out = {}
    for tag, values in scalars.items():
        split = tags.parse_temporal(tag)
        if split and split[0] == layer:
            out[split[1]] = dict(values)
    return out


def steps(scalars, layer):
    """Logged steps with a profile of `layer`, sorted."""
    return sorted({s for values in _series(scalars, layer).values() for s in values})


def profile(scalars, layer, step=None):
    """`[(timestep, norm)]` of `layer` at `step` (the last one if `None`)."""
    series = _series(scalars, layer)
    if step is None:
        logged = steps(scalars, layer)
        if not logged:
            return []
        step = logged[-1]
    return sorted((t, values[step]) for t, values in series.items() if step in values)


def ratios(scalars, layer):
    """`[(step, first/last)]` of `layer`."""
    return list(scalars.get(tags.temporal_ratio(layer), []))


def heat_map(scalars, layer):
    """`(timesteps, steps, norms)`: `norms[i, j]` at timestep i, logged step j.

    NaN where a timestep was not logged at a step (sequences of another length).
    """
    series = _series(scalars, layer)
    timesteps = sorted(series)
    logged = steps(scalars, layer)
    norms = np.full((len(timesteps), len(logged)), math.nan)
    column = {s: j for j, s in enumerate(logged)}
    for i, t in enumerate(timesteps):
        for s, value in series[t].items():
            norms[i, column[s]] = value
    return timesteps, logged, norms


def picks(items, count=6):
    """Up to `count` of `items`, evenly spaced, the first and last included."""
    if len(items) <= count:
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


GATED_CELLS = ("LSTM", "GRU")


def cell_of(run_info, layer):
    """The class name of `layer`'s recurrent layer (`"SimpleRNN"`, `"LSTM"`,
    ...), or `None` when the run did not record it."""
    return ((run_info or {}).get("recurrent_cells") or {}).get(layer)


def vanishing_in_time(scalars, run_info, thresholds):
    """Recurrent layers that cannot learn from their early timesteps.

    Judged on `tags.temporal_ratio(rnn)`, the median over the
    last `thresholds.window` logged steps, and on the trend of the loss
    (`kgrad.analysis.loss_trend.stalled`):

    - with the loss logged, a layer is concerned when its ratio is below
      `thresholds.temporal_ratio_stalled` (0.1) *and* the loss has stalled:
      a layer that passes little gradient back while the model still learns
      is not yet a problem, and one whose loss stalls with a healthy ratio is
      stuck for another reason;
    - without a logged loss (a custom `train_step`), only a ratio below
      `thresholds.temporal_ratio` (1e-3, 3 orders of magnitude, as for depth)
      counts.

    Gated cells (LSTM, GRU) are never concerned: they start far below any
    threshold (1e-9 to 1e-11 on the adding problem) and stay there, with the
    loss at the mean predictor's, until they learn: the LSTM at T=100 of
    docs/DIAGNOSIS.md waits through its 1,000 steps (trained to 1,500 steps it
    learned at about step 1,100). No gradient
    statistic kgrad logs tells that wait from a failure. Calibrated on the
    calibration runs of docs/DIAGNOSIS.md: SimpleRNN at T=50 stalls at the
    mean with ratios from 4e-9 to 6e-2, at T=10 it learns with 0.3 to 2.6.

    Returns:
        `(layers, evidence)`, or `None` when no layer is concerned.
    """
    t = thresholds
    has_loss = bool(loss_trend.losses(scalars))
    stalled = loss_trend.stalled(scalars, t.stall_drop, t.window)
    limit = t.temporal_ratio_stalled if has_loss else t.temporal_ratio
    concerned = []
    for layer in recurrent_layers(scalars, run_info):
        if cell_of(run_info, layer) in GATED_CELLS or (has_loss and not stalled):
            continue
        series = ratios(scalars, layer)[-t.window :]
        values = [v for _, v in series if math.isfinite(v)]
        ratio = float(np.median(values)) if values else math.nan
        if ratio < limit:
            concerned.append((ratio, layer, series))
    if not concerned:
        return None
    ratio, layer, series = min(concerned)
    points = picks(profile(scalars, layer, series[-1][0]), 4)
    listed = ", ".join(f"t{k} {v:.1e}" for k, v in points)
    magnitude = f"{-math.log10(ratio):.1f} orders of magnitude; " if ratio > 0 else ""
    loss = (
        f" The loss has stalled (it fell less than {t.stall_drop:.0%} from the "
        "middle to the last third of the logged steps)."
        if has_loss
        else ""
    )
    evidence = (
        f"In {layer} the gradient reaching the first timestep is {ratio:.1e} of "
        f"the one reaching the last ({magnitude}median over steps "
        f"{series[0][0]}-{series[-1][0]}; threshold: {limit:g}); at step "
        f"{series[-1][0]}: {listed}.{loss} The layer cannot learn how its early "
        "inputs affect the loss."
    )
    return [name for _, name, _ in concerned], evidence


def exploding_in_time(scalars, run_info, threshold, window):
    """Recurrent layers whose first timestep gets `> threshold` x the last's.

    The gradient grows as it goes back in time: the recurrent weights'
    spectral radius is above 1. Judged, like the growth of the global norm,
    on the whole run: the largest median of `t_first_over_last` over
    `window` consecutive logged steps, so that a run whose explosion was
    tamed (by `clipnorm`) is still told it exploded. Calibrated on
    docs/DIAGNOSIS.md: healthy SimpleRNN, LSTM and GRU layers stay below 5 at
    every window; a ReLU RNN with recurrent gain 2 peaks between 5e2 and 1e5
    (and may sit at 7 once clipping has tamed it). Gated cells (LSTM, GRU)
    are not judged: their additive cell path does not compound a recurrent
    gain, and a large ratio there means the loss depends on early inputs (an
    LSTM memorising temporal-order sequences sits at 14).

    Returns:
        `(layers, evidence)`, or `None` when no layer is above `threshold`.
    """
    concerned = []
    for layer in recurrent_layers(scalars, run_info):
        if cell_of(run_info, layer) in GATED_CELLS:
            continue
        series = [(s, v) for s, v in ratios(scalars, layer) if math.isfinite(v)]
        k = min(window, len(series))
        if not k:
            continue
        medians = [
            float(np.median([v for _, v in series[i : i + k]]))
            for i in range(len(series) - k + 1)
        ]
        at = int(np.argmax(medians))
        if medians[at] > threshold:
            concerned.append((medians[at], layer, series[at : at + k], medians[-1]))
    if not concerned:
        return None
    ratio, layer, peak, now = max(concerned)
    evidence = (
        f"In {layer} the gradient reaching the first timestep was {ratio:.1e} "
        f"times the one reaching the last (median over steps "
        f"{peak[0][0]}-{peak[-1][0]}; threshold: {threshold:g}; {now:.1e} over "
        f"the last {window} logged steps): it grows at each step back in time."
    )
    return [name for _, name, _, _ in concerned], evidence


def report_lines(scalars, run_info, count=5):
    """Text lines: each recurrent layer's profile at its first and last step.

    Example:

    >>> names = (tags.temporal("rnn", 0, last=9), tags.temporal("rnn", 9, last=9))
    >>> scalars = dict(zip(names, [[(1, 0.5)], [(1, 1.0)]]))
    >>> report_lines(scalars, {})[1]
    '  step 1: t0 5.0e-01  t9 1.0e+00  (first/last 5.0e-01)'
    """
    lines = []
    for layer in recurrent_layers(scalars, run_info):
        logged = steps(scalars, layer)
        lines.append(
            f"through time: gradient norm at each timestep of {layer}'s input "
            "(t0 = first processed):"
        )
        for step in dict.fromkeys([logged[0], logged[-1]]):
            points = profile(scalars, layer, step)
            cells = "  ".join(f"t{k} {v:.1e}" for k, v in picks(points, count))
            first, last = points[0][1], points[-1][1]
            ratio = f"{first / last:.1e}" if last > 0 else "-"
            lines.append(f"  step {step}: {cells}  (first/last {ratio})")
    return lines
