"""The first minute of training: a fresh model's first `fit`, plain against monitored.

A user's first impression is a fresh model and a short `fit`: every fit here
builds a new model (after `keras.backend.clear_session()`), so it pays step
1's trace, kgrad's first logged steps, the gradient-flow figure and the final
flush (`monitor.flush()` is inside the timed span). Fits of 200 steps
(`STEPS`: fewer on the two slowest models, to keep the run short; `--steps`
sets one number for all) at batch 64 on random data of the model's input
shape, one epoch. With `KGRAD_BENCH_JIT=1` in the environment
(`synthetic.xla(True)`), every model is compiled with `jit_compile=True`.

Per model, `--pairs` pairs of fits run interleaved (which of the two runs
first alternates), for each configuration:

- `plain-again`: a plain fit against a plain fit: the noise floor;
- `defaults`: `GradientMonitor()` with its defaults;
- `keras-tb`: `keras.callbacks.TensorBoard(histogram_freq=1)`, for reference;
- `plain-prebuilt`: a plain fit whose optimizer is built before the first
  trace (as kgrad builds it): Keras then traces its step once, not twice.
  Against it, `defaults` shows what kgrad's statistics cost on top of one
  trace (the plain fit a user runs traces twice).

Each cell gives the ratio of process CPU time (user + system, all threads:
what the fit cost the machine, steady when the machine is busy) and of wall
time, median of the pairs with the lowest and highest pair. A timing callback
present in every fit times each step in both: `step 1` is step 1 monitored /
step 1 plain (the trace), `later` the slowest later step monitored / plain (a
trace that plain `fit` does not pay shows there, as 15x or more).

Usage:

    python benchmarks/perf/fresh_fit.py                     # prints the section
    python benchmarks/perf/fresh_fit.py --models mlp_relu_he --pairs 3
    KGRAD_BENCH_JIT=1 python benchmarks/perf/fresh_fit.py   # jit_compile=True
    python benchmarks/perf/fresh_fit.py --quick             # smoke test

`python benchmarks/perf/overhead.py --sections fresh fresh_jit` runs the same
measurements and writes them into `benchmarks/perf/RESULTS.md`.
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its siblings

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from results_file import cpu_wall, table  # noqa: E402
from synthetic import compiled_zoo_model, random_examples  # noqa: E402

from kgrad import GradientMonitor  # noqa: E402
from kgrad.lab.machine import load_average  # noqa: E402

MODELS = ("mlp_relu_he", "cnn_bn", "resnet18", "lstm", "transformer_small")
OVERRIDES = {"cnn_bn": {"input_shape": (16, 16, 3)}}
# Steps per fit: 200, fewer where a step is slow; on 2 cores a plain fit of
# resnet18 is then ~8 s of trace + 50 x 0.17 s, of transformer_small ~7 s +
# 100 x 0.09 s (at 200 steps: 41 s and 24 s).
STEPS = {"resnet18": 50, "transformer_small": 100}
DEFAULT_STEPS = 200
CONFIGS = ("plain-again", "defaults", "keras-tb", "plain-prebuilt")
PARTS = ("fit", "step 1", "later")
# Targets of the defaults, on CPU time, met only when the whole spread is below.
FIT_TARGET, STEP1_TARGET = 1.10, 1.2
# A logged step costs at most ~2.3x a plain one (steady state (b)); a trace
# made the slowest later step 14x-260x slower (RESULTS.md, fresh-fit section).
LATER_TARGET = 3.0


def _clock():
    return {"wall": time.perf_counter(), "cpu": time.process_time()}


def _since(start):
    now = _clock()
    return {key: now[key] - start[key] for key in now}


class StepTimes(keras.callbacks.Callback):
    """Wall and process CPU time of each step of a fit (batch begin to end)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = _clock()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(_since(self._begin))


class BuildOptimizer(keras.callbacks.Callback):
    """Builds the optimizer before the first trace, as kgrad does."""

    def on_train_begin(self, logs=None):
        self.model.optimizer.build(self.model.trainable_variables)


def make_callbacks(config, log_dir):
    """The callbacks of one configuration (besides the step timer)."""
    if config == "defaults":
        return [GradientMonitor(log_dir)]
    if config == "keras-tb":
        return [keras.callbacks.TensorBoard(log_dir, histogram_freq=1)]
    if config == "plain-prebuilt":
        return [BuildOptimizer()]
    return []


def fresh_fit(name, config, steps, batch_size, overrides, log_root):
    """Builds a fresh model and fits it once; returns its timings.

    Returns:
        `{"fit": t, "step 1": t, "later": t}`, each `t` a dict of `wall` and
        `cpu` seconds; `later` is the slowest step after step 1 (each clock
        on its own); and `jit_compile`, the model's.
    """
    keras.backend.clear_session()
    gc.collect()
    model, _ = compiled_zoo_model(name, {**OVERRIDES.get(name, {}), **overrides})
    x, y = random_examples(name, model, 4 * batch_size)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat()
    log_dir = tempfile.mkdtemp(dir=log_root)
    timer = StepTimes()
    callbacks = [timer, *make_callbacks(config, log_dir)]
    start = _clock()
    model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=callbacks, verbose=0)
    for callback in callbacks:  # what kgrad finishes in the background counts
        if hasattr(callback, "flush"):
            callback.flush()
    fit = _since(start)
    shutil.rmtree(log_dir, ignore_errors=True)
    later = {key: max(t[key] for t in timer.times[1:]) for key in fit}
    return {
        "fit": fit,
        "step 1": timer.times[0],
        "later": later,
        "jit_compile": bool(model.jit_compile),
    }


def measure(name, configs, pairs, steps, batch_size, overrides, log=print):
    """Interleaved pairs of plain and monitored fresh fits of one model.

    Returns:
        A dict with the plain fits' medians, `steps`, `jit_compile` (the
        models') and `ratios`: config -> one `{part: {"cpu": ratio, "wall":
        ratio}}` per pair.
    """
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
                ratios[config].append(
                    {
                        part: {k: other[part][k] / plain[part][k] for k in plain[part]}
                        for part in PARTS
                    }
                )
            log(
                f"  {name} pair {i + 1}/{pairs}: "
                + ", ".join(
                    f"{c} cpu {ratios[c][-1]['fit']['cpu']:.2f}x "
                    f"wall {ratios[c][-1]['fit']['wall']:.2f}x"
                    for c in configs
                ),
                flush=True,
            )
        return {
            "model": name,
            "steps": steps,
            "jit_compile": plains[0]["jit_compile"],
            "plain_wall": statistics.median(p["fit"]["wall"] for p in plains),
            "plain_cpu": statistics.median(p["fit"]["cpu"] for p in plains),
            "plain_step1": statistics.median(p["step 1"]["wall"] for p in plains),
            "ratios": ratios,
        }
    finally:
        shutil.rmtree(log_root, ignore_errors=True)


def _targets(r):
    """Target lines of one model's `defaults` (CPU, whole spread below)."""
    floor = r["ratios"].get("plain-again")
    lines = []
    for part, target, label in (
        ("fit", FIT_TARGET, "defaults"),
        ("step 1", STEP1_TARGET, "step 1 of defaults"),
        ("later", LATER_TARGET, "slowest later step of defaults (no trace)"),
    ):
        pairs = [x[part] for x in r["ratios"]["defaults"]]
        met = max(x["cpu"] for x in pairs) <= target
        noise = f"; noise floor {cpu_wall([x[part] for x in floor])}" if floor else ""
        lines.append(
            f"- {'met' if met else 'MISSED'}: {label} <= {target:.2f}x CPU on "
            f"{r['model']}: {cpu_wall(pairs)}{noise}"
        )
    return lines


def render(results, configs, command, info):
    """The fresh-fit section of `RESULTS.md` (markdown)."""
    jit = any(r["jit_compile"] for r in results)
    lines = [
        "## Fresh-model fits (the first minute of training)"
        + (", every model compiled with jit_compile=True" if jit else ""),
        "",
        f"Command: `{command}`. {info}",
        "",
        "Ratio monitored / plain of one fresh fit, median of the pairs "
        "(lowest-highest pair), each cell `CPU / wall`. CPU: process time, all "
        "threads. `step 1`: the first step (the trace); `later`: the slowest "
        "step after step 1. Row `plain-again` is the noise floor.",
        "",
    ]
    header = ["model", "plain wall s", "plain CPU s", "plain step 1 s", "config"]
    header += ["fit CPU / wall", "step 1 CPU / wall", "later CPU / wall"]
    rows = [
        [r["model"], f"{r['plain_wall']:.2f}", f"{r['plain_cpu']:.2f}"]
        + [f"{r['plain_step1']:.2f}", config]
        + [cpu_wall([x[part] for x in r["ratios"][config]]) for part in PARTS]
        for r in results
        for config in configs
    ]
    lines += table(header, rows)
    lines += ["", "Targets (CPU time; met only when the whole spread is below):", ""]
    for r in results:
        if "defaults" in r["ratios"]:
            lines += _targets(r)
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"steps per fit (default {DEFAULT_STEPS}; per model: {STEPS})",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="smoke test")
    args = parser.parse_args(argv)
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}; choose from {CONFIGS}")
    args.overrides = {}
    if args.quick:
        args.models, args.pairs, args.steps, args.batch_size = ["mlp_relu_he"], 1, 4, 8
        args.overrides = {"mlp_relu_he": {"depth": 3, "width": 8}}
    return args


def steps_of(name, args):
    """Steps per fit of model `name`: `--steps`, else `STEPS` or 200."""
    if args.steps is not None:
        return args.steps
    return STEPS.get(name, DEFAULT_STEPS)


def run(args, command, log=print):
    """Measures every model of `args`; returns the fresh-fit section."""
    load_before = load_average()
    begin = time.perf_counter()
    results = [
        measure(
            name,
            args.configs,
            args.pairs,
            steps_of(name, args),
            args.batch_size,
            args.overrides.get(name, {}),
            log=log,
        )
        for name in args.models
    ]
    steps = ", ".join(f"{r['model']} {r['steps']}" for r in results)
    info = (
        f"{os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}; load {load_before} before, {load_average()} after; "
        f"{(time.perf_counter() - begin) / 60:.1f} min; fits at batch "
        f"{args.batch_size} (steps per fit: {steps}), {args.pairs} pairs."
    )
    return render(results, args.configs, command, info)


def main(argv=None):
    """Runs the measurement; prints and returns the markdown section."""
    argv = sys.argv[1:] if argv is None else list(argv)
    report = run(
        parse_args(argv), " ".join(["python benchmarks/perf/fresh_fit.py", *argv])
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
