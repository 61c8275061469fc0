"""Where the time of one logged step goes: a profile of GradientMonitor's work.

For `mlp_relu_he` (or `--model`) at each `--depths`, times the pieces that a
logged step adds to a plain training step, each as the 20th percentile of
`--calls` calls (robust to the noise of a shared machine):

- `plain step`: one call of Keras's train function (with kgrad's statistics
  traced in), not armed;
- `logged step`: arming and one call of the same function, with norms (and
  `+ histograms`);
- `host read`: `GradientCapture.read`, the one device-to-host transfer of the
  statistics, unpacked;
- `arm`: the arming alone (part of `logged step`);
- `encode+write`: building and writing the step's summaries (in training,
  inline when the writer is idle, else on its thread).

With `--ops N`, the logged steps are also run under TensorFlow's profiler and
the N ops of kgrad (those under the `kgrad` name scope) with the most self
time are listed, with the total of kgrad's ops against the model's own.
Profiler times are inflated by the profiler itself; compare them with each
other, not with the timings above.

With `--in-fit N`, the same model also runs `N` steps of `model.fit` plain and
with norms on every step (configuration (b) of `overhead.py`), and each step is
split into the time in the train function and the time in GradientMonitor's
callback (reading, writing and arming), medians over the steps. Inside `fit`
a logged step costs more than the isolated figures add up to: that is what
this part measures.

Usage:

    python benchmarks/perf/logged_step.py                    # depths 10 20 50 100
    python benchmarks/perf/logged_step.py --model cnn_bn --depths 0
    python benchmarks/perf/logged_step.py --depths 20 --ops 15 --in-fit 500
"""

import argparse
import collections
import glob
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kgrad import GradientMonitor, zoo  # noqa: E402
from kgrad.monitor.log import event_writer, summaries  # noqa: E402
from kgrad.monitor.step.host import GradientCapture  # noqa: E402
from kgrad.monitor.step.temporal import layer_name  # noqa: E402

PIECES = (
    "plain step",
    "logged step",
    "logged step + histograms",
    "host read",
    "arm",
    "encode+write",
)


IN_FIT = ("plain train function", "logged train function", "callback")


def timed(action, calls):
    """20th percentile of the wall time of `calls` calls of `action`, in ms."""
    times = []
    for i in range(calls + 10):
        begin = time.perf_counter()
        action()
        if i >= 10:  # the first calls warm caches up
            times.append(time.perf_counter() - begin)
    return float(np.percentile(times, 20)) * 1e3


def compiled_model(model_name, depth, batch_size):
    """The zoo model, compiled with Adam, and 4 batches of random data."""
    keras.utils.set_random_seed(0)
    model = zoo.build(model_name, **({"depth": depth} if depth else {}))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    shape = [50 if d is None else d for d in model.input_shape[1:]]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4 * batch_size, *shape)).astype("float32")
    y = rng.integers(0, model.output_shape[-1], len(x)).astype("int32")
    return model, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def profile(model_name, depth, batch_size, calls, ops=False):
    """Returns a dict of milliseconds for one model."""
    model, batches = compiled_model(model_name, depth, batch_size)
    iterator = iter(batches.cache().repeat())
    model.fit(batches, epochs=1, verbose=0)
    capture = GradientCapture(model)
    capture.install()
    model.make_train_function(force=True)  # traced again, with the statistics
    train_function = model.train_function  # Keras's own

    def logged(histograms):
        capture.arm(histograms=histograms)
        train_function(iterator)

    out = {
        "variables": len(model.trainable_variables),
        "plain step": timed(lambda: train_function(iterator), calls),
        "logged step": timed(lambda: logged(False), calls),
        "logged step + histograms": timed(lambda: logged(True), calls),
        "arm": timed(lambda: capture.arm(histograms=False), calls),
    }
    logged(False)
    ((_, record, captured),) = capture.read()  # one channel: the model's optimizer
    out["host read"] = timed(capture.read, calls)
    kinds = [kind for _, kind in record.probes]
    layers = list(zip(record.layer_names, kinds, strict=True))
    recurrent = [layer_name(layer) for layer in record.recurrent]
    with tempfile.TemporaryDirectory() as log_dir:
        writer = event_writer.RunWriter(log_dir)

        def write():
            scalars = summaries.step_scalars(
                captured, record.paths, layers, recurrent=recurrent
            )
            writer.write(1, [], scalars)
            writer.flush()

        out["encode+write"] = timed(write, calls)
        writer.close()
    if ops:
        out["ops"] = op_profile(lambda: logged(False), calls)
    capture.uninstall()
    return out


class _StepClock(keras.callbacks.Callback):
    """Times each batch from its `on_train_batch_begin` to its end."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._begin)


def in_fit(model_name, depth, batch_size, steps):
    """Medians in ms of a step inside `model.fit`, plain and with norms each step.

    Returns `{"plain train function", "logged train function", "callback"}`;
    the clock runs after GradientMonitor's `on_train_batch_begin`, so the train
    function's time does not include the callback's.
    """
    model, batches = compiled_model(model_name, depth, batch_size)
    batches = batches.cache().repeat()
    callback_times = []
    with tempfile.TemporaryDirectory() as log_dir:
        monitor = GradientMonitor(
            log_dir, norms_every=1, histograms_every=0, first_steps=0
        )
        begin = monitor.on_train_batch_begin

        def timed_begin(batch, logs=None):
            start = time.perf_counter()
            begin(batch, logs)
            callback_times.append(time.perf_counter() - start)

        monitor.on_train_batch_begin = timed_begin
        out = {}
        for label, callbacks in (("plain", []), ("logged", [monitor])):
            clock = _StepClock()
            for _ in range(2):  # the first fit traces
                clock.times.clear()
                callback_times.clear()
                model.fit(
                    batches,
                    epochs=1,
                    steps_per_epoch=steps,
                    callbacks=[*callbacks, clock],
                    verbose=0,
                )
            out[f"{label} train function"] = float(np.median(clock.times)) * 1e3
        out["callback"] = float(np.median(callback_times)) * 1e3
    return out


def op_profile(action, calls):
    """Self time per op of `calls` calls of `action`, from TensorFlow's profiler.

    Returns `{(op type, op name): (microseconds per call, occurrences per
    call)}`. Reads the profile with TensorFlow's own converter (the one the
    TensorBoard profile plugin uses).
    """
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        for _ in range(calls):
            action()
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{log_dir}/**/*.xplane.pb", recursive=True)
        data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(
            [path], "framework_op_stats", {}
        )
    if not ok:
        raise RuntimeError(f"the profile could not be read: {data[:200]!r}")
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    stats = collections.defaultdict(lambda: [0.0, 0.0])
    for row in table["rows"]:
        values = [c["v"] if c else None for c in row["c"]]
        cells = dict(zip(columns, values, strict=True))
        if cells["type"] == "IDLE":
            continue
        entry = stats[(cells["type"], cells["operation"])]
        entry[0] += cells["total_self_time"] / calls
        entry[1] += cells["occurrences"] / calls
    return {key: tuple(value) for key, value in stats.items()}


def print_ops(ops, top):
    """Prints kgrad's share of the profiled step and its `top` costliest ops."""
    ours = {k: v for k, v in ops.items() if "kgrad" in k[1]}
    theirs = {k: v for k, v in ops.items() if "kgrad" not in k[1]}
    for label, part in (("kgrad's ops", ours), ("the model's ops", theirs)):
        time_us = sum(t for t, _ in part.values())
        count = sum(n for _, n in part.values())
        print(f"{label}: {time_us / 1e3:.2f} ms in {count:.0f} ops per step")
    print(f"| us/step | ops/step | type | kgrad op (top {top}) |")
    print("|---|---|---|---|")
    ranked = sorted(ours.items(), key=lambda item: -item[1][0])[:top]
    for (op_type, name), (time_us, count) in ranked:
        print(f"| {time_us:.0f} | {count:.0f} | {op_type} | `{name}` |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mlp_relu_he")
    parser.add_argument("--depths", nargs="+", type=int, default=[10, 20, 50, 100])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--ops", type=int, default=0, help="list the top N ops")
    parser.add_argument(
        "--in-fit", type=int, default=0, help="also time N steps inside model.fit"
    )
    args = parser.parse_args(argv)
    keys = PIECES
    print(
        f"{args.model}, batch {args.batch_size}; ms, 20th percentile of "
        f"{args.calls} calls"
    )
    print("| depth | variables | " + " | ".join(keys) + " | added by a norm step |")
    print("|---" * (len(keys) + 3) + "|")
    profiles = {}
    for depth in args.depths:
        r = profile(args.model, depth, args.batch_size, args.calls, ops=args.ops > 0)
        added = r["logged step"] - r["plain step"] + r["host read"]
        added += r["encode+write"]
        cells = " | ".join(f"{r[k]:.2f}" for k in keys)
        print(
            f"| {depth or '-'} | {r['variables']} | {cells} | {added:.2f} |", flush=True
        )
        profiles[depth] = r.get("ops")
    if args.in_fit:
        print(f"\nInside model.fit, ms, median of {args.in_fit} steps")
        print("| depth | " + " | ".join(IN_FIT) + " |")
        print("|---" * (len(IN_FIT) + 1) + "|")
        for depth in args.depths:
            r = in_fit(args.model, depth, args.batch_size, args.in_fit)
            cells = " | ".join(f"{r[k]:.2f}" for k in IN_FIT)
            print(f"| {depth or '-'} | {cells} |", flush=True)
    for depth, ops in profiles.items():
        if ops is not None:
            print(f"\nTensorFlow profiler, logged step with norms, depth {depth}")
            print_ops(ops, args.ops)


if __name__ == "__main__":
    main()
