"""A per-layer view of logged scalars: layers from input to output, their sides.

Pure Python: the input is `kgrad.analysis.diagnostics.Scalars` (tag ->
`[(step, value)]`) and the `tags.RUN_INFO` object. Layers are the variable
paths without their last component, ordered from input to output by
`run_info["variables"]` (falling back to sorted tags); a layer's gradient norm
combines its variables as the square root of the sum of squares. The *input
side* is the first and the *output side* the last layer that has a kernel (a
variable named `*kernel` or `embeddings`; any layer if none has) and a
finite, non-zero gradient at the step.

Example:

>>> scalars = {
...     tags.tag(tags.GRAD_NORM, "m/d1/kernel"): [(1, 1e-7)],
...     tags.tag(tags.GRAD_NORM, "m/d2/kernel"): [(1, 0.1)],
... }
>>> [round(r.ratio, 9) for r in layer_profile(scalars, {})]
[1e-06, 1.0]
"""

import bisect
import dataclasses
import math
from dataclasses import dataclass

from kgrad import tags


@dataclass(frozen=True)
class LayerRow:
    """One layer of `layer_profile`; `nan` or `None` where nothing was logged.

    Attributes:
        layer: Layer path.
        grad_norm: L2 norm of the layer's gradients (all its variables).
        ratio: `grad_norm` / the output side's `grad_norm`.
        update_ratio: Norm of the layer's update / norm of its weights.
        nonfinite: NaN/Inf gradient entries.
        dead_share: ReLU layers: share of units zero on the whole batch.
        saturation: sigmoid/tanh layers: share of outputs near a bound.
        side: `"input"`, `"output"` or `""`.
    """

    layer: str
    grad_norm: float
    ratio: float
    update_ratio: float
    nonfinite: int
    dead_share: float | None
    saturation: float | None
    side: str = ""


def layer_profile(scalars, run_info, step=None):
    """Per-layer gradient statistics from input to output at one logged step.

    Args:
        scalars: `Scalars` (tag -> `[(step, value)]`).
        run_info: The `tags.RUN_INFO` object, or `None`/`{}`.
        step: The step; the last one with gradient norms if `None`. Defaults
            to `None`.

    Returns:
        A list of `LayerRow`, input side first; empty if no norms are logged.
    """
    steps = norm_steps(scalars)
    if not steps:
        return []
    step = steps[-1] if step is None else step
    rows, grouped = [], layers(scalars, run_info)
    for layer, paths in grouped:
        norms = [value_at(scalars, tags.tag(tags.GRAD_NORM, p), step) for p in paths]
        norms = [n for n in norms if n is not None]
        grad_norm = math.sqrt(sum(n * n for n in norms)) if norms else math.nan
        nonfinite = sum(
            value_at(scalars, tags.tag(tags.GRAD_NONFINITE, p), step) or 0
            for p in paths
        )
        update, weight = 0.0, 0.0
        for p in paths:
            ratio = value_at(scalars, tags.tag(tags.UPDATE_RATIO, p), step)
            w = value_at(scalars, tags.tag(tags.WEIGHT_NORM, p), step)
            if ratio is not None and w is not None:
                update, weight = update + (ratio * w) ** 2, weight + w * w
        rows.append(
            LayerRow(
                layer=layer,
                grad_norm=grad_norm,
                ratio=math.nan,
                update_ratio=math.sqrt(update / weight) if weight > 0 else math.nan,
                nonfinite=int(nonfinite),
                dead_share=value_at(scalars, tags.tag(tags.DEAD_UNITS, layer), step),
                saturation=value_at(scalars, tags.tag(tags.SATURATION, layer), step),
            )
        )
    kernels = [has_kernel(p) for _, p in grouped]
    found = sides([r.grad_norm for r in rows], kernels)
    if found is None:
        return rows
    first, last = found
    out = rows[last].grad_norm
    return [
        dataclasses.replace(
            row,
            ratio=row.grad_norm / out,
            side="input" if i == first else "output" if i == last else "",
        )
        for i, row in enumerate(rows)
    ]


def norm_steps(scalars):
    """Sorted steps at which gradient norms were logged."""
    if scalars.get(tags.GLOBAL_GRAD_NORM):
        return [s for s, _ in scalars[tags.GLOBAL_GRAD_NORM]]
    steps = {
        s
        for tag, series in scalars.items()
        if tags.name_of(tag, tags.GRAD_NORM) is not None
        for s, _ in series
    }
    return sorted(steps)


def layers(scalars, run_info):
    """`[(layer path, [variable paths])]` from input to output."""
    logged = tags.names(scalars, tags.GRAD_NORM)
    grouped = {}
    recurrent = tags.recurrent_order(run_info)
    for path in tags.in_model_order(logged, tags.variable_order(run_info)):
        grouped.setdefault(tags.layer_of(path, recurrent), []).append(path)
    return list(grouped.items())


def has_kernel(paths):
    return any(
        p.rpartition("/")[2].endswith("kernel") or p.endswith("/embeddings")
        for p in paths
    )


def sides(norms, kernels):
    """Indices of the input and output side, or `None` (see module docstring)."""
    active = [i for i, n in enumerate(norms) if math.isfinite(n) and n > 0]
    with_kernel = [i for i in active if kernels[i]]
    chosen = with_kernel or active
    if len(chosen) < 2:
        return None
    return chosen[0], chosen[-1]


def value_at(scalars, tag, step):
    series = scalars.get(tag)
    if not series:
        return None
    i = bisect.bisect_left(series, (step, -math.inf))
    if i < len(series) and series[i][0] == step:
        return float(series[i][1])
    return None


def short_name(layer, run_info):
    """`layer` without the model's name in front, for tables and plots.

    Example:

    >>> short_name("mlp/dense_01", {"model": "mlp"})
    'dense_01'
    """
    model = (run_info or {}).get("model")
    if model and layer.startswith(model + "/"):
        return layer[len(model) + 1 :]
    return layer
