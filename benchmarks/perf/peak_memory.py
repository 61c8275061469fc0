"""Peak memory of a logged step: plain `fit` against `fit` with the monitor logging.

Each fit runs in its own process (peak RSS is a process's lifetime maximum):
build keras.applications ResNet50V2 (`weights=None`, 32x32x3, 10 classes;
23.6M parameters, 90 MiB in float32) or a zoo model (`--model mlp_relu_he`),
fit `--steps` steps at batch 8, and report the peak resident set size
(`VmHWM` of `/proc/self/status`: unlike `ru_maxrss`, which a child inherits
from the process that forked it, it is this process's own; `ru_maxrss` where
there is no `/proc`). On a GPU the same script would read
`tf.config.experimental.get_memory_info("GPU:0")["peak"]`; this machine has
none.

Configurations: `plain`; `plain-again` (a second plain process: the noise
floor); `norms` (norms on every step); `norms+histograms` (both on every
step). Each repeat runs one process of each (`--jobs` at a time: a process's
peak RSS is its own, whatever runs beside it); the figure that matters is the
extra peak over the same repeat's plain process, in units of the model's
parameter bytes (target: at most 1x, over the whole spread).

Where the memory goes: each process also reads its peak per phase (`PHASES`),
resetting the peak between phases (Linux: `5` written to
`/proc/self/clear_refs` sets `VmHWM` back to the current RSS). Where the
peak cannot be reset, each phase's figure is the peak from the process's
start, and the section says so. With `KGRAD_BENCH_JIT=1` in the environment
(`synthetic.xla(True)`), the model is compiled with XLA.

Usage:

    python benchmarks/perf/peak_memory.py                  # prints the section
    python benchmarks/perf/peak_memory.py --model MobileNetV2 --repeats 1 --jobs 1
    KGRAD_BENCH_JIT=1 python benchmarks/perf/peak_memory.py  # jit_compile=True
    python benchmarks/perf/peak_memory.py --quick          # smoke test

`python benchmarks/perf/overhead.py --sections memory memory_jit` runs the same
measurements and writes them into `benchmarks/perf/RESULTS.md`.
"""

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its siblings
from results_file import table  # noqa: E402

CONFIGS = ("plain", "plain-again", "norms", "norms+histograms")
TARGET = 1.0  # extra peak RSS of a logged step / parameter bytes
PHASES = {  # phase -> what its peak covers
    "build": "from the process's start: imports, the model built and compiled, "
    "the data",
    "first step": "fit's start to the end of step 1: the trace (with kgrad's "
    "statistics in the monitored configurations) and the first logged step",
    "later steps": "steps 2 to the last and the final flush",
}


def peak_rss_mib():
    """This process's peak resident set size in MiB (its own, not its parent's)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss():
    """Sets this process's peak RSS back to its current RSS; False where it cannot.

    Linux 4.0 and later: writing `5` to `/proc/self/clear_refs` resets `VmHWM`.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def child(model_name, config, steps, batch_size, overrides):
    """Runs in the child process: one fit; prints JSON with the peak RSS.

    The JSON holds `peak_mib` (the whole process), `phases` (phase -> peak
    MiB, see `PHASES`), `phase_reset` (whether each phase's peak is its own
    or from the process's start), `param_mib`, `model` and `jit_compile`.
    """
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    from synthetic import compiled_zoo_model, jit_compile, random_examples

    from kgrad import GradientMonitor

    n = batch_size * steps
    if hasattr(keras.applications, model_name):
        keras.utils.set_random_seed(0)
        builder = getattr(keras.applications, model_name)
        model = builder(weights=None, input_shape=(32, 32, 3), classes=10)
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            jit_compile=jit_compile(),
        )
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, n)
        source = f"keras.applications {model_name} (weights=None, 32x32x3)"
    else:
        model, _ = compiled_zoo_model(model_name, overrides)
        x, y = random_examples(model_name, model, n)
        source = f"zoo {model_name} {overrides or ''}".strip()
    callbacks = []
    if config.startswith("norms"):
        every = {"first_steps": 0, "norms_every": 1}
        every["histograms_every"] = 1 if config == "norms+histograms" else 0
        callbacks.append(GradientMonitor(tempfile.mkdtemp(), **every))
    phases = {"build": peak_rss_mib()}
    reset = reset_peak_rss()

    class FirstStep(keras.callbacks.Callback):
        """Ends the first-step phase after every other callback's batch end."""

        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                phases["first step"] = peak_rss_mib()
                reset_peak_rss()

    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=1,
        callbacks=[*callbacks, FirstStep()],
        verbose=0,
    )
    for callback in callbacks:
        callback.flush()
    phases["later steps"] = peak_rss_mib()
    out = {
        "peak_mib": max(phases.values()),
        "phases": phases,
        "phase_reset": reset,
        "param_mib": model.count_params() * 4 / 2**20,
        "model": source,
        "jit_compile": bool(model.jit_compile),
    }
    print(json.dumps(out))


def run_child(model_name, config, steps, batch_size, overrides):
    """One fit in a fresh process; returns what `child` prints (a dict)."""
    done = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            model_name,
            config,
            str(steps),
            str(batch_size),
            json.dumps(overrides),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args, log=print):
    """Peak RSS of `args.repeats` processes per configuration, `args.jobs` at once.

    Returns:
        `(runs, result)`: config -> the child result of each repeat (see
        `child`), and the last child's result.
    """
    runs = {config: [] for config in CONFIGS}
    result = None
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for _ in range(args.repeats):
            futures = {
                config: pool.submit(
                    run_child,
                    args.model,
                    config,
                    args.steps,
                    args.batch_size,
                    args.overrides,
                )
                for config in CONFIGS
            }
            for config, future in futures.items():
                result = future.result()
                runs[config].append(result)
                log(f"  {config}: {result['peak_mib']:.0f} MiB", flush=True)
    return runs, result


def _spread(values, digits, suffix=""):
    """`median (lowest to highest)`: the extras may be negative."""
    median = statistics.median(values)
    return (
        f"{median:.{digits}f}{suffix} ({min(values):.{digits}f} to "
        f"{max(values):.{digits}f})"
    )


def _extras(runs, key):
    """config -> extra over the same repeat's plain process, of `key(run)`, MiB."""
    return {
        config: [
            key(run) - key(plain)
            for run, plain in zip(runs[config], runs["plain"], strict=True)
        ]
        for config in CONFIGS
    }


def phase_tables(runs, param_mib):
    """The per-phase tables: peak RSS, then extra over plain (MiB and x params)."""
    others = CONFIGS[1:]
    peaks, extras = [], []
    for phase in PHASES:
        extra = _extras(runs, lambda run, phase=phase: run["phases"][phase])
        cells = [_spread([r["phases"][phase] for r in runs[c]], 0) for c in CONFIGS]
        peaks.append([phase, *cells])
        cells = [
            f"{_spread(extra[c], 1)} MiB = "
            f"{_spread([e / param_mib for e in extra[c]], 2, 'x')}"
            for c in others
        ]
        extras.append([phase, *cells])
    return (
        table(["phase"] + [f"{c} MiB" for c in CONFIGS], peaks),
        table(["phase"] + [f"{c} extra" for c in others], extras),
    )


def render(runs, child_result, args, command, wall_s):
    """The peak-memory section of `RESULTS.md` (markdown)."""
    param_mib = child_result["param_mib"]
    jit = child_result["jit_compile"]
    lines = [
        "## Peak memory of logged steps" + (", jit_compile=True" if jit else ""),
        "",
        f"Command: `{command}`. {child_result['model']}, batch {args.batch_size}, "
        f"{args.steps} steps, parameters {param_mib:.3g} MiB in float32"
        + (", compiled with `jit_compile=True`" if jit else "")
        + "; peak RSS of one process per "
        f"configuration and repeat, {args.repeats} repeats, {args.jobs} processes "
        "at a time: median (lowest to highest). The extra is over the same "
        f"repeat's plain process; row `plain-again` is the noise floor. Wall time "
        f"{wall_s / 60:.1f} min.",
        "",
    ]
    extras, rows = {}, []
    whole = _extras(runs, lambda run: run["peak_mib"])
    for config in CONFIGS:
        extras[config] = [e / param_mib for e in whole[config]]
        peaks = [run["peak_mib"] for run in runs[config]]
        rows.append([config, _spread(peaks, 0), _spread(whole[config], 1)])
        rows[-1].append(_spread(extras[config], 2, "x"))
    header = [
        "config",
        "peak RSS MiB",
        "extra over plain MiB",
        "extra / parameter bytes",
    ]
    lines += table(header, rows)
    reset = all(run["phase_reset"] for config in CONFIGS for run in runs[config])
    peaks, phase_extras = phase_tables(runs, param_mib)
    lines += [
        "",
        "### Where the memory goes: peak RSS per phase",
        "",
        (
            "Each process resets its peak RSS between phases "
            "(`/proc/self/clear_refs`), so each figure is that phase's own peak "
            "(the whole process's peak is the highest of the three): "
            if reset
            else "This system could not reset a process's peak RSS (no writable "
            "`/proc/self/clear_refs`): each figure is the peak from the process's "
            "start to the end of that phase, not the phase's own: "
        )
        + "; ".join(f"`{phase}`: {text}" for phase, text in PHASES.items())
        + ".",
        "",
        *peaks,
        "",
        "Extra over the same repeat's plain process, per phase: MiB = x the "
        "parameter bytes.",
        "",
        *phase_extras,
    ]
    lines += ["", "Targets (whole process; met only when the whole spread is below):"]
    lines.append("")
    for config in ("norms", "norms+histograms"):
        met = max(extras[config]) <= TARGET
        lines.append(
            f"- {'met' if met else 'MISSED'}: a logged step ({config}) adds <= "
            f"{TARGET:.0f}x the parameter bytes to peak RSS: "
            f"{_spread(extras[config], 2, 'x')}; noise floor "
            f"{_spread(extras['plain-again'], 2, 'x')}"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ResNet50V2")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--jobs", type=int, default=2, help="child processes at a time (default 2)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test")
    args = parser.parse_args(argv)
    args.overrides = {}
    if args.quick:
        args.model, args.steps, args.batch_size, args.repeats = "mlp_relu_he", 2, 4, 1
        args.overrides = {"depth": 3, "width": 8}
    return args


def run(args, command, log=print):
    """Measures and returns the peak-memory section."""
    begin = time.perf_counter()
    runs, child_result = measure(args, log=log)
    return render(runs, child_result, args, command, time.perf_counter() - begin)


def main(argv=None):
    """Runs the measurement; prints and returns the markdown section."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        name, config, steps, batch, overrides = argv[1:6]
        return child(name, config, int(steps), int(batch), json.loads(overrides))
    command = " ".join(["python benchmarks/perf/peak_memory.py", *argv])
    report = run(parse_args(argv), command)
    print(report)
    return report


if __name__ == "__main__":
    main()
