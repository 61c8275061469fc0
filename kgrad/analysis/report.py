"""Read finished kgrad runs back from their event files, print their diagnosis.

No training and no TensorFlow: the event files are read by
`kgrad.analysis.events` (checksums with numpy, scalars through byte templates,
the rest with TensorBoard's protocol buffers); `kgrad.analysis.runs` finds the
runs below a folder and loads each. Tested by `tests/test_report.py`.

Example:

```python
from kgrad.analysis import report

runs = {name: report.load_run(f"logs/{name}") for name in ("sigmoid", "relu")}
print(report.format_report(runs))
```
"""

import math
import textwrap

from kgrad import tags
from kgrad.analysis import (
    batch_advice,
    diagnostics,
    layer_profile,
    loss_trend,
    outcome,
    temporal_profile,
)

# Reading lives in `runs` (and `events`); re-exported here, where callers look.
from kgrad.analysis.runs import (  # noqa: F401
    damage_note,
    find_event_files,
    find_runs,
    load_run,
    missing_note,
    run_name,
)

WIDTH = 100


# -- formatting --------------------------------------------------------------
def format_report(runs, thresholds=None, width=WIDTH, findings=None):
    """The diagnosis of one or several runs as text.

    Each run's first line states its outcome (`== run: loss fell 2.30 -> 0.18
    (92%).`); then a table (one row per layer from input to output, at the
    last logged step) and its findings; several runs end with a comparison
    table. "No findings" is never written for a run whose loss did not fall.

    Args:
        runs: Dict from run name to `(scalars, run_info)` (see `load_run`).
        thresholds: A `diagnostics.Thresholds`; the defaults if `None`.
            Defaults to `None`.
        width: Line width to wrap the findings at. Defaults to `100`.
        findings: `{name: [Finding]}` already diagnosed
            (`report_json.diagnose_runs`), or `None` to diagnose here.
            Defaults to `None`.

    Returns:
        The report, lines of at most `width` characters (long layer names aside).
    """
    thresholds = thresholds or diagnostics.Thresholds()
    parts, summary = [], []
    for name, (scalars, run_info) in runs.items():
        if findings is not None:
            found = findings[name]
        else:
            found = diagnostics.diagnose(scalars, run_info, thresholds)
        parts.append(_format_run(name, scalars, run_info, found, width, thresholds))
        summary.append((name, scalars, run_info, found))
    if len(runs) > 1:
        parts.append(_format_comparison(summary, width))
    return "\n\n".join(parts) + "\n"


def _num(value, spec=".2e"):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _share(value):
    return "-" if value is None or math.isnan(value) else f"{value:.0%}"


def _format_run(name, scalars, run_info, findings, width, thresholds):
    run_info = run_info or {}
    said = outcome.outcome_line(scalars, thresholds.fell_drop)
    rows = layer_profile.layer_profile(scalars, run_info)
    steps = layer_profile.norm_steps(scalars)
    batch = (run_info or {}).get("batch_size")
    details = [
        f"model {run_info['model']}" if run_info.get("model") else None,
        f"{len(rows)} layers",
        f"batch {batch}" if batch else None,
        f"{len(steps)} logged steps ({steps[0]}-{steps[-1]})",
    ]
    lines = [f"== {name}: {said}.", ", ".join(d for d in details if d) + "."]
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
    lines += batch_advice.report_lines(scalars)
    if findings:
        lines.append(f"findings ({len(findings)}):")
        for finding in findings:
            lines += _bullet(finding.message(), width)
    elif said.startswith("loss fell"):
        lines.append("findings: none; the gradients look healthy.")
    else:
        lines += textwrap.wrap(
            f"findings: none from the gradients, but {said} (the outcome rules "
            f"wait for {thresholds.min_outcome_steps} steps and a logged loss).",
            width,
        )
    lines += _recorded_lines(run_info.get("recorded_findings"), width)
    note = outcome.validation_note(scalars)
    if note:
        lines += textwrap.wrap(f"note: {note}.", width)
    return "\n".join(lines)


def _recorded_lines(records, width):
    """The findings the monitor recorded while training, with their steps
    (`kgrad.findings_record`; none for a run written before they were data)."""
    if not records:
        return []
    lines = ["while training (the monitor's record):"]
    for r in records:
        span = f"steps {r.get('first_step')}-{r.get('last_step')}"
        cleared = r.get("cleared_step")
        end = f"cleared at step {cleared}" if cleared is not None else "still active"
        lines += _bullet(f"{r.get('title')} {span}, {end}.", width)
    return lines


def _bullet(text, width):
    """`text` as a list item wrapped at `width`."""
    return textwrap.wrap(
        text,
        width,
        initial_indent="  - ",
        subsequent_indent="    ",
        break_on_hyphens=False,
    )


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
        glob_norm = scalars.get(tags.GLOBAL_GRAD_NORM, [(0, math.nan)])[-1][1]
        loss = scalars.get(tags.LOSS, [(0, math.nan)])[-1][1]
        kinds = ", ".join(f"{f.kind} ({f.severity})" for f in findings) or "none"
        lines.append(
            f"{name:<{col}}  {len(rows):>6}  {_num(ratio, '.1e'):>12}  "
            f"{_num(glob_norm):>11}  {_num(loss):>9}  {kinds}"
        )
    return "\n".join(lines)


def _fit(text, width):
    return text if len(text) <= width else "..." + text[-(width - 3) :]
