"""The `kgrad` command.

Each subcommand is one `_<name>(args) -> int` function plus one `add_parser`
block in `build_parser`. Commands import TensorFlow only if they need it:
`kgrad report` reads event files and imports none.

Exit codes: 0 success; 1 `kgrad report --fail-on LEVEL` found a finding at or
above LEVEL; 2 a usage error or an unreadable run (one line on stderr); 130
interrupted.

Example:

```bash
kgrad report logs/sigmoid logs/relu --png flow.png
kgrad report logs/exp1 --json --fail-on warning   # CI gate
```
"""

import argparse
import os
import sys


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _version():
    from importlib import metadata

    try:
        return metadata.version("kgrad")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser():
    """The argument parser with all subcommands."""
    parser = _Parser(
        prog="kgrad", description="See the gradients of your Keras 3 models."
    )
    parser.add_argument("--version", action="version", version=f"kgrad {_version()}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )

    report = commands.add_parser(
        "report",
        help="diagnose finished runs from their event files (no training)",
        description=(
            "Print, for each run, the gradient norm of every layer from input to "
            "output, the gradient reaching each timestep of recurrent layers, "
            "and the diagnosis (vanishing in depth and through time, exploding, "
            "non-finite, dead units, saturation, BatchNorm with small batches)."
        ),
        epilog=(
            "exit codes: 0 no finding at or above the --fail-on level (or no "
            "--fail-on); 1 a finding at or above it; 2 usage error or a run "
            "that cannot be read; 130 interrupted"
        ),
    )
    report.add_argument(
        "logdirs", nargs="+", metavar="LOGDIR", help="GradientMonitor's log_dir"
    )
    report.add_argument(
        "--png", metavar="FILE", help="also write the gradient-flow figure as PNG"
    )
    report.add_argument(
        "--json",
        action="store_true",
        help="print the layers and findings as JSON instead of the table",
    )
    report.add_argument(
        "--fail-on",
        choices=("warning", "error"),
        help="exit with code 1 when a finding of this severity or worse is found",
    )
    report.set_defaults(handler=_report)

    demo = commands.add_parser(
        "demo",
        help="rerun the classic gradient experiments (offline, about 5 minutes)",
        description=(
            "Train the contrasting pairs of docs/CLAIMS.md (sigmoid vs ReLU, ResNet "
            "with and without skips, BatchNorm, RNN vs LSTM vs GRU, clipping, "
            "LayerNorm placement) on embedded data with GradientMonitor; print "
            "a results table, save it as markdown with gradient-flow plots."
        ),
    )
    _run_options(demo, "LOGDIR/RESULTS.md")
    demo.add_argument(
        "--full",
        action="store_true",
        help="longer sequences (T up to 200) and deeper pairs (about 40 minutes)",
    )
    demo.set_defaults(handler=_demo)

    compare = commands.add_parser(
        "compare",
        help="train zoo models the same way and compare their gradients",
        description="Train zoo models like `kgrad demo` does, and compare them.",
    )
    compare.add_argument("models", nargs="+", metavar="MODEL", help="zoo model")
    _run_options(compare, "LOGDIR/compare/RESULTS.md", training=True)
    compare.set_defaults(handler=_compare)

    train = commands.add_parser(
        "train",
        help="train one zoo model with GradientMonitor",
        description="Train one zoo model like `kgrad demo` does.",
    )
    train.add_argument("models", nargs=1, metavar="MODEL", help="zoo model")
    _run_options(train, "LOGDIR/train/RESULTS.md", training=True)
    train.set_defaults(handler=_compare, experiment="train")

    return parser


def _report(args):
    from kgrad.analysis import report, report_json

    runs = {}
    for name, logdir in zip(_run_names(args.logdirs), args.logdirs, strict=True):
        # Every run below LOGDIR, as TensorBoard finds them: one per optimizer
        # of a GAN, one per log_dir of a parent folder.
        found = report.find_runs(logdir) if os.path.isdir(logdir) else []
        for run_dir in found or [logdir]:
            below = report.run_name(logdir, run_dir) if found else "."
            label = name if below == "." else f"{name}/{below}"
            runs[label] = report.load_run(run_dir)
            _warn_about_gaps(label, runs[label][1])
    findings = report_json.diagnose_runs(runs)
    if args.json:
        print(report_json.runs_json(runs, findings))
    else:
        print(report.format_report(runs, findings=findings), end="")
    if args.png:
        from kgrad.analysis import atomic, plots

        if len(runs) == 1:
            ((scalars, run_info),) = runs.values()
            fig = plots.gradient_flow_figure(scalars, run_info)
        else:
            fig = plots.compare_figure(runs)
        atomic.write_bytes(args.png, plots.figure_png(fig))
        print(f"Wrote {args.png}", file=sys.stderr if args.json else sys.stdout)
    if args.fail_on and report_json.at_or_above(findings, args.fail_on):
        return 1
    return 0


def _warn_about_gaps(label, run_info):
    """Says on stderr which files were damaged and which steps are missing."""
    from kgrad.analysis import report

    for damage in run_info.get("damaged_files", []):
        print(f"kgrad: warning: {report.damage_note(damage)}.", file=sys.stderr)
    if run_info.get("missing_steps"):
        note = report.missing_note(run_info["missing_steps"])
        print(f"kgrad: warning: {label}: {note}.", file=sys.stderr)


def _run_options(parser, out, training=False):
    """Options of the commands that train: demo, compare, train."""
    if training:
        parser.add_argument("--data", metavar="NAME", help="kgrad.data set")
        length = parser.add_mutually_exclusive_group()
        length.add_argument("--epochs", type=int, metavar="N", help="default 5")
        length.add_argument("--steps", type=int, metavar="N", help="optimizer steps")
        parser.add_argument("--batch-size", type=int, metavar="N", help="default 32")
        parser.add_argument("--optimizer", choices=("adam", "sgd"))
        parser.add_argument("--learning-rate", type=float, metavar="LR")
        parser.add_argument("--clipnorm", type=float, metavar="NORM")
    parser.add_argument("--logdir", default="logs", help="default logs")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for tests")
    parser.add_argument("--out", metavar="FILE", help=f"markdown; default {out}")


def _demo(args):
    from kgrad.lab import demo

    demo.run_demo(
        logdir=args.logdir,
        out=args.out,
        seed=args.seed,
        quick=args.quick,
        full=args.full,
    )
    return 0


def _compare(args):
    from kgrad.lab import demo

    settings = ("data", "epochs", "steps", "batch_size", "optimizer")
    settings += ("learning_rate", "clipnorm")
    demo.run_compare(
        args.models,
        logdir=args.logdir,
        out=args.out,
        seed=args.seed,
        quick=args.quick,
        experiment=getattr(args, "experiment", "compare"),
        **{key: getattr(args, key) for key in settings},
    )
    return 0


def _run_names(logdirs):
    """Names of runs: the paths, relative to their common parent if several."""
    paths = [os.path.normpath(os.path.abspath(d)) for d in logdirs]
    if len(paths) > 1 and len(set(paths)) == len(paths):
        common = os.path.commonpath(paths)
        names = [os.path.relpath(p, common) for p in paths]
        if "." not in names:
            return names
    names = [os.path.normpath(d) for d in logdirs]
    return [n if n not in names[:i] else f"{n} ({i + 1})" for i, n in enumerate(names)]


def main(argv=None):
    """Runs the `kgrad` command.

    Args:
        argv: Arguments without the program name; `sys.argv[1:]` if `None`.
            Defaults to `None`.

    Returns:
        The exit code: 0 on success, 1 when `report --fail-on` found a
        finding, 2 on an error (one line on stderr), 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's start
    try:
        return args.handler(args)
    except (TypeError, ValueError, OSError) as error:
        print(f"kgrad: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kgrad: interrupted", file=sys.stderr)
        return 130
