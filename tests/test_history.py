"""The bounded scalar record the callback diagnoses with."""

from kgrad.analysis.history import ScalarHistory


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
