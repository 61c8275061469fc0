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
