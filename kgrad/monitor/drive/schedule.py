"""Which training steps GradientMonitor logs, and the arguments that say so.

Steps count optimizer updates from 1. Norms and histograms take the same
forms (`norms_every`, `histograms_every`):

| value | logged steps |
|---|---|
| `"batch"` | every step (every call of the train function) |
| `"epoch"` | the first step of each epoch |
| `N` (int >= 1) | step 1 and every N-th step (N, 2N, ...) |
| `0` or `None` | never |

Norms are also logged early, where gradient problems show first: at every
one of the first `ALL_EARLY_STEPS` (8) steps, then at the doubling steps 16,
32, ... up to `first_steps` (steps 1-8, 16 and 32 with the default 50). A
blow-up in the first steps is caught at its step (a run whose loss turns NaN
at step 3 may stop there), later ones within a factor of two of their step,
for the cost of a handful of logged steps: logging every one of the first 50
made a fresh 200-step ResNet-18 fit about 10% slower. `keras.callbacks.TensorBoard`'s
`histogram_freq` counts epochs and `update_freq` means something else again,
so GradientMonitor refuses those names (and its own former `norm_freq`) with
a `TypeError` naming the argument to use: a Keras habit costs nothing.

A fresh monitor counts steps from where training resumes (`trained_steps`):
after `keras.callbacks.BackupAndRestore` or `fit(initial_epoch=k)` the grid
and the early steps are those of the uninterrupted run. Tested in
tests/test_schedule.py and tests/test_resume.py.

Example:

>>> early = Schedule(norms_every=100, histograms_every=500, first_steps=50)
>>> [step for step in range(1, 101) if early.due(step, step, False)[0]]
[1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 100]
>>> Schedule(norms_every=100, histograms_every="epoch", first_steps=0).due(9, 9, True)
(False, True)
"""

import numbers

import numpy as np

ALL_EARLY_STEPS = 8  # logged one by one; then doubling steps up to `first_steps`

_WORDS = ("batch", "epoch")

_RENAMED = {
    "histogram_freq": (
        "histograms_every",
        "in `keras.callbacks.TensorBoard` it counts epochs",
    ),
    "update_freq": (
        "norms_every",
        "in `keras.callbacks.TensorBoard` it is for scalars",
    ),
    "norm_freq": ("norms_every", "it was renamed"),
}


def reject_renamed(owner, kwargs):
    """Raises `TypeError` for keyword arguments `owner` does not take.

    Names borrowed from `keras.callbacks.TensorBoard` get a message that says
    which argument to use instead.

    Example:

    >>> reject_renamed("GradientMonitor", {})
    """
    for name, value in kwargs.items():
        received = f"Received: {name}={value!r}"
        if name in _RENAMED:
            new, why = _RENAMED[name]
            raise TypeError(
                f"`{name}` is not an argument of {owner} ({why}): use `{new}`, "
                '"epoch" for once per epoch, "batch" for every step or an '
                f"integer N for every N steps. {received}"
            )
        raise TypeError(f"{owner} got an unexpected keyword argument `{name}`.")


def check_every(name, value):
    """Checks a frequency: `"batch"`, `"epoch"`, an int >= 0 or `None`.

    Returns:
        The frequency, with `None` as `0` (off).
    """
    message = (
        f'`{name}` must be "batch", "epoch", a non-negative integer or None. '
        f"Received: {name}={value!r}"
    )
    if value is None:
        return 0
    if isinstance(value, str):
        if value not in _WORDS:
            raise ValueError(message)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(message)
    if value < 0:
        raise ValueError(message)
    return int(value)


def _check_first_steps(value):
    message = (
        f"`first_steps` must be a non-negative integer. Received: first_steps={value!r}"
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(message)
    if value < 0:
        raise ValueError(message)
    return int(value)


class Schedule:
    """Decides whether a chunk of training steps contains a logged step.

    Its attributes can be changed at any time (between batches); each
    assignment is checked like the constructor's arguments.

    Args:
        norms_every: When to log norms (see the module's table).
        histograms_every: When to log histograms (same forms).
        first_steps: Norms are also logged at steps 1-8, 16, 32, ... up to it.

    Raises:
        TypeError, ValueError: For a frequency of another form.
    """

    def __init__(self, norms_every, histograms_every, first_steps):
        self.norms_every = norms_every
        self.histograms_every = histograms_every
        self.first_steps = first_steps

    def __setattr__(self, name, value):
        if name in ("norms_every", "histograms_every"):
            value = check_every(name, value)
        elif name == "first_steps":
            value = _check_first_steps(value)
        super().__setattr__(name, value)

    def due(self, first, last, epoch_start):
        """Returns `(norms, histograms)`: whether steps `first..last` hold one.

        Args:
            first: First step of the chunk (1-based).
            last: Last step of the chunk.
            epoch_start: Whether the chunk starts an epoch.
        """
        end = min(last, self.first_steps)
        early = first <= min(end, ALL_EARLY_STEPS) or _holds_power_of_two(first, end)
        norms = _due(self.norms_every, first, last, epoch_start) or (
            bool(self.norms_every) and early
        )
        histograms = _due(self.histograms_every, first, last, epoch_start)
        return norms, histograms


def _due(every, first, last, epoch_start):
    if every == "batch":
        return True
    if every == "epoch":
        return epoch_start
    return bool(every) and (first == 1 or last // every > (first - 1) // every)


def _holds_power_of_two(first, last):
    """Whether some power of two (1, 2, 4, ...) lies in `first..last`."""
    return first <= last and 1 << max(first - 1, 0).bit_length() <= last


def trained_steps(model, epoch, steps_per_epoch):
    """Train steps already run when a `fit` starts its epoch `epoch`.

    Args:
        model: The model, after any restore.
        epoch: The first epoch of the `fit` (0-based; `initial_epoch`).
        steps_per_epoch: Steps per epoch (`params["steps"]`), or `None`.

    The larger of the epochs already run times the steps per epoch and the
    optimizer's update count (times its gradient accumulation), read after
    `BackupAndRestore` restored the model in its `on_train_begin`.

    Returns:
        An int >= 0.
    """
    by_epochs = epoch * steps_per_epoch if steps_per_epoch else 0
    optimizer = getattr(model, "optimizer", None)
    by_updates = 0
    if optimizer is not None and getattr(optimizer, "built", False):
        accumulation = getattr(optimizer, "gradient_accumulation_steps", None) or 1
        value = getattr(optimizer.iterations, "value", optimizer.iterations)
        count = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        by_updates = int(count) * accumulation
    return max(by_epochs, by_updates)
