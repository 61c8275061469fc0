"""How GradientMonitor hands its findings to the user: printed, kept, acted on.

- `verbose=1` prints each finding when it appears and when it clears, through
  the channel Keras's own callbacks print with (`io_utils.print_msg`: stdout,
  or absl logging after `keras.config.disable_interactive_logging()`);
  `verbose=0` prints nothing.
- `FindingLog` keeps them as data: `current` (active now) and `history`
  (every finding in the order it appeared, with its step).
- `on_finding(finding, monitor)` is called for each finding that appears, on
  the training thread, at the end of the epoch that revealed it (or right
  after a logged step with NaN/Inf gradients); it may set
  `monitor.model.stop_training = True` or change the learning rate.

Example:

>>> channel = FindingsChannel(verbose=0, on_finding=None)
>>> channel.update([], monitor=None)
False
>>> channel.log.current, channel.log.history
([], [])
"""

from kgrad.analysis.history import FindingTracker
from kgrad.monitor import keras_hooks

VERBOSE = (0, 1)


class FindingLog:
    """The findings of the current `fit`, as data.

    Attributes:
        current: The `Finding`s active at the last diagnosis.
        history: Every `Finding` in the order it appeared (a finding that
            clears and comes back appears twice), each with its `step`.
    """

    def __init__(self):
        self.current = []
        self.history = []

    def __repr__(self):
        kinds = [f.kind for f in self.current]
        return f"FindingLog(current={kinds}, history={len(self.history)} finding(s))"


class FindingsChannel:
    """Prints, records and dispatches findings as the diagnosis changes.

    Args:
        verbose: `0` (silent) or `1` (print findings).
        on_finding: `None` or a callable `(finding, monitor)`.
    """

    def __init__(self, verbose, on_finding):
        self.verbose = verbose
        self.on_finding = on_finding
        self.reset()

    def __setattr__(self, name, value):
        if name == "verbose":
            value = check_verbose(value)
        elif name == "on_finding":
            value = check_on_finding(value)
        super().__setattr__(name, value)

    def reset(self):
        """Starts a new record (at the start of each `fit`)."""
        self.log = FindingLog()
        self._tracker = FindingTracker()

    def update(self, findings, monitor):
        """Takes a new diagnosis; returns whether the active findings changed."""
        appeared, cleared = self._tracker.update(findings)
        self.log.current = self._tracker.active
        self.log.history.extend(appeared)
        for finding in appeared:
            self.say(finding.message())
        for finding in cleared:
            self.say(f"cleared: {finding.kind.replace('_', ' ')}.")
        if self.on_finding is not None:
            for finding in appeared:
                self.on_finding(finding, monitor)
        return bool(appeared or cleared)

    def say(self, message):
        """Prints `kgrad: <message>` if `verbose`."""
        if self.verbose:
            keras_hooks.print_msg(f"kgrad: {message}")


def check_verbose(value):
    """Checks `verbose`: 0, 1 (or a bool)."""
    if not isinstance(value, int) or value not in VERBOSE:
        raise ValueError(f"`verbose` must be 0 or 1. Received: verbose={value!r}")
    return int(value)


def check_on_finding(value):
    """Checks `on_finding`: `None` or a callable."""
    if value is not None and not callable(value):
        raise TypeError(
            "`on_finding` must be None or a callable `(finding, monitor)`. "
            f"Received: on_finding={value!r}"
        )
    return value
