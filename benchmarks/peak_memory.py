"""Peak memory of a logged step: plain `fit` against `fit` with the monitor logging.

Each configuration runs in its own process (peak RSS is a process's lifetime
maximum): build keras.applications ResNet50V2 (`weights=None`, 32x32x3, 10
classes; 23.6M parameters, 90 MiB in float32), fit `--steps` steps at batch 8,
and report the peak resident set size (`ru_maxrss`). On a GPU the same
script would read `tf.config.experimental.get_memory_info("GPU:0")["peak"]`;
this machine has none.

Configurations: `plain`; `norms` (norms on every step); `norms+histograms`
(both on every step). The figure that matters is the extra peak over plain,
in units of the model's parameter bytes (target: at most 1x).

Usage:

    python benchmarks/peak_memory.py                  # writes PEAK_MEMORY.md
    python benchmarks/peak_memory.py --model MobileNetV2 --repeats 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CONFIGS = ("plain", "norms", "norms+histograms")


def child(model_name, config, steps, batch_size):
    """Runs in the child process: one fit; prints JSON with the peak RSS."""
    import resource
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from kgrad import GradientMonitor

    keras.utils.set_random_seed(0)
    builder = getattr(keras.applications, model_name)
    model = builder(weights=None, input_shape=(32, 32, 3), classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size * steps, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, batch_size * steps)
    callbacks = []
    if config != "plain":
        every = {"first_steps": 0, "norms_every": 1}
        every["histograms_every"] = 1 if config == "norms+histograms" else 0
        callbacks.append(GradientMonitor(tempfile.mkdtemp(), **every))
    model.fit(x, y, batch_size=batch_size, epochs=1, callbacks=callbacks, verbose=0)
    for callback in callbacks:
        callback.flush()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = model.count_params()
    print(json.dumps({"peak_mib": peak_kib / 1024, "param_mib": params * 4 / 2**20}))


def run(model_name, config, steps, batch_size):
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            model_name,
            config,
            str(steps),
            str(batch_size),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        name, config, steps, batch = argv[1:5]
        return child(name, config, int(steps), int(batch))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ResNet50V2")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    peaks = {config: [] for config in CONFIGS}
    param_mib = None
    for _ in range(args.repeats):
        for config in CONFIGS:
            result = run(args.model, config, args.steps, args.batch_size)
            peaks[config].append(result["peak_mib"])
            param_mib = result["param_mib"]
            print(f"  {config}: {result['peak_mib']:.0f} MiB", flush=True)
    plain = statistics.median(peaks["plain"])
    command = " ".join(["python benchmarks/peak_memory.py", *argv])
    lines = [
        "## Peak memory of logged steps",
        "",
        f"Command: `{command}`. keras.applications {args.model} (weights=None, "
        f"32x32x3), batch {args.batch_size}, {args.steps} steps, parameters "
        f"{param_mib:.0f} MiB in float32; peak RSS, median of {args.repeats} "
        "processes per configuration.",
        "",
        "| config | peak RSS MiB | extra over plain MiB | extra / parameter bytes |",
        "|---|---|---|---|",
    ]
    for config in CONFIGS:
        peak = statistics.median(peaks[config])
        extra = peak - plain
        lines.append(
            f"| {config} | {peak:.0f} | {extra:+.0f} | {extra / param_mib:.2f}x |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    output = args.output or os.path.join(os.path.dirname(__file__), "PEAK_MEMORY.md")
    with open(output, "w") as f:
        f.write(report)
    return report


if __name__ == "__main__":
    main()
