"""`kgrad demo` and `kgrad compare`: the classic gradient experiments, rerun.

The demo trains the contrasting pairs of docs/CLAIMS.md on embedded data (no
download), each with `GradientMonitor`, prints one progress line per epoch and
a results table, writes TensorBoard logs under `<logdir>/<experiment>/<run>`
and the table as markdown with one gradient-flow PNG per experiment.

| experiment | claim | runs |
|---|---|---|
| `depth20_mlp` | 1-2 | `mlp_sigmoid` vs `mlp_relu_he`, 20 layers |
| `resnet34_skips_nobn` | 6 | ResNet-34 without BatchNorm, without and with skips |
| `resnet18_bn_or_skips` | 6 | `--full`: ResNet-18 plain with or without BN; skips |
| `cnn_batchnorm` | 8 | `cnn_plain` vs `cnn_bn`: steps to a test accuracy |
| `adding_lengths` | 10 | `rnn_simple`, `lstm`, `gru`: adding problem, growing length |
| `clipping` | 11 | `rnn_exploding` with SGD, without and with `clipnorm=1.0` |
| `transformer_norm` | 13 | `transformer_small` with pre-, post- and no LayerNorm |
| `batch_sweep` | 16 | batches 8 ... 1024 to a loss: critical batch vs `B_simple` |

Example:
    ```python
    from kgrad.lab import demo

    demo.run_demo(logdir="logs", quick=True)  # tiny sizes: seconds
    ```
"""

import dataclasses
import os
import sys
import time

from kgrad.lab import batch_sweep, data, experiments, results_markdown
from kgrad.lab.experiments import Experiment, RunConfig

ADDING_LENGTHS = (10, 50)
"""Sequence lengths of the adding-problem experiment (docs/CLAIMS.md, claim 10)."""

FULL_ADDING_LENGTHS = (10, 50, 100, 200)
"""Sequence lengths of `kgrad demo --full`."""

ADDING_TARGET = 0.1 * data.ADDING_MEAN_MSE
"""Test MSE at which the adding problem counts as learned: 90% of the variance."""

RNN_CELLS = ("rnn_simple", "lstm", "gru")


def demo_experiments(quick=False, full=False):
    """The demo's experiments, in the order they run.

    Args:
        quick: Tiny models, a few steps each, one sequence length (for tests).
            Defaults to `False`.
        full: Longer sequences (up to `FULL_ADDING_LENGTHS`), longer training
            and a deeper BatchNorm-free plain/skip pair, for users with more
            than 5 minutes. Defaults to `False`.

    Returns:
        A list of `Experiment`.
    """
    lengths = (10,) if quick else FULL_ADDING_LENGTHS if full else ADDING_LENGTHS
    adding = tuple(
        RunConfig(
            cell,
            name=f"{cell}_T{length}",
            data_kwargs={"length": length},
            learning_rate=1e-2,
            epochs=30 if full else 12,
            target=ADDING_TARGET,
            eval_every=20,
        )
        for length in lengths
        for cell in RNN_CELLS
    )
    exploding = {
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "epochs": 4,
        "data_kwargs": {"length": 20},
    }
    found = [
        Experiment(
            "depth20_mlp",
            "Rows 1-2: sigmoid vs ReLU + He at depth 20",
            "Sigmoid's derivative is at most 0.25, so through 20 sigmoid layers the "
            "gradient shrinks by up to 0.25^20 = 9.1e-13; ReLU with He init keeps "
            "its magnitude (first/last within about one order of magnitude).",
            (RunConfig("mlp_sigmoid", epochs=4), RunConfig("mlp_relu_he", epochs=4)),
        ),
        _deep_skips_experiment(epochs=5 if full else 2),
        Experiment(
            "cnn_batchnorm",
            "Row 8: steps to 90% test accuracy without and with BatchNorm",
            "BatchNorm reached the same ImageNet accuracy in 14x fewer steps "
            "(Ioffe & Szegedy 2015). Same data, optimizer and seed; test accuracy "
            "checked every 10 steps.",
            tuple(
                RunConfig(name, steps=200, target=0.9, eval_every=10)
                for name in ("cnn_plain", "cnn_bn")
            ),
        ),
        Experiment(
            "adding_lengths",
            "Row 10: SimpleRNN vs LSTM vs GRU on the adding problem",
            "Plain RNNs cannot learn dependencies beyond about 10 steps; LSTM "
            "bridges 1,000+ (Hochreiter & Schmidhuber report 74k training "
            "sequences at T=100). Predicting the mean gives MSE 0.167; a run "
            f"counts as learned at test MSE <= {ADDING_TARGET:.3g} (90% of the "
            "variance), checked every 20 steps; the event column gives the "
            "training sequences it took. The second panel of the figure is the "
            "temporal profile: the gradient reaching each timestep of the "
            "recurrent layer's input.",
            adding,
        ),
        Experiment(
            "clipping",
            "Row 11: an exploding RNN without and with clipnorm=1.0",
            "Gradient clipping at a norm of about 1.0 fixes exploding gradients "
            "(not vanishing ones). `rnn_exploding`: ReLU, recurrent gain 2, SGD, "
            "adding problem of length 20.",
            (
                RunConfig("rnn_exploding", name="sgd", **exploding),
                RunConfig(
                    "rnn_exploding", name="sgd_clipnorm1", clipnorm=1.0, **exploding
                ),
            ),
        ),
        Experiment(
            "transformer_norm",
            "Row 13: Transformer with pre-, post- and no LayerNorm",
            "Transformers stay trainable through residuals + LayerNorm; pre-LN keeps "
            "the gradient flat over the blocks, post-LN's grows toward the output "
            "(Xiong et al. 2020). Temporal-order task, length 50.",
            tuple(
                RunConfig(name, data_kwargs={"n_train": 1000}, epochs=3)
                for name in (
                    "transformer_small",
                    "transformer_small_post",
                    "transformer_small_nonorm",
                )
            ),
        ),
    ]
    if full:
        found.insert(2, _bn_or_skips_experiment())
    if quick:
        found = [
            dataclasses.replace(e, runs=tuple(experiments.quick(r) for r in e.runs))
            for e in found
        ]
    return found


def _deep_skips_experiment(epochs):
    """Row 6: ResNet-34 without BatchNorm, without and with skips."""
    settings = {"epochs": epochs, "model_kwargs": {"width": 16, "batchnorm": False}}
    return Experiment(
        "resnet34_skips_nobn",
        "Row 6: ResNet-34 without BatchNorm, without and with skip connections",
        "Without skips the gradient vanishes toward the input layers; with skips "
        "it stays uniform (89.9% vs 84.1% on CIFAR-10 in the cited paper). A "
        "plain network with BatchNorm suffers degradation rather than vanishing "
        "(He et al. 2016), so neither twin has BatchNorm here: only the skips "
        "differ. 34 layers on 8x8 digits at width 16.",
        (
            RunConfig("resnet34_plain", name="resnet34_plain_nobn", **settings),
            RunConfig("resnet34", name="resnet34_nobn", **settings),
        ),
    )


def _bn_or_skips_experiment():
    """`--full`: ResNet-18 plain with and without BatchNorm, and with skips."""
    settings = {"epochs": 4, "model_kwargs": {"width": 16}}
    return Experiment(
        "resnet18_bn_or_skips",
        "Row 6, ResNet-18: BatchNorm or skips against vanishing",
        "The plain ResNet-18 with BatchNorm, without it, and ResNet-18 with both.",
        tuple(
            RunConfig(name, **settings)
            for name in ("resnet18_plain", "resnet18_plain_nobn", "resnet18")
        ),
    )


def run_demo(logdir="logs", out=None, seed=0, quick=False, stream=None, full=False):
    """Runs the demo: trains, prints the table, writes markdown and PNGs.

    Args:
        logdir: Root of the TensorBoard logs. Defaults to `"logs"`.
        out: The markdown file. Defaults to `<logdir>/RESULTS.md`.
        seed: Seed of every run. Defaults to `0`.
        quick: Tiny sizes (for tests). Defaults to `False`.
        stream: Where the output goes, or `None` for `sys.stdout`. Defaults to
            `None`.
        full: The longer demo (`demo_experiments(full=True)`). Defaults to
            `False`.

    Returns:
        The `RunResult`s of all runs (the batch-size sweep of
        `kgrad.lab.batch_sweep` runs last and appends its own section).
    """
    command = _command("demo", logdir, out, seed, quick) + (" --full" if full else "")

    def sweep(stream):
        folder = os.path.join(logdir, "batch_sweep")
        found = batch_sweep.run_sweep(folder, quick=quick, seed=seed, stream=stream)
        return batch_sweep.markdown(found)

    experiments_ = demo_experiments(quick, full)
    return _run(experiments_, command, logdir, out, seed, stream, after=sweep)


def run_compare(
    models,
    logdir="logs",
    out=None,
    seed=0,
    quick=False,
    stream=None,
    experiment="compare",
    **settings,
):
    """Trains zoo models the same way and compares them, like the demo.

    Args:
        models: Registered zoo model names.
        logdir: Root of the logs; runs go to `<logdir>/<experiment>/<model>`.
            Defaults to `"logs"`.
        out: The markdown file. Defaults to `<logdir>/<experiment>/RESULTS.md`.
        seed: Seed of every run. Defaults to `0`.
        quick: Tiny sizes (for tests). Defaults to `False`.
        stream: Where the output goes, or `None` for `sys.stdout`. Defaults to
            `None`.
        experiment: Folder name of the comparison. Defaults to `"compare"`.
        **settings: `RunConfig` fields shared by all runs: `data`, `epochs`,
            `steps`, `batch_size`, `optimizer`, `learning_rate`, `clipnorm`.

    Returns:
        The `RunResult`s.

    Raises:
        ValueError: If a model or data set is unknown (lists close matches).
    """
    settings = {k: v for k, v in settings.items() if v is not None}
    runs, seen = [], {}
    for model in models:
        seen[model] = seen.get(model, 0) + 1
        name = model if seen[model] == 1 else f"{model}_{seen[model]}"
        config = RunConfig(model, name=name, **settings)
        experiments.validate(config)  # before `quick` replaces any setting
        sizes = {k: settings[k] for k in ("steps", "batch_size") if k in settings}
        runs.append(experiments.quick(config, **sizes) if quick else config)
    title = " vs ".join(models) if len(models) > 1 else models[0]
    found = Experiment(experiment, title, "", tuple(runs))
    out = out or os.path.join(logdir, experiment, "RESULTS.md")
    command = _command(experiment, logdir, out, seed, quick, models, settings)
    return _run([found], command, logdir, out, seed, stream)


def _run(found, command, logdir, out, seed, stream, after=None):
    """Runs `found`, then `after(stream)` (a markdown section, or `None`)."""
    stream = stream or sys.stdout
    out = out or os.path.join(logdir, "RESULTS.md")
    for experiment in found:
        for config in experiment.runs:
            experiments.validate(config)
    start = time.perf_counter()
    sections = []
    for experiment in found:
        results = experiments.run_experiment(
            experiment, logdir, seed=seed, stream=stream
        )
        sections.append((experiment, results))
    extra = after(stream) if after is not None else None
    every = [r for _, results in sections for r in results]
    table = results_markdown.results_table(every)
    print(f"\n{table}\n", file=stream)
    if extra:
        print(f"{extra}\n", file=stream)
    header = results_markdown.header(command, time.perf_counter() - start, table)
    pngs = results_markdown.write_markdown(out, sections, header)
    if extra:
        with open(out, "a") as file:
            file.write(f"\n{extra}")
    seconds = time.perf_counter() - start
    print(f"Wrote {out} and {len(pngs)} plot(s) next to it.", file=stream)
    wall = results_markdown.duration(seconds)
    print(f"Wall time: {wall} ({results_markdown.cpu_load()}).", file=stream)
    print(f"See the gradients: tensorboard --logdir {logdir}", file=stream)
    return every


def _command(name, logdir, out, seed, quick, models=(), settings=None):
    words = ["kgrad", name if name in ("demo", "train") else "compare", *models]
    flags = {"data": "--data", "epochs": "--epochs", "steps": "--steps"}
    flags.update(batch_size="--batch-size", optimizer="--optimizer")
    flags.update(learning_rate="--learning-rate", clipnorm="--clipnorm")
    for key, value in (settings or {}).items():
        words += [flags.get(key, f"--{key}"), str(value)]
    if logdir != "logs":
        words += ["--logdir", os.fspath(logdir)]
    if out is not None and name == "demo":
        words += ["--out", os.fspath(out)]
    if seed != 0:
        words += ["--seed", str(seed)]
    if quick:
        words.append("--quick")
    return " ".join(words)
