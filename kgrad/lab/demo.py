"""`kgrad demo` and `kgrad compare`: the classic gradient experiments, rerun.

The demo trains the contrasting pairs of FACTS.md on embedded data (no
download), each with `GradientMonitor`, prints one progress line per epoch and
a results table, writes TensorBoard logs under `<logdir>/<experiment>/<run>`
and the table as markdown with one gradient-flow PNG per experiment.

| experiment | FACTS row | runs |
|---|---|---|
| `depth20_mlp` | 1-2 | `mlp_sigmoid` vs `mlp_relu_he`, 20 layers |
| `resnet18_skips` | 6 | `resnet18_plain` vs `resnet18` |
| `cnn_batchnorm` | 8 | `cnn_plain` vs `cnn_bn`: steps to a test accuracy |
| `adding_lengths` | 10 | `rnn_simple`, `lstm`, `gru`: adding problem, growing length |
| `clipping` | 11 | `rnn_exploding` with SGD, without and with `clipnorm=1.0` |
| `transformer_norm` | 13 | `transformer_small` with pre-, post- and no LayerNorm |

Example:
    ```python
    from kgrad.lab import demo

    demo.run_demo(logdir="runs", quick=True)  # tiny sizes: seconds
    ```
"""

import dataclasses
import math
import os
import platform
import sys
import time

from kgrad.analysis import report
from kgrad.lab import experiments
from kgrad.lab.experiments import Experiment, RunConfig

ADDING_LENGTHS = (10, 50)
"""Sequence lengths of the adding-problem experiment (FACTS row 10)."""

RNN_CELLS = ("rnn_simple", "lstm", "gru")


def demo_experiments(quick=False):
    """The demo's experiments, in the order they run.

    Args:
        quick: Tiny models, a few steps each, one sequence length (for tests).
            Defaults to `False`.

    Returns:
        A list of `Experiment`.
    """
    lengths = (10,) if quick else ADDING_LENGTHS
    adding = tuple(
        RunConfig(
            cell,
            name=f"{cell}_T{length}",
            data_kwargs={"length": length},
            learning_rate=1e-2,
            epochs=8,
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
        Experiment(
            "resnet18_skips",
            "Row 6: ResNet-18 without and with skip connections",
            "Without skips the gradient norms drop sharply in the early layers; "
            "with skips they stay uniform (89.9% vs 84.1% on CIFAR-10 in the "
            "cited paper). Here on 8x8 digits at width 16.",
            (
                RunConfig("resnet18_plain", epochs=2, model_kwargs={"width": 16}),
                RunConfig("resnet18", epochs=2, model_kwargs={"width": 16}),
            ),
        ),
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
            "bridges 1,000+. Predicting the mean gives MSE 0.167.",
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
    if quick:
        found = [
            dataclasses.replace(e, runs=tuple(experiments.quick(r) for r in e.runs))
            for e in found
        ]
    return found


def run_demo(logdir="runs", out=None, seed=0, quick=False, stream=None):
    """Runs the demo: trains, prints the table, writes markdown and PNGs.

    Args:
        logdir: Root of the TensorBoard logs. Defaults to `"runs"`.
        out: The markdown file. Defaults to `<logdir>/RESULTS.md`.
        seed: Seed of every run. Defaults to `0`.
        quick: Tiny sizes (for tests). Defaults to `False`.
        stream: Where the output goes, or `None` for `sys.stdout`. Defaults to
            `None`.

    Returns:
        The `RunResult`s of all runs.
    """
    command = _command("demo", logdir, out, seed, quick)
    return _run(demo_experiments(quick), command, logdir, out, seed, stream)


def run_compare(
    models,
    logdir="runs",
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
            Defaults to `"runs"`.
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


def _run(found, command, logdir, out, seed, stream):
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
    every = [r for _, results in sections for r in results]
    table = results_table(every)
    print(f"\n{table}\n", file=stream)
    header = _header(command, time.perf_counter() - start, table)
    pngs = write_markdown(out, sections, header)
    seconds = time.perf_counter() - start
    print(f"Wrote {out} and {len(pngs)} plot(s) next to it.", file=stream)
    print(f"Wall time: {_duration(seconds)} ({_load()}).", file=stream)
    print(f"See the gradients: tensorboard --logdir {logdir}", file=stream)
    return every


def _command(name, logdir, out, seed, quick, models=(), settings=None):
    words = ["kgrad", name if name in ("demo", "train") else "compare", *models]
    flags = {"data": "--data", "epochs": "--epochs", "steps": "--steps"}
    flags.update(batch_size="--batch-size", optimizer="--optimizer")
    flags.update(learning_rate="--learning-rate", clipnorm="--clipnorm")
    for key, value in (settings or {}).items():
        words += [flags.get(key, f"--{key}"), str(value)]
    if logdir != "runs":
        words += ["--logdir", os.fspath(logdir)]
    if out is not None and name == "demo":
        words += ["--out", os.fspath(out)]
    if seed != 0:
        words += ["--seed", str(seed)]
    if quick:
        words.append("--quick")
    return " ".join(words)


def machine():
    """One line: CPU model, cores, OS and the versions that matter."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return (
        f"{cpu}, {cores or os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}"
    )


def _header(command, seconds, table):
    return (
        "# kgrad results\n\n"
        f"Produced by `{command}`; nothing here is typed by hand.\n\n"
        f"- Machine: {machine()}\n"
        f"- Wall time of the training: {_duration(seconds)} ({_load()})\n"
        "- Ratio `in/out`: gradient norm of the input-side layer over the "
        "output-side layer (`kgrad.analysis.layer_profile`), at the first "
        "(`@1`) and at the last (`@end`) logged step.\n\n"
        f"{table}\n"
    )


def _load():
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"CPU time {_duration(time.process_time())}, load average {load}"


def _duration(seconds):
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


# -- tables and markdown -------------------------------------------------------
COLUMNS = (
    "experiment",
    "run",
    "steps",
    "in/out @1",
    "in/out @end",
    "train loss",
    "test loss",
    "test acc",
    "event",
    "findings",
    "time",
)


def results_table(results):
    """The results as a markdown table, padded to read well in a terminal too.

    Columns: experiment, run, optimizer steps, the input-side/output-side
    gradient-norm ratio at the first and at the last logged step, training loss
    of the last epoch, test loss and accuracy, the target accuracy's first step
    or the step the loss went NaN, the kinds of the findings, and the wall time.

    Args:
        results: `RunResult`s.

    Returns:
        The table as a string, one line per run after the header.
    """
    rows = [COLUMNS] + [_row(result) for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [_line(rows[0], widths)]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [_line(row, widths) for row in rows[1:]]
    return "\n".join(lines)


def _line(cells, widths):
    return (
        "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    )


def _row(result):
    config = result.config
    event = ""
    if result.diverged_at is not None:
        event = f"loss NaN at step {result.diverged_at}"
    elif config.target is not None:
        event = (
            f"{config.target:.0%} at step {result.steps_to_target}"
            if result.steps_to_target is not None
            else f"{config.target:.0%} not reached"
        )
    kinds = ", ".join(dict.fromkeys(f.kind for f in result.findings)) or "none"
    accuracy = result.val_accuracy
    return (
        result.experiment,
        config.run_name,
        str(result.steps),
        _ratio(result.first_ratio),
        _ratio(result.last_ratio),
        _number(result.loss),
        _number(result.val_loss),
        "" if accuracy is None else f"{accuracy:.3f}",
        event,
        kinds,
        f"{result.seconds:.0f}s",
    )


def _ratio(value):
    return "n/a" if not math.isfinite(value) else f"{value:.1e}"


def _number(value):
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


def write_markdown(path, sections, header=""):
    """Writes the results as markdown, with one gradient-flow PNG per experiment.

    Args:
        path: The markdown file; the PNGs go next to it, named
            `<experiment>.png`.
        sections: `(Experiment, [RunResult])` pairs, in order.
        header: Markdown put first (title, command line, machine). Defaults to
            `""`.

    Returns:
        The paths of the PNG files written.
    """
    from kgrad.analysis import plots

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    parts, pngs = [header.rstrip()] if header else [], []
    for experiment, results in sections:
        runs = {r.config.run_name: report.load_run(r.log_dir) for r in results}
        png = os.path.join(folder, f"{experiment.name}.png")
        figure = plots.compare_figure(runs, title=experiment.title)
        with open(png, "wb") as file:
            file.write(plots.figure_png(figure))
        pngs.append(png)
        parts.append(f"## {experiment.title}\n\n{experiment.claim}")
        parts.append(
            "\n".join(
                f"- `{r.config.run_name}`: {r.config.model} on {r.config.data_name}, "
                f"{r.config.describe()}"
                for r in results
            )
        )
        parts.append(results_table(results))
        parts.append(f"![{experiment.title}]({os.path.basename(png)})")
        findings = [
            f"- `{r.config.run_name}`: {f.message()}"
            for r in results
            for f in r.findings
        ]
        if findings:
            parts.append("Findings:\n\n" + "\n".join(findings))
    with open(path, "w") as file:
        file.write("\n\n".join(parts) + "\n")
    return pngs
