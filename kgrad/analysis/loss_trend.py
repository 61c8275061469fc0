"""The training loss logged beside the gradients, and its trend.

Pure Python and numpy. The callback logs the loss of each logged step as
`kgrad/loss` (`kgrad.monitor.loss_probe`); the rules use its trend to tell
"not learning" from "not yet learned".

Example:

>>> scalars = {LOSS_TAG: [(s, 1.0 / s) for s in range(1, 11)]}
>>> round(improvement(scalars), 2)
0.88
"""

import math

import numpy as np

LOSS_TAG = "kgrad/loss"
EPOCH_PREFIX = "kgrad/epoch/"


def losses(scalars):
    """`[(step, loss)]` of the finite logged losses."""
    return [(s, v) for s, v in scalars.get(LOSS_TAG, []) if math.isfinite(v)]


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
