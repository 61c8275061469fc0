"""The results of the lab's runs as text: a table, a header, a markdown file.

`results_table` turns `RunResult`s into a markdown table that also reads well
in a terminal, `header` starts a results file (command, machine, wall time)
and `write_markdown` writes the whole file with one gradient-flow PNG per
experiment, as `kgrad demo` does for `docs/RESULTS.md`.

Example:
    ```python
    from kgrad.lab import demo, results_markdown

    results = demo.run_compare(["mlp_sigmoid", "mlp_relu_he"], quick=True)
    print(results_markdown.results_table(results))
    ```
"""

import math
import os
import time

from kgrad.analysis import report
from kgrad.lab.machine import load_average, machine


def header(command, seconds, table):
    """The top of a results file: the command, the machine, the wall time."""
    return (
        "# kgrad results\n\n"
        f"Produced by `{command}`; nothing here is typed by hand.\n\n"
        f"- Machine: {machine()}\n"
        f"- Wall time of the training: {duration(seconds)} ({cpu_load()})\n"
        "- Ratio `in/out`: gradient norm of the input-side layer over the "
        "output-side layer (`kgrad.analysis.layer_profile`), at the first "
        "(`@1`) and at the last (`@end`) logged step.\n\n"
        f"{table}\n"
    )


def cpu_load():
    """CPU time of this process and the load average, in words."""
    load = load_average()
    return f"CPU time {duration(time.process_time())}, load average {load}"


def duration(seconds):
    """`seconds` as "3 min 5 s" (or "42 s")."""
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


# -- tables and markdown -------------------------------------------------------
COLUMNS = (
    "experiment",
    "run",
    "steps",
    "in/out @1",
    "in/out @end",
    "train loss",
    "test loss",
    "test acc",
    "event",
    "findings",
    "time",
)


def results_table(results):
    """The results as a markdown table, padded to read well in a terminal too.

    Columns: experiment, run, optimizer steps, the input-side/output-side
    gradient-norm ratio at the first and at the last logged step, training loss
    of the last epoch, test loss and accuracy, the target accuracy's first step
    or the step the loss went NaN, the kinds of the findings, and the wall time.

    Args:
        results: `RunResult`s.

    Returns:
        The table as a string, one line per run after the header.
    """
    rows = [COLUMNS] + [_row(result) for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [_line(rows[0], widths)]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [_line(row, widths) for row in rows[1:]]
    return "\n".join(lines)


def _line(cells, widths):
    return (
        "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    )


def _row(result):
    config = result.config
    event = ""
    if result.diverged_at is not None:
        event = f"loss NaN at step {result.diverged_at}"
    elif config.target is not None:
        event = _target_event(result)
    kinds = ", ".join(dict.fromkeys(f.kind for f in result.findings)) or "none"
    accuracy = result.val_accuracy
    return (
        result.experiment,
        config.run_name,
        str(result.steps),
        _ratio(result.first_ratio),
        _ratio(result.last_ratio),
        _number(result.loss),
        _number(result.val_loss),
        "" if accuracy is None else f"{accuracy:.3f}",
        event,
        kinds,
        f"{result.seconds:.0f}s",
    )


def _target_event(result):
    """`90% at step 110`, or for regression `MSE<=0.01 at step 300 (9,600 seq.)`."""
    config, step = result.config, result.steps_to_target
    if result.val_accuracy is not None:
        goal = f"{config.target:.0%}"
        return f"{goal} at step {step}" if step is not None else f"{goal} not reached"
    goal = f"MSE<={config.target:.3g}"
    if step is None:
        return f"{goal} not reached"
    return f"{goal} at step {step} ({step * config.batch_size:,} seq.)"


def _ratio(value):
    return "n/a" if not math.isfinite(value) else f"{value:.1e}"


def _number(value):
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


def write_markdown(path, sections, header=""):
    """Writes the results as markdown, with one gradient-flow PNG per experiment.

    Args:
        path: The markdown file; the PNGs go next to it, named
            `<experiment>.png`.
        sections: `(Experiment, [RunResult])` pairs, in order.
        header: Markdown put first (title, command line, machine). Defaults to
            `""`.

    Returns:
        The paths of the PNG files written.
    """
    from kgrad.analysis import plots

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    parts, pngs = [header.rstrip()] if header else [], []
    for experiment, results in sections:
        runs = {r.config.run_name: report.load_run(r.log_dir) for r in results}
        png = os.path.join(folder, f"{experiment.name}.png")
        figure = plots.compare_figure(runs, title=experiment.title)
        with open(png, "wb") as file:
            file.write(plots.figure_png(figure))
        pngs.append(png)
        parts.append(f"## {experiment.title}\n\n{experiment.claim}")
        parts.append(
            "\n".join(
                f"- `{r.config.run_name}`: {r.config.model} on {r.config.data_name}, "
                f"{r.config.describe()}"
                for r in results
            )
        )
        parts.append(results_table(results))
        parts.append(f"![{experiment.title}]({os.path.basename(png)})")
        findings = [
            f"- `{r.config.run_name}`: {f.message()}"
            for r in results
            for f in r.findings
        ]
        if findings:
            parts.append("Findings:\n\n" + "\n".join(findings))
    with open(path, "w") as file:
        file.write("\n\n".join(parts) + "\n")
    return pngs
