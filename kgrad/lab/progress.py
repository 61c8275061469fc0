"""The progress callback of the lab's runs: one line per epoch, and two events.

`ProgressWatch` prints one line per epoch (step, losses, accuracy, seconds),
records the first checked step at which the test accuracy reaches the run's
`target`, and stops training at the first non-finite loss, recording its step.

Example:
    ```python
    watch = ProgressWatch(RunConfig("cnn_bn", target=0.9), ds, total=200)
    model.fit(ds.x_train, ds.y_train, callbacks=[watch], verbose=0)
    watch.steps_to_target, watch.diverged_at
    ```
"""

import sys
import time

import keras
import numpy as np


class ProgressWatch(keras.callbacks.Callback):
    """One progress line per epoch; steps to the target accuracy; stop on NaN.

    Args:
        config: The run's `kgrad.lab.experiments.RunConfig` (its `run_name`,
            `steps`, `target` and `eval_every` are used).
        ds: The run's `kgrad.lab.data.Dataset` (its test split is checked
            against `config.target`).
        total: Optimizer steps the run will take, for the progress line.
        stream: Where the lines go, or `None` for `sys.stdout`. Defaults to
            `None`.

    Attributes:
        steps_to_target: First checked step with test accuracy >= target, or
            `None`.
        diverged_at: Step at which the loss became NaN/Inf, or `None`.
    """

    def __init__(self, config, ds, total, stream=None):
        super().__init__()
        self.config, self.ds, self.total = config, ds, total
        self.stream = stream or sys.stdout
        self.steps_to_target = self.diverged_at = None

    def on_train_begin(self, logs=None):
        self.steps_to_target = self.diverged_at = None
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.diverged_at = step
            self.model.stop_training = True
            return
        if self.config.steps and step >= self.config.steps:
            self.model.stop_training = True
        if self._target_due(step):
            outputs = self.model.predict_on_batch(self.ds.x_test)
            if self.ds.task == "classification":
                accuracy = np.mean(np.argmax(outputs, -1) == self.ds.y_test)
                reached = accuracy >= self.config.target
            else:  # regression: the test MSE at or below the target
                mse = np.mean((outputs - self.ds.y_test) ** 2)
                reached = mse <= self.config.target
            if reached:
                self.steps_to_target = step

    def _target_due(self, step):
        return (
            self.config.target is not None
            and self.steps_to_target is None
            and step % self.config.eval_every == 0
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = int(self.model.optimizer.iterations.numpy())
        parts = [f"  {self.config.run_name:<24} step {step:>5}/{self.total}"]
        for key in ("loss", "val_loss", "val_accuracy"):
            if key in logs:
                parts.append(f"{key} {float(logs[key]):.4g}")
        if self.diverged_at:
            parts.append(f"loss non-finite at step {self.diverged_at}")
        parts.append(f"{time.perf_counter() - self._start:.0f}s")
        print("  ".join(parts), file=self.stream, flush=True)
