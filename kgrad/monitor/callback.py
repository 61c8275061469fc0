"""`GradientMonitor`: the Keras callback that logs real training gradients."""

import functools
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from kgrad.analysis import diagnostics, plots
from kgrad.analysis.history import FindingTracker, ScalarHistory
from kgrad.monitor import event_writer, replicas, summaries
from kgrad.monitor import schedule as schedule_lib
from kgrad.monitor.capture import GradientCapture
from kgrad.monitor.packed import record_statistics
from kgrad.monitor.temporal import layer_name
from kgrad.monitor.worker import Worker

_ON_NONFINITE = ("warn", "stop", "raise")


class GradientMonitor(keras.callbacks.Callback):
    """Logs the gradients a model is trained with to TensorBoard.

    The statistics are taken from inside the compiled train step, from the very
    gradients the optimizer applies (no second pass, no probe batch), on the
    logged steps only: the other steps run Keras's own train function. Tags
    and edge cases are listed in `kgrad.monitor.summaries`.

    Args:
        log_dir: Directory of the run; summaries go to `log_dir/train`, as with
            `keras.callbacks.TensorBoard`. Defaults to `"runs"`.
        norm_freq: Log norms, update ratios, non-finite counts and activation
            statistics every `norm_freq` training steps; 0 turns them off.
            Defaults to `100`.
        histogram_freq: Log gradient histograms every `histogram_freq` steps,
            or `"epoch"` for the first step of each epoch; 0 turns them off.
            Defaults to `500`.
        histogram_bins: Buckets per histogram. Defaults to `30`.
        first_steps: Also log norms at every one of the first `first_steps`
            steps of training, where gradient problems show first. Defaults to
            `50`.
        on_nonfinite: What to do when a logged step has NaN/Inf gradients
            (steps a mixed-precision loss-scale optimizer skips excepted):
            `"warn"` prints the finding, `"stop"` also ends training after the
            step (like `keras.callbacks.TerminateOnNaN`), `"raise"` raises
            `FloatingPointError`. Checked on logged steps only. Defaults to
            `"warn"`.
        figure_secs: Draw the gradient-flow figure (a TensorBoard image and
            `log_dir/gradient_flow.png`, about a second of CPU in a background
            thread) at the end of a `fit` when at least `figure_secs` seconds
            have passed since the last one (so a loop of short `fit` calls
            does not pay it each time); 0 draws it after every `fit`, `None`
            never. Defaults to `300`.
        thresholds: `kgrad.analysis.diagnostics.Thresholds` of the diagnosis printed at
            each epoch end (findings are printed when they appear and when
            they clear, and written to the `kgrad/findings` text tag); `None`
            for the defaults. Defaults to `None`.

    Example:

    ```python
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=3, callbacks=[GradientMonitor("runs/exp1")])
    # tensorboard --logdir runs/exp1
    ```
    """

    def __init__(
        self,
        log_dir="runs",
        norm_freq=100,
        histogram_freq=500,
        histogram_bins=30,
        first_steps=50,
        on_nonfinite="warn",
        figure_secs=300,
        thresholds=None,
    ):
        super().__init__()
        self._schedule = schedule_lib.Schedule(
            norm_freq=norm_freq,
            histogram_freq=histogram_freq,
            first_steps=first_steps,
        )
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(
                "`log_dir` must be a string or a path. "
                f"Received: log_dir={log_dir!r} of type {type(log_dir).__name__}"
            )
        if not _is_positive_int(histogram_bins):
            raise ValueError(
                "`histogram_bins` must be a positive integer. "
                f"Received: histogram_bins={histogram_bins!r}"
            )
        if on_nonfinite not in _ON_NONFINITE:
            raise ValueError(
                f"`on_nonfinite` must be one of {_ON_NONFINITE}. "
                f"Received: on_nonfinite={on_nonfinite!r}"
            )
        if figure_secs is not None and (
            isinstance(figure_secs, bool)
            or not isinstance(figure_secs, (int, float))
            or figure_secs < 0
        ):
            raise ValueError(
                "`figure_secs` must be a non-negative number or None. "
                f"Received: figure_secs={figure_secs!r}"
            )
        self.log_dir = log_dir
        self.norm_freq = norm_freq
        self.histogram_freq = histogram_freq
        self.histogram_bins = histogram_bins
        self.first_steps = first_steps
        self.on_nonfinite = on_nonfinite
        self.figure_secs = figure_secs
        self.thresholds = thresholds
        self._capture = None
        self._writer = None
        self._worker = None
        self._last_figure = None

    # -- Keras hooks -------------------------------------------------------
    def set_model(self, model):
        if getattr(model, "optimizer", None) is None:
            raise ValueError(
                "GradientMonitor needs a compiled model: call `model.compile()` "
                f"first. Received: model={getattr(model, 'name', model)!r} "
                "without an optimizer"
            )
        strategy = model.distribute_strategy
        if isinstance(strategy, replicas.UNSUPPORTED_STRATEGIES):
            raise ValueError(
                "GradientMonitor supports the default strategy, MirroredStrategy "
                "and MultiWorkerMirroredStrategy. Received: a model trained under "
                f"{type(strategy).__name__}"
            )
        super().set_model(model)

    def on_train_begin(self, logs=None):
        writer = _open_writer(self.log_dir, self.model.distribute_strategy)
        if self._worker is None:
            self._worker = Worker()
        self._worker.drain()  # the previous fit's figure, if any, is written
        self._writer = writer
        if self._capture is None or not self._capture.serves(self.model):
            self._capture = GradientCapture(self.model, bins=self.histogram_bins)
        self._capture.install()
        self._pending = None
        self._run_info = None
        self._history = ScalarHistory()
        self._findings = FindingTracker()
        self._step = None
        self._last_step = int(self.model.optimizer.iterations.numpy())
        self._epoch_base = self._last_step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_base = self._last_step
        self._epoch_start = True

    def on_train_batch_begin(self, batch, logs=None):
        self._write_pending()
        first = self._epoch_base + batch + 1
        last = first + self.model.steps_per_execution - 1
        norms, histograms = self._schedule.due(first, last, self._epoch_start)
        self._epoch_start = False
        if norms or histograms:
            self._capture.arm(histograms=histograms)
            self._pending = (norms, histograms)

    def on_epoch_end(self, epoch, logs=None):
        self._write_pending()
        self._last_step = int(self.model.optimizer.iterations.numpy())
        self._worker.drain()
        self._report_findings()
        self._worker.submit(self._writer.flush)

    def on_train_end(self, logs=None):
        try:
            self._write_pending()
            self._worker.drain()
            self._report_findings()
        finally:
            self._capture.uninstall()
            if self._figure_due():
                self._last_figure = time.monotonic()
                figure = functools.partial(
                    _write_gradient_flow,
                    self._writer,
                    self.log_dir,
                    self._history.scalars(),
                    self._run_info,
                    self._step,
                    self.model.name,
                )
                self._worker.submit(figure)
            self._worker.submit(self._writer.close)

    def _figure_due(self):
        if self.figure_secs is None or self._step is None:
            return False
        last = self._last_figure
        return last is None or time.monotonic() - last >= self.figure_secs

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
            histograms: Whether to log histograms too. Defaults to `True`.

        Example:

        ```python
        monitor = GradientMonitor("runs/loop")
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        monitor.record(grads, model.trainable_variables, step)
        optimizer.apply(grads, model.trainable_variables)
        ```
        """
        variables = list(variables)
        packed, layout = record_statistics(
            grads, variables, step, self.histogram_bins, bool(histograms)
        )
        paths = [getattr(v, "path", v.name) for v in variables]
        strategy = tf.distribute.get_strategy()

        def write(vector):
            captured = layout.unpack(vector)
            scalars = summaries.step_scalars(captured, paths, [])
            values = summaries.step_histograms(captured, paths) if histograms else []
            if self._writer is None:
                self._writer = _open_writer(self.log_dir, strategy)
            self._writer.write(int(captured["step"]), values, scalars)
            self._writer.flush()
            return np.int32(0)

        if tf.executing_eagerly():
            write(packed.numpy())
        else:
            tf.numpy_function(write, [packed], tf.int32, stateful=True)

    # -- writing -----------------------------------------------------------
    def _write_pending(self):
        """Reads the pending capture (one host transfer) and queues its writing."""
        if self._pending is None:
            return
        norms, histograms = self._pending
        self._pending = None
        captured = self._capture.read()
        if captured is None:
            return
        self._worker.submit(
            functools.partial(self._log_step, captured, norms, histograms),
            inline=True,
        )
        if norms and captured["skipped"] == 0 and captured["nonfinite"].sum() > 0:
            self._handle_nonfinite()

    def _log_step(self, captured, norms, histograms):
        """Writes one captured step (inline, or in the worker if it is busy)."""
        paths = self._capture.paths
        layers = [(layer.path, kind) for layer, kind in self._capture.probes]
        recurrent = [layer_name(layer) for layer in self._capture.temporal.layers]
        scalars = summaries.step_scalars(
            captured, paths, layers, norms=norms, recurrent=recurrent
        )
        values = summaries.step_histograms(captured, paths) if histograms else []
        step = int(captured["step"])
        if self._run_info is None:
            self._run_info = self._describe_run(captured)
            values.append(summaries.run_info_value(self._run_info))
            values.append(summaries.custom_scalars_value(paths))
        self._writer.write(step, values, scalars)
        self._writer.flush()
        self._history.add(step, scalars)
        self._step = step

    # -- diagnosis (main thread, after the worker is drained) ---------------
    def _diagnose(self):
        return diagnostics.diagnose(
            self._history.scalars(), self._run_info or {}, self.thresholds
        )

    def _report_findings(self):
        if self._step is None:
            return
        appeared, cleared = self._findings.update(self._diagnose())
        for finding in appeared:
            print(f"kgrad: {finding.message()}")
        for finding in cleared:
            print(f"kgrad: cleared: {finding.kind.replace('_', ' ')}.")
        if appeared or cleared:
            active = self._findings.active
            text = "\n\n".join(f"- {f.message()}" for f in active)
            value = summaries.text_value(
                "kgrad/findings", text or "No gradient problem found."
            )
            self._worker.submit(
                functools.partial(self._writer.write, self._step, [value])
            )

    def _handle_nonfinite(self):
        self._worker.drain()
        if self.on_nonfinite == "raise":
            finding = next(f for f in self._diagnose() if f.kind == "nonfinite")
            raise FloatingPointError(f"kgrad: {finding.message()}")
        self._report_findings()
        if self.on_nonfinite == "stop":
            self.model.stop_training = True
            print("kgrad: non-finite gradients: training stops (on_nonfinite='stop').")

    def _describe_run(self, captured):
        batch_size = captured["batch_size"]
        layers = self.model._flatten_layers(include_self=False, recursive=True)
        return {
            "model": self.model.name,
            "variables": self._capture.paths,
            "layers": [[layer.path, kind] for layer, kind in self._capture.probes],
            "batchnorm_layers": [
                layer.path
                for layer in layers
                if isinstance(layer, keras.layers.BatchNormalization)
            ],
            "batch_size": None if np.isnan(batch_size) else int(batch_size),
            "recurrent_layers": [
                layer_name(layer) for layer in self._capture.temporal.layers
            ],
        }


def _write_gradient_flow(writer, log_dir, scalars, run_info, step, title):
    """Draws the gradient-flow figure: a TensorBoard image and a PNG file.

    Runs in the worker thread at the end of `fit`.
    """
    if not writer.enabled:
        return
    figure = plots.gradient_flow_figure(scalars, run_info, title=title)
    png = plots.figure_png(figure)
    width, height = (int(v) for v in figure.canvas.get_width_height())
    value = summaries.image_value("kgrad/gradient_flow", png, width, height)
    writer.write(step, [value])
    path = os.path.join(log_dir, "gradient_flow.png")
    writer.guard(lambda: _write_bytes(path, png))
    heat_map = plots.temporal_heat_map(scalars, run_info, title=title)
    if heat_map is not None:
        width, height = (int(v) for v in heat_map.canvas.get_width_height())
        png = plots.figure_png(heat_map)
        value = summaries.image_value("kgrad/temporal_profile", png, width, height)
        writer.write(step, [value])


def _write_bytes(path, data):
    with open(path, "wb") as file:
        file.write(data)


def _is_positive_int(value):
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and (value > 0)
    )


def _open_writer(log_dir, strategy):
    """The writer of `log_dir/train`; it writes only on the chief.

    Every worker of a multi-worker run captures (the all-reduce of the logged
    gradients needs all of them); only the chief checks and writes `log_dir`.
    """
    chief = replicas.is_chief(strategy)
    if chief:
        _check_writable(log_dir)
    return event_writer.RunWriter(os.path.join(log_dir, "train"), enabled=chief)


def _check_writable(log_dir):
    try:
        os.makedirs(log_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=log_dir):
            pass
    except OSError as error:
        raise ValueError(
            f"`log_dir` cannot be written ({error.strerror}). "
            f"Received: log_dir={os.fspath(log_dir)!r}"
        ) from None
