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
step). Each repeat runs one process of each; the figure that matters is the
extra peak over the same repeat's plain process, in units of the model's
parameter bytes (target: at most 1x, over the whole spread).

Usage:

    python benchmarks/peak_memory.py                  # prints the section
    python benchmarks/peak_memory.py --model MobileNetV2 --repeats 1
    python benchmarks/peak_memory.py --quick          # smoke test

`python benchmarks/overhead.py --sections memory` runs the same measurement
and writes it into the peak-memory section of `benchmarks/RESULTS.md`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CONFIGS = ("plain", "plain-again", "norms", "norms+histograms")
TARGET = 1.0  # extra peak RSS of a logged step / parameter bytes


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


def child(model_name, config, steps, batch_size, overrides):
    """Runs in the child process: one fit; prints JSON with the peak RSS."""
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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
    model.fit(x, y, batch_size=batch_size, epochs=1, callbacks=callbacks, verbose=0)
    for callback in callbacks:
        callback.flush()
    peak_mib, param_mib = peak_rss_mib(), model.count_params() * 4 / 2**20
    print(json.dumps({"peak_mib": peak_mib, "param_mib": param_mib, "model": source}))


def run_child(model_name, config, steps, batch_size, overrides):
    """One fit in a fresh process; returns its `peak_mib`, `param_mib`, `model`."""
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
    """Peak RSS of `args.repeats` processes per configuration.

    Returns:
        `(peaks, result)`: config -> the peak MiB of each repeat, and the last
        child's result (its `param_mib` in float32 and its `model`).
    """
    peaks = {config: [] for config in CONFIGS}
    result = None
    for _ in range(args.repeats):
        for config in CONFIGS:
            result = run_child(
                args.model, config, args.steps, args.batch_size, args.overrides
            )
            peaks[config].append(result["peak_mib"])
            log(f"  {config}: {result['peak_mib']:.0f} MiB", flush=True)
    return peaks, result


def _spread(values, digits, suffix=""):
    """`median (lowest to highest)`: the extras may be negative."""
    median = statistics.median(values)
    return (
        f"{median:.{digits}f}{suffix} ({min(values):.{digits}f} to "
        f"{max(values):.{digits}f})"
    )


def render(peaks, child_result, args, command):
    """The peak-memory section of `RESULTS.md` (markdown)."""
    param_mib = child_result["param_mib"]
    lines = [
        "## Peak memory of logged steps",
        "",
        f"Command: `{command}`. {child_result['model']}, batch {args.batch_size}, "
        f"{args.steps} steps, parameters {param_mib:.3g} MiB in float32; peak "
        "RSS of one process per "
        f"configuration and repeat, {args.repeats} repeats: median "
        "(lowest to highest). The extra is over the same repeat's plain process; "
        "row `plain-again` is the noise floor.",
        "",
        "| config | peak RSS MiB | extra over plain MiB | extra / parameter bytes |",
        "|---|---|---|---|",
    ]
    extras = {}
    for config in CONFIGS:
        extra = [p - q for p, q in zip(peaks[config], peaks["plain"], strict=True)]
        extras[config] = [e / param_mib for e in extra]
        lines.append(
            f"| {config} | {_spread(peaks[config], 0)} | {_spread(extra, 1)} "
            f"| {_spread(extras[config], 2, 'x')} |"
        )
    lines += ["", "Targets (met only when the whole spread is below):", ""]
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
    parser.add_argument("--quick", action="store_true", help="smoke test")
    args = parser.parse_args(argv)
    args.overrides = {}
    if args.quick:
        args.model, args.steps, args.batch_size, args.repeats = "mlp_relu_he", 2, 4, 1
        args.overrides = {"depth": 3, "width": 8}
    return args


def run(args, command, log=print):
    """Measures and returns the peak-memory section."""
    peaks, child_result = measure(args, log=log)
    return render(peaks, child_result, args, command)


def main(argv=None):
    """Runs the measurement; prints and returns the markdown section."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        name, config, steps, batch, overrides = argv[1:6]
        return child(name, config, int(steps), int(batch), json.loads(overrides))
    command = " ".join(["python benchmarks/peak_memory.py", *argv])
    report = run(parse_args(argv), command)
    print(report)
    return report


if __name__ == "__main__":
    main()
