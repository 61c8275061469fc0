"""What the noise scale costs: logged and unlogged steps, with and without it.

For each zoo model of `overhead.py` (or `--models`), Keras's train function is
traced twice with kgrad's statistics, once by a `GradientCapture` without and
once with `noise_scale=True` (per-example gradient norms,
`kgrad.monitor.step.per_example`), and each is timed as the 20th percentile
of `--calls` calls:

- `unlogged`: a step that is not armed (target: no cost, ratio ~1.00);
- `logged`: an armed step with norms, no histograms (target: ratio <= 1.3).

Run it on an idle machine; the ratios on a loaded one are noise.

Usage:

    python benchmarks/perf/noise_scale.py            # the five models, 30 calls
    python benchmarks/perf/noise_scale.py --quick    # two models, 3 calls (a check)
"""

import argparse
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


def timed(action, calls):
    """20th percentile of the wall time of `calls` calls of `action`, in ms."""
    for _ in range(3):  # warm up
        action()
    times = []
    for _ in range(calls):
        begin = time.perf_counter()
        action()
        times.append(time.perf_counter() - begin)
    return float(np.percentile(times, 20)) * 1e3


def step_times(model_name, noise_scale, batch_size, calls):
    """`{"unlogged": ms, "logged": ms}` of one traced train function."""
    keras.utils.set_random_seed(0)
    model = zoo.build(model_name)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    shape = [50 if d is None else d for d in model.input_shape[1:]]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4 * batch_size, *shape)).astype("float32")
    y = rng.integers(0, model.output_shape[-1], len(x)).astype("int32")
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    iterator = iter(batches.cache().repeat())
    model.fit(batches, epochs=1, verbose=0)
    capture = GradientCapture(model, noise_scale=noise_scale)
    capture.install()
    model.make_train_function(force=True)
    train_function = model.train_function

    def logged():
        capture.arm(histograms=False)
        train_function(iterator)

    try:
        return {
            "unlogged": timed(lambda: train_function(iterator), calls),
            "logged": timed(logged, calls),
        }
    finally:
        capture.uninstall()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    models, calls = args.models, args.calls
    if args.quick:
        models, calls = models[:2], 3
    warnings.filterwarnings("ignore", "kgrad: the noise scale leaves out")
    print(f"batch {args.batch_size}; ms, 20th percentile of {calls} calls")
    print(
        f"{'model':<20} {'unlogged':>9} {'+noise':>9} {'ratio':>6} "
        f"{'logged':>9} {'+noise':>9} {'ratio':>6}"
    )
    worst = 0.0
    for name in models:
        without = step_times(name, False, args.batch_size, calls)
        with_noise = step_times(name, True, args.batch_size, calls)
        unlogged = with_noise["unlogged"] / without["unlogged"]
        logged = with_noise["logged"] / without["logged"]
        worst = max(worst, logged)
        print(
            f"{name:<20} {without['unlogged']:>9.2f} {with_noise['unlogged']:>9.2f} "
            f"{unlogged:>6.2f} {without['logged']:>9.2f} "
            f"{with_noise['logged']:>9.2f} {logged:>6.2f}"
        )
    print(f"worst logged-step ratio: {worst:.2f} (target <= 1.30)")


if __name__ == "__main__":
    main()
