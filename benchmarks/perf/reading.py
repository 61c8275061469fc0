"""How long `kgrad report` takes to read long runs back: the `reading` section.

Writes synthetic runs with kgrad's own `RunWriter` (the bytes a monitor
writes: one event per step, the scalars through `ScalarEncoder`, a
`tags.RUN_INFO` at step 1), then times `kgrad.analysis.report.load_run`
and the whole `kgrad report` command (`--json` too) in fresh processes, and
writes the figures into the `reading` section of `benchmarks/perf/RESULTS.md`
(the other sections keep their text; see `results_file.py`).

Usage:

    python benchmarks/perf/reading.py                  # 20,000 steps x 24 and x 200
    python benchmarks/perf/reading.py --steps 2000 --no-write   # a quick check

Figures taken on a busy machine are not final: measure on an idle one.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from results_file import table, write_sections  # noqa: E402

from kgrad.tags import GLOBAL_GRAD_NORM, GRAD_NORM, tag  # noqa: E402

TARGETS = {24: 2.0, 200: 10.0}  # tags per step -> seconds (issue 22)


def write_run(log_dir, steps, tags):
    """A run of `steps` steps with `tags` scalars each, written as kgrad does."""
    from kgrad.monitor.log import event_writer, summaries

    paths = [f"model/dense_{i:03d}/kernel" for i in range(tags - 1)]
    names = [GLOBAL_GRAD_NORM] + [tag(GRAD_NORM, p) for p in paths]
    writer = event_writer.RunWriter(os.path.join(log_dir, "train"))
    info = {"model": "model", "variables": paths}
    writer.write(1, [summaries.run_info_value(info)])
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=(steps, tags))
    for step in range(1, steps + 1):
        writer.write(step, [], list(zip(names, values[step - 1].tolist(), strict=True)))
    writer.close()
    return values


def _timed(code):
    """Wall seconds and peak RSS (MiB) of `code` in a fresh interpreter.

    The peak is the child's `VmHWM`: `ru_maxrss` would report this process's
    peak, inherited across `fork`.
    """
    script = (
        "import sys, time\n"
        f"{code[0]}\n"
        "start = time.perf_counter()\n"
        f"{code[1]}\n"
        "seconds = time.perf_counter() - start\n"
        "status = open('/proc/self/status').read()\n"
        "rss = int(status.split('VmHWM:')[1].split()[0]) / 1024\n"
        "print(seconds, rss, file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    seconds, rss = out.stderr.strip().splitlines()[-1].split()
    return float(seconds), float(rss)


def measure(steps, tags, repeats):
    """Times reading one synthetic run; checks every value read back."""
    with tempfile.TemporaryDirectory() as root:
        values = write_run(root, steps, tags)
        size = sum(
            os.path.getsize(os.path.join(d, f))
            for d, _, files in os.walk(root)
            for f in files
        )
        from kgrad.analysis import report

        scalars, _ = report.load_run(root)
        read = np.array([v for _, v in scalars[GLOBAL_GRAD_NORM]])
        np.testing.assert_allclose(read, values[:, 0].astype(np.float32))
        assert len(scalars) == tags
        load = ("from kgrad.analysis import report", f"report.load_run({root!r})")
        quiet = "with contextlib.redirect_stdout(io.StringIO()): "
        text = (
            "from kgrad.cli import main; import io, contextlib",
            quiet + f"main(['report', {root!r}])",
        )
        as_json = (
            text[0],
            text[1].replace("])", ", '--json'])"),
        )
        rows = {}
        for name, code in (("load_run", load), ("report", text), ("--json", as_json)):
            runs = [_timed(code) for _ in range(repeats)]
            rows[name] = (min(s for s, _ in runs), max(r for _, r in runs))
    return {"steps": steps, "tags": tags, "mb": size / 2**20, "rows": rows}


def render(results, command, load):
    lines = [
        "## Reading long runs back",
        "",
        f"Measured by `{command}` on {os.cpu_count()} cores (load average "
        f"{load:.1f} at the start: above 0.5 the figures are not final): "
        "synthetic runs written with kgrad's own `RunWriter` (one event per "
        "step), read in a "
        "fresh interpreter (imports not timed), best of the repeats. Every "
        "value read back is checked against what was written.",
        "",
    ]
    rows = []
    for r in results:
        target = TARGETS.get(r["tags"])
        worst = max(s for s, _ in r["rows"].values())
        verdict = (
            "n/a"
            if target is None
            else f"< {target:g} s: " + ("met" if worst < target else "NOT met")
        )
        rss = max(m for _, m in r["rows"].values())
        times = [r["rows"][name][0] for name in ("load_run", "report", "--json")]
        rows.append(
            [f"{r['steps']:,} x {r['tags']}", f"{r['mb']:.1f}"]
            + [f"{t:.2f}" for t in times]
            + [f"{rss:.0f}", verdict]
        )
    header = ["steps x tags", "file MB", "`load_run` s", "`kgrad report` s"]
    header += ["`kgrad report --json` s", "peak RSS MiB", "target"]
    return "\n".join(lines + table(header, rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--tags", type=int, nargs="+", default=[24, 200])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = [measure(args.steps, tags, args.repeats) for tags in args.tags]
    command = "python benchmarks/perf/reading.py " + " ".join(sys.argv[1:])
    section = render(results, command.strip(), load)
    print(section)
    print(json.dumps(results), file=sys.stderr)
    if not args.no_write:
        write_sections(os.path.join(HERE, "RESULTS.md"), {"reading": section})
    return 0


if __name__ == "__main__":
    sys.exit(main())
