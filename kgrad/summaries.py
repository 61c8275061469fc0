"""TensorBoard summaries of captured gradient statistics, and the tag scheme.

Tags (all under `log_dir/train`, at step = the optimizer's update count, the
k-th update being step k, so steps run on across epochs and `fit` calls):

| tag | kind | what |
|---|---|---|
| `grad_norm/<path>` | scalar | L2 norm of the variable's gradient |
| `grad_norm/global` | scalar | L2 norm of all gradients together |
| `grad_hist/<path>` | histogram | distribution of the gradient's entries |
| `weight_norm/<path>` | scalar | L2 norm of the weights the gradient was taken at |
| `update_ratio/<path>` | scalar | norm of the step's update / `weight_norm` |
| `grad_nonfinite/global` | scalar | number of NaN/Inf gradient entries |
| `grad_nonfinite/<path>` | scalar | the same for one variable, written only when > 0 |
| `loss_scale/value` | scalar | mixed precision: the loss scale of the step |
| `loss_scale/skipped` | scalar | mixed precision: 1 when the step was skipped |
| `activation_zero/<layer>` | scalar | ReLU layers: share of outputs that are zero |
| `dead_units/<layer>` | scalar | ReLU layers: share of units zero on the whole batch |
| `saturation/<layer>` | scalar | sigmoid/tanh layers: share of outputs near a bound |
| `kgrad/run_info` | text | JSON: variable paths (input first), layers, batch |
| `kgrad/findings` | text | the diagnosis, written when it changes |
| `kgrad/gradient_flow` | image | gradient norm per layer, input to output |
| custom scalars | layout | all layers' gradient norms on one chart |

`<path>` is the Keras 3 `variable.path` (unique, e.g. `dense_01/kernel`),
`<layer>` the layer's path.

Edge cases: a variable with a `None` gradient (unconnected or frozen) gets no
tag at that step. `IndexedSlices` gradients (from `Embedding`) are logged as
their dense equivalent. Histograms count finite entries only (NaN/Inf are
counted by `grad_nonfinite`); all-equal values fall in the last bucket, whose
edges are that value (TensorBoard's convention); a variable without finite
entries gets no histogram. Gradients are logged as the optimizer receives
them: before clipping, and divided by the loss scale under mixed precision. A
step that the loss-scale optimizer skips (its scaled gradients overflowed, as
is normal while the scale settles) writes only `loss_scale/*`: it is not an
explosion.

Summaries are written as protocol buffers by TensorBoard's own event writer,
one event per logged step, so that writing costs no TensorFlow op dispatch.

Example:

>>> writer = RunWriter("/tmp/kgrad_doc")
>>> writer.write(1, [scalar_value("grad_norm/global", 0.5)])
>>> writer.close()
"""

import json
import logging
import os
import re
import time

import numpy as np
from tensorboard.compat.proto import (
    event_pb2,
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
from tensorboard.summary.writer.event_file_writer import EventFileWriter

logger = logging.getLogger("kgrad")

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


def scalar_items(values):
    """`(tag, float)` of the scalar values among `values`."""
    return [
        (v.tag, v.tensor.float_val[0])
        for v in values
        if v.metadata.plugin_data.plugin_name == "scalars"
    ]


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
        tags = [f"^{prefix}/{re.escape(path)}$" for path in paths]
        content = layout_pb2.MultilineChartContent(tag=tags)
        return layout_pb2.Chart(title=title, multiline=content)

    layout = layout_pb2.Layout(
        category=[
            layout_pb2.Category(
                title="kgrad: gradient flow, input to output",
                chart=[
                    chart("gradient norm per variable", "grad_norm"),
                    chart("update / weight ratio per variable", "update_ratio"),
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


def run_info_value(info):
    """The `kgrad/run_info` text summary: a JSON object describing the run.

    Written once per `fit`, so that reports can order layers from input to
    output and know the batch size. Keys: `model`, `variables` (variable paths
    in the model's order, input side first), `layers` (`[layer path, kind]` of
    the probed activation layers), `batchnorm_layers`, `batch_size`.
    """
    return text_summary.text_pb("kgrad/run_info", json.dumps(info)).value[0]


def step_values(captured, paths, layers, norms=True, histograms=True):
    """Summary values of one captured step (see the module docstring).

    Args:
        captured: Dict of numpy arrays, as returned by `GradientCapture.read`.
        paths: `variable.path` of each tracked variable.
        layers: `(layer_path, kind)` of each probed layer.
        norms: Whether to include norms, ratios, counts and activations.
            Defaults to `True`.
        histograms: Whether to include the histograms. Defaults to `True`.

    Returns:
        A list of `Summary.Value`.
    """
    header = captured["header"]
    skipped, loss_scale = bool(header[2]), float(header[3])
    values = []
    if loss_scale != 1.0:
        values.append(scalar_value("loss_scale/value", loss_scale))
        values.append(scalar_value("loss_scale/skipped", float(skipped)))
    if skipped:
        return values
    present = np.flatnonzero(captured["has_grad"] > 0)
    if norms:
        values += _norm_values(captured, paths, present)
        values += _activation_values(captured, layers)
    if histograms:
        for i in present:
            counts = captured["hist_counts"][i]
            if counts.sum() > 0:
                low, high = captured["hist_min"][i], captured["hist_max"][i]
                tag = f"grad_hist/{paths[i]}"
                values.append(histogram_value(tag, low, high, counts))
    return values


def _norm_values(captured, paths, present):
    grad_sq, nonfinite = captured["grad_sq"], captured["nonfinite"]
    weight_norm = np.sqrt(captured["weight_sq"])
    update_norm = np.sqrt(captured["update_sq"])
    values = [
        scalar_value("grad_norm/global", np.sqrt(grad_sq[present].sum())),
        scalar_value("grad_nonfinite/global", nonfinite[present].sum()),
    ]
    for i in present:
        path = paths[i]
        values.append(scalar_value(f"grad_norm/{path}", np.sqrt(grad_sq[i])))
        values.append(scalar_value(f"weight_norm/{path}", weight_norm[i]))
        if weight_norm[i] > 0 and not np.isnan(update_norm[i]):
            ratio = update_norm[i] / weight_norm[i]
            values.append(scalar_value(f"update_ratio/{path}", ratio))
        if nonfinite[i] > 0:
            values.append(scalar_value(f"grad_nonfinite/{path}", nonfinite[i]))
    return values


def _activation_values(captured, layers):
    values = []
    for (layer, kind), (share, always) in zip(
        layers, captured["activations"], strict=True
    ):
        if np.isnan(share):
            continue
        if kind == "relu":
            values.append(scalar_value(f"activation_zero/{layer}", share))
            values.append(scalar_value(f"dead_units/{layer}", always))
        else:
            values.append(scalar_value(f"saturation/{layer}", share))
    return values


class RunWriter:
    """Writes summaries to one run directory; never raises while training.

    The event file is created on the first write (like
    `keras.callbacks.TensorBoard`, so both can share a `log_dir`). A failure to
    write (directory deleted, disk full) is logged once and the run goes on.

    Args:
        log_dir: The run directory, e.g. `runs/exp1/train`.
        enabled: Whether to write at all (`False` on the non-chief workers of a
            multi-worker run). Defaults to `True`.
    """

    def __init__(self, log_dir, enabled=True):
        self.log_dir = log_dir
        self.enabled = enabled
        self._writer = None
        self._failed = False

    def write(self, step, values):
        """Writes `values` (a list of `Summary.Value`) as one event at `step`."""
        if not values or not self.enabled:
            return
        event = event_pb2.Event(
            wall_time=time.time(),
            step=int(step),
            summary=summary_pb2.Summary(value=values),
        )
        self.guard(lambda: self._ensure().add_event(event))

    def flush(self):
        """Writes buffered events to disk."""
        if self._writer is not None:
            self.guard(self._writer.flush)

    def close(self):
        """Flushes and closes the event file; a later write opens a new one."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            self.guard(writer.close)

    def _ensure(self):
        if self._writer is None:
            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = EventFileWriter(self.log_dir, filename_suffix=".kgrad")
        return self._writer

    def guard(self, action):
        """Runs `action`; an exception is logged once, never raised."""
        try:
            action()
        except Exception as error:  # a logging failure must not stop training
            if not self._failed:
                self._failed = True
                logger.error(
                    "kgrad could not write summaries to %s (%s: %s); training goes "
                    "on and kgrad keeps trying.",
                    self.log_dir,
                    type(error).__name__,
                    error,
                )
