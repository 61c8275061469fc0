"""Which training steps GradientMonitor logs.

Steps count optimizer updates from 1. Norms are logged at each of the first
`first_steps` steps (where gradient problems show first, docs/CLAIMS.md, claim 14)
and then every `norm_freq` steps; histograms at step 1 and every
`histogram_freq` steps, or at the first step of each epoch (`"epoch"`).

Example:

>>> Schedule(norm_freq=100, histogram_freq=500, first_steps=50).due(60, 60, False)
(False, False)
>>> Schedule(norm_freq=100, histogram_freq=500, first_steps=50).due(97, 104, False)
(True, False)
"""


class Schedule:
    """Decides whether a chunk of training steps contains a logged step.

    Args:
        norm_freq: Norm logging period in steps; 0 turns norms off.
        histogram_freq: Histogram period in steps, `"epoch"`, or 0 (off).
        first_steps: Number of initial steps whose norms are all logged.

    Raises:
        ValueError: For negative or non-integer frequencies.
    """

    def __init__(self, norm_freq, histogram_freq, first_steps):
        _check_non_negative_int("norm_freq", norm_freq)
        if histogram_freq != "epoch":
            _check_non_negative_int("histogram_freq", histogram_freq)
        _check_non_negative_int("first_steps", first_steps)
        self.norm_freq = norm_freq
        self.histogram_freq = histogram_freq
        self.first_steps = first_steps

    def due(self, first, last, epoch_start):
        """Returns `(norms, histograms)`: whether steps `first..last` hold one.

        Args:
            first: First step of the chunk (1-based).
            last: Last step of the chunk.
            epoch_start: Whether the chunk starts an epoch.
        """
        norms = bool(self.norm_freq) and (
            first <= self.first_steps or _has_multiple(first, last, self.norm_freq)
        )
        if self.histogram_freq == "epoch":
            histograms = epoch_start
        else:
            histograms = bool(self.histogram_freq) and (
                first == 1 or _has_multiple(first, last, self.histogram_freq)
            )
        return norms, histograms


def _has_multiple(first, last, period):
    return last // period > (first - 1) // period


def _check_non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"`{name}` must be a non-negative integer. Received: {name}={value!r}"
        )
