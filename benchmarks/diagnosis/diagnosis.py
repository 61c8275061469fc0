"""The labelled diagnosis benchmark: are kgrad's findings right at any length?

Trains every run of `benchmarks/diagnosis/diagnosis_runs.py` once, to the longest
length, with `GradientMonitor` logging on a fixed schedule (steps 1-8, 16, 32,
then every `EVERY`-th step), reads the event files back with
`kgrad.analysis.report.load_run`, and judges each run at each length on its
logged history truncated at that length: the same scalars a run of that
length with the same schedule would have logged. Writes `docs/DIAGNOSIS.md`.

Usage:

    python benchmarks/diagnosis/diagnosis.py                  # full: docs/DIAGNOSIS.md
    python benchmarks/diagnosis/diagnosis.py --quick --out /tmp/d.md   # CI smoke test
    python benchmarks/diagnosis/diagnosis.py --logs /tmp/dx --reuse    # re-judge only
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]  # this checkout's kgrad

import diagnosis_peer  # noqa: E402
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="4 runs, lengths 8/16/24: checks the machinery only",
    )
    parser.add_argument("--out", default=None, help="Defaults to docs/DIAGNOSIS.md")
    parser.add_argument("--logs", default=None, help="Event files (a temp dir)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Judge the runs already in --logs, train none",
    )
    parser.add_argument("--only", nargs="*", default=None, help="Run names")
    args = parser.parse_args(argv)
    from kgrad.analysis import report

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
    start = time.monotonic()
    rows, trained = [], []
    for run in runs:
        log_dir = os.path.join(logs, run.name)
        began = time.monotonic()
        if not args.reuse:
            train(run, lengths[-1], log_dir)
        scalars, run_info = report.load_run(log_dir)
        verdicts = {n: judge(scalars, run_info, n) for n in lengths}
        with open(os.path.join(log_dir, PEER_FILE)) as f:
            peer = json.load(f)
        trained.append((peer.get("train_seconds"), peer.get("load_average")))
        peer = {
            n: diagnosis_peer.judge(peer["epochs"], peer["steps_per_epoch"], n)
            for n in lengths
        }
        rows.append(diagnosis_table.Row(run, verdicts, scalars, run_info, peer))
        print(
            f"{run.name:<28} {time.monotonic() - began:6.1f} s  "
            + "  ".join(f"{n}: {sorted(k) or '-'}" for n, (k, _) in verdicts.items())
            + f"  peer: {sorted(peer[lengths[-1]]) or '-'}",
            flush=True,
        )
    seconds = time.monotonic() - start
    command = "python benchmarks/diagnosis/diagnosis.py" + (
        " --quick" if args.quick else ""
    )
    if args.reuse:
        command += " --reuse"
    text = diagnosis_table.markdown(rows, lengths, seconds, command, trained)
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "DIAGNOSIS.md"
    )
    with open(out, "w") as f:
        f.write(text)
    print(f"wrote {out} in {seconds:.0f} s")
    return rows


if __name__ == "__main__":
    main()
