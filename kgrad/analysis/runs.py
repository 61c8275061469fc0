"""Finds kgrad runs below a folder and loads each, as TensorBoard would.

A *run* is a directory holding kgrad event files (names containing
`tfevents` and ending in `.kgrad`): `log_dir/train` for one optimizer,
`log_dir/train/<optimizer>` for each optimizer of a GAN, `log_dir/train_2`
for a second model or a second writer on the same `log_dir` (see
`kgrad.monitor.log.run_claim`). `find_runs` walks a folder recursively, like
`tensorboard --logdir`, so a parent of several `log_dir`s, a `log_dir` and
its `train` folder all work.

Example:

```python
for run_dir in find_runs("logs"):
    scalars, run_info = load_run(run_dir)
    print(run_name("logs", run_dir), len(scalars))
```
"""

import gc
import json
import math
import os

import numpy as np

from kgrad import findings_record, tags
from kgrad.analysis import events, layer_profile

SUFFIX = ".kgrad"


def _is_event_file(name):
    return "tfevents" in name and name.endswith(SUFFIX)


def find_event_files(logdir):
    """The kgrad event files of a run dir `X/train` or of its parent `X`.

    Returns:
        Sorted file paths (their names start with the creation time), or `[]`.
    """
    for run_dir in (logdir, os.path.join(logdir, "train")):
        if os.path.isdir(run_dir):
            names = sorted(n for n in os.listdir(run_dir) if _is_event_file(n))
            if names:
                return [os.path.join(run_dir, n) for n in names]
    return []


def find_runs(logdir):
    """Every run directory at or below `logdir`, sorted.

    Returns:
        The directories that hold kgrad event files themselves; `[]` if none.
    """
    found = []
    for directory, subdirs, names in os.walk(os.fspath(logdir)):
        subdirs.sort()
        if any(_is_event_file(n) for n in names):
            found.append(directory)
    return sorted(found)


def run_name(logdir, run_dir):
    """A run's name below `logdir`: its relative path without `train` parts.

    Example:

    >>> run_name("logs", "logs/gan/train/d_optimizer")
    'gan/d_optimizer'
    >>> run_name("logs/exp1", "logs/exp1/train")
    '.'
    """
    parts = os.path.relpath(run_dir, logdir).split(os.sep)
    kept = [p for p in parts if p not in ("train", ".")]
    return "/".join(kept) or "."


def load_run(logdir):
    """Reads the scalars and the run info of one kgrad run.

    When a step appears again after later steps (a new run written into the
    same directory), the data of that step and after is dropped first, as
    TensorBoard does with orphaned data. Histograms are not read. A damaged
    event file (a flipped bit, a half-copied file, a disk that filled up) is
    read up to the damage; `run_info["damaged_files"]` lists
    `{"file", "byte", "reason"}` of each, and `run_info["missing_steps"]` the
    steps the writer could not write (`tags.MISSING_STEPS`).
    `run_info["recorded_findings"]` holds the findings the monitor recorded
    while training (`kgrad.findings_record`; absent for runs written before
    findings were data).

    Args:
        logdir: The run directory `X/train` or its parent `X` (the `log_dir`
            given to `GradientMonitor`).

    Returns:
        `(scalars, run_info)`: `diagnostics.Scalars` and the last
        `tags.RUN_INFO` object (`{}` if none was written).

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
    scans = [events.read_file(path) for path in files]
    collecting = gc.isenabled()
    gc.disable()  # millions of (step, value) tuples: no garbage, many collections
    try:
        scalars, run_info = _merge(scans)
    finally:
        if collecting:
            gc.enable()
    damaged = [scan.damage for scan in scans if scan.damage]
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


def missing_note(steps):
    """One line on the steps a run could not write, e.g. `steps 5-7, 9`."""
    spans, start = [], None
    for i, step in enumerate(steps):
        if start is None:
            start = step
        if i + 1 == len(steps) or steps[i + 1] != step + 1:
            spans.append(f"{start}" if start == step else f"{start}-{step}")
            start = None
    word = "step" if len(steps) == 1 else "steps"
    return f"{word} {', '.join(spans)} could not be written (a write failure)"


def _merge(scans):
    """Scalars of the events of `scans` (in order), with orphaned data dropped."""
    steps = np.asarray([s for scan in scans for s in scan.steps], dtype=np.int64)
    offsets = np.cumsum([0] + [len(scan.steps) for scan in scans])
    survives = _survivors(steps)
    series = {}
    for scan, offset in zip(scans, offsets, strict=False):
        for tag, (indices, values) in scan.scalars().items():
            series.setdefault(tag, []).append((indices + offset, values))
    scalars = {}
    for tag, pieces in series.items():
        indices = np.concatenate([i for i, _ in pieces])
        values = np.concatenate([v for _, v in pieces])
        order = np.argsort(indices, kind="stable")
        indices, values = indices[order], values[order]
        keep = survives[indices]
        tag_steps, values = steps[indices[keep]], values[keep]
        last = np.append(tag_steps[1:] != tag_steps[:-1], True)  # last per step
        pairs = zip(tag_steps[last].tolist(), values[last].tolist(), strict=True)
        scalars[tag] = list(pairs)
    run_info, missing, findings_texts = {}, set(), []
    for scan in scans:
        for event, tag, text in scan.texts:
            if tag == tags.RUN_INFO:
                run_info = _json_object(text, {})
            elif tag == tags.MISSING_STEPS:
                missing.update(_json_object(text, {}).get("steps", []))
            elif tag == tags.FINDINGS_DATA:
                findings_texts.append((scan.steps[event], text))
    missing -= {step for step, _ in scalars.get(tags.GLOBAL_GRAD_NORM, [])}
    if missing:
        run_info = dict(run_info, missing_steps=sorted(missing))
    recorded = findings_record.records_of(findings_texts)
    if recorded is not None:
        run_info = dict(run_info, recorded_findings=recorded)
    return scalars, run_info


def _survivors(steps):
    """Whether each event's data survives the later events that go back.

    An event at a step below the one before it drops every earlier event at
    that step or later (TensorBoard's purge of orphaned data).
    """
    backward = np.zeros(len(steps), dtype=bool)
    backward[1:] = steps[1:] < steps[:-1]
    limits = np.where(backward, steps.astype(np.float64), math.inf)
    later = np.minimum.accumulate(limits[::-1])[::-1]  # min over j >= i
    later = np.append(later[1:], math.inf)  # min over j > i
    return steps < later


def _json_object(text, default):
    try:
        value = json.loads(text)
    except ValueError:
        return default
    return value if isinstance(value, dict) else default


def _no_logs_message(logdir):
    below = find_runs(logdir)
    hint = f" Runs found below it: {', '.join(below[:5])}." if below else ""
    return (
        f"No kgrad logs in {logdir}: expected event files ending in "
        f"'{SUFFIX}' (written by kgrad.GradientMonitor) in it or in its 'train' "
        f"subdirectory.{hint}"
    )
