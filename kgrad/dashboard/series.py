"""What kgrad wrote, read through TensorBoard's data provider.

Every function takes a `Source` (the data provider with the request's context
and experiment) and returns plain data for JSON. Rows follow the model from
input to output, in the order of `tags.RUN_INFO` (the tag scheme is
`kgrad.tags`); tags that it does not list
follow, sorted. Every step the loader kept is returned; `sampling` says when
the loader may have kept only a sample (`--samples_per_plugin`).

Tested by `tests/test_dashboard_routes.py`.

Example:

```python
source = Source(context.data_provider, ctx, experiment_id, flags)
grid = heat_map(source, heat_map_plan(source, "train", tags.GRAD_NORM))
grid["rows"], grid["steps"]  # one row per variable, one column per step
```
"""

import base64
import dataclasses
import json
import math
import operator

import numpy as np
from tensorboard import errors
from tensorboard.data import provider

from kgrad import tags

# A row per variable or per activation layer, and how its colour is scaled.
STATISTICS = {
    tags.GRAD_NORM: ("variables", "log10"),
    tags.UPDATE_RATIO: ("variables", "log10"),
    tags.WEIGHT_NORM: ("variables", "log10"),
    tags.DEAD_UNITS: ("layers", "linear"),
    tags.SATURATION: ("layers", "linear"),
    tags.TEMPORAL_GRAD: ("timesteps", "log10"),
    tags.B_SIMPLE: ("layers", "log10"),  # `GradientMonitor(noise_scale=True)`
}
# What TensorBoard's loaders keep per tag when `--samples_per_plugin` does not
# say (the same in the Python loader and in the Rust data server).
DEFAULT_SAMPLES = {"scalars": 1000, "histograms": 500, "text": 10}
_ALL_POINTS = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Source:
    """The data provider and what each read needs.

    Attributes:
        provider: TensorBoard's `DataProvider` (`context.data_provider`).
        ctx: The request's `RequestContext`.
        experiment_id: The request's experiment id (`""` locally).
        samples_per_plugin: The `--samples_per_plugin` dict (`{}` if unset).
    """

    provider: object
    ctx: object
    experiment_id: str
    samples_per_plugin: dict

    def read(self, plugin, run, tags):
        """`{tag: [datum]}` of one run: every point the loader kept."""
        reader = (
            self.provider.read_scalars
            if plugin == "scalars"
            else self.provider.read_tensors
        )
        data = reader(
            self.ctx,
            experiment_id=self.experiment_id,
            plugin_name=plugin,
            downsample=_ALL_POINTS,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=list(tags)),
        )
        return data.get(run, {})

    def scalar_tags(self):
        """`{run: [tag]}` of the scalars of every run."""
        listing = self.provider.list_scalars(
            self.ctx, experiment_id=self.experiment_id, plugin_name="scalars"
        )
        return {name: sorted(tags) for name, tags in listing.items()}

    def scalar_series(self, run):
        """`{tag: ScalarTimeSeries}` of one run's scalars (no points read)."""
        listing = self.provider.list_scalars(
            self.ctx,
            experiment_id=self.experiment_id,
            plugin_name="scalars",
            run_tag_filter=provider.RunTagFilter(runs=[run]),
        )
        return listing.get(run, {})

    def sampling(self, plugin, counts):
        """The sampling note of a read whose tags held `counts` points.

        Returns:
            `{"plugin", "limit", "flag"}` when a tag holds as many points as
            the loader keeps (so it may have dropped some), else `None`.
        """
        limit = self.samples_per_plugin.get(plugin, DEFAULT_SAMPLES.get(plugin, 10))
        if limit and max(counts, default=0) >= limit:
            return {
                "plugin": plugin,
                "limit": limit,
                "flag": f"--samples_per_plugin={plugin}=0",
            }
        return None


def runs(source):
    """The runs kgrad wrote, with what each can show.

    Returns:
        A list of `{"run", "model", "statistics", "recurrent", "loss",
        "batchnorm"}`, sorted by run: the statistics with at least one tag,
        the recurrent layers with a `tags.TEMPORAL_GRAD` map, whether
        `tags.LOSS` was logged, whether the model has BatchNorm layers.
    """
    result = []
    for run, listed in sorted(source.scalar_tags().items()):
        present = {
            name: tags.names(listed, name)
            for name in STATISTICS
            if name != tags.TEMPORAL_GRAD
        }
        if not present[tags.GRAD_NORM]:
            continue
        info = run_info(source, run)
        result.append(
            {
                "run": run,
                "model": info.get("model"),
                "statistics": [name for name, found in present.items() if found],
                "recurrent": tags.recurrent_layers(listed),
                "loss": tags.LOSS in listed,
                "batchnorm": bool(info.get("batchnorm_layers")),
            }
        )
    return result


def run_info(source, run):
    """The last `tags.RUN_INFO` object of `run` (`{}` if none)."""
    points = source.read("text", run, [tags.RUN_INFO]).get(tags.RUN_INFO, [])
    if not points:
        return {}
    try:
        info = json.loads(text_of(points[-1]))
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def text_of(datum):
    """The string of a text summary's datum."""
    value = np.asarray(datum.numpy).reshape(-1)[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclasses.dataclass(frozen=True)
class HeatMapPlan:
    """What a heat map reads: its tags in row order, and their version.

    Attributes:
        run: The run's name.
        statistic: A key of `STATISTICS`.
        layer: For `tags.TEMPORAL_GRAD`, the recurrent layer, else `None`.
        rows: The row names, input first.
        tags: The scalar tag of each row.
        layers: The layer of each row (for `tags.TEMPORAL_GRAD`: the recurrent
            layer).
        batchnorm: The layers among `layers` that are BatchNorm layers.
        version: `(tag, max_step, max_wall_time)` of each row as the data
            provider lists them: it changes whenever a tag gains a point, so
            an answer built for one version is the answer while it holds.
    """

    run: str
    statistic: str
    layer: object
    rows: tuple
    tags: tuple
    version: tuple
    layers: tuple = ()
    batchnorm: tuple = ()


def heat_map_plan(source, run, statistic, layer=None):
    """The `HeatMapPlan` of one statistic of one run (one listing, no read).

    Args:
        source: A `Source`.
        run: The run's name.
        statistic: A key of `STATISTICS`.
        layer: For `tags.TEMPORAL_GRAD`, the recurrent layer. Defaults to `None`.

    Raises:
        tensorboard.errors.InvalidArgumentError: For an unknown `statistic`.
        tensorboard.errors.NotFoundError: When `run` has no such tags.
    """
    check_choice("statistic", statistic, STATISTICS)
    listed = source.scalar_series(run)
    if statistic == tags.TEMPORAL_GRAD:
        check_choice("layer", layer, tags.recurrent_layers(listed))
    info = run_info(source, run)
    found = _rows(sorted(listed), statistic, layer, info)
    if not found:
        what = f"{statistic} {layer}" if layer else statistic
        raise errors.NotFoundError(f"run {run!r} has no {what} scalars")
    rows, row_tags = (tuple(column) for column in zip(*found, strict=True))
    version = tuple(
        (tag, listed[tag].max_step, listed[tag].max_wall_time) for tag in row_tags
    )
    layers = tuple(row_layer(row, statistic, layer, info) for row in rows)
    batchnorm = tuple(sorted(set(layers) & set(info.get("batchnorm_layers", []))))
    return HeatMapPlan(
        run, statistic, layer, rows, row_tags, version, layers, batchnorm
    )


def heat_map(source, plan):
    """The grid of a `HeatMapPlan`: one read of all its tags.

    Args:
        source: A `Source`.
        plan: A `HeatMapPlan` (see `heat_map_plan`).

    Returns:
        `{"run", "statistic", "layer", "scale", "rows", "layers", "batchnorm",
        "steps", "values", "undefined", "sampling"}`: `layers` the layer of
        each row, `batchnorm` those that are BatchNorm layers;
        `steps` every step any row has; `values` base64 of row-major
        little-endian float32 (NaN where a row has no value at a step);
        `undefined` the flat indices of the cells whose value is undefined:
        logged as NaN, or, for `tags.UPDATE_RATIO`, not written at a logged step
        because the weight norm was 0 (see `kgrad.monitor.log.summaries`).

    Example:

    ```python
    grid = heat_map(source, heat_map_plan(source, "train", tags.GRAD_NORM))
    ```
    """
    data = source.read("scalars", plan.run, plan.tags)
    series = [data.get(tag, []) for tag in plan.tags]
    steps, grid, logged = _grid(series)
    undefined = logged & np.isnan(grid)
    if plan.statistic == tags.UPDATE_RATIO:
        undefined |= ~logged
    return {
        "run": plan.run,
        "statistic": plan.statistic,
        "layer": plan.layer,
        "scale": STATISTICS[plan.statistic][1],
        "rows": list(plan.rows),
        "layers": list(plan.layers),
        "batchnorm": list(plan.batchnorm),
        "steps": steps.tolist(),
        "values": base64.b64encode(grid.tobytes()).decode("ascii"),
        "undefined": np.flatnonzero(undefined).tolist(),
        "sampling": source.sampling("scalars", [len(p) for p in series]),
    }


def loss(source, run):
    """`{"run", "steps", "values"}` of the run's `tags.LOSS` (empty if none).

    Non-finite losses are `None`.
    """
    points = source.read("scalars", run, [tags.LOSS]).get(tags.LOSS, [])
    return {
        "run": run,
        "steps": [p.step for p in points],
        "values": [_finite(float(p.value)) for p in points],
    }


def row_layer(row, statistic, recurrent_layer, info):
    """The layer a heat map row belongs to.

    A variable's layer is its path without the weight's name, or the
    recurrent layer whose cell holds it (`rnn_01/simple_rnn_cell/kernel` is
    in `rnn_01`); an activation row is its layer; a timestep row is in the
    recurrent layer of the map.
    """
    kind = STATISTICS[statistic][0]
    if kind == "timesteps":
        return recurrent_layer
    if kind == "layers":
        return row
    return tags.layer_of(row, tags.recurrent_order(info))


def _grid(series):
    """`(steps, rows x steps float32 grid, logged mask)` of `series`.

    `series` are `ScalarDatum` lists; the mask says which cells were written.

    Vectorised: one pass over the points takes their steps and values out,
    numpy places them (a later point of a repeated step wins).
    """
    counts = [len(points) for points in series]
    points = [point for row in series for point in row]
    step_of, value_of = operator.attrgetter("step"), operator.attrgetter("value")
    point_steps = np.fromiter(map(step_of, points), np.int64, len(points))
    values = np.fromiter(map(value_of, points), np.float64, len(points))
    steps = np.unique(point_steps)
    grid = np.full((len(series), len(steps)), np.nan, "<f4")
    logged = np.zeros(grid.shape, bool)
    row_of = np.repeat(np.arange(len(series)), counts)
    cells = (row_of, np.searchsorted(steps, point_steps))
    grid[cells] = values
    logged[cells] = True
    return steps, grid, logged


def histogram(source, run, path, step):
    """The gradient histogram of variable `path` at the logged step nearest `step`.

    Returns:
        `{"run", "path", "step", "steps", "buckets", "sampling"}`: `buckets`
        are `[left, right, count]`, `steps` every step with a histogram.

    Raises:
        tensorboard.errors.NotFoundError: When `path` has no histogram.
    """
    tag = tags.tag(tags.GRAD_HIST, path)
    points = source.read("histograms", run, [tag]).get(tag, [])
    if not points:
        raise errors.NotFoundError(f"run {run!r} has no histogram {tag!r}")
    nearest = min(points, key=lambda p: (abs(p.step - step), p.step))
    buckets = np.asarray(nearest.numpy, np.float64).reshape(-1, 3)
    return {
        "run": run,
        "path": path,
        "step": nearest.step,
        "steps": [p.step for p in points],
        "buckets": [[_finite(x) for x in row] for row in buckets.tolist()],
        "sampling": source.sampling("histograms", [len(points)]),
    }


def findings_texts(source, run):
    """`[(step, text)]` of the run's `tags.FINDINGS_DATA` texts (the last one
    holds every finding: no sampling of the loader loses one)."""
    tag = tags.FINDINGS_DATA
    return [(p.step, text_of(p)) for p in source.read("text", run, [tag]).get(tag, [])]


def check_choice(name, value, choices):
    """Raises `InvalidArgumentError` naming `name` unless `value` is a choice."""
    if value not in choices:
        raise errors.InvalidArgumentError(
            f"`{name}` must be one of {sorted(choices)}. Received: {name}={value!r}"
        )


def _rows(listed, statistic, layer, info):
    """`[(row name, tag)]` of `statistic` among the tags `listed`, input first:
    in the order of `run_info`, the rest sorted; timesteps first to last."""
    if statistic == tags.TEMPORAL_GRAD:
        return tags.timestep_rows(listed, layer)
    kind = STATISTICS[statistic][0]
    order = tags.variable_order(info) if kind == "variables" else tags.layer_order(info)
    names = tags.in_model_order(tags.names(listed, statistic), order)
    return [(name, tags.tag(statistic, name)) for name in names]


def _finite(value):
    return value if math.isfinite(value) else None
