"""Read finished kgrad runs back from their event files, print their diagnosis.

No training and no TensorFlow: the event files are read with TensorBoard's
pure-Python record reader (the one TensorBoard itself uses when TensorFlow is
not installed) and decoded with TensorBoard's protocol buffers.

Example:

```python
from kgrad.analysis import report

runs = {name: report.load_run(f"logs/{name}") for name in ("sigmoid", "relu")}
print(report.format_report(runs))
```
"""

import glob
import json
import math
import os
import struct
import textwrap

from kgrad.analysis import diagnostics, layer_profile, loss_trend, temporal_profile

WIDTH = 100
_SUFFIX = ".kgrad"


def find_event_files(logdir):
    """The kgrad event files of a run dir `X/train` or of its parent `X`.

    Returns:
        Sorted file paths (their names start with the creation time), or `[]`.
    """
    for run_dir in (logdir, os.path.join(logdir, "train")):
        files = sorted(glob.glob(os.path.join(glob.escape(run_dir), "*" + _SUFFIX)))
        files = [f for f in files if "tfevents" in os.path.basename(f)]
        if files:
            return files
    return []


def find_runs(logdir):
    """The run directories of a `log_dir`: one per optimizer the run monitored.

    A model trained with one optimizer has one run (`X` itself, whose files are
    in `X/train`); a train step with several optimizers (a GAN) writes one run
    per optimizer under `X/train/<optimizer>`.

    Returns:
        `[logdir]`, or the optimizers' run directories, sorted.
    """
    logdir = os.fspath(logdir)
    if find_event_files(logdir):
        return [logdir]
    parent = logdir
    if os.path.basename(os.path.normpath(logdir)) != "train":
        parent = os.path.join(logdir, "train")
    pattern = os.path.join(glob.escape(parent), "*", "")
    runs = [d.rstrip(os.sep) for d in sorted(glob.glob(pattern))]
    return [d for d in runs if find_event_files(d) == _files_in(d)] or [logdir]


def _files_in(run_dir):
    files = sorted(glob.glob(os.path.join(glob.escape(run_dir), "*" + _SUFFIX)))
    return [f for f in files if "tfevents" in os.path.basename(f)] or None


def load_run(logdir):
    """Reads the scalars and the run info of one kgrad run.

    When a step appears again after later steps (a new run written into the
    same directory), the data of that step and after is dropped first, as
    TensorBoard does with orphaned data. Histograms are not read. A damaged
    event file (a flipped bit, a half-copied file) is read up to the damage;
    `run_info["damaged_files"]` lists `{"file", "byte", "reason"}` of each.

    Args:
        logdir: The run directory `X/train` or its parent `X` (the `log_dir`
            given to `GradientMonitor`).

    Returns:
        `(scalars, run_info)`: `diagnostics.Scalars` and the last
        `kgrad/run_info` object (`{}` if none was written).

    Raises:
        ValueError: If `logdir` holds no kgrad event files or no gradient norms
            (naming the damaged files, if that is why).
    """
    logdir = os.fspath(logdir)
    if not os.path.isdir(logdir):
        raise ValueError(f"{logdir} is not a directory.")
    files = find_event_files(logdir)
    if not files:
        raise ValueError(_no_logs_message(logdir))
    scalars, run_info, last_step = {}, {}, -math.inf
    damaged = []
    for path in files:
        for event in _read_events(path, damaged):
            if not event.HasField("summary"):
                continue
            if event.step < last_step:
                _purge(scalars, event.step)
            last_step = event.step
            for value in event.summary.value:
                if value.tag == "kgrad/run_info":
                    run_info = _run_info(value)
                elif value.metadata.plugin_data.plugin_name == "scalars":
                    number = _scalar(value)
                    if number is not None:
                        _put(scalars.setdefault(value.tag, []), event.step, number)
    if not layer_profile.norm_steps(scalars):
        if damaged:
            raise ValueError(
                f"{logdir} has no gradient norm that can be read: "
                + "; ".join(damage_note(d) for d in damaged)
            )
        raise ValueError(
            f"{logdir} has kgrad event files but no gradient norms yet "
            "(the run stopped before its first logged step?)."
        )
    if damaged:
        run_info = dict(run_info, damaged_files=damaged)
    return scalars, run_info


def damage_note(damage):
    """One line on a damaged event file (an entry of `damaged_files`)."""
    return (
        f"{damage['file']} is damaged from byte {damage['byte']} "
        f"({damage['reason']}); the records before it were read"
    )


def _no_logs_message(logdir):
    below = sorted(
        {
            os.path.dirname(os.path.dirname(f))
            for pattern in ("*/train/*", "*/*/train/*")
            for f in glob.glob(os.path.join(glob.escape(logdir), pattern + _SUFFIX))
        }
    )
    hint = f" Runs found below it: {', '.join(below[:5])}." if below else ""
    return (
        f"No kgrad logs in {logdir}: expected event files ending in "
        f"'{_SUFFIX}' (written by kgrad.GradientMonitor) in it or in its 'train' "
        f"subdirectory.{hint}"
    )


def _read_events(path, damaged=None):
    """The events of one file, up to the first damaged record.

    Records are TFRecords: a length, its CRC, the data, its CRC. Reading stops
    at the first record that fails a check or does not parse; it is appended
    to `damaged` as `{"file", "byte", "reason"}`.
    """
    # Imported here: these modules are light and import no TensorFlow.
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    with open(path, "rb") as file:
        data = file.read()
    offset = 0
    while offset < len(data):
        reason, event, end = None, None, offset + 12
        header = data[offset : offset + 8]
        if len(data) < end:
            reason = "the file ends inside a record header"
        elif masked_crc32c(header) != struct.unpack("<I", data[offset + 8 : end])[0]:
            reason = "record header fails its CRC check"
        else:
            length = struct.unpack("<Q", header)[0]
            record = data[end : end + length]
            crc = data[end + length : end + length + 4]
            if len(record) < length or len(crc) < 4:
                reason = "the file ends inside a record"
            elif masked_crc32c(record) != struct.unpack("<I", crc)[0]:
                reason = "record data fails its CRC check"
            else:
                try:
                    event = event_pb2.Event.FromString(record)
                except DecodeError:
                    reason = "record is not an event"
        if reason is not None:
            if damaged is not None:
                damaged.append({"file": path, "byte": offset, "reason": reason})
            return
        yield event
        offset = end + length + 4


def _scalar(value):
    from tensorboard.util import tensor_util

    if value.HasField("tensor"):
        array = tensor_util.make_ndarray(value.tensor)
        return float(array) if array.size == 1 else None
    if value.HasField("simple_value"):
        return float(value.simple_value)
    return None


def _run_info(value):
    from tensorboard.util import tensor_util

    text = tensor_util.make_ndarray(value.tensor).reshape(-1)[0]
    try:
        info = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _put(series, step, number):
    if series and series[-1][0] == step:
        series[-1] = (step, number)
    else:
        series.append((step, number))


def _purge(scalars, step):
    for tag in list(scalars):
        scalars[tag] = [(s, v) for s, v in scalars[tag] if s < step]


# -- formatting --------------------------------------------------------------
def format_report(runs, thresholds=None, width=WIDTH):
    """The diagnosis of one or several runs as text.

    Each run gets a table (one row per layer from input to output, at the last
    logged step) and its findings; several runs end with a comparison table.

    Args:
        runs: Dict from run name to `(scalars, run_info)` (see `load_run`).
        thresholds: A `diagnostics.Thresholds`; the defaults if `None`.
            Defaults to `None`.
        width: Line width to wrap the findings at. Defaults to `100`.

    Returns:
        The report, lines of at most `width` characters (long layer names aside).
    """
    thresholds = thresholds or diagnostics.Thresholds()
    parts, summary = [], []
    for name, (scalars, run_info) in runs.items():
        findings = diagnostics.diagnose(scalars, run_info, thresholds)
        parts.append(_format_run(name, scalars, run_info, findings, width))
        summary.append((name, scalars, run_info, findings))
    if len(runs) > 1:
        parts.append(_format_comparison(summary, width))
    return "\n\n".join(parts) + "\n"


def _num(value, spec=".2e"):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _share(value):
    return "-" if value is None or math.isnan(value) else f"{value:.0%}"


def _format_run(name, scalars, run_info, findings, width):
    run_info = run_info or {}
    rows = layer_profile.layer_profile(scalars, run_info)
    steps = layer_profile.norm_steps(scalars)
    batch = (run_info or {}).get("batch_size")
    details = [
        f"model {run_info['model']}" if run_info.get("model") else None,
        f"{len(rows)} layers",
        f"batch {batch}" if batch else None,
        f"{len(steps)} logged steps ({steps[0]}-{steps[-1]})",
    ]
    lines = [f"== {name}", ", ".join(d for d in details if d) + "."]
    names = [
        layer_profile.short_name(r.layer, run_info) + _side_mark(r.side) for r in rows
    ]
    col = max([len("layer (input -> output)")] + [len(n) for n in names])
    header = (
        f"{'layer (input -> output)':<{col}}  {'grad norm':>9}  {'/ output':>8}  "
        f"{'update':>8}  {'nonfinite':>9}  {'dead':>5}  {'saturated':>9}"
    )
    loss = loss_trend.report_line(scalars)
    if loss:
        lines.append(loss + ".")
    at = loss_trend.loss_at(scalars, steps[-1])
    at = f" (loss {at:.3e})" if math.isfinite(at) else ""
    lines += [f"at step {steps[-1]}{at}:", header, "-" * len(header)]
    for label, row in zip(names, rows, strict=True):
        lines.append(
            f"{label:<{col}}  {_num(row.grad_norm):>9}  {_num(row.ratio, '.1e'):>8}  "
            f"{_num(row.update_ratio, '.1e'):>8}  {row.nonfinite:>9d}  "
            f"{_share(row.dead_share):>5}  {_share(row.saturation):>9}"
        )
    lines.append("")
    temporal = temporal_profile.report_lines(scalars, run_info)
    lines += temporal + ([""] if temporal else [])
    if findings:
        lines.append(f"findings ({len(findings)}):")
        for finding in findings:
            lines += textwrap.wrap(
                finding.message(),
                width,
                initial_indent="  - ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
    else:
        lines.append("findings: none; the gradients look healthy.")
    return "\n".join(lines)


def _side_mark(side):
    return {"input": " [in]", "output": " [out]"}.get(side, "")


def _format_comparison(summary, width):
    lines = ["== comparison"]
    names = [_fit(name, 40) for name, *_ in summary]
    col = max(len("run"), *(len(name) for name in names))
    header = (
        f"{'run':<{col}}  {'layers':>6}  {'input/output':>12}  "
        f"{'global norm':>11}  {'loss':>9}  findings"
    )
    lines += [header, "-" * min(width, len(header) + 20)]
    for name, (_, scalars, run_info, findings) in zip(names, summary, strict=True):
        rows = layer_profile.layer_profile(scalars, run_info)
        ratio = next((r.ratio for r in rows if r.side == "input"), math.nan)
        glob_norm = scalars.get("grad_norm/global", [(0, math.nan)])[-1][1]
        loss = scalars.get(loss_trend.LOSS_TAG, [(0, math.nan)])[-1][1]
        kinds = ", ".join(f"{f.kind} ({f.severity})" for f in findings) or "none"
        lines.append(
            f"{name:<{col}}  {len(rows):>6}  {_num(ratio, '.1e'):>12}  "
            f"{_num(glob_norm):>11}  {_num(loss):>9}  {kinds}"
        )
    return "\n".join(lines)


def _fit(text, width):
    return text if len(text) <= width else "..." + text[-(width - 3) :]
