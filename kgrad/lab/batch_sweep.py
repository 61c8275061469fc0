"""Does the noise scale predict the critical batch? A batch-size sweep on digits.

McCandlish et al. (2018) model the steps `S` and examples `E = B * S` needed to
reach a given loss at batch `B` as `S = S_min (1 + B_noise / B)`: doubling a
small batch halves the steps, doubling a large one saves almost none. The
critical batch `B_crit = E_min / S_min` is where the two regimes meet, and
`B_simple`, measured from the gradients of one run, predicts it.

The sweep trains the same model (an MLP with LayerNorm on the 8x8 digits, every
layer covered by a per-example rule), from the same initial weights, at
batches 8 ... 1024, until the loss on the whole training set reaches `TARGET`
(checked every ~5% of the steps so far). It fits `S = S_min + S_min B_noise / B`
to the steps (least squares in `1/B`) for the measured `B_crit`, and reads
`b_simple/global` (`GradientMonitor(noise_scale=True)`) from the smallest-batch
run: its median over the logged steps whose loss lies within 2x of the target,
and its trend as the loss falls. docs/CLAIMS.md, claim 16.

Example:

```python
from kgrad.lab import batch_sweep

sweep = batch_sweep.run_sweep("logs/sweep", quick=True)
print(batch_sweep.markdown(sweep))
```
"""

import dataclasses
import os

import keras
import numpy as np

from kgrad import tags
from kgrad.lab import data

BATCHES = (8, 16, 32, 64, 128, 256, 512, 1024)
TARGET = 0.3
"""Cross-entropy on the whole training set at which a run stops."""
QUICK_TARGET = 2.0
"""The same for `quick=True` (a few dozen steps)."""
LEARNING_RATE = 1e-3
MAX_EPOCHS = 400


@dataclasses.dataclass
class SweepResult:
    """What the sweep measured.

    Attributes:
        batches: The batch sizes run.
        steps: Steps to reach `TARGET` at each (`None` if not reached).
        b_crit: `E_min / S_min` fitted to the steps.
        b_simple: `B_simple` of the smallest-batch run near the target.
        trend: `[(loss, b_simple)]` of that run at its logged steps.
        target: The loss the runs trained to.
        layernorm: `B_simple` of the LayerNorm weights alone, measured as
            `b_simple` (Gray et al. 2024).
    """

    batches: tuple
    steps: list
    b_crit: float
    b_simple: float
    trend: list
    target: float = TARGET
    layernorm: float = float("nan")

    @property
    def ratio(self):
        """`b_simple / b_crit` (within 4x is the target of issue 34)."""
        return self.b_simple / self.b_crit


def _model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((64,))
    x = keras.layers.Dense(64, activation="relu")(inputs)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="sweep_mlp")


class _StopAtLoss(keras.callbacks.Callback):
    """Stops when the loss on `x, y` reaches `target`; counts the steps."""

    def __init__(self, x, y, target, max_steps):
        super().__init__()
        self.x, self.y, self.target, self.max_steps = x, y, target, max_steps
        self.steps, self.reached, self.losses = 0, None, {}

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % max(1, self.steps // 20) and self.steps < self.max_steps:
            return
        loss = float(self.model.evaluate(self.x, self.y, batch_size=2048, verbose=0))
        self.losses[self.steps] = loss
        if loss <= self.target:
            self.reached = self.steps
        if loss <= self.target or self.steps >= self.max_steps:
            self.model.stop_training = True


def _train(batch, x, y, seed, target, log_dir=None, max_steps=None):
    """`(steps to TARGET or None, losses by step)` of one run."""
    from kgrad import GradientMonitor

    model = _model(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    stop = _StopAtLoss(x, y, target, max_steps or 10**9)
    callbacks = [stop]
    if log_dir is not None:
        callbacks.append(
            GradientMonitor(
                log_dir, norms_every=10, noise_scale=True, verbose=0, figure_secs=None
            )
        )
    model.fit(
        x,
        y,
        batch_size=batch,
        epochs=MAX_EPOCHS,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return stop.reached, stop.losses


def fit_critical_batch(batches, steps):
    """`E_min / S_min` of `S = S_min + S_min B_noise / B`, least squares in 1/B.

    Example:

    >>> round(fit_critical_batch([10, 100, 1000], [1100, 200, 110]), 1)
    100.0
    """
    b = np.asarray(batches, float)
    s = np.asarray(steps, float)
    slope, intercept = np.polyfit(1.0 / b, s, 1)
    return float(slope / intercept)


def _b_simple_near_target(log_dir, losses, target, tag=tags.GLOBAL_B_SIMPLE):
    """Median `B_simple` (`tag`) at logged steps whose loss is within 2x of the
    target, and `[(loss, b_simple)]` over the run (loss: the nearest evaluation)."""
    from kgrad.analysis import runs

    scalars, _ = runs.load_run(os.path.join(log_dir, "train"))
    evaluated = np.array(sorted(losses))
    trend = []
    for step, value in scalars.get(tag, []):
        nearest = evaluated[np.argmin(np.abs(evaluated - step))]
        trend.append((losses[int(nearest)], float(value)))
    near = [b for loss, b in trend if loss <= 2 * target]
    return float(np.median(near)) if near else float("nan"), trend


def run_sweep(logdir="logs/batch_sweep", quick=False, seed=0, stream=None):
    """Runs the sweep and returns a `SweepResult`.

    Args:
        logdir: Where the smallest-batch run logs its gradients. Defaults to
            `"logs/batch_sweep"`.
        quick: Two batches, at most 30 steps each (for tests). Defaults to
            `False`.
        seed: Seed of the initial weights and the shuffling. Defaults to `0`.
        stream: Where progress lines go, or `None`. Defaults to `None`.
    """
    digits = data.load("digits_flat")
    x, y = digits.x_train, digits.y_train
    batches = (8, 64) if quick else BATCHES
    target = QUICK_TARGET if quick else TARGET
    steps, losses0 = [], None
    for batch in batches:
        log_dir = logdir if batch == batches[0] else None
        reached, losses = _train(
            batch, x, y, seed, target, log_dir, max_steps=30 if quick else None
        )
        losses0 = losses0 or losses
        steps.append(reached)
        if stream is not None:
            print(f"batch_sweep: batch {batch}: {reached} steps", file=stream)
    done = [(b, s) for b, s in zip(batches, steps, strict=True) if s]
    b_crit = fit_critical_batch(*zip(*done, strict=True)) if len(done) > 1 else np.nan
    b_simple, trend = _b_simple_near_target(logdir, losses0, target)
    layernorm, _ = _b_simple_near_target(
        logdir, losses0, target, tags.NOISE_B_SIMPLE_LAYERNORM
    )
    return SweepResult(batches, steps, b_crit, b_simple, trend, target, layernorm)


def markdown(sweep):
    """The sweep's section of docs/RESULTS.md."""
    rows = [
        f"| batch | steps to loss {sweep.target:g} | examples | steps / previous |",
        "|---|---|---|---|",
    ]
    previous = None
    for batch, steps in zip(sweep.batches, sweep.steps, strict=True):
        shown = "not reached" if steps is None else f"{steps:,}"
        examples = "" if steps is None else f"{batch * steps:,}"
        ratio = f"{steps / previous:.2f}" if steps and previous else ""
        rows.append(f"| {batch} | {shown} | {examples} | {ratio} |")
        previous = steps
    falling = sorted(sweep.trend, reverse=True)
    thirds = np.array_split(np.array(falling), 3) if len(falling) >= 3 else []
    trend = ", ".join(
        f"{np.median(part[:, 1]):,.0f} at loss {np.median(part[:, 0]):.2f}"
        for part in thirds
    )
    share = sweep.layernorm / sweep.b_simple
    return "\n".join(
        [
            "## Row 16: batch-size sweep and the gradient noise scale",
            "",
            "Steps to a loss as the batch doubles: the critical batch is where they "
            "stop halving (McCandlish et al. 2018). Adam(1e-3), MLP with LayerNorm "
            "on the 8x8 digits (training loss on the whole training set), same "
            "initial weights for every batch.",
            "",
            *rows,
            "",
            f"- Measured critical batch `E_min / S_min` (fit of `S = S_min (1 + "
            f"B_noise / B)`): **{sweep.b_crit:,.0f}**",
            f"- `B_simple` of the batch-{sweep.batches[0]} run near the target "
            f"(median, loss within 2x): **{sweep.b_simple:,.0f}**, "
            f"{sweep.ratio:.2f}x the measured critical batch",
            f"- `B_simple` as the loss falls (medians of thirds of the run): {trend}",
            f"- `B_simple` of the LayerNorm weights alone (Gray et al. 2024), same "
            f"steps: **{sweep.layernorm:,.0f}**, {share:.2f}x the estimate over "
            "every weight",
            "",
        ]
    )
