"""What a monitor keeps about one run directory: writer, history, findings.

One `RunLog` per monitored optimizer: `log_dir/train` when the train step
applies one optimizer, `log_dir/train/<slot>` (see
`kgrad.monitor.step.optimizers`) for each when it applies several, so that
TensorBoard draws the optimizers as runs on the same charts and
`kgrad report log_dir` reports each. The history spans every `fit` of the
monitor, so growth across `fit` calls is seen; the findings go through the
monitor's `kgrad.monitor.drive.findings_channel.FindingsChannel`.

Example:

>>> log = RunLog("logs/gan/train/d_optimizer", writer=None, label="d_optimizer")
>>> log.last_step is None
True
"""

import functools

from kgrad import checks, findings_record, tags
from kgrad.analysis import diagnostics
from kgrad.analysis.history import ScalarHistory
from kgrad.monitor.log import summaries


class RunLog:
    """The writer, in-memory history and findings of one run directory.

    Args:
        run_dir: The run directory.
        writer: Its `kgrad.monitor.log.event_writer.RunWriter`.
        label: The run's name in printed findings and `monitor.findings.runs`
            (`""` for a single optimizer). Defaults to `""`.
    """

    def __init__(self, run_dir, writer, label=""):
        self.run_dir = run_dir
        self.writer = writer
        self.label = label
        self.history = ScalarHistory()
        self.run_info = None
        self.record = None  # the capture record last written
        self.last_step = None
        self.skipped_batches = 0  # loss-scale skips since the last logged step
        self.last_skipped = None  # this fit's last skipped capture, if any
        self.steps_this_fit = 0
        self._diagnosis_failed = False
        self._findings_data = None  # the last `tags.FINDINGS_DATA` text written

    def write_step(self, step, values, scalars):
        """Writes one logged step (in the worker or inline) and remembers it."""
        self.writer.write(step, values, scalars)
        self.writer.flush()
        self.history.add(step, scalars)

    def diagnose(self, thresholds):
        """The findings of everything logged so far; `None` if the diagnosis fails.

        A diagnosis that raises never stops training: it is warned about once
        per run, and the findings stay as they were.
        """
        try:
            return diagnostics.diagnose(
                self.history.scalars(), self.run_info or {}, thresholds
            )
        except Exception as error:  # whatever a rule raises, training goes on
            if not self._diagnosis_failed:
                self._diagnosis_failed = True
                checks.warn(
                    f"kgrad: the diagnosis of {self.run_dir} failed "
                    f"({type(error).__name__}: {error}); training goes on, "
                    "the findings are not updated."
                )
            return None

    def report_findings(self, thresholds, worker, channel, monitor):
        """Hands a new diagnosis to `channel`; writes the findings as data
        (`tags.FINDINGS_DATA`, every diagnosis) and as prose (`tags.FINDINGS`,
        when they change)."""
        found = None if self.last_step is None else self.diagnose(thresholds)
        if found is None:
            return
        step = self.last_step
        changed = channel.update(found, monitor, run=self.label, step=step)
        records = channel.timeline(self.label).records
        data = findings_record.dumps(records, step)
        values = []
        if data != self._findings_data:  # each diagnosis that moved a record
            self._findings_data = data
            values.append(summaries.text_value(tags.FINDINGS_DATA, data))
        if changed:
            active = channel.log.runs[self.label]
            text = "\n\n".join(f"- {f.message()}" for f in active)
            values.append(
                summaries.text_value(
                    tags.FINDINGS, text or "No gradient problem found."
                )
            )
        if values:
            worker.submit(functools.partial(self.writer.write, step, values))
