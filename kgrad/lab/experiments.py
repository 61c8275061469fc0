"""Train zoo models with `GradientMonitor` and tabulate what their gradients show.

The machinery behind `kgrad train`, `kgrad compare` and `kgrad demo`: a
`RunConfig` says how to train one zoo model on one embedded data set, an
`Experiment` groups the runs that are compared, `run_experiment` trains them
and returns one `RunResult` each, `results_table` and `write_markdown` turn the
results into the markdown of `docs/RESULTS.md`.

Logs go to `<logdir>/<experiment>/<run>/train`, one TensorBoard run per model, so
`tensorboard --logdir <logdir>` shows every run of every experiment side by side.
Each run starts from `keras.utils.set_random_seed(seed)`, so a run gives the same
numbers whether it is trained alone or within an experiment.
"""

import dataclasses
import math
import os
import sys
import time
from typing import Mapping, Optional

import keras

from kgrad import checks
from kgrad.analysis import diagnostics, layer_profile, report
from kgrad.lab import data as data_lib
from kgrad.lab import zoo
from kgrad.lab.progress import ProgressWatch
from kgrad.monitor.drive.callback import GradientMonitor

OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How to train one zoo model.

    Attributes:
        model: A registered zoo model name.
        name: Name of the run (its log folder). Defaults to `model`.
        data: A `kgrad.data` name. Defaults to the model's own (`zoo.spec`).
        data_kwargs: Passed to `kgrad.data.load`, e.g. `{"length": 50}`.
        model_kwargs: Architecture overrides passed to `zoo.build`.
        optimizer: `"adam"` or `"sgd"`. Defaults to `"adam"`.
        learning_rate: Defaults to `1e-3`.
        clipnorm: Clip each gradient to this norm, or `None`. Defaults to `None`.
        epochs: Passes over the training data (ignored when `steps` is set).
            Defaults to `5`.
        steps: Train exactly this many optimizer steps instead. Defaults to
            `None`.
        batch_size: Defaults to `32`.
        target: Test accuracy (classification) or test MSE (regression: reached
            at or below it) whose first crossing is reported as
            `steps_to_target` (checked every `eval_every` steps), or `None`.
        eval_every: Steps between the test-accuracy checks of `target`.
            Defaults to `5`.
        run_eagerly: Passed to `model.compile`. Defaults to `False`.
        subsample: Keep only the first `subsample` training and test examples,
            or `None` for all. Defaults to `None`.
    """

    model: str
    name: Optional[str] = None
    data: Optional[str] = None
    data_kwargs: Mapping = dataclasses.field(default_factory=dict)
    model_kwargs: Mapping = dataclasses.field(default_factory=dict)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    clipnorm: Optional[float] = None
    epochs: int = 5
    steps: Optional[int] = None
    batch_size: int = 32
    target: Optional[float] = None
    eval_every: int = 5
    run_eagerly: bool = False
    subsample: Optional[int] = None

    @property
    def run_name(self):
        """The folder name of the run."""
        return self.name or self.model

    @property
    def data_name(self):
        """The data set the run trains on."""
        return self.data or zoo.spec(self.model).data

    def describe(self):
        """One line: optimizer, clipping and schedule, e.g. for the markdown."""
        clip = f", clipnorm={self.clipnorm}" if self.clipnorm else ""
        length = f"{self.steps} steps" if self.steps else f"{self.epochs} epochs"
        extra = "".join(f", {k}={v}" for k, v in self.data_kwargs.items())
        extra += "".join(f", {k}={v}" for k, v in self.model_kwargs.items())
        return (
            f"{self.optimizer}({self.learning_rate:g}{clip}), batch "
            f"{self.batch_size}, {length}{extra}"
        )


@dataclasses.dataclass(frozen=True)
class Experiment:
    """Runs that are trained the same way and compared.

    Attributes:
        name: Folder name under the log directory, e.g. `"depth20_mlp"`.
        title: Heading in the markdown.
        claim: The claim the comparison tests, in words (its number in
            docs/CLAIMS.md is in `title`).
        runs: The `RunConfig`s, in table order.
    """

    name: str
    title: str
    claim: str
    runs: tuple


@dataclasses.dataclass
class RunResult:
    """What one run measured.

    Attributes:
        experiment: The experiment's name.
        config: The `RunConfig` of the run.
        log_dir: The run's log directory (its `train` folder holds the events).
        steps: Optimizer steps taken.
        seconds: Wall time of `fit`, including the first compilation.
        loss: Training loss of the last epoch (mean over its steps).
        val_loss: Loss on the test split after training.
        val_accuracy: Accuracy on the test split, or `None` for regression.
        first_ratio: Gradient norm of the input-side layer over the
            output-side one at the first logged step (`nan` if unmeasured).
        last_ratio: The same at the last logged step.
        steps_to_target: First checked step at which the test accuracy reached
            `config.target`, or `None`.
        diverged_at: Step at which the loss became NaN/Inf, or `None`.
        findings: The diagnosis of the run (`kgrad.analysis.diagnostics`).
    """

    experiment: str
    config: RunConfig
    log_dir: str
    steps: int
    seconds: float
    loss: float
    val_loss: float
    val_accuracy: Optional[float]
    first_ratio: float
    last_ratio: float
    steps_to_target: Optional[int]
    diverged_at: Optional[int]
    findings: list


def validate(config):
    """Checks a `RunConfig` before any training starts.

    Raises:
        ValueError: Unknown model, data set or optimizer (with close matches),
            or a bad number.
        TypeError: A setting of the wrong type, e.g. `epochs=True`.
    """
    spec = zoo.spec(config.model)
    if config.data_name is None:
        raise ValueError(
            f"Model {config.model!r} has no default data set; pass one. "
            f"Known: {', '.join(data_lib.names())}."
        )
    checks.known_name("data set", config.data_name, data_lib.names())
    checks.one_of("optimizer", config.optimizer, OPTIMIZERS)
    checks.positive_number("learning_rate", config.learning_rate)
    checks.positive_ints(
        epochs=config.epochs, batch_size=config.batch_size, eval_every=config.eval_every
    )
    for key in ("steps", "subsample"):
        if getattr(config, key) is not None:
            checks.positive_int(key, getattr(config, key))
    checks.boolean("run_eagerly", config.run_eagerly)
    if config.clipnorm is not None:
        checks.positive_number("clipnorm", config.clipnorm)
    if config.target is not None:
        checks.number_in("target", config.target, "[0, 1]")
    return spec


def train(config, log_dir, *, experiment="", seed=0, stream=None):
    """Trains one zoo model with `GradientMonitor` and measures it.

    Args:
        config: A `RunConfig`.
        log_dir: The run's log directory; events go to `log_dir/train`.
        experiment: Name of the experiment, stored in the result. Defaults to
            `""`.
        seed: Passed to `keras.utils.set_random_seed` first. Defaults to `0`.
        stream: Where one progress line per epoch goes, or `None` for
            `sys.stdout`. Defaults to `None`.

    Returns:
        A `RunResult`.

    Example:
        ```python
        result = train(RunConfig("mlp_sigmoid", epochs=1), "logs/try/mlp_sigmoid")
        result.first_ratio  # far below 1e-3
        ```
    """
    stream = stream or sys.stdout
    spec = validate(config)
    keras.utils.set_random_seed(seed)
    ds = data_lib.load(config.data_name, **config.data_kwargs)
    if config.subsample:
        keep = slice(config.subsample)
        ds = dataclasses.replace(
            ds,
            x_train=ds.x_train[keep],
            y_train=ds.y_train[keep],
            x_test=ds.x_test[keep],
            y_test=ds.y_test[keep],
        )
    try:
        model = zoo.build(
            config.model,
            input_shape=ds.input_shape,
            num_classes=ds.output_units,
            **config.model_kwargs,
        )
    except ValueError as error:
        if "input_shape" not in str(error):
            raise
        raise ValueError(
            f"Model {config.model!r} cannot train on data set {ds.name!r}, whose "
            f"examples have shape {tuple(ds.input_shape)} ({error})"
        ) from None
    optimizer_class = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    optimizer = optimizer_class[config.optimizer](
        learning_rate=config.learning_rate, clipnorm=config.clipnorm
    )
    classification = ds.task == "classification"
    if classification:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    else:
        loss, metrics = "mse", None
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
        run_eagerly=config.run_eagerly,
    )
    if spec.task != ds.task:
        print(
            f"note: {config.model} is meant for {spec.task}, {ds.name} is {ds.task}",
            file=stream,
        )

    steps_per_epoch = math.ceil(len(ds.x_train) / config.batch_size)
    epochs = config.epochs
    if config.steps:
        epochs = math.ceil(config.steps / steps_per_epoch)
    total = config.steps or epochs * steps_per_epoch
    watch = ProgressWatch(config, ds, total, stream)
    monitor = GradientMonitor(
        log_dir,
        norms_every=max(1, total // 50),
        histograms_every="epoch",
        first_steps=10,
    )
    start = time.perf_counter()
    history = model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=config.batch_size,
        epochs=epochs,
        validation_data=(ds.x_test, ds.y_test),
        verbose=0,
        callbacks=[monitor, watch],
    )
    seconds = time.perf_counter() - start
    logs = history.history
    first_ratio, last_ratio, findings = analyse(log_dir)
    return RunResult(
        experiment=experiment,
        config=config,
        log_dir=os.fspath(log_dir),
        steps=int(model.optimizer.iterations.numpy()),
        seconds=seconds,
        loss=_last(logs.get("loss")),
        val_loss=_last(logs.get("val_loss")),
        val_accuracy=_last(logs.get("val_accuracy")) if classification else None,
        first_ratio=first_ratio,
        last_ratio=last_ratio,
        steps_to_target=watch.steps_to_target,
        diverged_at=watch.diverged_at,
        findings=findings,
    )


def run_experiment(experiment, log_dir, *, seed=0, stream=None):
    """Trains the runs of an experiment, one after the other.

    Args:
        experiment: An `Experiment`.
        log_dir: Root log directory; run `r` logs to `log_dir/<experiment>/r`.
        seed: Seed of every run. Defaults to `0`.
        stream: Where progress goes, or `None` for `sys.stdout`. Defaults to
            `None`.

    Returns:
        A list of `RunResult`, in the order of `experiment.runs`.
    """
    stream = stream or sys.stdout
    for config in experiment.runs:
        validate(config)
    print(f"\n== {experiment.title}", file=stream, flush=True)
    results = []
    for config in experiment.runs:
        run_dir = os.path.join(log_dir, experiment.name, config.run_name)
        results.append(
            train(config, run_dir, experiment=experiment.name, seed=seed, stream=stream)
        )
    return results


def analyse(log_dir):
    """Reads a run back: its gradient-norm ratios and its diagnosis.

    Args:
        log_dir: The run's log directory (with a `train` folder).

    Returns:
        A tuple `(first, last, findings)`: the input-side/output-side
        gradient-norm ratio (`layer_profile.layer_profile`) at the first and at
        the last logged step (`nan` if it has no two sides), and the
        `diagnostics.diagnose` findings.
    """
    scalars, run_info = report.load_run(log_dir)
    steps = layer_profile.norm_steps(scalars)
    first, last = (
        _input_ratio(layer_profile.layer_profile(scalars, run_info, step))
        for step in (steps[0], steps[-1])
    )
    return first, last, diagnostics.diagnose(scalars, run_info)


def _input_ratio(rows):
    return next((row.ratio for row in rows if row.side == "input"), math.nan)


def _last(values):
    return float(values[-1]) if values else float("nan")


# -- quick mode ----------------------------------------------------------------
_QUICK_MODEL = {
    "mlp": {"depth": 4, "width": 8},
    "cnn": {"depth": 2, "filters": 8},
    "resnet": {"width": 4},
    "rnn": {"units": 8},
    "transformer": {"blocks": 1, "d_model": 8, "heads": 2, "ff_dim": 16},
}
_QUICK_DATA = {
    "adding": {"length": 10, "n_train": 64, "n_test": 32},
    "temporal_order": {"length": 10, "n_train": 64, "n_test": 32},
}


def quick(config, steps=3, batch_size=16):
    """The tiny version of a run, for tests: a few steps of a tiny model.

    Zoo families get small widths and depths, the sequence tasks length 10
    and 64 examples are kept for training and testing; every run trains 3
    steps of batch 16, eagerly: tracing the train step of a ResNet-18 costs
    more than 3 eager steps.

    Args:
        config: A `RunConfig`.
        steps: Steps to train (the user's `--steps`). Defaults to `3`.
        batch_size: The batch size (the user's `--batch-size`). Defaults to
            `16`.

    Returns:
        A new `RunConfig`.
    """
    family = zoo.spec(config.model).builder.__module__.rsplit(".", 1)[-1]
    return dataclasses.replace(
        config,
        model_kwargs={**config.model_kwargs, **_QUICK_MODEL.get(family, {})},
        data_kwargs={**config.data_kwargs, **_QUICK_DATA.get(config.data_name, {})},
        steps=steps,
        batch_size=batch_size,
        eval_every=1,
        run_eagerly=True,
        subsample=64,
    )
