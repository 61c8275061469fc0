"""Keras on JAX: a fresh model's first `fit`, plain against monitored.

The JAX twin of `fresh_fit.py`, for the `jax` section of `RESULTS.md`. The
Keras backend is chosen when Keras is imported, so the measurements run in a
process of their own under `KERAS_BACKEND=jax` (this script starts it when
it is not on JAX already, and prints its progress as it comes);
`overhead.py` runs it beside the TensorFlow sections, so that one run
measures both backends.

Every fit builds a new model (after `keras.backend.clear_session()`) and
runs `--steps` steps (200) at batch 64 on random data of the model's input
shape, one epoch: it pays Keras's trace and XLA compile of its jitted step
(with kgrad's statistics in it when monitored), kgrad's logged steps and the
final flush (`monitor.flush()` is inside the timed span; no figure:
`figure_secs=None`). The configurations, each paired with a plain fit:

- `plain-again`: a plain fit against a plain fit: the noise floor;
- `defaults`: `GradientMonitor()` with its defaults (norms at steps 1-8, 16,
  32, 100 and 200, histograms at step 1);
- `every-step`: norms on every step (`norms_every="batch"`,
  `histograms_every=0`, `first_steps=0`).

The pairs are interleaved: round `i` runs one pair of every configuration
(their order rotates from round to round, and so does which fit of a pair
runs first). Each cell gives the ratio of process CPU time (user + system,
all threads) and of wall time, median of the pairs with the lowest and
highest pair. `step 1` is the first step alone (trace and compile), and
`+CPU s` splits what the monitor adds to a fit into step 1 and the other
steps (medians of the pairs' differences). Targets (issue 33), on CPU
time: `defaults` <= 1.10x, `every-step` <= 1.3x.

cnn_bn runs 3 pairs (a fit takes ~20 s on JAX's CPU convolutions), the
others 5; `--pairs` sets one number for all. The plan printed first comes
from `FIT_SECONDS`, CPU seconds per fit measured on this machine.

Usage:

    python benchmarks/perf/jax_fresh_fit.py                 # prints the section
    python benchmarks/perf/jax_fresh_fit.py --pairs 3 --models lstm
    python benchmarks/perf/jax_fresh_fit.py --estimate      # the plan only
    python benchmarks/perf/jax_fresh_fit.py --quick         # smoke test, ~30 s
    python benchmarks/perf/overhead.py --sections jax       # writes it into RESULTS.md
"""

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its siblings

MODELS = ("mlp_relu_he", "cnn_bn", "lstm")
OVERRIDES = {"cnn_bn": {"input_shape": (16, 16, 3)}}
CONFIGS = ("plain-again", "defaults", "every-step")
TARGETS = {"defaults": 1.10, "every-step": 1.3}
PAIRS = {"cnn_bn": 3}  # the others: DEFAULT_PAIRS
DEFAULT_PAIRS = 5
MARKER = "=== jax section ==="
# CPU seconds of one 200-step fit on 2 cores (Keras 3.15.1, JAX 0.10.2):
# (plain, monitored), from fits at load 1.5-5 (CPU time); a busy machine is slower.
FIT_SECONDS = {
    "mlp_relu_he": (1.1, 2.2),
    "cnn_bn": (19.0, 20.0),
    "lstm": (3.0, 3.8),
}
STARTUP_SECONDS = 8.0  # the child process: imports, then one warm-up fit per model
FIT_OVERHEAD_SECONDS = 0.5  # per fit, untimed: clear_session, the model, gc


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument(
        "--pairs", type=int, default=None, help=f"pairs per cell (default {PAIRS})"
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--estimate", action="store_true", help="print the plan only")
    return parser


def parse_args(argv):
    args = make_parser().parse_args(argv)
    if args.quick:
        args.models, args.pairs, args.steps = ["mlp_relu_he"], 1, 12
    return args


def argv_of(quick, pairs):
    """The arguments `overhead.py` passes: `--quick`, or `--pairs` when given."""
    if quick:
        return ["--quick"]
    return [] if pairs is None else ["--pairs", str(pairs)]


def pairs_of(args, name):
    """Pairs per cell of model `name`."""
    return args.pairs if args.pairs is not None else PAIRS.get(name, DEFAULT_PAIRS)


def estimate_seconds(args):
    """`[(model, seconds)]`: how long each model's fits take on 2 idle cores."""
    out = []
    for name in args.models:
        plain, monitored = FIT_SECONDS.get(name, max(FIT_SECONDS.values()))
        plain, monitored = (
            FIT_OVERHEAD_SECONDS + s * args.steps / 200 for s in (plain, monitored)
        )
        per_round = sum(
            plain + (plain if config == "plain-again" else monitored)
            for config in args.configs
        )
        out.append((name, plain + pairs_of(args, name) * per_round))
    return out


def plan(args):
    """The lines of the plan: what runs and how long it should take."""
    rows = estimate_seconds(args)
    total = STARTUP_SECONDS + sum(seconds for _, seconds in rows)
    lines = [f"Keras on JAX, fresh fits (~{total / 60:.1f} min on 2 idle cores):"]
    for name, seconds in rows:
        lines.append(
            f"  {name:<12} ~{seconds / 60:4.1f} min  {len(args.configs)} configs x "
            f"{pairs_of(args, name)} pairs x 2 fits of {args.steps} steps"
        )
    return lines


def _monitor(config, log_dir):
    from kgrad import GradientMonitor

    if config == "defaults":
        return [GradientMonitor(log_dir, verbose=0, figure_secs=None)]
    if config == "every-step":
        return [
            GradientMonitor(
                log_dir,
                norms_every="batch",
                histograms_every=0,
                first_steps=0,
                verbose=0,
                figure_secs=None,
            )
        ]
    return []


def _clock():
    return {"cpu": time.process_time(), "wall": time.perf_counter()}


def _since(start):
    now = _clock()
    return {key: now[key] - start[key] for key in now}


def _first_step_timer():
    import keras

    class FirstStep(keras.callbacks.Callback):
        """The clocks of step 1 (the trace and compile of Keras's step)."""

        async_safe = True  # keeps Keras's asynchronous dispatch

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.begin = _clock()

        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.seconds = _since(self.begin)

    return FirstStep()


def _fit(name, config, data, steps, log_root):
    """`{"fit": {cpu, wall}, "step 1": {cpu, wall}}` of one fresh fit."""
    import keras

    from kgrad import zoo

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = zoo.build(name, **OVERRIDES.get(name, {}))
    if zoo.spec(name).task == "regression":
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss)  # jit_compile="auto": jitted
    x, y = data(model, 64 * steps)
    log_dir = tempfile.mkdtemp(dir=log_root)
    timer = _first_step_timer()
    callbacks = [*_monitor(config, log_dir), timer]  # the timer's batch end last
    gc.collect()
    start = _clock()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=callbacks)
    for callback in callbacks[:-1]:
        callback.flush()
    fit = _since(start)
    shutil.rmtree(log_dir, ignore_errors=True)
    return {"fit": fit, "step 1": timer.seconds}


def _data_of(name):
    """Random examples of model `name`'s input, made once per size."""
    from synthetic import random_examples

    made = {}

    def data(model, n):
        if n not in made:
            made[n] = random_examples(name, model, n)
        return made[n]

    return data


def _ratios(plain, other):
    return {
        part: {k: other[part][k] / plain[part][k] for k in ("cpu", "wall")}
        for part in ("fit", "step 1")
    } | {
        "added": {
            "step 1": other["step 1"]["cpu"] - plain["step 1"]["cpu"],
            "later": (other["fit"]["cpu"] - other["step 1"]["cpu"])
            - (plain["fit"]["cpu"] - plain["step 1"]["cpu"]),
        },
        "plain": plain,
    }


def measure(args, log=print):
    """`{model: {config: [per-pair ratios]}}`, measured on JAX, interleaved."""
    log_root = tempfile.mkdtemp(prefix="kgrad_jax_bench_")
    out, begin = {}, time.perf_counter()
    estimates = dict(estimate_seconds(args))
    try:
        for name in args.models:
            data = _data_of(name)
            _fit(name, "plain-again", data, min(args.steps, 8), log_root)  # caches
            out[name] = {config: [] for config in args.configs}
            pairs = pairs_of(args, name)
            for i in range(pairs):
                shift = i % len(args.configs)
                for config in args.configs[shift:] + args.configs[:shift]:
                    order = ["plain", config] if i % 2 == 0 else [config, "plain"]
                    runs = {c: _fit(name, c, data, args.steps, log_root) for c in order}
                    out[name][config].append(_ratios(runs["plain"], runs[config]))
                cells = ", ".join(
                    f"{c} {out[name][c][-1]['fit']['cpu']:.2f}x" for c in args.configs
                )
                log(
                    f"  jax {name} pair {i + 1}/{pairs} (CPU): {cells}; "
                    f"{(time.perf_counter() - begin) / 60:.1f} min so far",
                    flush=True,
                )
            log(f"  jax {name}: planned ~{estimates[name] / 60:.1f} min", flush=True)
    finally:
        shutil.rmtree(log_root, ignore_errors=True)
    return out


def _median(values):
    return statistics.median(values)


def section(results, args, command, minutes, load_before):
    """The markdown of the `jax` section."""
    import jax
    import keras
    from results_file import cpu_wall, table

    from kgrad.lab.machine import load_average

    pairs = ", ".join(f"{name} {pairs_of(args, name)}" for name in results)
    lines = [
        "## Keras on JAX: fresh fits",
        "",
        f"Command: `{command}`. Keras {keras.__version__} on JAX {jax.__version__} "
        f"(CPU), {args.steps} steps at batch 64, one epoch, a new model per fit; "
        f"pairs per cell: {pairs}; load {load_before} before, {load_average()} "
        f"after; {minutes:.1f} min. The TensorFlow fresh fits are in the `fresh` "
        "section. Ratio monitored / plain, median (lowest-highest pair), each cell "
        "`CPU / wall`; `step 1`: the first step alone (Keras's trace and XLA "
        "compile, kgrad's statistics included). `+CPU s`: the CPU seconds the "
        "monitor adds to a fit, at step 1 and over the other steps (medians). "
        "Row `plain-again` is the noise floor.",
        "",
    ]
    rows = []
    for name, cells in results.items():
        plains = [r["plain"] for rs in cells.values() for r in rs]
        for config, ratios in cells.items():
            rows.append(
                [
                    name,
                    f"{_median(p['fit']['cpu'] for p in plains):.2f}",
                    f"{_median(p['step 1']['cpu'] for p in plains):.2f}",
                    config,
                    cpu_wall([r["fit"] for r in ratios]),
                    cpu_wall([r["step 1"] for r in ratios]),
                    f"{_median(r['added']['step 1'] for r in ratios):+.2f} / "
                    f"{_median(r['added']['later'] for r in ratios):+.2f}",
                ]
            )
    header = ["model", "plain CPU s", "plain step 1 CPU s", "config"]
    header += ["fit CPU / wall", "step 1 CPU / wall", "+CPU s step 1 / later"]
    lines += table(header, rows)
    lines += ["", "Targets (CPU time; met only when the whole spread is below):", ""]
    for config, target in TARGETS.items():
        for name, cells in results.items():
            if config not in cells:
                continue
            fits = [r["fit"] for r in cells[config]]
            met = max(r["cpu"] for r in fits) <= target
            floor = cells.get("plain-again")
            noise = (
                f"; noise floor {cpu_wall([r['fit'] for r in floor])}" if floor else ""
            )
            lines.append(
                f"- {'met' if met else 'MISSED'}: {config} <= {target:.2f}x CPU on "
                f"{name}: {cpu_wall(fits)}{noise}"
            )
    return "\n".join(lines)


def _measure_here(args, command):
    from kgrad.lab.machine import load_average

    load_before, begin = load_average(), time.perf_counter()
    results = measure(args)
    minutes = (time.perf_counter() - begin) / 60
    return section(results, args, command, minutes, load_before)


def run(args, command, log=print):
    """Measures on JAX (in a child process unless Keras is on JAX) -> section.

    The child's progress lines are printed as they come; its stderr (JAX's
    and TensorFlow's logs) goes to a file, shown when it fails.
    """
    if os.environ.get("KERAS_BACKEND") == "jax":
        return _measure_here(args, command)
    argv = [sys.executable, "-u", os.path.abspath(__file__), "--command", command]
    argv += ["--models", *args.models, "--configs", *args.configs]
    argv += ["--steps", str(args.steps)]
    argv += [] if args.pairs is None else ["--pairs", str(args.pairs)]
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        lines, inside = [], False
        for line in child.stdout:
            inside = inside or line.startswith(MARKER)
            if inside:
                lines.append(line)
            else:
                log(line.rstrip("\n"), flush=True)
        if child.wait() != 0 or not lines:
            errors.seek(0)
            raise RuntimeError(f"the JAX benchmark failed:\n{errors.read()[-3000:]}")
    return "".join(lines[1:]).strip()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/perf/jax_fresh_fit.py " + " ".join(argv)
    child = "--command" in argv  # started by `run`
    if child:
        i = argv.index("--command")
        command = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    args = parse_args(argv)
    if not child:
        print("\n".join(plan(args)), flush=True)
        if args.estimate:
            return ""
    text = run(args, command.strip())
    print(MARKER)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
