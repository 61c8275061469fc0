"""The labelled diagnosis benchmark: are kgrad's findings right at any length?

Trains every run of `benchmarks/diagnosis/diagnosis_runs.py` once, to the longest
length, with `GradientMonitor` logging on a fixed schedule (steps 1-8, 16, 32,
then every `EVERY`-th step), reads the event files back with
`kgrad.analysis.report.load_run`, and judges each run at each length on its
logged history truncated at that length: the same scalars a run of that
length with the same schedule would have logged. Writes `docs/DIAGNOSIS.md`.

The runs are trained and judged in `--workers` processes (2: the two cores
the target names), each with one TensorFlow thread, longest run first; the
plan and its estimated time are printed at the start, the real time at the
end (`diagnosis_plan.py`).

Usage:

    python benchmarks/diagnosis/diagnosis.py                  # full: docs/DIAGNOSIS.md
    python benchmarks/diagnosis/diagnosis.py --quick --out /tmp/d.md   # CI smoke test
    python benchmarks/diagnosis/diagnosis.py --logs /tmp/dx --reuse  # train missing
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys
import tempfile
import time
import warnings

STARTED = time.monotonic()  # before Keras is imported: the real time counts it

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]  # this checkout's kgrad

import diagnosis_peer  # noqa: E402
import diagnosis_plan  # noqa: E402
import diagnosis_table  # noqa: E402
from diagnosis_runs import RUNS  # noqa: E402

LENGTHS = (50, 300, 1000)
QUICK_LENGTHS = (8, 16, 24)
EVERY = 25
PEER_FILE = "peer.json"  # what the peer's criteria read, per epoch
FLICKER_STEPS = 3  # a finding that clears and is back within this many logged steps


def train(run, steps, log_dir):
    """Trains `run` for exactly `steps` steps, logging to `log_dir`; writes
    what the peer's criteria read, the training time and the load beside."""
    import keras

    from kgrad import GradientMonitor

    class StopAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.seen = getattr(self, "seen", 0) + 1
            if self.seen >= steps:
                self.model.stop_training = True

    began = time.monotonic()
    model, x, y, batch = run.build()
    per_epoch = max(1, int(len(x) * (1 - run.validation)) // batch)
    probe = diagnosis_peer.PeerProbe(x[:batch], y[:batch])
    monitor = GradientMonitor(
        log_dir,
        norms_every=EVERY,
        histograms_every=None,
        first_steps=50,
        figure_secs=None,
        verbose=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's warnings about NaN runs
        model.fit(
            x,
            y,
            batch_size=batch,
            epochs=-(-steps // per_epoch),
            steps_per_epoch=per_epoch,
            validation_split=run.validation,
            callbacks=[monitor, StopAt(), probe],
            verbose=0,
        )
    with open(os.path.join(log_dir, PEER_FILE), "w") as f:
        record = {"steps_per_epoch": per_epoch, "epochs": probe.epochs}
        record["train_seconds"] = time.monotonic() - began
        record["load_average"] = os.getloadavg()[0]
        json.dump(record, f)
    keras.backend.clear_session()


def truncate(scalars, length):
    """The scalars logged at steps `<= length`."""
    out = {
        tag: [(s, v) for s, v in values if s <= length]
        for tag, values in scalars.items()
    }
    return {tag: values for tag, values in out.items() if values}


def judge(scalars, run_info, length):
    """`(kinds found at length, flickers)`: the verdict and its instability.

    A flicker is a kind that is found at a logged step, absent at the next
    and found again within `FLICKER_STEPS` logged steps.
    """
    from kgrad.analysis import diagnostics, layer_profile

    cut = truncate(scalars, length)
    kinds = {f.kind for f in diagnostics.diagnose(cut, run_info)}
    steps = layer_profile.norm_steps(cut)
    seen = [
        {f.kind for f in diagnostics.diagnose(truncate(cut, s), run_info)}
        for s in steps
    ]
    flickers = 0
    for i in range(1, len(seen) - 1):
        for kind in seen[i - 1] - seen[i]:
            if any(kind in later for later in seen[i + 1 : i + 1 + FLICKER_STEPS]):
                flickers += 1
    return kinds, flickers


def _one_thread():
    """A worker's TensorFlow uses one thread: two workers share two cores."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def train_and_judge(name, lengths, log_dir, reuse):
    """Trains run `name` (unless `reuse` finds its logs) and judges it at each
    length: `(verdicts, peer verdicts, scalars, run_info, (train seconds,
    load), CPU seconds of this call)`: CPU time, which another process's load
    does not stretch, is what the plan estimates from."""
    from kgrad.analysis import report

    began = time.process_time()
    run = next(r for r in RUNS if r.name == name)
    if not (reuse and os.path.exists(os.path.join(log_dir, PEER_FILE))):
        train(run, lengths[-1], log_dir)
    scalars, run_info = report.load_run(log_dir)
    verdicts = {n: judge(scalars, run_info, n) for n in lengths}
    with open(os.path.join(log_dir, PEER_FILE)) as f:
        record = json.load(f)
    peer = {
        n: diagnosis_peer.judge(record["epochs"], record["steps_per_epoch"], n)
        for n in lengths
    }
    trained = (record.get("train_seconds"), record.get("load_average"))
    return verdicts, peer, scalars, run_info, trained, time.process_time() - began


def _results(names, lengths, logs, reuse, workers):
    """Yields `(name, result of train_and_judge)` as the runs finish."""
    jobs = [(n, lengths, os.path.join(logs, n), reuse) for n in names]
    if workers <= 1:
        for job in jobs:
            yield job[0], train_and_judge(*job)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_one_thread
    ) as pool:
        futures = {pool.submit(train_and_judge, *job): job[0] for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()


def main(argv=None, started=None):
    """Runs the benchmark; `started` (default: now) is when the real time
    printed at the end began."""
    started = started or time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="4 runs, lengths 8/16/24, in this process: checks the machinery only",
    )
    parser.add_argument("--out", default=None, help="Defaults to docs/DIAGNOSIS.md")
    parser.add_argument("--logs", default=None, help="Event files (a temp dir)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Judge the runs already in --logs; train only those missing",
    )
    parser.add_argument("--only", nargs="*", default=None, help="Run names")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Processes that train, one TensorFlow thread each (default 2). 1: "
        "in this process with TensorFlow's default threads (the default with "
        "--quick), which rounds floats in another order",
    )
    args = parser.parse_args(argv)
    workers = args.workers or (1 if args.quick else 2)
    if workers < 1:
        parser.error(f"--workers must be 1 or more. Received: --workers {workers}")
    lengths = QUICK_LENGTHS if args.quick else LENGTHS
    runs = RUNS
    if args.quick:
        runs = [r for r in RUNS if r.name in diagnosis_table.QUICK_RUNS]
    if args.only:
        unknown = sorted(set(args.only) - {r.name for r in RUNS})
        if unknown:
            parser.error(f"unknown run names: {unknown}. Received: --only {args.only}")
        runs = [r for r in runs if r.name in args.only]
    logs = args.logs or tempfile.mkdtemp(prefix="kgrad-diagnosis-")
    to_train = [
        r.name
        for r in runs
        if not (args.reuse and os.path.exists(os.path.join(logs, r.name, PEER_FILE)))
    ]
    order, _ = diagnosis_plan.plan([r.name for r in runs], lengths[-1], workers)
    _, train_minutes = diagnosis_plan.plan(to_train, lengths[-1], workers)
    print(
        f"plan: {len(runs)} runs, {len(to_train)} to train to {lengths[-1]} steps "
        f"in {workers} worker process(es), longest first; estimated "
        f"{_duration(train_minutes)} (recorded run times, "
        f"{diagnosis_plan.SECONDS_FILE})",
        flush=True,
    )
    start = time.monotonic()
    by_name, trained, took = {}, {}, {}
    for name, result in _results(order, lengths, logs, args.reuse, workers):
        verdicts, peer, scalars, run_info, trained[name], took[name] = result
        run = next(r for r in runs if r.name == name)
        by_name[name] = diagnosis_table.Row(run, verdicts, scalars, run_info, peer)
        print(
            f"{name:<28} {took[name]:6.1f} s CPU  "
            + "  ".join(f"{n}: {sorted(k) or '-'}" for n, (k, _) in verdicts.items())
            + f"  peer: {sorted(peer[lengths[-1]]) or '-'}",
            flush=True,
        )
    seconds = time.monotonic() - start
    rows = [by_name[r.name] for r in runs]  # the table's order
    command = "python benchmarks/diagnosis/diagnosis.py" + (
        " --quick" if args.quick else ""
    )
    if args.reuse:
        command += " --reuse"
    times = [trained[r.name] for r in runs]
    text = diagnosis_table.markdown(rows, lengths, seconds, command, times, workers)
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "DIAGNOSIS.md"
    )
    with open(out, "w") as f:
        f.write(text)
    if not args.quick and not args.only and len(to_train) == len(runs):
        diagnosis_plan.record(took, workers, os.getloadavg()[0])
    print(
        f"wrote {out}: {_duration((time.monotonic() - started) / 60)} wall since "
        f"the start ({len(to_train)} runs trained in {workers} worker(s); plan "
        f"estimated {_duration(train_minutes)})",
        flush=True,
    )
    return rows


def _duration(minutes):
    return f"{minutes:.1f} min" if minutes >= 2 else f"{minutes * 60:.0f} s"


if __name__ == "__main__":
    main(started=STARTED)
