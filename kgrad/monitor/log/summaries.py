"""TensorBoard summaries of captured gradient statistics, and the tag scheme.

Tags (all under `log_dir/train`, at step = the optimizer's update count, the
k-th update being step k, so steps run on across epochs and `fit` calls; a new
optimizer after a recompile continues from the last step of the one it
replaces, so steps never go backwards in a log directory). When the train
step applies several optimizers (a GAN), each writes the same tags under
`log_dir/train/<name>`, where `<name>` is the attribute holding it
(`d_optimizer`): one run per optimizer, each at its own update count.

The tags themselves, how to build and read them, are `kgrad.tags` (the
contract the reader and the tab import too).

`<path>` is the Keras 3 `variable.path` (e.g. `dense_01/kernel`), `<layer>`
the layer's path, or its name when the path is `None` (keras.applications);
a name that repeats gets `_2`, `_3`, ... (two weights named `w` in one layer),
see `kgrad.monitor.step.naming`. One value per tag and step: with
`gradient_accumulation_steps` the step is the update and its gradient the
average the optimizer applies; a step that the loss-scale optimizer skips is
not written, the next batch is logged instead and `tags.LOSS_SCALE_SKIPPED`
counts the batches skipped before it. A layer called several times in a step
(shared weights) gets the activation statistics of all its calls together.
With `per_layer=True`, `<path>` is `<layer>/(all)` for a whole layer;
`include`/`exclude` select the paths (`kgrad.monitor.log.tag_filter`). `<rnn>` is
a recurrent layer's path (each direction of a `Bidirectional` is one). `<k>`
is zero-padded to the digits of the last timestep; 16 timesteps are kept,
evenly spaced from the first to the last (all of them for shorter sequences);
for `go_backwards` layers `k` counts in processing order. Masked recurrent
layers get no temporal tags (see `kgrad.monitor.step.temporal`).

Edge cases: a variable with a `None` gradient (unconnected or frozen) gets no
tag at that step. `IndexedSlices` gradients (from `Embedding`) are logged as
their dense equivalent. Histograms count finite entries only (NaN/Inf are
counted by `grad_nonfinite`); all-equal values fall in the last bucket, whose
edges are that value (TensorBoard's convention); a variable without finite
entries gets no histogram. Gradients are logged as the optimizer receives
them: before clipping, and divided by the loss scale under mixed precision. A
step that the loss-scale optimizer skips (its scaled gradients overflowed, as
is normal while the scale settles) is not an explosion.

Summaries are built as protocol buffers, so that writing costs no TensorFlow
op dispatch; `kgrad.monitor.log.event_writer` writes them.

Tested in tests/test_tensorboard.py and tests/test_events.py.

Example:

>>> list(scalar_value(tags.LOSS, 0.5).tensor.float_val)
[0.5]
"""

import json
import re

import numpy as np
from tensorboard.compat.proto import (
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import summary_v2 as text_summary

from kgrad import tags
from kgrad.monitor.step.layout import sampled_timesteps

_SCALAR = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_HISTOGRAM = histogram_metadata.create_summary_metadata(
    display_name=None, description=None
)
_IMAGE = image_metadata.create_summary_metadata(display_name=None, description=None)


def _shape(*dims):
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
    )


def scalar_value(tag, value):
    """A scalar summary value (TensorBoard's scalars plugin)."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(), float_val=[float(value)]
    )
    return summary_pb2.Summary.Value(tag=tag, metadata=_SCALAR, tensor=tensor)


def histogram_value(tag, low, high, counts):
    """A histogram summary value from bucket counts over `[low, high]`.

    Args:
        tag: The tag.
        low: Left edge of the first bucket.
        high: Right edge of the last bucket.
        counts: Counts of equal-width buckets.

    Returns:
        A `Summary.Value` in TensorBoard's histogram format (`[k, 3]` float64:
        left edge, right edge, count).
    """
    counts = np.asarray(counts, np.float64)
    if high > low:
        edges = np.linspace(low, high, len(counts) + 1)
        edges[-1] = high
        left, right = edges[:-1], edges[1:]
    else:
        left = right = np.full(len(counts), high, np.float64)
    data = np.stack([left, right, counts], axis=1).astype("<f8")
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE,
        tensor_shape=_shape(len(counts), 3),
        tensor_content=data.tobytes(),
    )
    return summary_pb2.Summary.Value(tag=tag, metadata=_HISTOGRAM, tensor=tensor)


def text_value(tag, markdown):
    """A text summary value (TensorBoard's text plugin renders markdown)."""
    return text_summary.text_pb(tag, markdown).value[0]


def image_value(tag, png, width, height):
    """An image summary value from PNG bytes."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=_shape(3),
        string_val=[str(width).encode(), str(height).encode(), png],
    )
    return summary_pb2.Summary.Value(tag=tag, metadata=_IMAGE, tensor=tensor)


def custom_scalars_value(paths):
    """A custom-scalars layout: every variable's gradient norm on one chart.

    Also one chart per statistic for update ratios. Lines are listed from
    input to output (`paths` in model order).
    """

    def chart(title, prefix):
        patterns = [f"^{re.escape(tags.tag(prefix, path))}$" for path in paths]
        content = layout_pb2.MultilineChartContent(tag=patterns)
        return layout_pb2.Chart(title=title, multiline=content)

    layout = layout_pb2.Layout(
        category=[
            layout_pb2.Category(
                title="kgrad: gradient flow, input to output",
                chart=[
                    chart("gradient norm per variable", tags.GRAD_NORM),
                    chart("update / weight ratio per variable", tags.UPDATE_RATIO),
                ],
            )
        ]
    )
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=_shape(),
        string_val=[layout.SerializeToString()],
    )
    return summary_pb2.Summary.Value(
        tag=custom_scalar_metadata.CONFIG_SUMMARY_TAG,
        metadata=custom_scalar_metadata.create_summary_metadata(),
        tensor=tensor,
    )


def run_info(model, paths, layers, batchnorm_paths, batch_size, recurrent, chance=None):
    """The `tags.RUN_INFO` record of a run: what its tags are about.

    Args:
        model: The model's name.
        paths: The variables' tag names.
        layers: `(tag name, kind)` of each probed layer.
        batchnorm_paths: Paths of the BatchNorm layers seen training.
        batch_size: The batch size (NaN when unknown).
        recurrent: Dict `tag name -> cell class name` of each recurrent layer.
        chance: The loss of predicting every class equally likely
            (`kgrad.monitor.log.chance`), or `None` when unknown.
    """
    return {
        "model": model,
        "variables": list(paths),
        "layers": [[name, kind] for name, kind in layers],
        "batchnorm_layers": sorted(batchnorm_paths),
        "batch_size": None if np.isnan(batch_size) else int(batch_size),
        "recurrent_layers": list(recurrent),
        "recurrent_cells": dict(recurrent),
        "chance_loss": chance,
    }


def run_info_value(info):
    """The `tags.RUN_INFO` text summary: a JSON object describing the run.

    Written once per `fit`, so that reports can order layers from input to
    output and know the batch size. Keys: `model`, `variables` (variable paths
    in the model's order, input side first), `layers` (`[layer path, kind]` of
    the probed activation layers), `batchnorm_layers`, `batch_size`,
    `recurrent_layers`, `recurrent_cells`, `chance_loss`.
    """
    return text_summary.text_pb(tags.RUN_INFO, json.dumps(info)).value[0]


def step_scalars(captured, paths, layers, norms=True, recurrent=()):
    """The scalars of one captured step (see the module docstring).

    Args:
        captured: Dict of numpy arrays, as returned by `GradientCapture.read`.
        paths: `variable.path` of each tracked variable.
        layers: `(layer_path, kind)` of each probed layer.
        norms: Whether to include norms, ratios, counts and activations, or
            only the loss scale. Defaults to `True`.
        recurrent: Path of each recurrent layer, for the temporal profile.
            Defaults to `()`.

    Returns:
        A list of `(tag, float)`.
    """
    skipped, loss_scale = bool(captured["skipped"]), float(captured["loss_scale"])
    items = []
    if loss_scale != 1.0:
        skipped_batches = captured.get("skipped_batches", captured["skipped"])
        items.append((tags.LOSS_SCALE_VALUE, loss_scale))
        items.append((tags.LOSS_SCALE_SKIPPED, float(skipped_batches)))
    if skipped or not norms:
        return items
    present = np.flatnonzero(captured["has_grad"] > 0)
    return (
        items
        + _norm_items(captured, paths, present)
        + _activation_items(captured, layers)
        + _temporal_items(captured, recurrent)
    )


def step_histograms(captured, paths):
    """The histogram summary values of one captured step (a list)."""
    if captured["skipped"]:  # skipped by loss scaling
        return []
    values = []
    for i in np.flatnonzero(captured["has_grad"] > 0):
        counts = captured["hist_counts"][i]
        if counts.sum() > 0:
            low, high = captured["hist_min"][i], captured["hist_max"][i]
            tag = tags.tag(tags.GRAD_HIST, paths[i])
            values.append(histogram_value(tag, low, high, counts))
    return values


def clipping_of(optimizer):
    """`(kind, limit)` of the clipping `optimizer` applies, or `None`.

    The first of `clipnorm`, `global_clipnorm` and `clipvalue` that is set, as
    Keras's `_clip_gradients` takes them (of the inner optimizer under a
    `LossScaleOptimizer`).
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    for kind in ("clipnorm", "global_clipnorm", "clipvalue"):
        limit = getattr(optimizer, kind, None)
        if limit and limit > 0:
            return kind, float(limit)
    return None


def clip_scalars(captured, clipping):
    """What the optimizer's gradient clipping did to a captured step.

    The logged gradients are those the optimizer receives, before it clips
    them. Keras's `clipnorm` scales each gradient to a norm of at most
    `clipnorm`, `global_clipnorm` all of them together to a global norm of at
    most `global_clipnorm`: both are functions of the norms kgrad captures,
    so the norm after clipping is exact. `clipvalue` clips each entry: kgrad
    says which variables had an entry beyond it, from the extremes of the
    histogram steps (no norm after clipping).

    Args:
        captured: Dict of numpy arrays, as returned by `GradientCapture.read`,
            over every variable of the record (before any tag selection).
        clipping: `(kind, limit)` with kind `"clipnorm"`, `"global_clipnorm"`
            or `"clipvalue"`, or `None` when the optimizer does not clip.

    Returns:
        `(tag, value)` pairs (`tags.GRAD_CLIP_*`); none without clipping or
        with non-finite gradients.

    Example:

    >>> captured = {"has_grad": np.ones(2), "grad_sq": np.array([9.0, 16.0])}
    >>> [value for _, value in clip_scalars(captured, ("global_clipnorm", 1.0))]
    [1.0, 0.2, 2.0]
    >>> [value for _, value in clip_scalars(captured, ("clipnorm", 4.0))]
    [5.0, 1.0, 0.0]
    """
    if clipping is None:
        return []
    kind, limit = clipping
    present = captured["has_grad"] > 0
    if kind == "clipvalue":
        low, high = captured.get("hist_min"), captured.get("hist_max")
        if low is None or not (np.any(low[present]) or np.any(high[present])):
            return []  # extremes are taken on histogram steps only
        beyond = (high[present] > limit) | (low[present] < -limit)
        return [(tags.GRAD_CLIP_CLIPPED, float(beyond.sum()))]
    squares = captured["grad_sq"][present]
    if not np.isfinite(squares).all():
        return []
    norms = np.sqrt(squares)
    total = float(np.sqrt(squares.sum()))
    if kind == "clipnorm":
        after = float(np.sqrt((np.minimum(norms, limit) ** 2).sum()))
        clipped = int((norms > limit).sum())
    else:
        after = min(total, limit)
        clipped = int(present.sum()) if total > limit else 0
    ratio = after / total if total > 0 else 1.0
    return [
        (tags.GRAD_CLIP_GLOBAL_NORM, after),
        (tags.GRAD_CLIP_RATIO, ratio),
        (tags.GRAD_CLIP_CLIPPED, float(clipped)),
    ]


def _norm_items(captured, paths, present):
    grad_sq, nonfinite = captured["grad_sq"], captured["nonfinite"]
    # A TagFilter passes the sums over every variable, its selection aside.
    global_sq = captured.get("global_grad_sq", grad_sq[present].sum())
    global_nonfinite = captured.get("global_nonfinite", nonfinite[present].sum())
    items = [
        (tags.GLOBAL_GRAD_NORM, float(np.sqrt(global_sq))),
        (tags.GLOBAL_NONFINITE, float(global_nonfinite)),
    ]
    # Python floats: the loop below runs for every variable of every logged step.
    grad_norm = np.sqrt(grad_sq).tolist()
    weight_norm = np.sqrt(captured["weight_sq"]).tolist()
    update_norm = np.sqrt(captured["update_sq"]).tolist()
    nonfinite = nonfinite.tolist()
    for i in present.tolist():
        path = paths[i]
        items.append((tags.tag(tags.GRAD_NORM, path), grad_norm[i]))
        items.append((tags.tag(tags.WEIGHT_NORM, path), weight_norm[i]))
        if weight_norm[i] > 0 and update_norm[i] == update_norm[i]:  # not NaN
            ratio = update_norm[i] / weight_norm[i]
            items.append((tags.tag(tags.UPDATE_RATIO, path), ratio))
        if nonfinite[i] > 0:
            items.append((tags.tag(tags.GRAD_NONFINITE, path), nonfinite[i]))
    return items


def _activation_items(captured, layers):
    items = []
    for (layer, kind), (share, always) in zip(
        layers, captured["activations"].tolist(), strict=True
    ):
        if share != share:  # NaN: the layer did not run
            continue
        if kind == "relu":
            items.append((tags.tag(tags.ACTIVATION_ZERO, layer), share))
            items.append((tags.tag(tags.DEAD_UNITS, layer), always))
        else:
            items.append((tags.tag(tags.SATURATION, layer), share))
    return items


def _temporal_items(captured, recurrent):
    items = []
    for name, norms, length in zip(
        recurrent,
        captured.get("temporal", ()),
        captured.get("temporal_length", ()),
        strict=True,
    ):
        if not length:  # no profile taken (masked layer, or it did not run)
            continue
        kept = sampled_timesteps(int(length))
        norms = norms[: len(kept)].tolist()
        for t, norm in zip(kept, norms, strict=True):
            items.append((tags.temporal(name, t, last=kept[-1]), norm))
        if norms[-1] > 0:
            items.append((tags.temporal_ratio(name), norms[0] / norms[-1]))
    return items
