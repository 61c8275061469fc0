"""The `kgrad` command.

Each subcommand is one `_<name>(args) -> int` function plus one `add_parser`
block in `build_parser`. Commands import TensorFlow only if they need it:
`kgrad report` reads event files and imports none.

Errors print one line to stderr and return exit code 2.

Example:

```bash
kgrad report runs/sigmoid runs/relu --png flow.png
python -m kgrad report runs/sigmoid
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
            "output and the diagnosis (vanishing, exploding, non-finite, dead "
            "units, saturation, BatchNorm with small batches)."
        ),
    )
    report.add_argument(
        "logdirs", nargs="+", metavar="LOGDIR", help="GradientMonitor's log_dir"
    )
    report.add_argument(
        "--png", metavar="FILE", help="also write the gradient-flow figure as PNG"
    )
    report.set_defaults(handler=_report)

    return parser


def _report(args):
    from kgrad import report

    runs = {}
    for name, logdir in zip(_run_names(args.logdirs), args.logdirs, strict=True):
        runs[name] = report.load_run(logdir)
    print(report.format_report(runs), end="")
    if args.png:
        from kgrad import plots

        if len(runs) == 1:
            ((scalars, run_info),) = runs.values()
            fig = plots.gradient_flow_figure(scalars, run_info)
        else:
            fig = plots.compare_figure(runs)
        with open(args.png, "wb") as file:
            file.write(plots.figure_png(fig))
        print(f"Wrote {args.png}")
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
        The exit code: 0 on success, 2 on an error (one line on stderr).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except (ValueError, OSError) as error:
        print(f"kgrad: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kgrad: interrupted", file=sys.stderr)
        return 130
