"""What the noise scale costs: logged and unlogged steps, with and without it.

For each zoo model of `overhead.py` (or `--models`), three copies of the model
(same seed) each get Keras's train function traced with kgrad's statistics
(`GradientCapture`):

- `plain`: without the noise scale;
- `again`: the same, a second copy: `again / plain` is the noise floor, what
  a change that costs nothing scores on this machine;
- `noise`: with `noise_scale=True` (per-example gradient norms,
  `kgrad.monitor.step.per_example`).

Two kinds of step are timed: `unlogged` (not armed; target: no cost) and
`logged` (armed, norms without histograms; target: `noise / plain` <= 1.3).

Method: a block is `n` calls of one copy's train function, `n` chosen after
the warm-up so that a block lasts `--block-seconds` (at least 2 calls). Per
model and kind, `--repeats` rounds each time one block of every copy, the
order rotating from round to round (interleaved, so that a drift of the
machine hits every copy alike); the garbage collector runs before each block.
Each block is timed in wall time and in process CPU time (user + system, all
threads). A pair is one round's `X / plain`; each cell gives the median ratio
over the rounds and, in brackets, the lowest and the highest: the spread.
The plan printed first estimates the run's length from step times measured
on 2 idle cores (`STEP_SECONDS`); the time taken is printed at the end.
Run it on an idle machine: on a loaded one the ratios are noise.

Usage:

    python benchmarks/perf/noise_scale.py             # five models, ~8 min
    python benchmarks/perf/noise_scale.py --estimate  # the plan only
    python benchmarks/perf/noise_scale.py --quick     # two models, a check
    python benchmarks/perf/noise_scale.py --models resnet18 --repeats 21
"""

import argparse
import gc
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from overhead import MODELS  # noqa: E402

from kgrad import zoo  # noqa: E402
from kgrad.monitor.step.host import GradientCapture  # noqa: E402

COPIES = ("plain", "again", "noise")
KINDS = ("unlogged", "logged")
# model -> (seconds to build and trace one copy, seconds of a logged step with
# the noise scale at batch 32), 2 idle cores; a model not listed counts as
# the slowest.
# the slowest; plus `IMPORT_SECONDS` once. Setup from a `--quick` run on a
# busy machine (1.2 CPU-min for mlp_relu_he and cnn_bn), scaled by `budget.py`'s
# trace times; steps from the last idle run.
STEP_SECONDS = {
    "mlp_relu_he": (12.0, 0.005),
    "cnn_bn": (10.0, 0.03),
    "resnet18": (32.0, 0.3),
    "lstm": (8.0, 0.03),
    "transformer_small": (28.0, 0.1),
}
IMPORT_SECONDS = 10.0


class Copy:
    """One copy of a model with its traced train function and capture."""

    def __init__(self, model_name, noise_scale, batch_size):
        keras.utils.set_random_seed(0)
        self.model = zoo.build(model_name)
        self.model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        shape = [50 if d is None else d for d in self.model.input_shape[1:]]
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4 * batch_size, *shape)).astype("float32")
        y = rng.integers(0, self.model.output_shape[-1], len(x)).astype("int32")
        batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
        self.iterator = iter(batches.cache().repeat())
        self.model.fit(batches, epochs=1, verbose=0, shuffle=False)
        self.capture = GradientCapture(self.model, noise_scale=noise_scale)
        self.capture.install()
        self.model.make_train_function(force=True)
        self.train_function = self.model.train_function

    def step(self, kind):
        if kind == "logged":
            self.capture.arm(histograms=False)
        self.train_function(self.iterator)

    def block(self, kind, calls):
        """`(wall s, cpu s)` of `calls` steps of `kind`."""
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            self.step(kind)
        return time.perf_counter() - wall, time.process_time() - cpu

    def close(self):
        self.capture.uninstall()


def calls_per_block(copies, kind, block_seconds):
    """Calls of the slowest copy that last `block_seconds` (at least 2)."""
    slowest = 0.0
    for copy in copies.values():
        for _ in range(3):  # warm-up
            copy.step(kind)
        slowest = max(slowest, copy.block(kind, 3)[0] / 3)
    return max(2, round(block_seconds / slowest))


def measure(model_name, batch_size, repeats, block_seconds):
    """`{kind: {"ms": {copy: wall ms/step}, "calls": n, "ratios": ...}}`.

    `ratios` is `{copy: {"wall": [...], "cpu": [...]}}` of `again` and
    `noise` against `plain`, one per round; `"setup_seconds"` the time to
    build and trace the three copies.
    """
    began = time.perf_counter()
    copies = {name: Copy(model_name, name == "noise", batch_size) for name in COPIES}
    try:
        out = {"setup_seconds": time.perf_counter() - began}
        for kind in KINDS:
            calls = calls_per_block(copies, kind, block_seconds)
            times = {name: [] for name in COPIES}
            for round_ in range(repeats):
                shift = round_ % len(COPIES)
                for name in COPIES[shift:] + COPIES[:shift]:
                    times[name].append(copies[name].block(kind, calls))
            ratios = {
                name: {
                    clock: [
                        t[i] / p[i]
                        for t, p in zip(times[name], times["plain"], strict=True)
                    ]
                    for i, clock in enumerate(("wall", "cpu"))
                }
                for name in ("again", "noise")
            }
            ms = {
                name: float(np.median([t[0] for t in times[name]])) / calls * 1e3
                for name in COPIES
            }
            out[kind] = {"ms": ms, "calls": calls, "ratios": ratios}
        return out
    finally:
        for copy in copies.values():
            copy.close()


def estimate_seconds(models, repeats, block_seconds):
    """The plan's estimate of the whole run, in seconds (2 idle cores)."""
    slowest = max(STEP_SECONDS.values())
    total = IMPORT_SECONDS
    for name in models:
        setup, step = STEP_SECONDS.get(name, slowest)
        block = max(block_seconds, 2 * step)
        warm_up = len(COPIES) * 6 * step
        total += len(COPIES) * setup
        total += len(KINDS) * (warm_up + repeats * len(COPIES) * block)
    return total


def spread(values):
    return f"{np.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--block-seconds", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="two models, a check")
    parser.add_argument("--estimate", action="store_true", help="the plan only")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.repeats, args.block_seconds = args.models[:2], 3, 0.05
    seconds = estimate_seconds(args.models, args.repeats, args.block_seconds)
    print(
        f"plan: {len(args.models)} models ({', '.join(args.models)}), batch "
        f"{args.batch_size}, {args.repeats} rounds of {len(COPIES)} blocks of "
        f"~{args.block_seconds} s per kind; ~{seconds / 60:.1f} min on 2 idle cores"
    )
    if args.estimate:
        return None
    began = time.perf_counter()
    warnings.filterwarnings("ignore", "kgrad: the noise scale leaves out")
    print(
        "ratios to `plain`: median [lowest-highest] over the rounds; "
        "`again` is the noise floor"
    )
    header = (
        f"{'model':<18} {'kind':<9} {'calls':>5} {'plain ms':>9} "
        f"{'noise ms':>9} {'noise wall':>17} {'noise cpu':>17} "
        f"{'again wall':>17} {'again cpu':>17}"
    )
    print(header)
    results = {}
    for name in args.models:
        results[name] = measure(name, args.batch_size, args.repeats, args.block_seconds)
        for kind in KINDS:
            cell = results[name][kind]
            ratios = cell["ratios"]
            print(
                f"{name:<18} {kind:<9} {cell['calls']:>5} "
                f"{cell['ms']['plain']:>9.2f} {cell['ms']['noise']:>9.2f} "
                f"{spread(ratios['noise']['wall']):>17} "
                f"{spread(ratios['noise']['cpu']):>17} "
                f"{spread(ratios['again']['wall']):>17} "
                f"{spread(ratios['again']['cpu']):>17}",
                flush=True,
            )
        print(f"{name:<18} setup {results[name]['setup_seconds']:.0f} s")
    for clock in ("wall", "cpu"):
        worst = max(
            (float(np.median(r["logged"]["ratios"]["noise"][clock])), n)
            for n, r in results.items()
        )
        print(
            f"worst logged-step ratio ({clock}, median): {worst[0]:.2f} on "
            f"{worst[1]} (target <= 1.30)"
        )
    print(
        f"took {(time.perf_counter() - began) / 60:.1f} min "
        f"(planned ~{seconds / 60:.1f})"
    )
    return results


if __name__ == "__main__":
    main()
