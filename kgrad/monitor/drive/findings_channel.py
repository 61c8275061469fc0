"""How GradientMonitor hands its findings to the user: printed, kept, acted on.

- `verbose=1` prints each finding when it appears and when it clears, through
  the channel Keras's own callbacks print with (`io_utils.print_msg`: stdout,
  or absl logging after `keras.config.disable_interactive_logging()`);
  `verbose=0` prints nothing; `verbose=2` also prints advice (the batch size
  against the noise scale, `kgrad.analysis.batch_advice`), which `1` keeps
  in `monitor.findings` only.
- `FindingLog` keeps them as data: a sequence of the findings active now
  (also `current`), and `history`
  (every finding in the order it appeared, with its step), over every `fit`
  of the monitor: a finding is printed once, not again at each `fit`.
- With several optimizers each run (`log_dir/train/<name>`) is diagnosed on
  its own: its messages read `kgrad [<name>]: ...` and `FindingLog.runs`
  maps each run's name to its current findings.
- `on_finding(finding, monitor)` is called for each finding that appears, on
  the training thread, at the end of the epoch that revealed it (or right
  after a logged step with NaN/Inf gradients); it may set
  `monitor.model.stop_training = True` or change the learning rate.

Tested in tests/test_findings.py.

Example:

>>> channel = FindingsChannel(verbose=0, on_finding=None)
>>> channel.update([], monitor=None)
False
>>> channel.log.current, channel.log.history
([], [])
"""

import collections.abc

from kgrad.findings_record import Timeline
from kgrad.monitor.train_function import jax_hooks

VERBOSE = (0, 1, 2)


class FindingLog(collections.abc.Sequence):
    """The findings of every `fit` of a monitor, as data.

    A sequence of the current findings (`for f in monitor.findings`,
    `len(monitor.findings)`, `monitor.findings[0]`), with the history and the
    findings of each run beside it.

    Attributes:
        current: The `Finding`s active at the last diagnosis, of every run
            (a list: what iterating, `len` and indexing see).
        history: Every `Finding` in the order it appeared (a finding that
            clears and comes back appears twice), each with its `step`.
        runs: Dict from run name (`""` for a single optimizer, else the
            optimizer's name) to its active `Finding`s.

    Example:

    >>> log = FindingLog()
    >>> len(log), list(log), log.history, log.runs
    (0, [], [], {})
    """

    def __init__(self):
        self.current = []
        self.history = []
        self.runs = {}

    def __getitem__(self, index):
        return self.current[index]

    def __len__(self):
        return len(self.current)

    def __repr__(self):
        kinds = [f.kind for f in self.current]
        return f"FindingLog(current={kinds}, history={len(self.history)} finding(s))"


class FindingsChannel:
    """Prints, records and dispatches findings as the diagnosis changes.

    Args:
        verbose: `0` (silent), `1` (print findings) or `2` (advice too).
        on_finding: `None` or a callable `(finding, monitor)`.
    """

    def __init__(self, verbose, on_finding):
        self.verbose = verbose
        self.on_finding = on_finding
        self.log = FindingLog()
        self._timelines = {}

    def __setattr__(self, name, value):
        if name == "verbose":
            value = check_verbose(value)
        elif name == "on_finding":
            value = check_on_finding(value)
        super().__setattr__(name, value)

    def update(self, findings, monitor, run="", step=None):
        """Takes a new diagnosis of `run` at logged step `step`; returns whether
        its findings changed (one appeared or cleared)."""
        timeline = self.timeline(run)
        appeared, cleared = timeline.update(findings, step)
        self.log.runs[run] = timeline.active
        self.log.current = [f for active in self.log.runs.values() for f in active]
        self.log.history.extend(appeared)
        for finding in appeared:
            self.say(finding.message(), run, finding.severity)
        for finding in cleared:
            message = f"cleared: {finding.kind.replace('_', ' ')}."
            self.say(message, run, finding.severity)
        if self.on_finding is not None:
            for finding in appeared:
                self.on_finding(finding, monitor)
        return bool(appeared or cleared)

    def timeline(self, run=""):
        """The `kgrad.findings_record.Timeline` of `run`: its findings as data."""
        return self._timelines.setdefault(run, Timeline())

    def say(self, message, run="", severity="warning"):
        """Prints `kgrad: <message>` (`kgrad [<run>]: ...`) if `verbose`
        (advice only with `verbose=2`)."""
        if self.verbose >= (2 if severity == "advice" else 1):
            prefix = f"kgrad [{run}]" if run else "kgrad"
            jax_hooks.print_msg(f"{prefix}: {message}")


def check_verbose(value):
    """Checks `verbose`: 0, 1, 2 (or a bool)."""
    if not isinstance(value, int) or value not in VERBOSE:
        raise ValueError(f"`verbose` must be 0, 1 or 2. Received: verbose={value!r}")
    return int(value)


def check_on_finding(value):
    """Checks `on_finding`: `None` or a callable."""
    if value is not None and not callable(value):
        raise TypeError(
            "`on_finding` must be None or a callable `(finding, monitor)`. "
            f"Received: on_finding={value!r}"
        )
    return value
