"""`kgrad report --json` and `--fail-on`: the diagnosis of runs for scripts.

Example:

>>> from kgrad.analysis.diagnostics import Finding
>>> finding = Finding("exploding", "warning", ("m/d",), "grew.", "clip.", step=9)
>>> worst_severity({"run": [finding]})
'warning'
>>> at_or_above({"run": [finding]}, "error")
False
"""

import json

from kgrad.analysis import diagnostics, layer_profile, outcome

FAIL_LEVELS = ("warning", "error")


def finding_dict(finding):
    """A `Finding` as plain JSON-able data."""
    return {
        "kind": finding.kind,
        "severity": finding.severity,
        "layers": list(finding.layers),
        "step": finding.step,
        "numbers": {name: _number(value) for name, value in finding.numbers},
        "evidence": finding.evidence,
        "advice": finding.advice,
        "message": finding.message(),
    }


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
        "layers", "findings"}]}`; `outcome` is the sentence of
        `kgrad.analysis.outcome.outcome_line`, `layers` lists each layer's
        gradient norm at the last logged step, input first.
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
                    {"layer": r.layer, "grad_norm": _number(r.grad_norm)} for r in rows
                ],
                "findings": [finding_dict(f) for f in findings[name]],
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


def _number(value):
    """JSON has no NaN/Inf: they become `None`."""
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None
