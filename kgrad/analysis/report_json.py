"""`kgrad report --json` and `--fail-on`: the diagnosis of runs for scripts.

Findings are `kgrad.findings_record` records. Tested by `tests/test_report_json.py`
and `tests/test_findings_record.py`.

Example:

>>> from kgrad.analysis.diagnostics import Finding
>>> finding = Finding("exploding", "warning", ("m/d",), "grew.", "clip.", step=9)
>>> worst_severity({"run": [finding]})
'warning'
>>> at_or_above({"run": [finding]}, "error")
False
"""

import json

from kgrad import findings_record
from kgrad.analysis import diagnostics, layer_profile, outcome

FAIL_LEVELS = ("warning", "error")


def finding_dict(finding, recorded=None):
    """A `Finding` as a `kgrad.findings_record` record, with `step` and `message`.

    Args:
        finding: The finding, diagnosed at its `step` (the last logged step).
        recorded: The records the monitor wrote while training
            (`run_info["recorded_findings"]`), or `None`. A record of the same
            kind still active gives its `id` and `first_step`; else both are
            those of this diagnosis.
    """
    active = {r.get("kind"): r for r in recorded or () if r.get("cleared_step") is None}
    first = active.get(finding.kind, {}).get("first_step", finding.step)
    data = findings_record.record(finding, first, finding.step)
    data.update(step=finding.step, message=finding.message())
    return data


def diagnose_runs(runs, thresholds=None):
    """`{name: [Finding, ...]}` for `{name: (scalars, run_info)}`."""
    return {
        name: diagnostics.diagnose(scalars, run_info, thresholds)
        for name, (scalars, run_info) in runs.items()
    }


def runs_json(runs, findings):
    """The JSON text of `kgrad report --json`.

    Args:
        runs: `{name: (scalars, run_info)}`.
        findings: `{name: [Finding, ...]}` (`diagnose_runs`).

    Returns:
        A JSON object `{"runs": [{"name", "model", "outcome", "steps",
        "layers", "findings", "recorded_findings"}]}`; `outcome` is the
        sentence of `kgrad.analysis.outcome.outcome_line`, `layers` lists each
        layer's gradient norm at the last logged step, input first;
        `findings` the diagnosis of the whole run (`finding_dict`);
        `recorded_findings` the records the monitor wrote while training,
        every finding with the steps it appeared and cleared (`null` for a
        run written before findings were data: no structured findings).
    """
    out = []
    for name, (scalars, run_info) in runs.items():
        rows = layer_profile.layer_profile(scalars, run_info)
        out.append(
            {
                "name": name,
                "model": (run_info or {}).get("model"),
                "outcome": outcome.outcome_line(scalars),
                "steps": layer_profile.norm_steps(scalars),
                "layers": [
                    {
                        "layer": r.layer,
                        "grad_norm": findings_record.json_number(r.grad_norm),
                    }
                    for r in rows
                ],
                "findings": [
                    finding_dict(f, (run_info or {}).get("recorded_findings"))
                    for f in findings[name]
                ],
                "recorded_findings": (run_info or {}).get("recorded_findings"),
            }
        )
    return json.dumps({"runs": out}, indent=2)


def worst_severity(findings):
    """The most severe severity among `{name: [Finding]}`, or `None`."""
    present = {f.severity for found in findings.values() for f in found}
    return next((s for s in diagnostics.SEVERITIES if s in present), None)


def at_or_above(findings, level):
    """Whether any finding is at least as severe as `level` (`FAIL_LEVELS`)."""
    rank = diagnostics.SEVERITIES.index
    return any(
        rank(f.severity) <= rank(level) for found in findings.values() for f in found
    )
