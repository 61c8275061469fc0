"""The training loss logged beside the gradients, and its trend.

Pure Python and numpy. The callback logs the loss of each logged step as
`tags.LOSS` (`kgrad.monitor.step.loss_probe`); the rules use its trend to tell
"not learning" from "not yet learned".

Example:

>>> scalars = {tags.LOSS: [(s, 1.0 / s) for s in range(1, 11)]}
>>> round(improvement(scalars), 2)
0.78
"""

import math

import numpy as np

from kgrad import tags


def losses(scalars):
    """`[(step, loss)]` of the finite logged losses."""
    return [(s, v) for s, v in scalars.get(tags.LOSS, []) if math.isfinite(v)]


def improvement(scalars, k=3):
    """How much of the starting loss is gone: `1 - recent / start`.

    `start` is the median of the first `k` logged losses, `recent` the median
    of the last `k`. NaN when fewer than `2 k` losses are logged or the start
    is not positive.

    Returns:
        A float; 0 for a loss that has not moved, near 1 for a task learned.
    """
    values = [v for _, v in losses(scalars)]
    if len(values) < 2 * k:
        return math.nan
    start, recent = float(np.median(values[:k])), float(np.median(values[-k:]))
    if start <= 0:
        return math.nan
    return 1.0 - recent / start


def loss_at(scalars, step):
    """The loss logged at `step`, or NaN."""
    return dict(scalars.get(tags.LOSS, [])).get(step, math.nan)


def report_line(scalars):
    """One text line: the loss at the first and last logged step, beside the
    global gradient norm at the same steps; `None` when no loss was logged.

    Example:

    >>> scalars = {tags.LOSS: [(1, 2.0), (9, 0.5)],
    ...            tags.GLOBAL_GRAD_NORM: [(1, 1.0), (9, 0.1)]}
    >>> for part in report_line(scalars).split("; "):
    ...     print(part)
    loss 2.00e+00 (step 1) -> 5.00e-01 (step 9), 75% gone
    global grad norm 1.0e+00 -> 1.0e-01
    """
    logged = scalars.get(tags.LOSS, [])
    if not logged:
        return None
    (first, start), (last, end) = logged[0], logged[-1]
    norms = dict(scalars.get(tags.GLOBAL_GRAD_NORM, []))
    gone = 1.0 - end / start if start > 0 and math.isfinite(end) else math.nan
    share = f"{gone:.0%} gone" if math.isfinite(gone) else "not finite"
    line = f"loss {start:.2e} (step {first}) -> {end:.2e} (step {last}), {share}"
    if first in norms and last in norms:
        line += f"; global grad norm {norms[first]:.1e} -> {norms[last]:.1e}"
    return line


def stalled(scalars, drop, min_points):
    """Whether the loss has stopped falling: "not learning", not "not yet".

    The logged steps are cut in thirds of the steps run (not of the losses
    logged: the monitor logs the first steps densely, which would put the
    fast initial fall, e.g. to the mean predictor, in the middle third); the
    loss has stalled when the median of the last third is above `1 - drop`
    times the median of the middle third.

    Args:
        scalars: `kgrad.analysis.diagnostics.Scalars`.
        drop: The share of the loss the last third must shed to count as
            learning, e.g. `0.1`.
        min_points: Fewest losses in the middle and last thirds together (at
            least 2 in each); with fewer, `False` (too early to say).

    Returns:
        `True` when the loss has stalled; `False` when it falls, or when too
        few losses are logged (none, for a custom `train_step`).

    Example:

    >>> flat = {tags.LOSS: [(s, 0.17 + 0.01 * (s % 2)) for s in range(1, 31)]}
    >>> stalled(flat, drop=0.1, min_points=5)
    True
    >>> falling = {tags.LOSS: [(s, 1.0 / s) for s in range(1, 31)]}
    >>> stalled(falling, drop=0.1, min_points=5)
    False
    """
    logged = losses(scalars)
    if not logged:
        return False
    end = logged[-1][0]
    middle = [v for s, v in logged if end / 3 < s <= 2 * end / 3]
    last = [v for s, v in logged if s > 2 * end / 3]
    if len(middle) < 2 or len(last) < 2 or len(middle) + len(last) < min_points:
        return False
    return float(np.median(last)) > (1.0 - drop) * float(np.median(middle))
