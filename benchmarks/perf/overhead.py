"""Training-throughput overhead of GradientMonitor and of the usual alternatives.

Each configuration is timed against plain `model.fit` on the same model, with
synthetic random data of the model's input shape (no download):

- `0`: plain `fit` again: the noise floor, what a callback that costs nothing
  scores on this machine;
- `a`: `GradientMonitor()` with its defaults (norms every 100 steps after the
  early steps 1-8, 16 and 32, histograms every 500);
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
collector runs before each fit). Every fit is timed in process CPU time (user
+ system, all threads: it does not move when the machine is busy) and in wall
time; each cell gives both ratios time(X) / time(plain), median over
`--repeats` pairs with the lowest and highest pair. A separate measurement
(`--no-first-steps` skips it) pairs fits of the first 50 steps, where `a`
logs its early steps 1-8, 16 and 32 and `d` every step. The depth
section does the same for `mlp_relu_he` at several depths. `host
reads/logged step` counts the device-to-host reads of a fit with `b` minus
those of a plain fit, per step.

This script also writes the other sections of `benchmarks/perf/RESULTS.md`,
measured by its siblings: fresh-model fits (`fresh_fit.py`: a new model's
first fit, trace included) and the peak memory of logged steps, per phase
(`peak_memory.py`); and each of the three again with every model compiled
with `jit_compile=True` (the `_jit` sections, `--jit-models`); and the same
fresh fits on Keras's JAX backend (the `jax` section, `jax_fresh_fit.py`, in a
process of its own: one run measures both backends). `--sections` chooses the
sections that run (by default steady, fresh, memory and jax); the file keeps
the others' last text (`results_file.py`), and each section is written as
soon as it is measured. Before it starts, the script prints what will run
and an estimate of how long it takes (`budget.py`); `--estimate` prints only
that.

Usage:

    python benchmarks/perf/overhead.py --all           # all seven sections, ~30 min
    python benchmarks/perf/overhead.py --all --estimate  # the plan, nothing measured
    python benchmarks/perf/overhead.py                 # steady, fresh, memory, jax
    python benchmarks/perf/overhead.py --sections steady
    python benchmarks/perf/overhead.py --sections fresh --fresh-pairs 3
    python benchmarks/perf/overhead.py --sections memory memory_jit
    python benchmarks/perf/overhead.py --quick         # smoke test, seconds
    python benchmarks/perf/overhead.py --quick --all   # smoke test of all six
    python benchmarks/perf/overhead.py --models lstm cnn_bn --configs a b --repeats 5
"""

import argparse
import gc
import math
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its siblings

import budget  # noqa: E402
import fresh_fit  # noqa: E402
import jax_fresh_fit  # noqa: E402
import keras  # noqa: E402
import peak_memory  # noqa: E402
import steady_report  # noqa: E402
import tensorflow as tf  # noqa: E402
from host_reads import host_reads_per_logged_step  # noqa: E402
from probe_callback import ProbeGradientCallback  # noqa: E402
from results_file import (  # noqa: E402
    JAX_SECTION,
    JIT_SECTIONS,
    SECTIONS,
    write_sections,
)
from synthetic import (  # noqa: E402
    compiled_zoo_model,
    jit_compile,
    random_examples,
    xla,
)

from kgrad import GradientMonitor  # noqa: E402
from kgrad.lab.machine import load_average, machine_info  # noqa: E402
from kgrad.monitor.drive.schedule import Schedule  # noqa: E402

CONFIGS = steady_report.CONFIGS
MODELS = ("mlp_relu_he", "cnn_bn", "resnet18", "lstm", "transformer_small")
# The _jit sections' models, to keep `--all` within 25 minutes (`budget.py`):
# lstm would add ~2 min; resnet18 takes ~2.5 s a step under XLA on 2 cores.
JIT_MODELS = ("mlp_relu_he", "cnn_bn")
# `--all`: every section of issue 25 in about 25 minutes on 2 idle cores.
ALL_RUN = {
    "sections": [*SECTIONS, *JIT_SECTIONS, JAX_SECTION],
    "configs": ["0", "a", "b", "c"],
    "repeats": 3,
    "batch_sizes": [64],
    "depths": [],
    "first_steps": False,
    "host_reads": False,
    "fresh_pairs": 2,
    "fresh_configs": ["plain-again", "defaults"],
    "memory_repeats": 2,
}
OVERRIDES = {"resnet18": {"input_shape": (32, 32, 3)}}
DEFAULT_NORM_FREQ, DEFAULT_HISTOGRAM_FREQ, DEFAULT_FIRST_STEPS = 100, 500, 50
STEADY_STATE_START = 1000
# resnet18 at 32x32 takes ~1.3 s a step at batch 64 on 2 shared cores, ~5 s at
# 256: the default run leaves that cell out (`--all-cells` puts it back).
SKIPPED_CELLS = {("resnet18", 256)}


# -- one model at one batch size ----------------------------------------------
class Bench:
    """A compiled model per configuration, their data and callbacks.

    Each configuration trains its own copy of the model (the same weights):
    Keras keeps one train function per model, and a model that alternated
    between monitors would be retraced at each switch, which no training run
    does. The plain fits and the noise floor `0` share the plain model.
    """

    def __init__(self, name, batch_size, overrides, log_root):
        self.name, self.batch_size = name, batch_size
        self.overrides = {**OVERRIDES.get(name, {}), **overrides}
        self.model, self.loss = compiled_zoo_model(name, self.overrides)
        self.models = {"plain": self.model}
        x, y = random_examples(name, self.model, 4 * batch_size)
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

    def model_of(self, config):
        """The model `config` trains (made on first use, same weights)."""
        key = "plain" if config in ("plain", "0") else config
        if key not in self.models:
            self.models[key], _ = compiled_zoo_model(self.name, self.overrides)
        return self.models[key]

    def set_step(self, step):
        """Sets the optimizer step of every configuration's model."""
        for model in self.models.values():
            model.optimizer.iterations.assign(step)

    def fit(self, config, steps, start=None):
        """Runs one fit of `steps` steps; returns its `wall` and `cpu` seconds."""
        model = self.model_of(config)
        if start is not None:
            model.optimizer.iterations.assign(start)
        callbacks = self.callbacks[config]
        gc.collect()  # every fit starts from the same garbage-collector state
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(
            self.dataset,
            epochs=1,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=0,
        )
        for callback in callbacks:  # charge work kgrad finishes in the background
            if hasattr(callback, "flush"):
                callback.flush()
        return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}

    def step_of(self, config):
        return int(self.model_of(config).optimizer.iterations.numpy())


def paired_ratios(
    bench, config, steps, repeats, start=None, on_pair=None, extra=None, swap=False
):
    """Times `repeats` pairs of plain and `config` fits; returns (ratios, plains).

    Each ratio is `{"cpu": r, "wall": r}`, each plain `{"cpu": s, "wall": s}`.
    The order within a pair alternates (plain first, then `config` first, or
    the reverse with `swap`), so that drift and whatever a fit leaves to the
    next one fall on both sides alike. `extra` collects the CPU seconds each
    `config` fit adds to its plain one.
    """
    ratios, plains = [], []
    for i in range(repeats):
        if (i % 2 == 1) != swap:
            first = bench.step_of(config) + 1
            other = bench.fit(config, steps, start)
            plain = bench.fit("plain", steps, start)
        else:
            plain = bench.fit("plain", steps, start)
            first = bench.step_of(config) + 1
            other = bench.fit(config, steps, start)
        if on_pair is not None:
            on_pair(first if start is None else start + 1, steps)
        ratios.append({key: other[key] / plain[key] for key in plain})
        plains.append(plain)
        if extra is not None:
            extra.append(other["cpu"] - plain["cpu"])
    return ratios, plains


def measure(name, batch_size, configs, args, overrides=None, extras=True, log=print):
    """Measures one model at one batch size; returns a dict of results.

    Its `pairs` map each configuration to its paired `{"cpu", "wall"}` ratios
    and `first_steps` each of (a) and (d) to `(steps, pairs)` of fits that
    start at step 1 (see `steady_report` for the tables).
    """
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
        t = bench.fit("plain", calibration_steps)["wall"] / calibration_steps
        steps = int(
            min(args.max_steps, max(args.min_steps, math.ceil(args.fit_seconds / t)))
        )
        warmup = time.perf_counter() - begin
        result = {
            "model": name,
            "batch": batch_size,
            "jit_compile": bool(bench.model.jit_compile),
            "steps": steps,
            "params": bench.model.count_params(),
            "warmup_s": warmup,
            "plain_s": [],
        }
        log(f"  {name} b={batch_size}: {t * 1e3:.1f} ms/step, {steps} steps/fit")
        extras = extras and t <= args.extras_max_step_seconds
        result["first_steps"] = {}
        for config in ("a", "d") if extras and args.first_steps else ():
            if config in configs:
                first = min(steps, DEFAULT_FIRST_STEPS)
                ratios, _ = paired_ratios(bench, config, first, args.repeats, start=0)
                result["first_steps"][config] = (first, ratios)
        if extras and args.host_reads:
            result["host_reads"] = host_reads_per_logged_step(
                bench, min(steps, args.host_read_steps)
            )
        bench.set_step(STEADY_STATE_START)
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
                result["plain_s"] += [plain["wall"] for plain in plains]
        result["pairs"] = all_ratios
        result["extra_cpu_s"] = {k: statistics.median(v) for k, v in extra.items()}
        result["a_logged"] = logged
        result["ms_per_step"] = statistics.median(result["plain_s"]) / steps * 1e3
        return result
    finally:
        shutil.rmtree(log_root, ignore_errors=True)


def _as_options(defaults):
    """`ALL_RUN` as the command-line options that set it."""
    options = []
    for key, value in defaults.items():
        flag = "--" + key.replace("_", "-")
        if value is False:
            options.append("--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            options.append(" ".join([flag, *map(str, value)]))
        else:
            options.append(f"{flag} {value}")
    return " ".join(options)


def make_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=f"--all is {_as_options(ALL_RUN)} (options given beside it win); "
        "the steady and fresh sections run on --models, their _jit sections on "
        "--jit-models.",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test, seconds")
    parser.add_argument(
        "--all",
        action="store_true",
        help="all six sections of RESULTS.md in one run, about 25 min on 2 idle "
        "cores: 3 steady pairs, 2 fresh pairs, 2 memory repeats (the options it "
        "sets are at the end)",
    )
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="print the plan and its estimated run time, measure nothing",
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--jit-models",
        nargs="+",
        default=list(JIT_MODELS),
        help="the models of steady_jit and fresh_jit",
    )
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
        "--sections",
        nargs="+",
        choices=[*SECTIONS, *JIT_SECTIONS, JAX_SECTION],
        default=[*SECTIONS, JAX_SECTION],
        help="the sections to measure (_jit: every model compiled with "
        "jit_compile=True; jax: Keras on JAX, in a process of its own); the "
        "file keeps the others' last text",
    )
    parser.add_argument(
        "--jax-pairs",
        type=int,
        default=None,
        help=f"pairs per Keras-on-JAX cell (default {jax_fresh_fit.PAIRS}, "
        f"others {jax_fresh_fit.DEFAULT_PAIRS})",
    )
    parser.add_argument(
        "--fresh-pairs", type=int, default=5, help="pairs per fresh-fit cell"
    )
    parser.add_argument(
        "--fresh-configs",
        nargs="+",
        choices=fresh_fit.CONFIGS,
        default=list(fresh_fit.CONFIGS),
    )
    parser.add_argument("--memory-model", default="ResNet50V2")
    parser.add_argument("--memory-repeats", type=int, default=2)
    parser.add_argument(
        "--memory-jobs",
        type=int,
        default=2,
        help="memory child processes at a time (each one's peak is its own)",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="markdown file whose sections to replace; defaults to "
        "benchmarks/perf/RESULTS.md for a full run and to none with --quick",
    )
    return parser


def parse_args(argv):
    parser = make_parser()
    if parser.parse_known_args(argv)[0].all:
        parser.set_defaults(**ALL_RUN)
    args = parser.parse_args(argv)
    for config in args.configs + args.depth_configs:
        if config not in CONFIGS:
            parser.error(f"unknown config {config!r}; choose from {list(CONFIGS)}")
    args.overrides = {}
    if args.quick:
        args.models = [m for m in args.models if m in ("mlp_relu_he", "lstm")][:1] or [
            "mlp_relu_he"
        ]
        args.jit_models = args.models
        args.batch_sizes = [16]
        args.repeats = 2
        args.fit_seconds = 0.0
        args.min_steps = args.max_steps = 4
        args.calibration_steps = 2
        args.depths = [2] if args.depths else []
        args.depth_configs = ["a"]
        args.host_read_steps = 2
        args.overrides = {"mlp_relu_he": {"depth": 3, "width": 16}}
    elif args.output is None:
        args.output = os.path.join(os.path.dirname(__file__), "RESULTS.md")
    return args


def steady_section(args, models, command):
    """Measures the steady state of `models`; returns its section of `RESULTS.md`."""
    info = machine_info()
    info.update(
        load_before=load_average(),
        skipped=[],
        repeats=args.repeats,
        steady_start=STEADY_STATE_START,
        jit_compile=jit_compile(),
    )
    begin = time.perf_counter()
    print(f"{info['cpu']}, {info['cores']} cores, load {info['load_before']}")
    results = []
    for name in models:
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
            print(f"    CPU {steady_report.summary(results[-1])}", flush=True)
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
        print(f"    depth {depth}: CPU {steady_report.summary(r)}", flush=True)
    info["wall"] = time.perf_counter() - begin
    info["load_after"] = load_average()
    return steady_report.render(
        results, depth_results, args.configs, args.depth_configs, info, command
    )


def fresh_section(args, models, command):
    """Measures fresh-model fits (`fresh_fit.py`); returns their section."""
    argv = ["--quick"] if args.quick else []
    argv += ["--models", *models, "--pairs", str(args.fresh_pairs)]
    fresh_args = fresh_fit.parse_args([*argv, "--configs", *args.fresh_configs])
    return fresh_fit.run(fresh_args, command)


def memory_section(args, models, command):
    """Measures peak memory (`peak_memory.py`); returns its section."""
    argv = ["--model", args.memory_model, "--repeats", str(args.memory_repeats)]
    argv = ["--quick"] if args.quick else argv
    memory_args = peak_memory.parse_args([*argv, "--jobs", str(args.memory_jobs)])
    return peak_memory.run(memory_args, command)


def jax_section(args, models, command):
    """Measures Keras-on-JAX fresh fits (`jax_fresh_fit.py`); returns its section."""
    argv = jax_fresh_fit.argv_of(args.quick, args.jax_pairs)
    return jax_fresh_fit.run(jax_fresh_fit.parse_args(argv), command)


RUNNERS = {
    "steady": steady_section,
    "fresh": fresh_section,
    "memory": memory_section,
    JAX_SECTION: jax_section,
}


def plan_of(args):
    """Section -> the models it measures (`None` for memory), in running order."""
    plan = {}
    for name in [*SECTIONS, *JIT_SECTIONS]:
        if name in args.sections:
            kind = name.removesuffix("_jit")
            models = args.jit_models if name.endswith("_jit") else args.models
            plan[name] = None if kind == "memory" else list(models)
    if JAX_SECTION in args.sections:
        plan[JAX_SECTION] = list(jax_fresh_fit.MODELS)
    return plan


def print_estimate(args, plan):
    """Prints what will run and how long it should take (`budget.py`)."""
    rows = budget.estimate(args, plan)
    print("Plan (estimated on 2 idle cores; a busy machine takes longer):")
    for name, seconds, what in rows:
        print(f"  {name:<11} ~{seconds / 60:4.1f} min  {what}")
    total = sum(seconds for _, seconds, _ in rows)
    print(f"  {'total':<11} ~{total / 60:4.1f} min", flush=True)


def main(argv=None):
    """Runs the chosen sections and writes each into `--output` once measured.

    Returns:
        Section name -> its markdown, for the sections that ran.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    command = " ".join(["python benchmarks/perf/overhead.py", *argv])
    plan = plan_of(args)
    if args.quick:
        print("--quick: a smoke test on tiny models (no estimate)")
    else:
        print_estimate(args, plan)
    if args.estimate:
        return {}
    begin = time.perf_counter()
    sections = {}
    for name, models in plan.items():
        with xla(name.endswith("_jit")):
            start = time.perf_counter()
            sections[name] = RUNNERS[name.removesuffix("_jit")](args, models, command)
        print()
        print(sections[name])
        print(f"{name}: {(time.perf_counter() - start) / 60:.1f} min", flush=True)
        if args.output:
            write_sections(args.output, {name: sections[name]})
            print(f"wrote {name} into {args.output}")
    print(f"all sections: {(time.perf_counter() - begin) / 60:.1f} min")
    return sections


if __name__ == "__main__":
    main()
