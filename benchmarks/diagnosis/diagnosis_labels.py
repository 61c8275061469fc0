"""What a run must and may get at a length (`diagnosis_table.py` scores it).

A run's label is written before it is trained (`diagnosis_runs.py`). One
part of it is a fact its own logs can check without any rule of kgrad's:
whether it reached NaN/Inf. The rule, written on 2026-12-08 before the
`fresh` runs were trained: a run labelled `nonfinite` whose logged loss and
global gradient norm are finite at every step up to a length did not do what
it was written for at that length. There it must get the rest of its label
only, and may get what a rate too large causes instead (`TOO_FAST`); it is
named under "Runs that did not do what they were written for".

Example:

    must, may = labels(row, 1000)
"""

import math

from kgrad import tags

TOO_FAST = ("dead_units", "exploding", "not_learning", "stalled", "unstable")


def reached_nonfinite(scalars, length):
    """Whether a loss or global gradient norm logged by `length` is NaN/Inf."""
    return any(
        s <= length and not math.isfinite(v)
        for tag in (tags.LOSS, tags.GLOBAL_GRAD_NORM)
        for s, v in scalars.get(tag, [])
    )


def did_not_reach_nan(row, length):
    """Whether `row`'s run was written to reach NaN and had not by `length`."""
    return "nonfinite" in row.run.must and not reached_nonfinite(row.scalars, length)


def labels(row, length):
    """`(must, may)` of `row`'s run at `length`."""
    run = row.run
    if did_not_reach_nan(row, length):
        must = tuple(k for k in run.must if k != "nonfinite")
        return must, tuple(dict.fromkeys(run.may + TOO_FAST))
    return run.must, run.may
