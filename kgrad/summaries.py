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

Summaries are built as protocol buffers, one event per logged step, so that
writing costs no TensorFlow op dispatch, and written as TFRecords by
TensorFlow's C++ record writer (`EventFile`).

Example:

>>> writer = RunWriter("/tmp/kgrad_doc")
>>> writer.write(1, [text_value("notes", "hello")], [("grad_norm/global", 0.5)])
>>> writer.close()
"""

import itertools
import json
import logging
import os
import re
import socket
import time

import numpy as np
import tensorflow as tf
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


def step_scalars(captured, paths, layers, norms=True):
    """The scalars of one captured step (see the module docstring).

    Args:
        captured: Dict of numpy arrays, as returned by `GradientCapture.read`.
        paths: `variable.path` of each tracked variable.
        layers: `(layer_path, kind)` of each probed layer.
        norms: Whether to include norms, ratios, counts and activations, or
            only the loss scale. Defaults to `True`.

    Returns:
        A list of `(tag, float)`.
    """
    header = captured["header"]
    skipped, loss_scale = bool(header[2]), float(header[3])
    items = []
    if loss_scale != 1.0:
        items.append(("loss_scale/value", loss_scale))
        items.append(("loss_scale/skipped", float(skipped)))
    if skipped or not norms:
        return items
    present = np.flatnonzero(captured["has_grad"] > 0)
    return (
        items
        + _norm_items(captured, paths, present)
        + _activation_items(captured, layers)
    )


def step_histograms(captured, paths):
    """The histogram summary values of one captured step (a list)."""
    if captured["header"][2]:  # skipped by loss scaling
        return []
    values = []
    for i in np.flatnonzero(captured["has_grad"] > 0):
        counts = captured["hist_counts"][i]
        if counts.sum() > 0:
            low, high = captured["hist_min"][i], captured["hist_max"][i]
            values.append(histogram_value(f"grad_hist/{paths[i]}", low, high, counts))
    return values


def _norm_items(captured, paths, present):
    grad_sq, nonfinite = captured["grad_sq"], captured["nonfinite"]
    items = [
        ("grad_norm/global", float(np.sqrt(grad_sq[present].sum()))),
        ("grad_nonfinite/global", float(nonfinite[present].sum())),
    ]
    # Python floats: the loop below runs for every variable of every logged step.
    grad_norm = np.sqrt(grad_sq).tolist()
    weight_norm = np.sqrt(captured["weight_sq"]).tolist()
    update_norm = np.sqrt(captured["update_sq"]).tolist()
    nonfinite = nonfinite.tolist()
    for i in present.tolist():
        path = paths[i]
        items.append((f"grad_norm/{path}", grad_norm[i]))
        items.append((f"weight_norm/{path}", weight_norm[i]))
        if weight_norm[i] > 0 and update_norm[i] == update_norm[i]:  # not NaN
            items.append((f"update_ratio/{path}", update_norm[i] / weight_norm[i]))
        if nonfinite[i] > 0:
            items.append((f"grad_nonfinite/{path}", nonfinite[i]))
    return items


def _activation_items(captured, layers):
    items = []
    for (layer, kind), (share, always) in zip(
        layers, captured["activations"].tolist(), strict=True
    ):
        if share != share:  # NaN: the layer did not run
            continue
        if kind == "relu":
            items.append((f"activation_zero/{layer}", share))
            items.append((f"dead_units/{layer}", always))
        else:
            items.append((f"saturation/{layer}", share))
    return items


class ScalarEncoder:
    """Serializes scalar summaries fast, for the events of logged steps.

    A scalar `Summary.Value` of a given tag always serializes to the same bytes
    but for the four bytes of its float32; the bytes around them are cached per
    tag, so that encoding a step of ~200 scalars costs a join instead of ~200
    protocol-buffer constructions (about 1 ms of GIL-holding Python a step).

    Example:

    >>> data = ScalarEncoder().summary([("grad_norm/global", 0.5)])
    >>> summary_pb2.Summary.FromString(data).value[0].tensor.float_val[0]
    0.5
    """

    _MARKER = np.float32(-1.2345679e-29).tobytes()

    def __init__(self):
        self._parts = {}

    def summary(self, items):
        """The serialized `Summary` of `(tag, float)` items."""
        with np.errstate(over="ignore"):  # beyond float32: inf, as TensorBoard's
            floats = np.asarray([value for _, value in items], "<f4").tobytes()
        pieces = []
        for i, (tag, _) in enumerate(items):
            prefix, suffix = self._parts.get(tag) or self._cache(tag)
            pieces += (prefix, floats[4 * i : 4 * i + 4], suffix)
        return b"".join(pieces)

    def _cache(self, tag):
        marker = np.frombuffer(self._MARKER, "<f4")[0]
        data = summary_pb2.Summary(value=[scalar_value(tag, marker)])
        data = data.SerializeToString()
        start = data.index(self._MARKER)
        self._parts[tag] = (data[:start], data[start + 4 :])
        return self._parts[tag]


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
        self._encoder = ScalarEncoder()

    def write(self, step, values, scalars=()):
        """Writes summaries as one event at `step`.

        Args:
            step: The step.
            values: List of `Summary.Value`.
            scalars: List of `(tag, float)`, written as scalar summaries.
        """
        if not (values or scalars) or not self.enabled:
            return
        event = event_pb2.Event(
            wall_time=time.time(),
            step=int(step),
            summary=summary_pb2.Summary(value=values),
        )
        data = event.SerializeToString()
        if scalars:  # a second `summary` field: parsers merge the two
            summary = self._encoder.summary(scalars)
            data += _EVENT_SUMMARY_FIELD + _varint(len(summary)) + summary
        self.guard(lambda: self._ensure().write(data))

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
            self._writer = EventFile(self.log_dir, suffix=".kgrad")
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


class EventFile:
    """One TensorBoard event file, written by TensorFlow's C++ record writer.

    The format and the name are those of TensorBoard's `EventFileWriter`, which
    computes the record checksums in pure Python (1.4 ms for the 11 KB event
    of one logged step of a 20-layer model); `tf.io.TFRecordWriter` writes the
    same records in C++, without holding the GIL.

    Args:
        log_dir: An existing directory.
        suffix: Appended to the file name. Defaults to `""`.

    Example:

    >>> events = EventFile("/tmp/kgrad_doc", suffix=".kgrad")
    >>> events.write(event_pb2.Event(step=1).SerializeToString())
    >>> events.close()
    """

    _files_opened = itertools.count()

    def __init__(self, log_dir, suffix=""):
        name = "events.out.tfevents.%010d.%s.%s.%s%s" % (
            time.time(),
            socket.gethostname(),
            os.getpid(),
            next(self._files_opened),
            suffix,
        )
        self.path = os.path.join(log_dir, name)
        self._records = tf.io.TFRecordWriter(self.path)
        version = event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
        self._records.write(version.SerializeToString())

    def write(self, data):
        """Appends one serialized `Event`."""
        self._records.write(data)

    def flush(self):
        """Writes buffered records to disk."""
        self._records.flush()

    def close(self):
        """Flushes and closes the file."""
        self._records.close()


_EVENT_SUMMARY_FIELD = b"\x2a"  # field 5 of `Event`, length-delimited


def _varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
