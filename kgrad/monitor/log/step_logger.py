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

Example:

```python
logger = StepLogger("logs/exp1", worker)
logger.begin_fit(model, capture, lambda paths: TagFilter(paths))
nonfinite, retry = logger.write(norms=True, histograms=False, due=1)
```
"""

import functools
import os

import numpy as np

from kgrad import checks, tags
from kgrad.monitor.log import event_writer, noise_scale, run_claim, summaries
from kgrad.monitor.log.run_log import RunLog
from kgrad.monitor.log.steps import StepCounter
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
        self.steps = StepCounter(_update_count)
        self._model = None
        self._capture = None
        self._make_tags = None
        self._tags = {}  # id(record) -> its TagFilter
        self._warned_nothing = False
        self._root = None  # the run root of the current model
        self._roots = []  # the run roots written, one per model
        self._noise = {}  # run directory -> its NoiseScale
        self._warned_uncovered = False
        self._missing = {}  # layers left out of the last step's noise scale

    def begin_fit(self, model, capture, make_tags):
        """Starts a `fit`: the optimizers' step offsets, this fit's counts.

        Args:
            model: The model being fit.
            capture: Its installed `GradientCapture`.
            make_tags: Makes the monitor's `kgrad.monitor.log.tag_filter.TagFilter`
                over a record's variable names.

        Returns:
            Whether this `fit` starts the run of another model than the last
            `fit` (its steps are counted from its own start).
        """
        new_model = self._model is not None and model is not self._model
        if new_model and self._reloaded(model, capture):
            new_model = False
            step = min(self.steps.reached(c.name) for c in capture.channels) + 1
            checks.warn(
                f"kgrad: model {model.name!r} continues its run in {self._root} "
                f"from step {step}: it has the name and variables of the model "
                "logged there, and its optimizer resumes at the step that run "
                "reached (a model saved and loaded again)."
            )
        if new_model:
            self._new_model_run()
        self._model, self._capture, self._make_tags = model, capture, make_tags
        self._tags = {}
        for channel in capture.channels:
            self.steps.begin(channel.name, channel.optimizer)
        for log in self.logs.values():
            log.steps_this_fit = 0
            log.last_skipped = None
            log.run_info = None  # written again: the variables may have changed
        return new_model

    def _reloaded(self, model, capture):
        """Whether `model` continues the last model's run (saved, loaded again)."""
        same = run_claim.model_identity(model) == run_claim.model_identity(self._model)
        return (
            same
            and self._root is not None
            and bool(capture.channels)
            and all(self.steps.continues(c.name, c.optimizer) for c in capture.channels)
        )

    def end_fit(self):
        """Ends a `fit`: records the step each optimizer reached."""
        for channel in self._capture.channels:
            self.steps.end(channel.name)

    def write(self, norms, histograms, due, extra=()):
        """Reads the capture of an armed call and queues its writing.

        Args:
            norms: Whether norms were due.
            histograms: Whether histograms were due.
            due: The training step that was due (for the warning).
            extra: `(tag, value)` scalars of the same step, written with it
                (the loss of `kgrad.monitor.step.loss_probe`). Defaults to `()`.

        Returns:
            `(nonfinite, retry)`: whether a written step has NaN/Inf gradients,
            and whether an optimizer did not update (arm the next batch).
        """
        results = self._capture.read()
        if not results:
            self._warn_nothing_captured(due)
        nonfinite = retry = False
        for channel, record, captured in results:
            log = self._log_of(channel)
            if captured["skipped"] or not captured["applied"]:
                log.skipped_batches += int(captured["skipped"])
                if captured["skipped"]:
                    log.last_skipped = (channel.name, captured)
                retry = True
                continue
            step = self.steps.step(channel.name, captured["step"])
            if log.last_step is not None and step <= log.last_step:
                continue  # this step is written already
            captured["step"] = step
            captured["skipped_batches"] = log.skipped_batches
            log.skipped_batches = 0
            log.last_step = step
            log.steps_this_fit += 1
            if log.record is not record:  # new variables: describe the run again
                log.record, log.run_info = record, None
            extra_scalars = list(extra)
            if norms:
                clipping = _clipping(channel.optimizer)
                extra_scalars += summaries.clip_scalars(captured, clipping)
            job = functools.partial(
                self._log_step, log, record, captured, norms, histograms, extra_scalars
            )
            self.worker.submit(job, inline=True)
            nonfinite |= bool(norms and captured["nonfinite"].sum() > 0)
        return nonfinite, retry

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
            several = len(self._capture.traced_channels) > 1
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

    def _tags_of(self, record):
        tags = self._tags.get(id(record))
        if tags is None:
            tags = self._tags[id(record)] = self._make_tags(record.paths)
        return tags

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
        self.steps = StepCounter(_update_count)
        self._root = None
        self._noise = {}

    def _log_step(self, log, record, captured, norms, histograms, extra):
        """Writes one captured step (inline, or in the worker if it is busy)."""
        tags = self._tags_of(record)
        paths = tags.paths
        noise = self._noise_scalars(log, record, captured)
        captured = tags.select(captured)
        layers = tags.select_layers(captured, _layers(record))
        recurrent = _recurrent(record)
        scalars = summaries.step_scalars(
            captured, paths, layers, norms=norms, recurrent=recurrent
        )
        scalars += extra + noise
        values = summaries.step_histograms(captured, paths) if histograms else []
        if log.run_info is None:
            log.run_info = self._describe_run(record, tags, captured)
            if self._capture.per_example is not None:
                log.run_info["noise_scale_not_covered"] = self._missing
            values.append(summaries.run_info_value(log.run_info))
            values.append(summaries.custom_scalars_value(paths))
        log.write_step(int(captured["step"]), values, scalars)

    def _noise_scalars(self, log, record, captured):
        """The noise scale's scalars of a step (`kgrad.monitor.log.noise_scale`)."""
        probe = self._capture.per_example
        if probe is None or "per_example_sq" not in captured:
            return []
        estimator = self._noise.get(log.run_dir)
        if estimator is None:
            ids = probe.variable_ids("layernorm")
            estimator = self._noise[log.run_dir] = noise_scale.NoiseScale(
                p
                for p, v in zip(record.paths, record.variables, strict=True)
                if id(v) in ids
            )
        missing = noise_scale.not_covered(captured, record.paths, probe.uncovered)
        if missing and not self._warned_uncovered:
            self._warned_uncovered = True
            named = "; ".join(f"{layer} ({why})" for layer, why in missing.items())
            checks.warn(
                "kgrad: the noise scale leaves out the layers without per-example "
                f"gradient norms: {named}. `noise_scale/covered` is the share of "
                "the squared gradient norm it is taken over."
            )
        self._missing = missing
        return estimator.scalars(captured, record.paths)

    def _describe_run(self, record, tags, captured):
        batch_size = captured["batch_size"]
        return {
            "model": self._model.name,
            "variables": tags.paths,
            "layers": [[name, kind] for name, kind in _layers(record)],
            "batchnorm_layers": sorted(record.batchnorm_paths),
            "batch_size": None if np.isnan(batch_size) else int(batch_size),
            "recurrent_layers": _recurrent(record),
            "recurrent_cells": {
                layer_name(layer): type(layer).__name__ for layer in record.recurrent
            },
        }

    def _warn_nothing_captured(self, step):
        if self._warned_nothing:
            return
        self._warned_nothing = True
        names = ", ".join(f"`{c.name}`" for c in self._capture.channels)
        checks.warn(
            f"GradientMonitor: training step {step} was due to be logged, but no "
            f"gradient reached a monitored optimizer (monitored: {names}). kgrad "
            "sees the gradients in `optimizer.apply`/`apply_gradients`: if the "
            "train step applies another optimizer, pass it with "
            "`GradientMonitor(..., optimizers=[...])`; if it applies one of "
            "these, this Keras version may not route through the hooks kgrad "
            "uses (`kgrad.monitor.train_function.keras_hooks.check()` names the "
            "broken one)."
        )


def _clipping(optimizer):
    """`(kind, limit)` of the clipping `optimizer` applies, or `None`.

    The first of `clipnorm`, `global_clipnorm` and `clipvalue` that is set, as
    Keras's `_clip_gradients` takes them (of the inner optimizer under a
    `LossScaleOptimizer`).
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    for kind in ("clipnorm", "global_clipnorm", "clipvalue"):
        limit = getattr(optimizer, kind, None)
        if limit and limit > 0:
            return kind, float(limit)
    return None


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
    from kgrad.monitor.step import replicas  # TensorFlow's

    return replicas.is_chief(strategy)


def _update_count(optimizer):
    """The optimizer's update count, on every backend.

    `Variable.numpy()` (TensorFlow reads its value, JAX converts its array):
    `keras.ops.convert_to_numpy` of a TensorFlow variable warns (NumPy 2's
    `copy` keyword), which a `warnings.simplefilter("error")` turns into an
    error.
    """
    return int(optimizer.iterations.numpy())
