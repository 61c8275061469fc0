"""The first minute of training: a fresh model's first `fit`, plain against monitored.

A user's first impression is a fresh model and a short `fit`: every fit here
builds a new model (after `keras.backend.clear_session()`), so it pays step
1's trace, kgrad's first logged steps, the gradient-flow figure and the final
flush (`monitor.flush()` is inside the timed span). Fits of `--steps` steps
at batch 64 on random data of the model's input shape, one epoch.

Per model, `--pairs` pairs of fits run interleaved (which of the two runs
first alternates), for each configuration:

- `plain-again`: a plain fit against a plain fit: the noise floor;
- `defaults`: `GradientMonitor()` with its defaults;
- `keras-tb`: `keras.callbacks.TensorBoard(histogram_freq=1)`, for reference.

Each cell gives the median ratio of process CPU time (user + system, all
threads: what the fit cost the machine, steady when the machine is busy) and
of wall time, with the lowest and highest pair. A timing callback present in
every fit gives step 1 (the trace) and the slowest later step: `trace` is
step 1 monitored / step 1 plain, `later` the slowest later step monitored /
plain (a trace that plain `fit` does not pay shows there).

Usage:

    python benchmarks/fresh_fit.py                     # writes FRESH_FIT.md
    python benchmarks/fresh_fit.py --models mlp_relu_he --pairs 3
    python benchmarks/fresh_fit.py --quick             # smoke test
"""

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kgrad import GradientMonitor, zoo  # noqa: E402
from kgrad.lab.machine import load_average  # noqa: E402

MODELS = ("mlp_relu_he", "cnn_bn", "resnet18", "lstm", "transformer_small")
OVERRIDES = {"cnn_bn": {"input_shape": (16, 16, 3)}}
SEQUENCE_LENGTH = 50  # for models whose time axis is `None`
CONFIGS = ("plain-again", "defaults", "keras-tb")


class StepTimes(keras.callbacks.Callback):
    """Wall time of each step of a fit (batch begin to batch end)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._begin)


def make_callbacks(config, log_dir):
    """The callbacks of one configuration (besides the step timer)."""
    if config == "defaults":
        return [GradientMonitor(log_dir)]
    if config == "keras-tb":
        return [keras.callbacks.TensorBoard(log_dir, histogram_freq=1)]
    return []


def fresh_fit(name, config, steps, batch_size, overrides, log_root):
    """Builds a fresh model and fits it once; returns its timings."""
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(0)
    spec = zoo.spec(name)
    model = zoo.build(name, **{**OVERRIDES.get(name, {}), **overrides})
    regression = spec.task == "regression"
    loss = (
        keras.losses.MeanSquaredError()
        if regression
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.compile(optimizer="adam", loss=loss)
    shape = [SEQUENCE_LENGTH if d is None else d for d in model.input_shape[1:]]
    rng = np.random.default_rng(0)
    n = 4 * batch_size
    x = rng.standard_normal((n, *shape)).astype("float32")
    if regression:
        y = rng.standard_normal((n, 1)).astype("float32")
    else:
        y = rng.integers(0, model.output_shape[-1], n).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat()
    log_dir = tempfile.mkdtemp(dir=log_root)
    timer = StepTimes()
    callbacks = [timer, *make_callbacks(config, log_dir)]
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=callbacks, verbose=0)
    for callback in callbacks:  # what kgrad finishes in the background counts
        if hasattr(callback, "flush"):
            callback.flush()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    shutil.rmtree(log_dir, ignore_errors=True)
    return {
        "wall": wall,
        "cpu": cpu,
        "step1": timer.times[0],
        "later_max": max(timer.times[1:]),
        "later_median": statistics.median(timer.times[1:]),
    }


def measure(name, configs, pairs, steps, batch_size, overrides, log=print):
    """Interleaved pairs of plain and monitored fresh fits of one model."""
    log_root = tempfile.mkdtemp(prefix=f"kgrad_fresh_{name}_")
    try:
        fresh_fit(name, "plain", 2, batch_size, overrides, log_root)  # imports
        ratios = {config: [] for config in configs}
        plains = []
        for i in range(pairs):
            for config in configs[i % len(configs) :] + configs[: i % len(configs)]:
                order = ("plain", config) if i % 2 == 0 else (config, "plain")
                runs = {
                    c: fresh_fit(name, c, steps, batch_size, overrides, log_root)
                    for c in order
                }
                plain, other = runs["plain"], runs[config]
                plains.append(plain)
                ratios[config].append({key: other[key] / plain[key] for key in plain})
            log(
                f"  {name} pair {i + 1}/{pairs}: "
                + ", ".join(
                    f"{c} cpu {ratios[c][-1]['cpu']:.2f}x "
                    f"wall {ratios[c][-1]['wall']:.2f}x"
                    for c in configs
                ),
                flush=True,
            )
        return {
            "model": name,
            "plain_wall": statistics.median(p["wall"] for p in plains),
            "plain_cpu": statistics.median(p["cpu"] for p in plains),
            "plain_step1": statistics.median(p["step1"] for p in plains),
            "ratios": ratios,
        }
    finally:
        shutil.rmtree(log_root, ignore_errors=True)


def cell(values):
    """`median (low-high)` of a list of ratios."""
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def render(results, configs, command, info):
    lines = [
        "## Fresh-model fits (the first minute of training)",
        "",
        f"Command: `{command}`. {info}",
        "",
        "Ratio monitored / plain of one fresh 200-step fit, median of the pairs "
        "(lowest-highest pair). CPU: process time, all threads. `trace`: step 1; "
        "`later`: the slowest step after step 1.",
        "",
        "| model | plain wall s | plain CPU s | plain step 1 s | config "
        "| CPU | wall | trace | later |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for config in configs:
            ratios = r["ratios"][config]
            lines.append(
                f"| {r['model']} | {r['plain_wall']:.2f} | {r['plain_cpu']:.2f} "
                f"| {r['plain_step1']:.2f} | {config} "
                f"| {cell([x['cpu'] for x in ratios])} "
                f"| {cell([x['wall'] for x in ratios])} "
                f"| {cell([x['step1'] for x in ratios])} "
                f"| {cell([x['later_max'] for x in ratios])} |"
            )
    lines += ["", "Targets (met only when the whole spread is below):", ""]
    for r in results:
        if "defaults" not in r["ratios"]:
            continue
        ratios = r["ratios"]["defaults"]
        worst_cpu = max(x["cpu"] for x in ratios)
        worst_trace = max(x["step1"] for x in ratios)
        lines.append(
            f"- {'met' if worst_cpu <= 1.10 else 'MISSED'}: defaults <= 1.10x CPU "
            f"on {r['model']}: {cell([x['cpu'] for x in ratios])}"
        )
        lines.append(
            f"- {'met' if worst_trace <= 1.2 else 'MISSED'}: step 1 <= 1.2x plain "
            f"on {r['model']}: {cell([x['step1'] for x in ratios])}"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}; choose from {CONFIGS}")
    args.overrides = {}
    if args.quick:
        args.models, args.pairs, args.steps, args.batch_size = ["mlp_relu_he"], 1, 4, 8
        args.overrides = {"mlp_relu_he": {"depth": 3, "width": 8}}
    elif args.output is None:
        args.output = os.path.join(os.path.dirname(__file__), "FRESH_FIT.md")
    return args


def main(argv=None):
    """Runs the measurement; returns the markdown section."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    load_before = load_average()
    begin = time.perf_counter()
    results = [
        measure(
            name,
            args.configs,
            args.pairs,
            args.steps,
            args.batch_size,
            args.overrides.get(name, {}),
        )
        for name in args.models
    ]
    load_after = load_average()
    info = (
        f"{os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}; load {load_before} before, {load_after} after; "
        f"{(time.perf_counter() - begin) / 60:.1f} min."
    )
    command = " ".join(["python benchmarks/fresh_fit.py", *argv])
    report = render(results, args.configs, command, info)
    print(report)
    if args.output:
        with open(args.output, "w") as f:
            f.write(report)
    return report


if __name__ == "__main__":
    main()
