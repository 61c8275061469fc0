"""Findings as data: the record format of `tags.FINDINGS_DATA`, and its timeline.

Beside the prose of `tags.FINDINGS` (for people, in TensorBoard's Text tab),
the monitor writes at each diagnosis the findings of the run as JSON, so that
`kgrad report`, `kgrad report --json` and the Gradients tab read data, never
English. Tested by `tests/test_findings_record.py`.

The text of `tags.FINDINGS_DATA` at step `s` is a JSON object in a markdown
code block (so that the Text tab shows it as code): `{"version": 1, "step":
s, "findings": [record, ...]}`, every finding its monitor has seen in the run
so far, in the order they appeared, cleared ones included (a new monitor on
the same run directory starts a new timeline). The last text is therefore the whole
timeline: a reader never needs an earlier one (TensorBoard keeps only a
sample of a tag's texts, always with the last). A record:

| field | what |
|---|---|
| `id` | `<kind>@<first_step>`: stable while the finding stays active, its |
|  | layers or numbers changing; a finding that clears and comes back is new |
| `kind` | `Finding.kind` (`"vanishing"`, `"dead_units"`, `"stalled"`, ...) |
| `severity` | `"error"`, `"warning"` or `"advice"` |
| `title` | the first sentence of the message (`Finding.title()`) |
| `statistic` | what it is judged on: a `kgrad.tags` statistic |
|  | (`tags.GRAD_NORM`, `tags.UPDATE_RATIO`, `tags.TEMPORAL_GRAD`, ...), |
|  | `tags.LOSS`, or `null` (`Finding.about()`) |
| `layers` | every layer concerned, input first (recurrent layers by their |
|  | own path, never their cell), never a healthy reference layer |
| `reference_layers` | healthy layers it compares against (the output side |
|  | of a vanishing gradient) |
| `first_step`, `last_step` | first and last logged step diagnosed with it |
| `cleared_step` | the first diagnosed step without it, `null` while active |
| `numbers` | `{name: value}` behind the verdict (`null` for NaN/Inf) |
| `evidence`, `advice`, `text` | the prose: the numbers, the fix, the whole |
|  | message (`Finding.message()`) |

Runs written before this format have no `tags.FINDINGS_DATA`: readers say
"no structured findings" (`records_of` returns `None`) and never parse the
prose.

Example:

>>> from kgrad.analysis.findings import Finding
>>> timeline = Timeline()
>>> appeared, _ = timeline.update([Finding("dead_units", "warning", ("m/d1",),
...                                        "80% dead.", "Use LeakyReLU.")], step=4)
>>> _ = timeline.update([Finding("dead_units", "warning", ("m/d1", "m/d2"),
...                              "85% dead.", "Use LeakyReLU.")], step=9)
>>> [(r["id"], r["layers"], r["last_step"]) for r in timeline.records]
[('dead_units@4', ['m/d1', 'm/d2'], 9)]
>>> records_of([(9, dumps(timeline.records, 9))]) == timeline.records
True
"""

import json
import math

VERSION = 1
_FENCE = "```"


def record(finding, first_step, last_step, cleared_step=None):
    """The record of `finding` (a `kgrad.analysis.findings.Finding`), as JSON data.

    Args:
        finding: The finding, as last diagnosed.
        first_step: The first logged step diagnosed with it.
        last_step: The last logged step diagnosed with it.
        cleared_step: The first step diagnosed without it, or `None`.
            Defaults to `None`.

    Returns:
        A dict with the fields of the module docstring.
    """
    return {
        "id": f"{finding.kind}@{first_step}",
        "kind": finding.kind,
        "severity": finding.severity,
        "title": finding.title(),
        "statistic": finding.about(),
        "layers": list(finding.layers),
        "reference_layers": list(finding.reference_layers),
        "first_step": first_step,
        "last_step": last_step,
        "cleared_step": cleared_step,
        "numbers": {name: json_number(value) for name, value in finding.numbers},
        "evidence": finding.evidence,
        "advice": finding.advice,
        "text": finding.message(),
    }


class Timeline:
    """The findings of one run over its diagnoses: what appeared, what cleared.

    Findings are told apart by kind: a vanishing-gradient finding whose list
    of layers grows is the same finding (same `id`), not a new one.

    Attributes:
        records: Every finding so far as a record, in the order they appeared.
        active: The findings active at the last diagnosis, as diagnosed.
    """

    def __init__(self):
        self.records = []
        self._active = {}  # kind -> (finding, its record)

    @property
    def active(self):
        return [finding for finding, _ in self._active.values()]

    def update(self, findings, step):
        """Takes the findings of a diagnosis at logged step `step`.

        Returns:
            `(appeared, cleared)`: the `Finding`s new since the last
            diagnosis, and those no longer found.
        """
        current = {}
        for finding in findings:
            current.setdefault(finding.kind, finding)
        cleared = []
        for kind in [k for k in self._active if k not in current]:
            finding, entry = self._active.pop(kind)
            entry["cleared_step"] = step
            cleared.append(finding)
        appeared = []
        for kind, finding in current.items():
            if kind in self._active:
                entry = self._active[kind][1]
                entry.update(record(finding, entry["first_step"], step))
            else:
                entry = record(finding, step, step)
                self.records.append(entry)
                appeared.append(finding)
            self._active[kind] = (finding, entry)
        return appeared, cleared


def dumps(records, step):
    """The `tags.FINDINGS_DATA` text of `records` written at `step`."""
    data = {"version": VERSION, "step": step, "findings": records}
    return f"{_FENCE}json\n{json.dumps(data, indent=1)}\n{_FENCE}"


def loads(text):
    """The records of one `tags.FINDINGS_DATA` text.

    Raises:
        ValueError: If `text` is not such a text (or of a later version).
    """
    body = text.strip()
    if body.startswith(_FENCE):
        body = body.split("\n", 1)[-1].rsplit(_FENCE, 1)[0]
    data = json.loads(body)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} findings record: {text[:80]!r}")
    found = data.get("findings")
    if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
        raise ValueError(f"findings must be a list of records: {text[:80]!r}")
    return found


def records_of(texts):
    """The records of a run from its `tags.FINDINGS_DATA` texts, or `None`.

    Args:
        texts: `[(step, text)]` of the tag, as read back.

    Returns:
        The records of the last text of the highest step that reads (the
        whole timeline), or `None` when no text does: a run written before
        findings were data, whose findings are only prose.
    """
    for _, text in reversed(sorted(texts, key=lambda pair: pair[0])):
        try:
            return loads(text)
        except ValueError:
            continue
    return None


def json_number(value):
    """JSON has no NaN/Inf: they become `None`."""
    value = float(value)
    return value if math.isfinite(value) else None
