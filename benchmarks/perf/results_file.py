"""The layout of `benchmarks/perf/RESULTS.md`: its sections, tables and ratio cells.

Every table of the perf benchmarks is rendered here (`table`).

The file holds the six sections of `overhead.py` (`SECTIONS` and, measured
with `jit_compile=True`, `JIT_SECTIONS`) and the `reading` section of
`reading.py`, each between two marker comments, so that one section can be
measured again while the others keep their last text:

    <!-- section steady -->
    ## Steady state
    ...
    <!-- end steady -->

Text outside the markers (notes written by hand) is kept as it is.

A ratio cell reads `median (lowest-highest)` of the paired ratios behind it;
a CPU-and-wall cell reads `CPU cell / wall cell`.

Example:

    write_sections("benchmarks/perf/RESULTS.md", {"memory": "## Peak memory\\n..."})
    read_section(open("benchmarks/perf/RESULTS.md").read(), "memory")  # "## Peak ..."
    spread([1.02, 0.98, 1.10])  # "1.02x (0.98-1.10)"
    table(["model", "ratio"], [["mlp", "1.02x"]])  # ["| model | ratio |", ...]
"""

import os
import re
import statistics

SECTIONS = ("steady", "fresh", "memory")  # written by overhead.py
JIT_SECTIONS = tuple(f"{name}_jit" for name in SECTIONS)  # the same with XLA
JAX_SECTION = "jax"  # written by overhead.py through jax_fresh_fit.py (Keras on JAX)
ALL_SECTIONS = SECTIONS + JIT_SECTIONS + (JAX_SECTION, "reading")  # reading.py: last
TITLE = "# GradientMonitor overhead"
INTRO = (
    "Written by `python benchmarks/perf/overhead.py --all` (all seven sections, "
    "about 30 min on 2 idle cores): one section per scenario, each between "
    "`<!-- section NAME -->` and `<!-- end NAME -->`; the `_jit` sections measure "
    "the same with every model compiled with `jit_compile=True`, the `jax` section "
    "fresh fits on Keras's JAX backend. `--sections` chooses the sections that run "
    "(without `--all`: steady fresh memory jax); the "
    "others keep their last text, and so does text outside the markers."
)


def begin_marker(name):
    return f"<!-- section {name} -->"


def end_marker(name):
    return f"<!-- end {name} -->"


def _pattern(name):
    return re.compile(
        re.escape(begin_marker(name)) + r"\n(.*?)\n" + re.escape(end_marker(name)),
        re.S,
    )


def read_section(text, name):
    """The markdown of section `name` in `text`, or `None` if it has none."""
    match = _pattern(name).search(text)
    return match.group(1) if match else None


def write_sections(path, sections):
    """Replaces the sections of `path` named in `sections`; returns the file's text.

    Args:
        path: The results file; created with a title if it does not exist.
        sections: Section name (one of `ALL_SECTIONS`) -> its markdown.

    Returns:
        The whole text written.
    """
    unknown = set(sections) - set(ALL_SECTIONS)
    if unknown:
        raise ValueError(
            f"unknown sections {sorted(unknown)}; choose from {ALL_SECTIONS}"
        )
    text = f"{TITLE}\n\n{INTRO}\n"
    if os.path.exists(path):
        with open(path) as file:
            text = file.read()
    for name in ALL_SECTIONS:
        if name not in sections:
            continue
        block = f"{begin_marker(name)}\n{sections[name].strip()}\n{end_marker(name)}"
        match = _pattern(name).search(text)
        if match:
            text = text[: match.start()] + block + text[match.end() :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as file:
        file.write(text)
    return text


def table(header, rows):
    """The lines of a markdown table: `header`, its rule, a line per row of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def spread(values):
    """`median (lowest-highest)` of a list of ratios, e.g. `1.02x (0.98-1.10)`."""
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def cpu_wall(ratios):
    """`CPU cell / wall cell` of a list of `{"cpu": r, "wall": r}` paired ratios."""
    return (
        f"{spread([r['cpu'] for r in ratios])} / {spread([r['wall'] for r in ratios])}"
    )
