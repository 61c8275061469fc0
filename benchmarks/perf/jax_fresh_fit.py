"""Keras on JAX: a fresh model's first `fit`, plain against monitored.

The JAX twin of `fresh_fit.py`, for the `jax` section of `RESULTS.md`. The
Keras backend is chosen when Keras is imported, so the measurements run in a
process of their own under `KERAS_BACKEND=jax` (this script starts it when
it is not on JAX already); `overhead.py` runs it beside the TensorFlow
sections, so that one run measures both backends.

Every fit builds a new model (after `keras.backend.clear_session()`) and
runs `--steps` steps (200) at batch 64 on random data of the model's input
shape, one epoch: it pays Keras's trace of its jitted step, kgrad's logged
steps and the final flush (`monitor.flush()` is inside the timed span; the
figure is off, as it is drawn in the background after `fit`). Per model,
`--pairs` pairs of fits run interleaved (which of the two runs first
alternates), for each configuration:

- `plain-again`: a plain fit against a plain fit: the noise floor;
- `defaults`: `GradientMonitor()` with its defaults (norms at steps 1-8, 16,
  32, 100 and 200, histograms at step 1);
- `every-step`: norms on every step (`norms_every="batch"`,
  `histograms_every=0`, `first_steps=0`).

Each cell gives the ratio of process CPU time (user + system, all threads)
and of wall time, median of the pairs with the lowest and highest pair.
Targets (issue 33), on CPU time: `defaults` <= 1.10x, `every-step` <= 1.3x.

Usage:

    python benchmarks/perf/jax_fresh_fit.py                 # prints the section
    python benchmarks/perf/jax_fresh_fit.py --pairs 3 --models lstm
    python benchmarks/perf/jax_fresh_fit.py --quick         # smoke test
    python benchmarks/perf/overhead.py --sections jax       # writes it into RESULTS.md
"""

import argparse
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its siblings

MODELS = ("mlp_relu_he", "cnn_bn", "lstm")
OVERRIDES = {"cnn_bn": {"input_shape": (16, 16, 3)}}
CONFIGS = ("plain-again", "defaults", "every-step")
TARGETS = {"defaults": 1.10, "every-step": 1.3}
MARKER = "=== jax section ==="


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="smoke test")
    return parser


def parse_args(argv):
    args = make_parser().parse_args(argv)
    if args.quick:
        args.models, args.pairs, args.steps = ["mlp_relu_he"], 1, 12
    return args


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


def _fit(name, config, steps, log_root):
    """CPU and wall seconds of one fresh fit of `name` under `config`."""
    import keras
    from synthetic import random_examples

    from kgrad import zoo

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = zoo.build(name, **OVERRIDES.get(name, {}))
    if zoo.spec(name).task == "regression":
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss)  # jit_compile="auto": jitted
    x, y = random_examples(name, model, 64 * steps)
    log_dir = tempfile.mkdtemp(dir=log_root)
    callbacks = _monitor(config, log_dir)
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=callbacks)
    for callback in callbacks:
        callback.flush()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    shutil.rmtree(log_dir, ignore_errors=True)
    return {"cpu": cpu, "wall": wall}


def measure(args):
    """`{model: {config: [{"cpu": ratio, "wall": ratio}]}}`, measured on JAX."""
    log_root = tempfile.mkdtemp(prefix="kgrad_jax_bench_")
    out = {}
    for name in args.models:
        _fit(name, "plain-again", min(args.steps, 8), log_root)  # imports, caches
        out[name] = {}
        for config in args.configs:
            ratios = []
            for pair in range(args.pairs):
                order = ["plain", config] if pair % 2 == 0 else [config, "plain"]
                seconds = {
                    c: _fit(
                        name, "plain-again" if c == "plain" else c, args.steps, log_root
                    )
                    for c in order
                }
                ratios.append(
                    {
                        k: seconds[config][k] / seconds["plain"][k]
                        for k in ("cpu", "wall")
                    }
                )
            out[name][config] = ratios
            print(f"{name} {config}: done", file=sys.stderr, flush=True)
    shutil.rmtree(log_root, ignore_errors=True)
    return out


def section(results, args, command):
    """The markdown of the `jax` section."""
    import jax
    import keras
    from results_file import cpu_wall, spread

    from kgrad.lab.machine import load_average

    lines = [
        "## Keras on JAX: fresh fits",
        "",
        f"Command: `{command}`. Keras {keras.__version__} on JAX {jax.__version__} "
        f"(CPU), {args.steps} steps at batch 64, one epoch, a new model per fit, "
        f"{args.pairs} pairs per cell; load average at the end "
        f"{load_average()}. The TensorFlow fresh fits are in the `fresh` section "
        "above. Cells: CPU ratio / wall ratio, median (lowest-highest) "
        "against a plain fit. Targets on CPU: defaults <= 1.10x, every step <= 1.3x.",
        "",
        "| model | " + " | ".join(args.configs) + " |",
        "|---|" + "---|" * len(args.configs),
    ]
    for name, cells in results.items():
        row = [cpu_wall(cells[c]) for c in args.configs]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines.append("")
    for config, target in TARGETS.items():
        for name, cells in results.items():
            if config in cells:
                cell = spread([r["cpu"] for r in cells[config]])
                met = max(r["cpu"] for r in cells[config]) < target
                lines.append(
                    f"- {config}, {name}: CPU {cell} against <= {target:.2f}x: "
                    f"{'met' if met else 'not met'} (the whole spread below)."
                )
    return "\n".join(lines)


def run(args, command):
    """Measures on JAX (in a child process unless Keras is on JAX) -> section."""
    if os.environ.get("KERAS_BACKEND") == "jax":
        return section(measure(args), args, command)
    argv = [sys.executable, os.path.abspath(__file__), "--command", command]
    argv += ["--models", *args.models, "--configs", *args.configs]
    argv += ["--pairs", str(args.pairs), "--steps", str(args.steps)]
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the JAX benchmark failed:\n{done.stderr[-3000:]}")
    return done.stdout.split(MARKER, 1)[1].strip()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/perf/jax_fresh_fit.py " + " ".join(argv)
    if "--command" in argv:  # a child started by `run`
        i = argv.index("--command")
        command = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    args = parse_args(argv)
    text = run(args, command.strip())
    print(MARKER)
    print(text)
    return text


if __name__ == "__main__":
    main()
