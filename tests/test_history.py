"""The bounded scalar record and the finding tracker the callback diagnoses with."""

from kgrad.analysis.diagnostics import Finding
from kgrad.analysis.history import FindingTracker, ScalarHistory


def test_history_keeps_the_first_and_the_latest_values():
    history = ScalarHistory(keep=3, head=2)
    for step in range(1, 11):
        history.add(step, [("grad_norm/global", float(step))])
    assert history.scalars()["grad_norm/global"] == [
        (1, 1.0),
        (2, 2.0),
        (8, 8.0),
        (9, 9.0),
        (10, 10.0),
    ]
    # head and tail overlap early: each value once
    short = ScalarHistory(keep=3, head=8)
    for step in range(1, 5):
        short.add(step, [("loss", float(step))])
    assert short.scalars()["loss"] == [(s, float(s)) for s in range(1, 5)]


def finding(kind, *layers):
    return Finding(kind, "warning", layers, "evidence", "advice")


def test_tracker_reports_a_kind_once_until_it_clears():
    tracker = FindingTracker()
    appeared, cleared = tracker.update([finding("dead_units", "d1")])
    assert [f.kind for f in appeared] == ["dead_units"] and cleared == []
    # More layers affected: the same problem, nothing new to print.
    assert tracker.update([finding("dead_units", "d1", "d2")]) == ([], [])
    appeared, cleared = tracker.update([finding("vanishing", "d1")])
    assert [f.kind for f in appeared] == ["vanishing"]
    assert [f.kind for f in cleared] == ["dead_units"]
