"""`GradientMonitor`: the Keras callback that logs real training gradients.

It drives the other rooms: at each batch it asks the schedule whether the
step is due, arms the capture (`kgrad.monitor.step.host`), and after the
batch hands what the capture read to the step logger
(`kgrad.monitor.log.step_logger`); at epoch ends it hands the findings to the
user (`findings_channel`). `record()` sends a custom loop's gradients through
the same step logger. Tested in tests/test_callback.py and
tests/test_unchanged.py.
"""

import time

import keras
import numpy as np

from kgrad import checks
from kgrad.analysis.findings import checked_thresholds
from kgrad.monitor.drive import backends
from kgrad.monitor.drive import schedule as schedule_lib
from kgrad.monitor.drive.findings_channel import FindingsChannel
from kgrad.monitor.log import event_writer, run_claim
from kgrad.monitor.log.step_logger import StepLogger
from kgrad.monitor.log.tag_filter import TagFilter, check_patterns
from kgrad.monitor.log.worker import Worker
from kgrad.monitor.step.loss_probe import LossProbe, epoch_scalars
from kgrad.monitor.step.optimizers import checked_optimizers

_ON_NONFINITE = ("warn", "stop", "raise")


class GradientMonitor(keras.callbacks.Callback):
    """Logs the gradients a model is trained with to TensorBoard.

    The statistics are taken from inside Keras's own compiled train step, from
    the very gradients the optimizer applies (no second pass, no probe batch),
    on the logged steps only; training is the same, bit for bit, as without
    the monitor. Tags and edge cases are listed in `kgrad.monitor.log.summaries`.

    Args:
        log_dir: Directory of the run; summaries go to `log_dir/train`, as with
            `keras.callbacks.TensorBoard`. Defaults to `"logs"`.
        norms_every: When to log norms, update ratios, non-finite counts and
            activation statistics: `"batch"` (every step), `"epoch"` (first
            step of each epoch), an integer N (step 1 and every N-th step) or
            0/`None` (never). Defaults to `100`.
        histograms_every: When to log gradient histograms, in the same forms.
            Defaults to `500`.
        histogram_bins: Buckets per histogram (read-only after construction).
            Defaults to `30`.
        first_steps: Also log norms at steps 1-8, then 16, 32, ... up to
            `first_steps`, where gradient problems show first (see
            `kgrad.monitor.drive.schedule`). Defaults to `50`.
        on_nonfinite: What to do when a logged step has NaN/Inf gradients
            (steps a mixed-precision loss-scale optimizer skips excepted):
            `"warn"` reports the finding, `"stop"` also ends training after the
            step (like `keras.callbacks.TerminateOnNaN`), `"raise"` raises
            `FloatingPointError`. Checked on logged steps only. Defaults to
            `"warn"`.
        figure_secs: Draw the gradient-flow figure (a TensorBoard image and
            `log_dir/gradient_flow.png`, about a second of CPU in a background
            thread) at the end of a `fit` when at least `figure_secs` seconds
            have passed since the last one (so a loop of short `fit` calls
            does not pay it each time); 0 draws it after every `fit`, `None`
            never. Defaults to `300`.
        thresholds: `kgrad.analysis.findings.Thresholds` (or a dict of its
            fields; an unknown key raises `ValueError`) of the diagnosis made
            at each epoch end (findings are reported when they appear and
            when they clear, across all `fit` calls of the monitor, and
            written to the `kgrad.tags.FINDINGS` text tag; a failing diagnosis is
            warned about, training goes on); `None`: defaults. Defaults to `None`.
        include: Variable paths to tag: a shell-style pattern or a list
            (`fnmatch`, e.g. `"block1*"`), `None` for all; see
            `kgrad.monitor.log.tag_filter`. Read-only. Defaults to `None`.
        exclude: Variable paths not to tag, same form. Read-only. Defaults to
            `None`.
        per_layer: One norm and one histogram per layer instead of per
            variable. Read-only. Defaults to `False`.
        verbose: `1` prints findings as they appear and clear, through the
            channel Keras's own callbacks print with; `2` also prints advice
            (batch size, with `noise_scale`); `0` nothing. Defaults to `1`.
        on_finding: `None` or a callable `(finding, monitor)` called with each
            new `kgrad.analysis.diagnostics.Finding`; it may set
            `monitor.model.stop_training = True`. Defaults to `None`.
        optimizers: The optimizers to monitor, for train steps that apply
            optimizers the model does not hold; `None` monitors
            `model.optimizer` and every optimizer the model holds as an
            attribute, in a list or in a dict (a custom `train_step` with
            several optimizers: each is logged under `log_dir/train/<name>`).
            Defaults to `None`.
        noise_scale: Also log the gradient noise scale `B_simple`
            (McCandlish et al. 2018) from per-example gradient norms taken in
            the same backward pass, on logged steps (`kgrad.monitor.log.noise_scale`).
            Read-only. Defaults to `False`.

    Raises:
        ValueError: On a Keras backend other than TensorFlow and JAX.
        TypeError: For an argument named as in `keras.callbacks.TensorBoard` or
            kgrad's former names (`norm_freq`, `histogram_freq`).

    Attributes:
        findings: The findings of every `fit` of the monitor as data
            (`findings.current`, `findings.history`, `findings.runs`).

    Example:

    ```python
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=3, callbacks=[GradientMonitor("logs/exp1")])
    # tensorboard --logdir logs/exp1
    ```
    """

    norms_every = checks.forwarded("_schedule", "norms_every", "When norms are logged.")
    histograms_every = checks.forwarded(
        "_schedule", "histograms_every", "When histograms are logged."
    )
    first_steps = checks.forwarded(
        "_schedule", "first_steps", "Early doubling steps' end."
    )
    verbose = checks.forwarded("_channel", "verbose", "0 silent, 1 findings, 2 advice.")
    on_finding = checks.forwarded(
        "_channel", "on_finding", "Called with each new finding."
    )
    histogram_bins = checks.read_only("_histogram_bins", "Buckets per histogram.")
    include = checks.read_only("_include", "Patterns of the variable paths tagged.")
    exclude = checks.read_only("_exclude", "Patterns of the variable paths not tagged.")
    per_layer = checks.read_only("_per_layer", "Whether tags are per layer.")
    noise_scale = checks.read_only("_noise_scale", "Whether B_simple is logged.")
    thresholds = checks.checked("_thresholds", checked_thresholds, "The diagnosis's.")

    def __init__(
        self,
        log_dir="logs",
        norms_every=100,
        histograms_every=500,
        histogram_bins=30,
        first_steps=50,
        on_nonfinite="warn",
        figure_secs=300,
        thresholds=None,
        include=None,
        exclude=None,
        per_layer=False,
        verbose=1,
        on_finding=None,
        optimizers=None,
        noise_scale=False,
        **kwargs,
    ):
        schedule_lib.reject_renamed("GradientMonitor", kwargs)
        super().__init__()
        self._side = backends.for_backend()
        self._schedule = schedule_lib.Schedule(
            norms_every=norms_every,
            histograms_every=histograms_every,
            first_steps=first_steps,
        )
        self._channel = FindingsChannel(verbose, on_finding)
        self._include = check_patterns("include", include)
        self._exclude = check_patterns("exclude", exclude)
        checks.boolean("per_layer", per_layer)
        self._per_layer = per_layer
        checks.boolean("noise_scale", noise_scale)
        self._noise_scale = noise_scale
        checks.path_like("log_dir", log_dir)
        checks.positive_int("histogram_bins", histogram_bins)
        checks.one_of("on_nonfinite", on_nonfinite, _ON_NONFINITE)
        if figure_secs is not None:
            checks.number_in("figure_secs", figure_secs, "[0, inf)")
        self.log_dir = log_dir
        self._histogram_bins = histogram_bins
        self.on_nonfinite = on_nonfinite
        self.figure_secs = figure_secs
        self.thresholds = thresholds
        self.optimizers = checked_optimizers(optimizers)
        self._capture = None
        self._worker = None
        self._last_figure = None
        self._logger = None  # the runs, steps and findings, across fits
        self._watch = None
        self._seen = 0  # train steps run under this monitor, across fits
        self._loss_probe = LossProbe(self._side.loss_totals)  # each logged step's

    # -- Keras hooks -------------------------------------------------------
    def set_model(self, model=None):
        if not isinstance(self, GradientMonitor):  # Keras called it on the class
            raise TypeError(
                "`callbacks` must hold a GradientMonitor instance, not the class: "
                "pass `callbacks=[GradientMonitor(log_dir)]`. Received: "
                "callbacks=[GradientMonitor]"
            )
        backends.require_supported()
        if getattr(model, "optimizer", None) is None and not self.optimizers:
            raise ValueError(
                "GradientMonitor needs a compiled model: call `model.compile()` "
                f"first. Received: model={getattr(model, 'name', model)!r} "
                "without an optimizer"
            )
        self._side.check_model(model)
        super().set_model(model)
        # `Callback.model` syncs Keras's JAX state on every access: the batch
        # hooks use the model they were given.
        self._fitted = model

    def on_train_begin(self, logs=None):
        if self._side.is_chief(self._fitted):
            event_writer.check_writable(self.log_dir)
        run_claim.take_over(self.model, self)
        self._start_logger().worker.drain()  # the previous fit's figure is written
        if self._capture is None or not self._capture.serves(self.model):
            self._capture = self._side.capture(
                self._fitted, self.histogram_bins, self.optimizers, self.noise_scale
            )
        self._watch = self._side.watch(self._fitted, self._capture, self._abandon)
        self._watch.begin()
        capture = self._capture
        if self._logger.begin_fit(
            self.model, capture.channels, self._tag_filter, capture.per_example
        ):
            self._seen = 0  # another model: its schedule starts from its own steps
        self._pending = None
        self._carry = None
        self._in_batch = False
        self._armed_this_fit = False
        self._stopping = False
        self._epoch_base = self._seen

    def on_epoch_begin(self, epoch, logs=None):
        if self._seen == 0:  # a fresh monitor: count from where training resumes
            steps = (self.params or {}).get("steps")
            self._seen = schedule_lib.trained_steps(self.model, epoch, steps)
        self._epoch_base = self._seen
        self._epoch_start = True

    def on_train_batch_begin(self, batch, logs=None):
        # A function traced when no histogram can be due leaves their code out.
        self._capture.trace_histograms = bool(self._schedule.histograms_every)
        first = self._epoch_base + batch + 1
        last = first + self._fitted.steps_per_execution - 1
        steps = (self.params or {}).get("steps")
        if steps:  # a short last chunk of `steps_per_execution`
            last = min(last, self._epoch_base + steps)
        self._in_batch = last  # counted as run at the batch's end
        norms, histograms = self._schedule.due(first, last, self._epoch_start)
        self._epoch_start = False
        if self._carry is not None:  # the due step did not update: try again
            norms, histograms = norms or self._carry[0], histograms or self._carry[1]
            self._carry = None
        if histograms and not self._watch.blind:
            histograms = self._watch.histograms_ready()
        self._watch.before_call()
        if (norms or histograms) and not self._watch.blind:
            self._capture.arm(histograms=histograms)
            self._loss_probe.begin(self._fitted)
            self._pending = (norms, histograms, first)
            self._armed_this_fit = True

    def on_train_batch_end(self, batch, logs=None):
        if self._in_batch:
            self._seen = self._in_batch
        self._in_batch = False
        self._write_pending()

    def on_epoch_end(self, epoch, logs=None):
        self._end_unrun_batch()
        self._write_pending()
        self._logger.write_epoch_end(epoch_scalars(logs))
        self._worker.drain()
        self._report_findings()
        self._logger.flush()

    def on_train_end(self, logs=None):
        try:
            self._end_unrun_batch()
            self._write_pending()
            self._worker.drain()
            self._report_findings()
            if self._armed_this_fit:
                self._logger.warn_if_fit_logged_nothing()
        finally:
            self._abandon()
            self._logger.end_fit()
            figures = self._figure_due()
            if figures:
                self._last_figure = time.monotonic()
            self._logger.close(figures)

    def _start_logger(self):
        """The step logger (and its worker), made at the first use."""
        if self._logger is None:
            self._worker = Worker()
            self._logger = StepLogger(self.log_dir, self._worker)
        return self._logger

    def _abandon(self):
        """Removes everything of kgrad from the model (the end of a `fit`)."""
        self._watch.end()
        self._capture.uninstall()
        self._capture.disarm()
        run_claim.release(self.model)

    def _figure_due(self):
        logged = self._logger is not None and self._logger.logged_any()
        if self.figure_secs is None or not logged:
            return False
        last = self._last_figure
        return last is None or time.monotonic() - last >= self.figure_secs

    @property
    def findings(self):
        """The findings of every `fit`: `.current`, `.history`, `.runs`."""
        return self._channel.log

    def _tag_filter(self, paths):
        return TagFilter(paths, self.include, self.exclude, self.per_layer)

    def flush(self):
        """Blocks until everything logged so far is on disk.

        Scalars, histograms and findings are on disk when `fit` returns; the
        gradient-flow figure of a run is drawn in the background after it
        (and before the interpreter exits).
        """
        if self._worker is not None:
            self._worker.drain()

    # -- custom training loops ---------------------------------------------
    def record(self, grads, variables, step, histograms=True):
        """Logs gradients from a custom training loop, with the same tags.

        Call it at the steps you want logged, eagerly or inside `tf.function`.
        It writes every tag but `update_ratio` (which needs the weights
        before the update) and the activation statistics.

        Args:
            grads: Gradients from `tf.GradientTape.gradient`, one per variable.
            variables: The variables.
            step: The training step, a Python int or a scalar tensor.
            histograms: Whether to log histograms too: a Python bool, or a
                scalar bool tensor (inside `tf.function`, e.g.
                `step % 500 == 0`: histograms are then computed on every
                recorded step and written when it is true). Defaults to `True`.

        Raises:
            TypeError: If `histograms` is neither a bool nor a bool tensor.
            NotImplementedError: On Keras's JAX backend (`fit` only).

        Example:

        ```python
        monitor = GradientMonitor("logs/loop")
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        monitor.record(grads, model.trainable_variables, step)
        optimizer.apply(grads, model.trainable_variables)
        ```
        """
        if self._side.name != "tensorflow":
            raise NotImplementedError(
                "kgrad: `GradientMonitor.record` needs the TensorFlow backend; on "
                f"{self._side.name} pass the monitor to `model.fit(callbacks=...)`."
            )
        import tensorflow as tf

        from kgrad.monitor.step.packed import histograms_flag, record_statistics

        histograms = histograms_flag(histograms)
        variables = list(variables)
        packed, _ = record_statistics(
            grads, variables, step, self.histogram_bins, histograms is not False
        )
        logger = self._start_logger()
        logger.begin_loop(variables, tf.distribute.get_strategy(), self._tag_filter)
        record = logger.loop_record(variables, self.histogram_bins)

        def write(vector, wanted):
            captured = record.layout.unpack(vector)
            if logger.write_recorded(record, captured, bool(wanted)):
                self._report_findings()
                logger.flush()
                self._worker.drain()
            return np.int32(0)

        if tf.executing_eagerly():
            write(packed.numpy(), bool(histograms))
        else:
            flag = tf.convert_to_tensor(histograms, tf.bool)
            tf.numpy_function(write, [packed, flag], tf.int32, stateful=True)

    # -- writing -----------------------------------------------------------
    def _end_unrun_batch(self):
        """A batch that began and never ran (data of unknown length ended).

        Its arming passes to the next batch that runs, as for a step that
        did not update.
        """
        if not self._in_batch:
            return
        self._in_batch = False
        if self._pending is not None:
            norms, histograms, _ = self._pending
            self._pending = None
            self._capture.disarm()
            self._carry = (norms, histograms)

    def _write_pending(self):
        """Reads the pending capture (one host transfer) and queues its writing."""
        if self._pending is None:
            return
        norms, histograms, due = self._pending
        self._pending = None
        self._capture.disarm()
        loss = self._loss_probe.end(self._fitted)
        captures = self._capture.read()
        nonfinite, retry = self._logger.write(
            captures, norms, histograms, due, extra=loss
        )
        if retry:  # an optimizer did not update: the next batch is logged
            self._carry = (norms, histograms)
        if nonfinite:
            self._handle_nonfinite()

    # -- diagnosis (main thread, after the worker is drained) ---------------
    def _report_findings(self):
        self._logger.report_findings(self.thresholds, self._channel, self)

    def _handle_nonfinite(self):
        self._worker.drain()
        if self.on_nonfinite == "raise":
            self._abandon()
            finding = self._logger.nonfinite_finding(self.thresholds)
            if finding is not None:
                raise FloatingPointError(f"kgrad: {finding.message()}")
        self._report_findings()
        if self.on_nonfinite == "stop" and not self._stopping:
            self._stopping = True
            self.model.stop_training = True
            self._channel.say(
                "non-finite gradients: training stops (on_nonfinite='stop')."
            )
