"""What a monitor keeps about one run directory: writer, history, findings.

One `RunLog` per monitored optimizer: `log_dir/train` when the train step
applies one optimizer, `log_dir/train/<slot>` (see
`kgrad.monitor.optimizers`) for each when it applies several, so that
TensorBoard draws the optimizers as runs on the same charts and
`kgrad report log_dir` reports each. The history and the findings span every
`fit` of the monitor: a finding is printed once, not again at each `fit`, and
growth across `fit` calls is seen.

Example:

>>> log = RunLog("runs/gan/train/d_optimizer", writer=None)  # doctest: +SKIP
>>> log.last_step is None
True
"""

import functools

from kgrad.analysis import diagnostics
from kgrad.analysis.history import FindingTracker, ScalarHistory
from kgrad.monitor import summaries


class RunLog:
    """The writer, in-memory history and findings of one run directory.

    Args:
        run_dir: The run directory.
        writer: Its `kgrad.monitor.event_writer.RunWriter`.
        label: Prefix of printed findings (`""` for a single optimizer).
            Defaults to `""`.
    """

    def __init__(self, run_dir, writer, label=""):
        self.run_dir = run_dir
        self.writer = writer
        self.label = label
        self.history = ScalarHistory()
        self.findings = FindingTracker()
        self.run_info = None
        self.last_step = None
        self.skipped_batches = 0  # loss-scale skips since the last logged step
        self.steps_this_fit = 0

    def write_step(self, step, values, scalars):
        """Writes one logged step (in the worker or inline) and remembers it."""
        self.writer.write(step, values, scalars)
        self.writer.flush()
        self.history.add(step, scalars)

    def diagnose(self, thresholds):
        """The findings of everything logged so far."""
        return diagnostics.diagnose(
            self.history.scalars(), self.run_info or {}, thresholds
        )

    def report_findings(self, thresholds, worker):
        """Prints the findings that appeared or cleared; writes them as text."""
        if self.last_step is None:
            return
        appeared, cleared = self.findings.update(self.diagnose(thresholds))
        prefix = f"kgrad [{self.label}]" if self.label else "kgrad"
        for finding in appeared:
            print(f"{prefix}: {finding.message()}")
        for finding in cleared:
            print(f"{prefix}: cleared: {finding.kind.replace('_', ' ')}.")
        if appeared or cleared:
            active = self.findings.active
            text = "\n\n".join(f"- {f.message()}" for f in active)
            value = summaries.text_value(
                "kgrad/findings", text or "No gradient problem found."
            )
            worker.submit(functools.partial(self.writer.write, self.last_step, [value]))
