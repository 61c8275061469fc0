"""Turns the captures of logged steps into events: one run per optimizer.

`StepLogger` lives as long as its `GradientMonitor`, across `fit` calls: it
keeps one `RunLog` per optimizer slot (`log_dir/train`, or
`log_dir/train/<slot>` when the train step applies several optimizers), the
`StepCounter` that keeps steps increasing across recompiles, and it says so
when a step that was due reached no monitored optimizer. The run root
(`log_dir/train`) is claimed through `kgrad.monitor.log.run_claim` at the first
write: a `log_dir` that holds another model's run, or that another monitor
is writing, gets a new run root (`log_dir/train_2`), said once; a monitor
reused on a second model starts a new run too, never a merge, unless that
model is the first one saved and loaded again (the same name and variables,
its optimizer resuming at the step the run reached): it continues the run,
and the monitor says so.

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

import numpy as np

from kgrad import checks, tags
from kgrad.monitor.log import chance, event_writer, noise_scale, run_claim, summaries
from kgrad.monitor.log.run_log import RunLog
from kgrad.monitor.step.naming import layer_name


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
        self.steps = run_claim.StepCounter(_update_count)
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
        if new_model and self._reloaded(model, channels):
            new_model = False
            step = min(self.steps.reached(c.name) for c in channels) + 1
            checks.warn(
                f"kgrad: model {model.name!r} continues its run in {self._root} "
                f"from step {step}: it has the name and variables of the model "
                "logged there, and its optimizer resumes at the step that run "
                "reached (a model saved and loaded again)."
            )
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
            log.last_skipped = None
            log.run_info = None  # written again: the variables may have changed
        return new_model

    def _reloaded(self, model, channels):
        """Whether `model` continues the last model's run (saved, loaded again)."""
        same = run_claim.model_identity(model) == run_claim.model_identity(self._model)
        return (
            same
            and self._root is not None
            and bool(channels)
            and all(self.steps.continues(c.name, c.optimizer) for c in channels)
        )

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
                if captured["skipped"]:
                    log.last_skipped = (channel.name, captured)
                retry = True
                continue
            step = self.steps.step(channel.name, captured["step"])
            scalars = list(extra)
            if norms:
                clipping = summaries.clipping_of(channel.optimizer)
                scalars += summaries.clip_scalars(captured, clipping)
            if self._queue(log, record, captured, step, norms, histograms, scalars):
                nonfinite |= bool(norms and captured["nonfinite"].sum() > 0)
        return nonfinite, retry

    def begin_loop(self, variables, strategy, make_tags):
        """Starts (or goes on) logging the `record` calls of a custom loop.

        Args:
            variables: The variables `record` is handed.
            strategy: The distribution strategy of the loop.
            make_tags: As in `begin_fit`.
        """
        loop = run_claim.LoopModel(variables, strategy)
        if isinstance(self._model, run_claim.LoopModel) and self._model.key == loop.key:
            return
        if _is_chief(loop):
            event_writer.check_writable(self.log_dir)
        if self._model is not None:
            self._new_model_run()
        self._model, self._channels, self._make_tags = loop, [], make_tags
        self._tags = {}

    def loop_record(self, variables, bins):
        """The `Record` of the loop's variables (made once per list)."""
        if self._model.record is None:
            from kgrad.monitor.step.packed import Record  # `record`: TensorFlow

            self._model.record = Record(0, variables, None, (), (), (), bins)
        return self._model.record

    def write_recorded(self, record, captured, histograms):
        """Queues one step a custom loop handed to `record`, as `write` does.

        Returns:
            Whether it was written (a step at or before the last is not).
        """
        log = self._log_of(run_claim.LOOP_SLOT)
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
        """Warns at the end of a `fit` in which no due step was written.

        When the loss-scale optimizer skipped every step due, the warning
        names the overflow, and each such run gets its loss scale and skipped
        batches (`tags.LOSS_SCALE_VALUE`, `tags.LOSS_SCALE_SKIPPED`) at the
        step of its last update (0 before any).
        """
        if any(log.steps_this_fit for log in self.logs.values()):
            return
        where = os.fspath(self.log_dir)
        skipped = [log for log in self.logs.values() if log.last_skipped]
        if skipped:
            batches = sum(log.skipped_batches for log in skipped)
            scale = min(float(log.last_skipped[1]["loss_scale"]) for log in skipped)
            written = [log.run_dir for log in skipped if self._write_skipped(log)]
            said = f" (`{tags.LOSS_SCALE}` tags in {', '.join(written)})"
            said = said if written else ""
            checks.warn(
                f"kgrad: this `fit` logged no gradient to {where!r}: the "
                "loss-scale optimizer skipped every step due, because the "
                f"scaled gradients overflowed (NaN/Inf); {batches} batch(es) "
                f"skipped, the last at loss scale {scale:g}{said}. It halves the "
                "scale at each overflow: if this persists, the loss or the "
                "gradients are non-finite even unscaled."
            )
            return
        why = (
            "see the warning above"
            if self._warned_nothing
            else "they only accumulated gradients, or did not run"
        )
        checks.warn(
            f"kgrad: this `fit` logged no gradient at all to {where!r}: no "
            f"step due to be logged reached a monitored optimizer ({why})."
        )

    def _write_skipped(self, log):
        """Writes the loss scale of `log`'s last skipped step; whether it could."""
        name, captured = log.last_skipped
        step = self.steps.step(name, captured["step"]) - 1  # the last update
        if log.last_step is not None and step <= log.last_step:
            return False  # that step is written: the count goes with the next
        captured = dict(captured, skipped_batches=log.skipped_batches)
        scalars = summaries.step_scalars(captured, [], [], norms=False)

        def write():
            log.writer.write(step, [], scalars)
            log.writer.flush()

        self.worker.submit(write)
        return True

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
            chief = _is_chief(self._model)
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
            chief = _is_chief(self._model)
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
        self.steps = run_claim.StepCounter(_update_count)
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
                chance.chance_loss(self._model),
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


def _is_chief(model):
    """Whether this process writes the run (always, but for TensorFlow's workers)."""
    strategy = getattr(model, "distribute_strategy", None)  # none on JAX
    if strategy is None:
        return True
    from kgrad.monitor.train_function import keras_hooks  # TensorFlow's

    return keras_hooks.is_chief(strategy)


def _update_count(optimizer):
    """The optimizer's update count, on every backend (TensorFlow, JAX)."""
    value = getattr(optimizer.iterations, "value", optimizer.iterations)
    return int(value.numpy() if hasattr(value, "numpy") else np.asarray(value))
