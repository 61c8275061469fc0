"""Training-throughput overhead of GradientMonitor and of the usual alternatives.

Each configuration is timed against plain `model.fit` on the same model, with
synthetic random data of the model's input shape (no download):

- `0`: plain `fit` again: the noise floor, what a callback that costs nothing
  scores on this machine;
- `a`: `GradientMonitor()` with its defaults (norms every 100 steps after the
  first 50, histograms every 500);
- `b`: norms on every step (`norms_every=1, histograms_every=0, first_steps=0`);
- `c`: norms and histograms on every step (`norms_every=1, histograms_every=1`);
- `d`: a callback that runs an extra `tf.GradientTape` pass on a fixed probe
  batch at the logging frequency of `a` and writes the norms with `tf.summary`
  (how Weights & Biases' Keras callback gets gradients);
- `e`: `keras.callbacks.TensorBoard(histogram_freq=1)` (weight histograms once
  per epoch; one timed fit is one epoch).

Method: per model and batch size, one warm-up fit per configuration traces
the functions (excluded). A plain fit of a few steps gives the step time, from
which the steps per timed fit are chosen so that a fit lasts `--fit-seconds`.
`optimizer.iterations` is then set to 1000, so that `a` is in its steady state
(past its first 50 steps), and the configurations run interleaved in pairs
(plain, X, X, plain, ...: the order within a pair alternates, and the garbage
collector runs before each fit). The figure is the median over `--repeats` pairs of
time(X) / time(plain). A separate measurement pairs fits that start at step 1,
where `a` and `d` log on every one of the first 50 steps: it compares what one
logged step of each costs, which the steady state (one step in 100) cannot
tell apart from noise. The depth section does the same for
`mlp_relu_he` at several depths. `host reads/logged step` counts the
device-to-host reads of a fit with `b` minus those of a plain fit, per step.

Usage:

    python benchmarks/overhead.py                 # full run, writes RESULTS.md
    python benchmarks/overhead.py --quick         # smoke test, seconds
    python benchmarks/overhead.py --models lstm cnn_bn --configs a b --repeats 5
"""

import argparse
import contextlib
import gc
import math
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
from kgrad.lab.machine import load_average, machine_info  # noqa: E402
from kgrad.monitor.schedule import Schedule  # noqa: E402

CONFIGS = {
    "0": "plain fit again (noise floor)",
    "a": "kgrad GradientMonitor() defaults",
    "b": "kgrad norms every step",
    "c": "kgrad norms + histograms every step",
    "d": "extra GradientTape pass on a probe batch (W&B-style)",
    "e": "keras TensorBoard(histogram_freq=1)",
}
MODELS = ("mlp_relu_he", "cnn_bn", "resnet18", "lstm", "transformer_small")
OVERRIDES = {"resnet18": {"input_shape": (32, 32, 3)}}
DEFAULT_NORM_FREQ, DEFAULT_HISTOGRAM_FREQ, DEFAULT_FIRST_STEPS = 100, 500, 50
STEADY_STATE_START = 1000
SEQUENCE_LENGTH = 50  # for models whose time axis is `None`
# resnet18 at 32x32 takes ~1.3 s a step at batch 64 on 2 shared cores, ~5 s at
# 256: the default run leaves that cell out (`--all-cells` puts it back).
SKIPPED_CELLS = {("resnet18", 256)}


# -- the alternative: an extra tape pass on a probe batch --------------------
class ProbeGradientCallback(keras.callbacks.Callback):
    """Logs gradient norms of a fixed probe batch, as W&B's Keras callback does.

    At the logged steps (those of `GradientMonitor`'s norm schedule) it runs one
    more forward and backward pass on the probe batch inside a `tf.function`
    and writes the norms with `tf.summary`.

    Args:
        log_dir: Directory of the summaries.
        probe: `(x, y)` numpy arrays, the probe batch.
        loss_fn: The compiled loss.
        every: Logging period in steps. Defaults to `100`.
        first_steps: Also log each of the first `first_steps` steps. Defaults
            to `50`.
    """

    def __init__(self, log_dir, probe, loss_fn, every=100, first_steps=50):
        super().__init__()
        self.log_dir = log_dir
        self.probe = probe
        self.loss_fn = loss_fn
        self.every = every
        self.first_steps = first_steps
        self._writer = None
        self._function = None

    def on_train_begin(self, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
            x, y = self.probe
            self._x, self._y = tf.constant(x), tf.constant(y)
            self._function = tf.function(self._log_norms)
        self._base = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_base = self._base

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch_base + batch + 1
        self._base = step
        if step <= self.first_steps or step % self.every == 0:
            self._function(tf.constant(step, tf.int64))

    def on_train_end(self, logs=None):
        self._writer.flush()

    def _log_norms(self, step):
        model = self.model
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = model(self._x, training=True)
            loss = self.loss_fn(self._y, y_pred)
        grads = tape.gradient(loss, variables)
        with self._writer.as_default(step=step):
            for variable, grad in zip(variables, grads, strict=True):
                if grad is not None:
                    tf.summary.scalar(f"grad_norm/{variable.path}", tf.norm(grad))
            tf.summary.scalar("grad_norm/global", tf.linalg.global_norm(grads))


# -- one model at one batch size ----------------------------------------------
class Bench:
    """A compiled model, its data and one callback per configuration."""

    def __init__(self, name, batch_size, overrides, log_root):
        self.name, self.batch_size = name, batch_size
        keras.utils.set_random_seed(0)
        spec = zoo.spec(name)
        self.model = zoo.build(name, **{**OVERRIDES.get(name, {}), **overrides})
        if spec.task == "regression":
            self.loss = keras.losses.MeanSquaredError()
        else:
            self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.model.compile(optimizer="adam", loss=self.loss)
        shape = [
            SEQUENCE_LENGTH if d is None else d for d in self.model.input_shape[1:]
        ]
        rng = np.random.default_rng(0)
        n = 4 * batch_size
        x = rng.standard_normal((n, *shape)).astype("float32")
        if spec.task == "regression":
            y = rng.standard_normal((n, 1)).astype("float32")
        else:
            y = rng.integers(0, self.model.output_shape[-1], n).astype("int32")
        self.dataset = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .batch(batch_size, drop_remainder=True)
            .cache()
            .repeat()
            .prefetch(2)
        )
        self.log_root = log_root
        probe = (x[:batch_size], y[:batch_size])
        logs = {key: os.path.join(log_root, key) for key in CONFIGS}
        self.callbacks = {
            "plain": [],
            "0": [],
            "a": [GradientMonitor(logs["a"])],
            "b": [
                GradientMonitor(
                    logs["b"], norms_every=1, histograms_every=0, first_steps=0
                )
            ],
            "c": [
                GradientMonitor(
                    logs["c"], norms_every=1, histograms_every=1, first_steps=0
                )
            ],
            "d": [
                ProbeGradientCallback(
                    logs["d"],
                    probe,
                    self.loss,
                    every=DEFAULT_NORM_FREQ,
                    first_steps=DEFAULT_FIRST_STEPS,
                )
            ],
            "e": [keras.callbacks.TensorBoard(logs["e"], histogram_freq=1)],
        }

    def fit(self, config, steps, start=None):
        """Runs one fit of `steps` steps; returns its wall time in seconds."""
        if start is not None:
            self.model.optimizer.iterations.assign(start)
        callbacks = self.callbacks[config]
        gc.collect()  # every fit starts from the same garbage-collector state
        begin = time.perf_counter()
        self.model.fit(
            self.dataset,
            epochs=1,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=0,
        )
        for callback in callbacks:  # charge work kgrad finishes in the background
            if hasattr(callback, "flush"):
                callback.flush()
        return time.perf_counter() - begin

    @property
    def step(self):
        return int(self.model.optimizer.iterations.numpy())


def paired_ratios(
    bench, config, steps, repeats, start=None, on_pair=None, extra=None, swap=False
):
    """Times `repeats` pairs of plain and `config` fits; returns (ratios, plains).

    The order within a pair alternates (plain first, then `config` first, or
    the reverse with `swap`), so that drift and whatever a fit leaves to the
    next one fall on both sides alike.
    """
    ratios, plains = [], []
    for i in range(repeats):
        if (i % 2 == 1) != swap:
            first = bench.step + 1
            other = bench.fit(config, steps, start)
            plain = bench.fit("plain", steps, start)
        else:
            plain = bench.fit("plain", steps, start)
            first = bench.step + 1
            other = bench.fit(config, steps, start)
        if on_pair is not None:
            on_pair(first if start is None else start + 1, steps)
        ratios.append(other / plain)
        plains.append(plain)
        if extra is not None:
            extra.append(other - plain)
    return ratios, plains


@contextlib.contextmanager
def count_host_reads():
    """Counts device-to-host reads of eager tensors (`.numpy()`, `np.asarray`)."""
    from tensorflow.python.framework import ops

    original = ops._EagerTensorBase._numpy
    counter = [0]

    def counting(self):
        counter[0] += 1
        return original(self)

    ops._EagerTensorBase._numpy = counting
    try:
        yield counter
    finally:
        ops._EagerTensorBase._numpy = original


def host_reads_per_logged_step(bench, steps):
    """Extra host reads per step of a fit with `b` (every step logged).

    The slope between fits of `steps` and `2 * steps` steps, minus the same
    slope for plain fits, so that once-per-fit reads do not count.
    """
    if "b" not in bench.callbacks:
        return float("nan")
    slopes = {}
    for config in ("plain", "b"):
        counts = []
        for n in (steps, 2 * steps):
            with count_host_reads() as counter:
                bench.fit(config, n)
            counts.append(counter[0])
        slopes[config] = (counts[1] - counts[0]) / steps
    return slopes["b"] - slopes["plain"]


def measure(name, batch_size, configs, args, overrides=None, extras=True, log=print):
    """Measures one model at one batch size; returns a dict of results."""
    log_root = tempfile.mkdtemp(prefix=f"kgrad_bench_{name}_")
    try:
        bench = Bench(name, batch_size, overrides or {}, log_root)
        bench.callbacks = {
            k: v for k, v in bench.callbacks.items() if k in ("plain", *configs)
        }
        begin = time.perf_counter()
        for config in ["plain", *configs]:  # warm-up: traces every function
            bench.fit(config, 2)
        bench.fit("plain", 1)
        calibration_steps = max(2, args.calibration_steps)
        t = bench.fit("plain", calibration_steps) / calibration_steps
        steps = int(
            min(args.max_steps, max(args.min_steps, math.ceil(args.fit_seconds / t)))
        )
        warmup = time.perf_counter() - begin
        result = {
            "model": name,
            "batch": batch_size,
            "steps": steps,
            "params": bench.model.count_params(),
            "warmup_s": warmup,
            "ratios": {},
            "plain_s": [],
        }
        log(f"  {name} b={batch_size}: {t * 1e3:.1f} ms/step, {steps} steps/fit")
        extras = extras and t <= args.extras_max_step_seconds
        result["first_steps"] = {}
        for config in ("a", "d") if extras and args.first_steps else ():
            if config in configs:
                first = min(steps, DEFAULT_FIRST_STEPS)
                ratios, _ = paired_ratios(bench, config, first, args.repeats, start=0)
                result["first_steps"][config] = (first, statistics.median(ratios))
        if extras and args.host_reads:
            result["host_reads"] = host_reads_per_logged_step(
                bench, min(steps, args.host_read_steps)
            )
        bench.model.optimizer.iterations.assign(STEADY_STATE_START)
        schedule = Schedule(DEFAULT_NORM_FREQ, DEFAULT_HISTOGRAM_FREQ, 0)
        logged = {"norms": 0, "histograms": 0, "steps": 0}

        def count_logged(first, n):
            for step in range(first, first + n):
                norms, histograms = schedule.due(step, step, False)
                logged["norms"] += norms
                logged["histograms"] += histograms
            logged["steps"] += n

        all_ratios = {config: [] for config in configs}
        extra = {config: [] for config in configs}
        for r in range(args.repeats):
            order = configs[r % len(configs) :] + configs[: r % len(configs)]
            for config in order:
                ratios, plains = paired_ratios(
                    bench,
                    config,
                    steps,
                    1,
                    on_pair=count_logged if config == "a" else None,
                    extra=extra[config],
                    swap=r % 2 == 1,
                )
                all_ratios[config] += ratios
                result["plain_s"] += plains
        result["ratios"] = {k: statistics.median(v) for k, v in all_ratios.items()}
        result["all_ratios"] = all_ratios
        result["extra_s"] = {k: statistics.median(v) for k, v in extra.items()}
        result["a_logged"] = logged
        result["ms_per_step"] = statistics.median(result["plain_s"]) / steps * 1e3
        return result
    finally:
        shutil.rmtree(log_root, ignore_errors=True)


# -- report -------------------------------------------------------------------
def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def main_table(results, configs):
    """Rows: one per configuration; columns: one per model and batch size."""
    header = ["config"] + [f"{r['model']} b{r['batch']}" for r in results]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for config in configs:
        cells = [f"({config}) {CONFIGS[config]}"]
        cells += [fmt(r["ratios"].get(config)) + "x" for r in results]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def spread_table(results, configs):
    """The lowest and highest paired ratio of each cell of `main_table`."""
    header = ["config"] + [f"{r['model']} b{r['batch']}" for r in results]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for config in configs:
        cells = [f"({config})"]
        for r in results:
            ratios = r["all_ratios"].get(config) or [math.nan]
            cells.append(f"{fmt(min(ratios))}–{fmt(max(ratios))}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def detail_table(results):
    lines = [
        "| model | batch | params | plain ms/step | steps/fit | (a) first steps "
        "| (d) first steps | (a) logged in timed fits | (a) +s/fit | (e) +s/epoch "
        "| host reads/logged step | warm-up s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        first = {
            config: f"{fmt(ratio)}x ({n} steps)"
            for config, (n, ratio) in r["first_steps"].items()
        }
        logged = r["a_logged"]
        logged = (
            f"{logged['norms']} norm, {logged['histograms']} hist "
            f"/ {logged['steps']} steps"
        )
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['params']:,} "
            f"| {fmt(r['ms_per_step'], 1)} | {r['steps']} "
            f"| {first.get('a', 'n/a')} | {first.get('d', 'n/a')} | {logged} "
            f"| {fmt(r['extra_s'].get('a'))} | {fmt(r['extra_s'].get('e'))} "
            f"| {fmt(r.get('host_reads'), 1)} | {fmt(r['warmup_s'], 0)} |"
        )
    return lines


def depth_table(results, configs):
    header = ["depth", "params", "plain ms/step", "steps/fit"]
    header += [f"({c})" for c in configs]
    header += [f"({c}) +ms/step" for c in configs]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for depth, r in results:
        cells = [str(depth), f"{r['params']:,}", fmt(r["ms_per_step"], 1)]
        cells += [str(r["steps"])] + [fmt(r["ratios"][c]) + "x" for c in configs]
        cells += [fmt(1e3 * r["extra_s"][c] / r["steps"], 2) for c in configs]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(results, depth_results):
    """Checks the issue's targets; returns lines of met/missed."""
    out = []

    def check(label, ok):
        out.append(f"- {'met' if ok else 'MISSED'}: {label}")

    for r in results:
        ratios = r["ratios"]
        where = f"{r['model']} b{r['batch']}"
        if "a" in ratios:
            check(f"(a) <= 1.05x on {where}: {fmt(ratios['a'])}x", ratios["a"] <= 1.05)
        if "b" in ratios:
            check(f"(b) <= 1.15x on {where}: {fmt(ratios['b'])}x", ratios["b"] <= 1.15)
        for other in ("d", "e"):
            if "a" in ratios and other in ratios:
                check(
                    f"(a) cheaper than ({other}) on {where}: "
                    f"{fmt(ratios['a'])}x vs {fmt(ratios[other])}x",
                    ratios["a"] < ratios[other],
                )
        first_steps = r["first_steps"]
        if "a" in first_steps and "d" in first_steps:
            a, d = first_steps["a"][1], first_steps["d"][1]
            check(
                f"(a) cheaper than (d) when both log every step (first steps) "
                f"on {where}: {fmt(a)}x vs {fmt(d)}x",
                a < d,
            )
        reads = r.get("host_reads")
        if reads is not None and not math.isnan(reads):
            check(f"<= 1 host read per logged step on {where}: {reads:.1f}", reads <= 1)
    if len(depth_results) > 1:
        (shallow, first), (deep, last) = depth_results[0], depth_results[-1]
        for config in sorted(set(first["ratios"]) - {"0"}):
            a, b = first["ratios"][config], last["ratios"][config]
            check(
                f"({config}) flat over depth: {fmt(a)}x at depth {shallow}, "
                f"{fmt(b)}x at depth {deep} (at most +0.05x)",
                b <= a + 0.05,
            )
    return out


def render(results, depth_results, configs, depth_configs, info, command):
    lines = [
        "# GradientMonitor overhead",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']}.",
        f"Load average (1, 5, 15 min): before {info['load_before']}, "
        f"after {info['load_after']}. Wall time: {info['wall'] / 60:.1f} min.",
        "",
        "Median over the repeats of time(fit with X) / time(plain fit), pairs "
        "interleaved (which of the two runs first alternates), after a warm-up "
        "and a garbage collection before each fit; steady state "
        f"(`optimizer.iterations` set to {STEADY_STATE_START} first, so (a) logs "
        "norms every 100 steps and histograms every 500). One timed fit is one epoch.",
        "",
        *main_table(results, configs),
        "",
        "Spread: the lowest and the highest of the paired ratios behind each median.",
        "",
        *spread_table(results, configs),
        "",
        *(
            [
                f"Not run: {', '.join(info['skipped'])} (too slow for the default "
                "run on this machine; `--all-cells` runs it).",
                "",
            ]
            if info["skipped"]
            else []
        ),
        "Details. `(a) first steps`, `(d) first steps`: median ratio of fits that "
        "start at step 1, where (a) logs norms on every one of its first 50 steps "
        "(and a histogram at step 1) and (d) runs its extra pass on each of them. "
        "`(a) logged in timed fits`: the logged steps that fell "
        "inside the timed (a) fits. `host reads/logged step`: device-to-host "
        "reads of a fit with (b) minus a plain fit, per step.",
        "",
        *detail_table(results),
    ]
    if depth_results:
        lines += [
            "",
            "## Depth: `mlp_relu_he`",
            "",
            *depth_table(depth_results, depth_configs),
        ]
    lines += ["", "## Targets", ""]
    if "0" in configs:
        lines += [
            "Row (0) is the noise floor: a second plain fit, which costs nothing. "
            "A ratio is not told apart from plain unless it stands further from "
            "1.00x than (0) does on the same cell.",
            "",
        ]
    lines += targets(results, depth_results)
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test, seconds")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int,
        default=[64, 256],
    )
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument(
        "--fit-seconds", type=float, default=1.0, help="target length of a plain fit"
    )
    parser.add_argument("--min-steps", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--calibration-steps", type=int, default=3)
    parser.add_argument("--depths", nargs="*", type=int, default=[10, 50, 100])
    parser.add_argument("--depth-configs", nargs="+", default=["a", "b"])
    parser.add_argument("--depth-batch-size", type=int, default=64)
    parser.add_argument("--no-first-steps", dest="first_steps", action="store_false")
    parser.add_argument("--no-host-reads", dest="host_reads", action="store_false")
    parser.add_argument("--host-read-steps", type=int, default=5)
    parser.add_argument(
        "--extras-max-step-seconds",
        type=float,
        default=0.05,
        help="skip the first-steps and host-read measurements above this step time",
    )
    parser.add_argument("--all-cells", action="store_true", help="run resnet18 b256")
    parser.add_argument(
        "--output",
        default=None,
        help="markdown file to write; defaults to benchmarks/RESULTS.md for a "
        "full run and to nothing with --quick",
    )
    args = parser.parse_args(argv)
    for config in args.configs + args.depth_configs:
        if config not in CONFIGS:
            parser.error(f"unknown config {config!r}; choose from {list(CONFIGS)}")
    args.overrides = {}
    if args.quick:
        args.models = [m for m in args.models if m in ("mlp_relu_he", "lstm")][:1] or [
            "mlp_relu_he"
        ]
        args.batch_sizes = [16]
        args.repeats = 1
        args.fit_seconds = 0.0
        args.min_steps = args.max_steps = 4
        args.calibration_steps = 2
        args.depths = [2]
        args.depth_configs = ["a"]
        args.host_read_steps = 2
        args.overrides = {"mlp_relu_he": {"depth": 3, "width": 16}}
    elif args.output is None:
        args.output = os.path.join(os.path.dirname(__file__), "RESULTS.md")
    return args


def main(argv=None):
    """Runs the benchmark; returns the markdown report."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    command = " ".join(["python benchmarks/overhead.py", *argv])
    info = machine_info()
    info["load_before"] = load_average()
    info["skipped"] = []
    begin = time.perf_counter()
    print(f"{info['cpu']}, {info['cores']} cores, load {info['load_before']}")
    results = []
    for name in args.models:
        for batch_size in args.batch_sizes:
            if (name, batch_size) in SKIPPED_CELLS and not args.all_cells:
                print(f"  {name} b={batch_size}: skipped (see --all-cells)")
                info["skipped"].append(f"{name} b{batch_size}")
                continue
            results.append(
                measure(
                    name,
                    batch_size,
                    args.configs,
                    args,
                    overrides=args.overrides.get(name),
                )
            )
            print(
                "    "
                + ", ".join(f"{k}={fmt(v)}x" for k, v in results[-1]["ratios"].items()),
                flush=True,
            )
    depth_results = []
    for depth in args.depths:
        overrides = {**args.overrides.get("mlp_relu_he", {}), "depth": depth}
        r = measure(
            "mlp_relu_he",
            args.depth_batch_size if not args.quick else args.batch_sizes[0],
            args.depth_configs,
            args,
            overrides=overrides,
            extras=False,
        )
        depth_results.append((depth, r))
        print(
            f"    depth {depth}: "
            + ", ".join(f"{k}={fmt(v)}x" for k, v in r["ratios"].items()),
            flush=True,
        )
    info["wall"] = time.perf_counter() - begin
    info["load_after"] = load_average()
    report = render(
        results, depth_results, args.configs, args.depth_configs, info, command
    )
    print()
    print(report)
    if args.output:
        with open(args.output, "w") as f:
            f.write(report)
    return report


if __name__ == "__main__":
    main()
