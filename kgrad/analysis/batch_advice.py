"""Advice on the batch size, from the gradient noise scale `B_simple`.

`B_simple` (`GradientMonitor(noise_scale=True)`, `kgrad.monitor.log.noise_scale`)
estimates the critical batch of McCandlish et al. (2018): below it, doubling
the batch about halves the steps to a given loss at nearly the same compute;
above it, extra examples per step buy almost nothing. The rule compares the
batch of the logged steps with the median of `b_simple/global` over the last
`Thresholds.window` logged steps, and gives advice (a severity below warning,
printed with `verbose=2`) when they are more than `FACTOR` apart. The noise
scale grows as the loss falls, so the advice may change during training.
`report_lines` shows `B_simple` over the steps in `kgrad report`.
Tested by `tests/test_batch_advice.py`.

Example:

>>> scalars = {tags.GLOBAL_B_SIMPLE: [(s, 1500.0) for s in range(1, 6)],
...            tags.NOISE_BATCH: [(s, 32.0) for s in range(1, 6)]}
>>> [f.kind for f in batch_size(scalars, window=5)]
['batch_size']
"""

import numpy as np

from kgrad import tags
from kgrad.analysis.findings import Finding

FACTOR = 4.0
"""Advice when the batch and `B_simple` are more than this factor apart."""


def batch_size(scalars, window=5):
    """`[Finding]` of kind `"batch_size"` (severity `"advice"`), or `[]`."""
    noise = [v for _, v in scalars.get(tags.GLOBAL_B_SIMPLE, [])[-window:]]
    batches = [v for _, v in scalars.get(tags.NOISE_BATCH, [])[-window:]]
    if len(noise) < window or not batches:
        return []
    b_simple, batch = float(np.median(noise)), float(np.median(batches))
    numbers = (("b_simple", b_simple), ("batch", batch))
    evidence = (
        f"The gradient noise scale B_simple is {b_simple:,.0f} (median of the "
        f"last {window} logged steps) against a batch of {batch:,.0f} (median)."
    )
    if batch * FACTOR < b_simple:
        advice = (
            f"Batches up to about {b_simple:,.0f} would train in proportionally "
            "fewer steps at nearly the same compute (McCandlish et al. 2018); "
            "scale the learning rate with the batch."
        )
    elif batch > FACTOR * b_simple:
        advice = (
            f"Batches above about {b_simple:,.0f} spend compute for little: a "
            "smaller batch reaches the same loss with fewer examples."
        )
    else:
        return []
    return [Finding("batch_size", "advice", (), evidence, advice, numbers=numbers)]


POINTS = 6
"""Logged steps `report_lines` shows, evenly spaced from first to last."""


def report_lines(scalars):
    """`kgrad report`'s lines on the noise scale: `B_simple` over the steps.

    Example:

    >>> scalars = {tags.GLOBAL_B_SIMPLE: [(1, 20.0), (50, 180.0)],
    ...            tags.NOISE_BATCH: [(1, 32.0)],
    ...            tags.NOISE_COVERED: [(50, 1.0)], tags.LOSS: [(50, 0.4)]}
    >>> print(report_lines(scalars)[0])
    noise scale B_simple (batch 32, 100% of the gradient covered):
    >>> print(report_lines(scalars)[1])
      20 (step 1) -> 180 (step 50, loss 0.40)
    """
    logged = scalars.get(tags.GLOBAL_B_SIMPLE, [])
    if not logged:
        return []
    batch = np.median([v for _, v in scalars.get(tags.NOISE_BATCH, [(0, np.nan)])])
    covered = scalars.get(tags.NOISE_COVERED, [(0, np.nan)])[-1][1]
    losses = dict(scalars.get(tags.LOSS, []))
    picked = sorted({round(i) for i in np.linspace(0, len(logged) - 1, POINTS)})
    points = []
    for step, value in (logged[i] for i in picked):
        loss = f", loss {losses[step]:.2f}" if step in losses else ""
        points.append(f"{value:,.0f} (step {step}{loss})")
    head = (
        f"noise scale B_simple (batch {batch:,.0f}, {covered:.0%} of the "
        "gradient covered):"
    )
    return [head, "  " + " -> ".join(points), ""]
