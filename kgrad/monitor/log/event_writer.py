"""Writes TensorBoard event files; a failure to write never stops training.

`RunWriter` is what the step logger talks to: one event per logged step, the
scalars serialized from cached bytes (`ScalarEncoder`), the records written by
TensorFlow's C++ record writer (`EventFile`) in the same format and with the
same file names as TensorBoard's own `EventFileWriter`. The run's other files:
`check_writable(log_dir)` before anything is written, and the gradient-flow
figure (`write_gradient_flow`) at the end of a `fit`. Tested in
tests/test_events.py, tests/test_write_failures.py and tests/test_tensorboard.py.

Example:

>>> import tempfile
>>> from kgrad.monitor.log.summaries import text_value
>>> with tempfile.TemporaryDirectory() as log_dir:
...     writer = RunWriter(log_dir)
...     writer.write(1, [text_value("notes", "hello")], [("loss", 0.5)])
...     writer.close()
"""

import itertools
import json
import logging
import os
import socket
import sys
import tempfile
import time

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from kgrad import tags
from kgrad.analysis import atomic, plots, runs
from kgrad.monitor.log import summaries
from kgrad.monitor.log.summaries import scalar_value

logger = logging.getLogger("kgrad")


class ScalarEncoder:
    """Serializes scalar summaries fast, for the events of logged steps.

    A scalar `Summary.Value` of a given tag always serializes to the same bytes
    but for the four bytes of its float32; the bytes around them are cached per
    tag, so that encoding a step of ~200 scalars costs a join instead of ~200
    protocol-buffer constructions (about 1 ms of GIL-holding Python a step).

    Example:

    >>> data = ScalarEncoder().summary([("loss", 0.5)])
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
    write (directory deleted, disk full) is logged once and the run goes on:
    the file that failed is abandoned (it reads back up to the failure), the
    steps written since its last flush are counted as missing, and the next
    write opens a new event file. Its first event carries
    `tags.MISSING_STEPS` (JSON `{"steps": [...]}`), which `kgrad report`
    reads to say which steps are missing.

    Args:
        log_dir: The run directory, e.g. `logs/exp1/train`.
        enabled: Whether to write at all (`False` on the non-chief workers of a
            multi-worker run). Defaults to `True`.
    """

    def __init__(self, log_dir, enabled=True):
        self.log_dir = log_dir
        self.enabled = enabled
        self.missing_steps = set()  # steps lost to write failures
        self._writer = None
        self._failing = False
        self._failed = False
        self._unflushed = []  # steps written since the last flush
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
        if self._writer is None and self.missing_steps:
            values = list(values) + [self._missing_value()]
        event = event_pb2.Event(
            wall_time=time.time(),
            step=int(step),
            summary=summary_pb2.Summary(value=values),
        )
        data = event.SerializeToString()
        if scalars:  # a second `summary` field: parsers merge the two
            summary = self._encoder.summary(scalars)
            data += _EVENT_SUMMARY_FIELD + _varint(len(summary)) + summary
        self._unflushed.append(int(step))
        if not self.guard(lambda: self._ensure().write(data)):
            self._abandon_file()

    def flush(self):
        """Writes buffered events to disk."""
        if self._writer is None:
            return
        if not self.guard(self._writer.flush):
            self._abandon_file()
            return
        self._unflushed = []
        if self._failing:
            self._failing = self._failed = False  # a new failure is reported
            logger.warning(
                "kgrad: writing to %s again, in a new event file; %s.",
                self.log_dir,
                _steps_note(self.missing_steps),
            )

    def close(self):
        """Flushes and closes the event file; a later write opens a new one."""
        if self._writer is not None:
            self.flush()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            self.guard(writer.close)

    def _ensure(self):
        if self._writer is None:
            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = EventFile(self.log_dir, suffix=".kgrad")
        return self._writer

    def _abandon_file(self):
        """After a failed write: the steps not flushed are lost, the file too."""
        self.missing_steps.update(self._unflushed)
        self._unflushed = []
        self._failing = True
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # already reported; the file reads up to here
                pass

    def _missing_value(self):
        steps = {"steps": sorted(self.missing_steps)}
        return summaries.text_value(tags.MISSING_STEPS, json.dumps(steps))

    def guard(self, action):
        """Runs `action`; an exception is logged once, never raised.

        Returns:
            Whether `action` ran without an exception.
        """
        try:
            action()
        except Exception as error:  # a logging failure must not stop training
            if not self._failed:
                self._failed = True
                logger.error(
                    "kgrad: could not write summaries to %s (%s: %s); training goes "
                    "on, and kgrad writes the later steps to a new event file "
                    "once writing works again.",
                    self.log_dir,
                    type(error).__name__,
                    error,
                )
            return False
        return True


def _steps_note(steps):
    steps = sorted(steps)
    if not steps:
        return "no step was lost"
    return runs.missing_note(steps)


class EventFile:
    """One TensorBoard event file, written by TensorFlow's C++ record writer.

    The format and the name are those of TensorBoard's `EventFileWriter`, which
    computes the record checksums in pure Python (1.4 ms for the 11 KB event
    of one logged step of a 20-layer model); `tf.io.TFRecordWriter` writes the
    same records in C++, without holding the GIL. Without TensorFlow (Keras on
    JAX), TensorBoard's own `RecordWriter` writes the same bytes.

    Args:
        log_dir: An existing directory.
        suffix: Appended to the file name. Defaults to `""`.

    Example:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as log_dir:
    ...     events = EventFile(log_dir, suffix=".kgrad")
    ...     events.write(event_pb2.Event(step=1).SerializeToString())
    ...     events.close()
    """

    _files_opened = itertools.count()

    def __init__(self, log_dir, suffix=""):
        # The counter is zero-padded: files opened in the same second sort in
        # the order they were opened (TensorBoard reads them in name order).
        name = "events.out.tfevents.%010d.%s.%s.%06d%s" % (
            time.time(),
            socket.gethostname(),
            os.getpid(),
            next(self._files_opened),
            suffix,
        )
        self.path = os.path.join(log_dir, name)
        self._records = _record_writer(self.path)
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


def _record_writer(path):
    """TensorFlow's C++ record writer if TensorFlow is loaded, else TensorBoard's."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "io"):
        return tf.io.TFRecordWriter(path)
    return _PythonRecords(path)


class _PythonRecords:
    """TensorBoard's pure-Python `RecordWriter` over a file it owns."""

    def __init__(self, path):
        self._file = open(path, "wb")  # noqa: SIM115 (closed by `close`)
        self._writer = RecordWriter(self._file)

    def write(self, data):
        self._writer.write(data)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()


_EVENT_SUMMARY_FIELD = b"\x2a"  # field 5 of `Event`, length-delimited


def _varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def write_gradient_flow(writer, path, scalars, run_info, step, title):
    """Draws the gradient-flow figure (a TensorBoard image and a PNG file) and,
    for models with recurrent layers, the `tags.TEMPORAL_PROFILE` heat map.

    Runs in the worker thread at the end of `fit`.
    """
    if not writer.enabled:
        return
    figure = plots.gradient_flow_figure(scalars, run_info, title=title)
    png = plots.figure_png(figure)
    width, height = (int(v) for v in figure.canvas.get_width_height())
    value = summaries.image_value(tags.GRADIENT_FLOW, png, width, height)
    writer.write(step, [value])
    if not writer.guard(lambda: atomic.write_bytes(path, png)):
        logger.error("kgrad: %s was not written (the figure stays as it was).", path)
    heat_map = plots.temporal_heat_map(scalars, run_info, title=title)
    if heat_map is not None:
        width, height = (int(v) for v in heat_map.canvas.get_width_height())
        png = plots.figure_png(heat_map)
        value = summaries.image_value(tags.TEMPORAL_PROFILE, png, width, height)
        writer.write(step, [value])


def check_writable(log_dir):
    """Raises a `ValueError` naming `log_dir` when it cannot be written."""
    try:
        os.makedirs(log_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=log_dir):
            pass
    except OSError as error:
        raise ValueError(
            f"`log_dir` cannot be written ({error.strerror}). "
            f"Received: log_dir={os.fspath(log_dir)!r}"
        ) from None
