"""The temporal gradient profile of recurrent layers, read from logged scalars.

Pure Python and numpy. The input is `kgrad.analysis.diagnostics.Scalars`; the
profile of a recurrent layer `<rnn>` is logged as `temporal_grad/<rnn>/t<k>`
(the loss gradient's norm at the layer's input, timestep `k`) and
`temporal_grad/<rnn>/t_first_over_last` (see `kgrad.monitor.summaries`).

Example:

>>> scalars = {
...     "temporal_grad/m/rnn/t0": [(1, 1e-6)],
...     "temporal_grad/m/rnn/t9": [(1, 1e-1)],
... }
>>> recurrent_layers(scalars, {})
['m/rnn']
>>> profile(scalars, "m/rnn")
[(0, 1e-06), (9, 0.1)]
"""

import math

import numpy as np

PREFIX = "temporal_grad/"
RATIO = "t_first_over_last"


def _split(tag):
    """`(layer, timestep)` of a per-timestep tag, else `None`."""
    if not tag.startswith(PREFIX):
        return None
    layer, _, last = tag[len(PREFIX) :].rpartition("/")
    if not layer or not last.startswith("t") or not last[1:].isdigit():
        return None
    return layer, int(last[1:])


def recurrent_layers(scalars, run_info):
    """Layers with a temporal profile, in the model's order when known."""
    found = {split[0] for tag in scalars if (split := _split(tag))}
    known = [name for name in (run_info or {}).get("recurrent_layers", [])]
    return [n for n in known if n in found] + sorted(found - set(known))


def _series(scalars, layer):
    """`{timestep: {step: value}}` of one layer."""
    out = {}
    for tag, values in scalars.items():
        split = _split(tag)
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
    return list(scalars.get(f"{PREFIX}{layer}/{RATIO}", []))


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


def vanishing_in_time(scalars, run_info, threshold, window):
    """Recurrent layers whose first timestep gets `< threshold` x the last's.

    Judged on `temporal_grad/<rnn>/t_first_over_last`, the median over the last
    `window` logged steps; the default threshold 1e-3 is 3 orders of magnitude,
    as for depth. Calibrated on the zoo with `kgrad demo`'s adding-problem runs
    (Adam 1e-2, 12 epochs). At length 50 `rnn_simple` stalls at the
    mean-prediction loss (test MSE 0.18) with a median ratio of 2e-13, while
    `gru` and `lstm` learn the task (test MSE 5e-4 and 3e-3) and end with
    ratios between 0.2 and 1.2 (last five logged steps); at length 10 all
    three learn, with ratios between 0.7 and 3. Gated cells start far below
    1e-3 (GRU at 9e-11 and LSTM at 1e-4 at step 1) and rise as they learn: the
    finding then clears. kgrad logs no loss, so the rule does not check that
    the loss stalls: a model that learns a task needing only its last
    timesteps can show it too.

    Returns:
        `(layers, evidence)`, or `None` when no layer is below `threshold`.
    """
    concerned = []
    for layer in recurrent_layers(scalars, run_info):
        series = ratios(scalars, layer)[-window:]
        values = [v for _, v in series if math.isfinite(v)]
        ratio = float(np.median(values)) if values else math.nan
        if ratio < threshold:
            concerned.append((ratio, layer, series))
    if not concerned:
        return None
    ratio, layer, series = min(concerned)
    points = picks(profile(scalars, layer, series[-1][0]), 4)
    listed = ", ".join(f"t{k} {v:.1e}" for k, v in points)
    evidence = (
        f"In {layer} the gradient reaching the first timestep is {ratio:.1e} of "
        f"the one reaching the last ({-math.log10(ratio):.1f} orders of "
        f"magnitude; median over steps {series[0][0]}-{series[-1][0]}; "
        f"threshold: {threshold:g}); at step {series[-1][0]}: {listed}. The layer "
        "cannot learn how its early inputs affect the loss."
    )
    return [name for _, name, _ in concerned], evidence


def report_lines(scalars, run_info, count=5):
    """Text lines: each recurrent layer's profile at its first and last step.

    Example:

    >>> tags = ("temporal_grad/rnn/t0", "temporal_grad/rnn/t9")
    >>> scalars = dict(zip(tags, [[(1, 0.5)], [(1, 1.0)]]))
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
