"""Findings on the time axis: the records the monitor wrote, for the tab.

The monitor writes its findings as data (`tags.FINDINGS_DATA`, the format of
`kgrad.findings_record`): the last text of a run holds every finding with the
step it appeared and the step it cleared. The tab reads those records, never
the prose of `tags.FINDINGS`. A run written before findings were data has no
structured findings: the route says so (`structured: false`) and the prose
stays in TensorBoard's Text tab.

Tested by `tests/test_dashboard_routes.py` and `tests/test_findings_record.py`.

Example:

>>> from kgrad import findings_record
>>> record = {"id": "dead_units@4", "kind": "dead_units", "statistic": "dead_units",
...           "severity": "warning", "first_step": 4, "cleared_step": 9}
>>> texts = [(9, findings_record.dumps([record], 9))]
>>> found = timeline(texts, heat_maps=("grad_norm", "dead_units"))
>>> [(f["id"], f["heat_map"], f["cleared_step"]) for f in found["findings"]]
[('dead_units@4', 'dead_units', 9)]
"""

from kgrad import findings_record, tags

NO_DATA = (
    "no structured findings: this run was written by a kgrad that wrote its "
    "findings as prose only (see TensorBoard's Text tab)"
)


def timeline(texts, heat_maps):
    """The findings of a run from its `tags.FINDINGS_DATA` texts.

    Args:
        texts: `[(step, text)]` of the tag, as read back.
        heat_maps: The statistics the tab draws as heat maps
            (`kgrad.dashboard.series.STATISTICS`).

    Returns:
        `{"findings", "structured", "note"}`: `findings` the records (every
        field of `kgrad.findings_record`) in order of appearance, each with
        `heat_map`, the map that shows its statistic (`tags.GRAD_NORM` when
        none does: the loss, the batch size); `structured` whether the run
        has records; `note` why not (else `None`).
    """
    records = findings_record.records_of(texts)
    if records is None:
        return {"findings": [], "structured": False, "note": NO_DATA}
    found = []
    for entry in records:
        shown = entry.get("statistic")
        found.append(
            dict(entry, heat_map=shown if shown in heat_maps else tags.GRAD_NORM)
        )
    return {"findings": found, "structured": True, "note": None}
