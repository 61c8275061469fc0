"""Scores and the Markdown of the diagnosis benchmark (`diagnosis.py` here).

Per finding kind and per length: true positives (a `must` kind found), false
negatives (a `must` kind not found), false positives (a kind found that is
neither `must` nor `may`), precision and recall; one row per run.

Example:

    score(rows, "held_out", 300)["dead_units"]  # {"tp": 2, "fp": 0, "fn": 0}
"""

import dataclasses
import math

import diagnosis_measured
import diagnosis_outcome_reading
from diagnosis_labels import labels

from kgrad import tags
from kgrad.analysis.findings import _TITLES
from kgrad.analysis.outcome import OUTCOME_KINDS

# The benchmark judges findings, not advice: `batch_size` needs `noise_scale=True`
# and says nothing is wrong (`kgrad.analysis.batch_advice`).
KINDS = tuple(kind for kind in _TITLES if kind != "batch_size")
HALVES = ("calibration", "held_out", "fresh")
HELD_OUT = ("held_out", "fresh")
PEER_KINDS = ("vanishing", "exploding", "nonfinite", "dead_units") + OUTCOME_KINDS[:3]
PRECISION, RECALL = 0.95, 0.9
QUICK_RUNS = ("relu_bias_minus5", "relu_he", "simple_rnn_T10", "batchnorm_batch2")


@dataclasses.dataclass
class Row:
    """One judged run: `verdicts[length] = (kinds found, flickers)`."""

    run: object
    verdicts: dict
    scalars: dict
    run_info: dict
    peer: dict = dataclasses.field(default_factory=dict)  # length -> kinds


def score(rows, half, length, shortest=False, judge="kgrad"):
    """`{kind: {"tp", "fp", "fn"}}` of the runs of `half` (`None`: both) at
    `length`, by kgrad's verdicts or (`judge="peer"`) the peer's.

    At the `shortest` length a `must` kind not found is not counted (the
    problem may not show yet); one found is a true positive.
    """
    counts = {k: {"tp": 0, "fp": 0, "fn": 0} for k in KINDS}
    for row in rows:
        if half is not None and row.run.half != half:
            continue
        must, may = labels(row, length)
        if judge == "peer":
            found = _as_labelled(row.peer.get(length, set()), must)
        else:
            found = row.verdicts[length][0]
        for kind in KINDS:
            if kind in must:
                if kind in found or not shortest:
                    counts[kind]["tp" if kind in found else "fn"] += 1
            elif kind in found and kind not in may:
                counts[kind]["fp"] += 1
    return counts


def _as_labelled(found, must):
    """The peer's "not converging" is our `not_learning` or `stalled`,
    whichever the run is labelled with."""
    if "not_learning" in found and "stalled" in must and "not_learning" not in must:
        return (set(found) - {"not_learning"}) | {"stalled"}
    return set(found)


def did_not_fall(row, length):
    """Whether the run's loss did not fall by `length` (the outcome line)."""
    from kgrad.analysis import outcome

    cut = {
        tag: [(s, v) for s, v in values if s <= length]
        for tag, values in row.scalars.items()
    }
    return not outcome.outcome_line(cut).startswith("loss fell")


def _ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def _misses(rows, lengths):
    """Lines naming each held-out run that misses a target."""
    lines = []
    for row in rows:
        run = row.run
        for n in lengths:
            must, may = labels(row, n)
            found = row.verdicts[n][0]
            wrong = sorted(found - set(must) - set(may))
            missing = sorted(set(must) - found) if n != lengths[0] else []
            if wrong or missing:
                lines.append(
                    f"- {run.half} `{run.name}` at {n} steps: "
                    + ", ".join(
                        [f"false {k}" for k in wrong] + [f"missed {k}" for k in missing]
                    )
                )
    return lines


def _pr(c):
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
    return p, r


def _fmt(value):
    return "-" if value is None else f"{value:.2f}"


def _half_targets(rows, half, n):
    """`(lines, met)` of the held-out targets on the runs of `half` at `n`
    steps. Every kind needs >= 3 labelled runs in both held-out halves
    together (checked with `held_out`); the `fresh` half is judged on the
    kinds it has runs of."""
    lines, met = [], True
    name = half.replace("_", "-")
    counts = score(rows, half, n)
    for kind in KINDS:
        c = counts[kind]
        p, r = _pr(c)
        ok = (p is None or p >= PRECISION) and (r is None or r >= RECALL)
        runs = c["tp"] + c["fn"]
        if half == "fresh" and not runs and not c["fp"]:
            continue
        held = sum(_runs_of(rows, h, kind, n) for h in HELD_OUT)
        if not ok or (held < 3 and half == "held_out"):
            met = False
            lines.append(
                f"- MISSED {name} `{kind}` at {n} steps: precision {_fmt(p)}, "
                f"recall {_fmt(r)} (TP/FP/FN {c['tp']}/{c['fp']}/{c['fn']}; "
                f"{runs} labelled {name} runs, {held} held-out and fresh; "
                f"targets {PRECISION}, {RECALL}, >= 3 runs)"
            )
    mine = [r for r in rows if r.run.half == half]
    healthy = [r for r in mine if labels(r, n) == ((), ())]
    noisy = [r.run.name for r in healthy if r.verdicts[n][0]]
    silent = [r.run.name for r in mine if did_not_fall(r, n) and not r.verdicts[n][0]]
    for what, names in (
        (f"findings on healthy {name} runs ({len(healthy)})", noisy),
        (f"no findings on {name} runs whose loss did not fall", silent),
    ):
        met = met and not names
        lines.append(
            f"- {'MISSED' if names else 'met'}: {what} at {n} steps: "
            f"{len(names)}" + (f" ({', '.join(names)})" if names else "")
        )
    return lines, met


def _runs_of(rows, half, kind, n):
    """Runs of `half` that must get `kind` at `n` steps."""
    return sum(1 for r in rows if r.run.half == half and kind in labels(r, n)[0])


def targets(rows, lengths):
    """`(lines, met)`: each target of the issue with its numbers, at the
    middle and longest `lengths` (300 and 1,000 steps)."""
    lines, met = [], True
    for half in HELD_OUT:
        for n in lengths[1:]:
            kinds, half_met = _half_targets(rows, half, n)
            lines += kinds
            met = met and half_met
    for kind in PEER_KINDS:
        for n in lengths[1:]:
            ours = _pr(score(rows, None, n)[kind])
            theirs = _pr(score(rows, None, n, judge="peer")[kind])
            behind = any(
                a is None or (b is not None and a < b)
                for a, b in zip(ours, theirs, strict=True)
            )
            if behind or ours == theirs:
                met = met and not behind
                lines.append(
                    f"- {'MISSED' if behind else 'tied'}: kgrad ahead of the peer "
                    f"on `{kind}` at {n} steps: kgrad P/R {_fmt(ours[0])}/"
                    f"{_fmt(ours[1])}, peer {_fmt(theirs[0])}/{_fmt(theirs[1])}"
                )
    return lines, met


def _peer_table(rows, lengths):
    out = [
        "## kgrad beside the peer's rules (AutoTrainer), every run",
        "",
        "The peer's published criteria (`benchmarks/diagnosis/diagnosis_peer.py`, its "
        "defaults, checked every 3 epochs) judged on the same runs, both halves "
        '(none of its thresholds was chosen here). Its "not converging" counts '
        "as `not_learning` or `stalled`, whichever the run is labelled with; "
        "it names no overfitting (that decision is commented out in its code).",
        "",
        "| kind | "
        + " | ".join(f"{n}: kgrad P / R | {n}: peer P / R" for n in lengths[1:])
        + " |",
        "|---|" + "---|---|" * len(lengths[1:]),
    ]
    for kind in KINDS:
        cells = []
        for n in lengths[1:]:
            ours = _pr(score(rows, None, n)[kind])
            theirs = _pr(score(rows, None, n, judge="peer")[kind])
            peer = (
                f"{_fmt(theirs[0])} / {_fmt(theirs[1])}"
                if kind in PEER_KINDS
                else "not judged"
            )
            cells += [f"{_fmt(ours[0])} / {_fmt(ours[1])}", peer]
        out.append(f"| `{kind}` | " + " | ".join(cells) + " |")
    return out + [""]


def _timing(seconds, command, trained, workers):
    """How long the runs took to train, as recorded beside their logs."""
    known = [(s, load) for s, load in trained or [] if s is not None]
    line = (
        f"Generated by `{command}` in {seconds / 60:.1f} min wall "
        f"({workers} worker process(es))"
    )
    if known:
        loads = [load for _, load in known if load is not None]
        total = sum(s for s, _ in known) / 60
        line += (
            f"; the {len(known)} runs took {total:.1f}"
            " min to train (and judge once) in all (recorded beside each run's logs"
            + (
                f"; 1-minute load average {min(loads):.1f}-{max(loads):.1f} on 2 "
                "shared CPU cores"
                if loads
                else ""
            )
            + ")"
        )
    return line + ". Not a timing benchmark. Do not edit by hand."


def markdown(rows, lengths, seconds, command, trained=None, workers=1):
    """The text of `docs/DIAGNOSIS.md`."""
    out = [
        "# Diagnosis benchmark: labelled runs judged at three lengths",
        "",
        _timing(seconds, command, trained, workers),
        "",
        "Each run is trained once, to the longest length, with `GradientMonitor` "
        "logging steps 1-8, 16, 32 and every 25th step; it is judged at each length "
        "on its logged history truncated at that length, which is what a run of that "
        "length with the same schedule logs. A run's label is the findings it must "
        "get (at the middle and longest lengths) and those it may get without being "
        "wrong; any other finding is a false positive. At the shortest length a "
        "missing finding is not counted (the problem may not show yet), a wrong one "
        "is. Thresholds were chosen on the **calibration** runs. The **held-out** "
        "runs were not used to choose them until the session of 2026-12-08, which "
        "changed rules and labels knowing their results (each change is listed "
        "below); the **fresh** runs, written after those changes and before they "
        "were trained, are the independent test, reported apart.",
        "",
    ]
    for half in HALVES:
        if not any(row.run.half == half for row in rows):
            continue
        out += [f"## {half.replace('_', '-')} runs: per finding kind", ""]
        out += [
            "| kind | " + " | ".join(f"{n}: TP/FP/FN | P | R" for n in lengths) + " |"
        ]
        out += ["|---|" + "---|---|---|" * len(lengths)]
        for kind in KINDS:
            cells = []
            for n in lengths:
                c = score(rows, half, n, shortest=n == lengths[0])[kind]
                cells += [
                    f"{c['tp']}/{c['fp']}/{c['fn']}",
                    _ratio(c["tp"], c["tp"] + c["fp"]),
                    _ratio(c["tp"], c["tp"] + c["fn"]),
                ]
            out.append(f"| `{kind}` | " + " | ".join(cells) + " |")
        out.append("")
    out += _peer_table(rows, lengths)
    lines, met = targets(rows, lengths)
    out += ["## Targets (held-out and fresh, 300 and 1,000 steps)", ""]
    out += lines if lines else []
    out += ["", "All targets met." if met else "Not all targets are met (above).", ""]
    out += ["## Runs that miss their label", ""]
    misses = _misses(rows, lengths)
    out += misses or ["None: every run gets its label at every length."]
    flickers = sum(row.verdicts[n][1] for row in rows for n in lengths[-1:])
    steps = sum(len(_logged(row, lengths[-1])) for row in rows)
    out += [
        "",
        "## Stability",
        "",
        f"Findings that clear and are back within 3 logged steps, over every "
        f"prefix of every run up to {lengths[-1]} steps: {flickers} in {steps} "
        "logged steps judged.",
        "",
        "## Runs",
        "",
        "| run | half | what | must | "
        + " | ".join(f"found at {n}" for n in lengths)
        + " | peer at 1000 | outcome at 1000 |",
        "|---|---|---|---|" + "---|" * len(lengths) + "---|---|",
    ]
    for row in rows:
        run = row.run
        found = [", ".join(sorted(row.verdicts[n][0])) or "none" for n in lengths]
        out.append(
            f"| `{run.name}` | {run.half} | {run.what} | "
            f"{', '.join(run.must) or 'none'} | "
            + " | ".join(found)
            + f" | {', '.join(sorted(row.peer.get(lengths[-1], ()))) or 'none'}"
            + f" | {_outcome(row)} |"
        )
    out += diagnosis_outcome_reading.sections(rows, lengths)
    out += diagnosis_measured.sections(rows, lengths)
    return "\n".join(out)


def _outcome(row):
    from kgrad.analysis import outcome

    return outcome.outcome_line(row.scalars)


def _logged(row, length):
    return [
        s
        for s, v in row.scalars.get(tags.GLOBAL_GRAD_NORM, [])
        if s <= length and not math.isnan(float(s))
    ]
