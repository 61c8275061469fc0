"""Turns the captures of logged steps into events: one run per optimizer.

`StepLogger` lives as long as its `GradientMonitor`, across `fit` calls: it
keeps one `RunLog` per optimizer slot (`log_dir/train`, or
`log_dir/train/<slot>` when the train step applies several optimizers), the
`StepCounter` that keeps steps increasing across recompiles, and it says so
when a step that was due reached no monitored optimizer. The run root
(`log_dir/train`) is claimed through `kgrad.monitor.log.run_claim` at the first
write: a `log_dir` that holds another model's run, or that another monitor
is writing, gets a new run root (`log_dir/train_2`), said once; a monitor
reused on a second model starts a new run too, never a merge.

A capture that is not an update (a batch that only accumulates gradients, a
step the loss-scale optimizer skips) is not written: the caller arms the next
batch instead, and skipped batches are counted into `tags.LOSS_SCALE_SKIPPED`.
A step already written is never written again: one value per tag and step.

A custom training loop's `GradientMonitor.record` goes the same way
(`begin_loop`, `write_recorded`): the same run claim, steps, history and
findings, its run named after the variables' first path component.

Tested in tests/test_callback.py, tests/test_record.py and
tests/test_several_updates.py.

Example:

```python
logger = StepLogger("logs/exp1", worker)
logger.begin_fit(model, capture.channels, lambda paths: TagFilter(paths))
nonfinite, retry = logger.write(capture.read(), norms=True, histograms=False, due=1)
```
"""

import functools
import os

from kgrad import checks, findings_record, tags
from kgrad.analysis import diagnostics
from kgrad.analysis.history import ScalarHistory
from kgrad.monitor.log import event_writer, noise_scale, run_claim, summaries
from kgrad.monitor.step.packed import Record
from kgrad.monitor.step.temporal import layer_name
from kgrad.monitor.train_function import keras_hooks


class StepLogger:
    """Writes logged steps to the run of the optimizer they went through.

    Args:
        log_dir: The monitor's `log_dir`.
        worker: The monitor's `kgrad.monitor.log.worker.Worker`.
    """

    def __init__(self, log_dir, worker):
        self.log_dir = log_dir
        self.worker = worker
        self.logs = {}  # slot name -> RunLog
        self.steps = run_claim.StepCounter(lambda opt: int(opt.iterations.numpy()))
        self._model = None
        self._channels = []  # the monitored optimizers' capture channels
        self._make_tags = None
        self._tags = {}  # id(record) -> its TagFilter
        self._warned_nothing = False
        self._root = None  # the run root of the current model
        self._roots = []  # the run roots written, one per model
        self._noise = None  # `noise_scale.RunNoiseScales` with `noise_scale=True`

    def begin_fit(self, model, channels, make_tags, per_example=None):
        """Starts a `fit`: the optimizers' step offsets, this fit's counts.

        Args:
            model: The model being fit.
            channels: The `Channel`s of its capture, one per optimizer.
            make_tags: Makes the monitor's `kgrad.monitor.log.tag_filter.TagFilter`
                over a record's variable names.
            per_example: The capture's per-example probe when the noise scale
                is logged, else `None`. Defaults to `None`.

        Returns:
            Whether this `fit` starts the run of another model than the last
            `fit` (its steps are counted from its own start).
        """
        new_model = self._model is not None and model is not self._model
        if new_model:
            self._new_model_run()
        self._model, self._channels, self._make_tags = model, channels, make_tags
        self._tags = {}
        if per_example is None:
            self._noise = None
        elif self._noise is None or self._noise.probe is not per_example:
            self._noise = noise_scale.RunNoiseScales(per_example)
        for channel in channels:
            self.steps.begin(channel.name, channel.optimizer)
        for log in self.logs.values():
            log.steps_this_fit = 0
            log.run_info = None  # written again: the variables may have changed
        return new_model

    def end_fit(self):
        """Ends a `fit`: records the step each optimizer reached."""
        for channel in self._channels:
            self.steps.end(channel.name)

    def write(self, captures, norms, histograms, due, extra=()):
        """Queues the writing of the captures of an armed call.

        Args:
            captures: `[(channel, record, statistics)]`, what the capture read
                (`GradientCapture.read`).
            norms: Whether norms were due.
            histograms: Whether histograms were due.
            due: The training step that was due (for the warning).
            extra: `(tag, value)` scalars of the same step, written with it
                (the loss of `kgrad.monitor.step.loss_probe`). Defaults to `()`.

        Returns:
            `(nonfinite, retry)`: whether a written step has NaN/Inf gradients,
            and whether an optimizer did not update (arm the next batch).
        """
        if not captures:
            self._warn_nothing_captured(due)
        nonfinite = retry = False
        for channel, record, captured in captures:
            log = self._log_of(channel)
            if captured["skipped"] or not captured["applied"]:
                log.skipped_batches += int(captured["skipped"])
                retry = True
                continue
            step = self.steps.step(channel.name, captured["step"])
            if self._queue(log, record, captured, step, norms, histograms, extra):
                nonfinite |= bool(norms and captured["nonfinite"].sum() > 0)
        return nonfinite, retry

    def begin_loop(self, variables, strategy, make_tags):
        """Starts (or goes on) logging the `record` calls of a custom loop.

        Args:
            variables: The variables `record` is handed.
            strategy: The distribution strategy of the loop.
            make_tags: As in `begin_fit`.
        """
        loop = _Loop(variables, strategy)
        if isinstance(self._model, _Loop) and self._model.key == loop.key:
            return
        if keras_hooks.is_chief(strategy):
            event_writer.check_writable(self.log_dir)
        if self._model is not None:
            self._new_model_run()
        self._model, self._channels, self._make_tags = loop, [], make_tags
        self._tags = {}

    def loop_record(self, variables, bins):
        """The `Record` of the loop's variables (made once per list)."""
        if self._model.record is None:
            self._model.record = Record(0, variables, None, (), (), (), bins)
        return self._model.record

    def write_recorded(self, record, captured, histograms):
        """Queues one step a custom loop handed to `record`, as `write` does.

        Returns:
            Whether it was written (a step at or before the last is not).
        """
        log = self._log_of(_LOOP_SLOT)
        step = int(captured["step"])
        return self._queue(log, record, captured, step, True, histograms, ())

    def _queue(self, log, record, captured, step, norms, histograms, extra):
        """Queues the writing of one step to `log`; `False` if written already."""
        if log.last_step is not None and step <= log.last_step:
            return False  # this step is written already
        captured["step"] = step
        captured["skipped_batches"] = log.skipped_batches
        log.skipped_batches = 0
        log.last_step = step
        log.steps_this_fit += 1
        if log.record is not record:  # new variables: describe the run again
            log.record, log.run_info = record, None
        job = functools.partial(
            self._log_step, log, record, captured, norms, histograms, list(extra)
        )
        self.worker.submit(job, inline=True)
        return True

    def warn_if_fit_logged_nothing(self):
        """Warns at the end of a `fit` in which no due step was written."""
        if any(log.steps_this_fit for log in self.logs.values()):
            return
        checks.warn(
            "kgrad: this `fit` logged no gradient at all to "
            f"{os.fspath(self.log_dir)!r}: no step due to be logged reached a "
            "monitored optimizer (see the warning above)."
        )

    def _log_of(self, channel):
        log = self.logs.get(channel.name)
        if log is None:
            several = sum(c.traced for c in self._channels) > 1
            run_dir = self._run_root()
            default = run_dir == os.path.join(self.log_dir, "train")
            label = "" if default else os.path.basename(run_dir)
            if several:
                run_dir = os.path.join(run_dir, channel.name)
                label = f"{label}/{channel.name}" if label else channel.name
            chief = keras_hooks.is_chief(self._model.distribute_strategy)
            writer = event_writer.RunWriter(run_dir, enabled=chief)
            log = RunLog(run_dir, writer, label=label)
            self.logs[channel.name] = log
        return log

    def write_epoch_end(self, scalars):
        """Queues `(tag, value)` scalars at each run's last logged step."""
        for log in self.logs.values():
            if log.last_step is not None and scalars:
                job = functools.partial(log.write_step, log.last_step, [], scalars)
                self.worker.submit(job)

    def flush(self):
        """Queues a flush of every run's event file."""
        for log in self.logs.values():
            self.worker.submit(log.writer.flush)

    def logged_any(self):
        """Whether any run has a logged step (across the monitor's fits)."""
        return any(log.last_step is not None for log in self.logs.values())

    def report_findings(self, thresholds, channel, monitor):
        """Diagnoses each run; hands new findings to `channel`, writes them."""
        for log in self.logs.values():
            log.report_findings(thresholds, self.worker, channel, monitor)

    def nonfinite_finding(self, thresholds):
        """The first run's `nonfinite` finding, or `None`."""
        for log in self.logs.values():
            for finding in log.diagnose(thresholds) or ():
                if finding.kind == "nonfinite":
                    return finding
        return None

    def close(self, figures):
        """Queues each run's gradient-flow figure (if `figures`) and its close."""
        for log in self.logs.values():
            if figures and log.last_step is not None:
                name = "gradient_flow.png"
                if log.label:
                    name = f"gradient_flow_{log.label}.png"
                figure = functools.partial(
                    event_writer.write_gradient_flow,
                    log.writer,
                    os.path.join(self.log_dir, name),
                    log.history.scalars(),
                    log.run_info,
                    log.last_step,
                    self._model.name,
                )
                self.worker.submit(figure)
            self.worker.submit(log.writer.close)

    def _tags_of(self, record):
        found = self._tags.get(id(record))
        if found is None:
            found = self._tags[id(record)] = self._make_tags(record.paths)
        return found

    def _run_root(self):
        """`log_dir/train`, or a new run root if that one is another's."""
        if self._root is None:
            chief = keras_hooks.is_chief(self._model.distribute_strategy)
            if not chief:
                self._root = os.path.join(self.log_dir, "train")
                return self._root
            self._root, note = run_claim.claim(
                self.log_dir, self._model, owner=self, exclude=self._roots
            )
            self._roots.append(self._root)
            if note:
                checks.warn(f"kgrad: {note}.")
        return self._root

    def _new_model_run(self):
        """A new model: its steps, history and findings start a run of their own."""
        self.logs = {}
        self.steps = run_claim.StepCounter(lambda opt: int(opt.iterations.numpy()))
        self._root = None
        self._noise = None

    def _log_step(self, log, record, captured, norms, histograms, extra):
        """Writes one captured step (inline, or in the worker if it is busy)."""
        selection = self._tags_of(record)
        paths = selection.paths
        noise = (
            self._noise.scalars(log.run_dir, record, captured) if self._noise else []
        )
        captured = selection.select(captured)
        layers = selection.select_layers(captured, _layers(record))
        recurrent = _recurrent(record)
        scalars = summaries.step_scalars(
            captured, paths, layers, norms=norms, recurrent=recurrent
        )
        scalars += extra + noise
        values = summaries.step_histograms(captured, paths) if histograms else []
        if log.run_info is None:
            log.run_info = summaries.run_info(
                self._model.name,
                paths,
                _layers(record),
                record.batchnorm_paths,
                captured["batch_size"],
                {layer_name(layer): type(layer).__name__ for layer in record.recurrent},
            )
            if self._noise is not None:
                log.run_info["noise_scale_not_covered"] = self._noise.missing
            values.append(summaries.run_info_value(log.run_info))
            values.append(summaries.custom_scalars_value(paths))
        log.write_step(int(captured["step"]), values, scalars)

    def _warn_nothing_captured(self, step):
        if self._warned_nothing:
            return
        self._warned_nothing = True
        names = ", ".join(f"`{c.name}`" for c in self._channels)
        checks.warn(
            f"kgrad: training step {step} was due to be logged, but no "
            f"gradient reached a monitored optimizer (monitored: {names}). kgrad "
            "sees the gradients in `optimizer.apply`/`apply_gradients`: if the "
            "train step applies another optimizer, pass it with "
            "`GradientMonitor(..., optimizers=[...])`; if it applies one of "
            "these, this Keras version may not route through the hooks kgrad "
            "uses (`kgrad.monitor.train_function.hooks_check.check()` names the "
            "broken one)."
        )


def _layers(record):
    """`(tag name, kind)` of each probed layer of `record`."""
    kinds = [kind for _, kind in record.probes]
    return list(zip(record.layer_names, kinds, strict=True))


def _recurrent(record):
    """Tag name of each recurrent layer of `record` with a temporal profile."""
    return [layer_name(layer) for layer in record.recurrent]


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
        (`tags.FINDINGS_DATA`, every diagnosis that moved a record) and as
        prose (`tags.FINDINGS`, when they change)."""
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


class _Loop:
    """Stands for the model of a custom training loop: what `record` is handed.

    Its identity (for the run claim) is the variables' first path component
    and their paths, so a loop started again over the same model continues
    its run.
    """

    def __init__(self, variables, strategy):
        self.weights = list(variables)
        self.key = [id(v) for v in self.weights]
        first = getattr(self.weights[0], "path", None) if self.weights else None
        self.name = (first or "loop").split("/")[0]
        self.distribute_strategy = strategy
        self.record = None


class _LoopSlot:
    """The slot of a custom loop's steps: one run, `log_dir/train`."""

    name = "loop"
    traced = True


_LOOP_SLOT = _LoopSlot()
