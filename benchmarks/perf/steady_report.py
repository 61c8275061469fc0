"""The steady-state section of `benchmarks/perf/RESULTS.md`: tables and targets.

Renders what `overhead.measure` returns. Every ratio cell is `CPU / wall`,
each `median (lowest-highest pair)` (see `results_file.cpu_wall`). Targets
are judged on CPU time and are met only when the whole spread is below them;
where the bound is another measured ratio, below its whole spread.

Example:

    section = render(results, depth_results, ["0", "a"], ["a"], info, command)
"""

import math
import statistics

from results_file import cpu_wall, table

CONFIGS = {
    "0": "plain fit again (noise floor)",
    "a": "kgrad GradientMonitor() defaults",
    "b": "kgrad norms every step",
    "c": "kgrad norms + histograms every step",
    "d": "extra GradientTape pass on a probe batch (W&B-style)",
    "e": "keras TensorBoard(histogram_freq=1)",
}
# config -> the bound on its CPU ratio, on every model cell
TARGETS = {"a": 1.05, "b": 1.15, "c": 1.5}
DEPTH_SLACK = 0.05  # "flat over depth": at most this much more at the deepest


def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def main_table(results, configs):
    """Rows: one per configuration; columns: one per model and batch size."""
    header = ["config"] + [f"{r['model']} b{r['batch']}" for r in results]
    rows = [
        [f"({config}) {CONFIGS[config]}"]
        + [cpu_wall(r["pairs"][config]) for r in results]
        for config in configs
    ]
    return table(header, rows)


def detail_table(results):
    header = ["model", "batch", "params", "plain ms/step", "steps/fit"]
    header += ["(a) first steps", "(d) first steps", "(a) logged in timed fits"]
    header += ["(a) +CPU s/fit", "(e) +CPU s/epoch", "host reads/logged step"]
    header += ["warm-up s"]
    rows = []
    for r in results:
        first = {
            config: f"{cpu_wall(pairs)} ({n} steps)"
            for config, (n, pairs) in r["first_steps"].items()
        }
        logged = r["a_logged"]
        logged = (
            f"{logged['norms']} norm, {logged['histograms']} hist "
            f"/ {logged['steps']} steps"
        )
        rows.append(
            [r["model"], r["batch"], f"{r['params']:,}", fmt(r["ms_per_step"], 1)]
            + [r["steps"], first.get("a", "n/a"), first.get("d", "n/a"), logged]
            + [fmt(r["extra_cpu_s"].get("a")), fmt(r["extra_cpu_s"].get("e"))]
            + [fmt(r.get("host_reads"), 1), fmt(r["warmup_s"], 0)]
        )
    return table(header, rows)


def depth_table(results, configs):
    header = ["depth", "params", "plain ms/step", "steps/fit"]
    header += [f"({c}) CPU / wall" for c in configs]
    header += [f"({c}) +CPU ms/step" for c in configs]
    rows = []
    for depth, r in results:
        cells = [str(depth), f"{r['params']:,}", fmt(r["ms_per_step"], 1)]
        cells += [str(r["steps"])] + [cpu_wall(r["pairs"][c]) for c in configs]
        cells += [fmt(1e3 * r["extra_cpu_s"][c] / r["steps"], 2) for c in configs]
        rows.append(cells)
    return table(header, rows)


def _cpu(pairs):
    return [p["cpu"] for p in pairs]


def targets(results, depth_results):
    """Checks the targets on CPU time; returns lines of met/MISSED."""
    out = []

    def check(label, ok, floor=None):
        noise = f"; noise floor {cpu_wall(floor)}" if floor else ""
        out.append(f"- {'met' if ok else 'MISSED'}: {label}{noise}")

    for r in results:
        pairs = r["pairs"]
        where = f"{r['model']} b{r['batch']}"
        floor = pairs.get("0")
        for config, bound in TARGETS.items():
            if config in pairs:
                check(
                    f"({config}) <= {bound:.2f}x CPU on {where}: "
                    f"{cpu_wall(pairs[config])}",
                    max(_cpu(pairs[config])) <= bound,
                    floor,
                )
        for other in ("d", "e"):
            if "a" in pairs and other in pairs:
                check(
                    f"(a) cheaper than ({other}) on {where}, CPU: "
                    f"{cpu_wall(pairs['a'])} vs {cpu_wall(pairs[other])}",
                    max(_cpu(pairs["a"])) < min(_cpu(pairs[other])),
                    floor,
                )
        first_steps = r["first_steps"]
        if "a" in first_steps and "d" in first_steps:
            a, d = first_steps["a"][1], first_steps["d"][1]
            check(
                f"(a) cheaper than (d) over the first 50 steps "
                f"on {where}, CPU: {cpu_wall(a)} vs {cpu_wall(d)}",
                max(_cpu(a)) < min(_cpu(d)),
            )
        reads = r.get("host_reads")
        if reads is not None and not math.isnan(reads):
            check(f"<= 1 host read per logged step on {where}: {reads:.1f}", reads <= 1)
    if len(depth_results) > 1:
        (shallow, first), (deep, last) = depth_results[0], depth_results[-1]
        for config in sorted(set(first["pairs"]) - {"0"}):
            a, b = first["pairs"][config], last["pairs"][config]
            check(
                f"({config}) flat over depth, CPU: {cpu_wall(a)} at depth {shallow}, "
                f"{cpu_wall(b)} at depth {deep} (highest at most "
                f"+{DEPTH_SLACK:.2f}x over the highest at depth {shallow})",
                max(_cpu(b)) <= max(_cpu(a)) + DEPTH_SLACK,
            )
    return out


def render(results, depth_results, configs, depth_configs, info, command):
    """The steady-state section (markdown)."""
    jit = info["jit_compile"]
    lines = [
        "## Steady state"
        + (", every model compiled with jit_compile=True" if jit else ""),
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']}.",
        f"Load average (1, 5, 15 min): before {info['load_before']}, "
        f"after {info['load_after']}. Wall time: {info['wall'] / 60:.1f} min.",
        "",
        "Ratio time(fit with X) / time(plain fit) over the pairs, interleaved "
        "(which of the two runs first alternates), after a warm-up and a garbage "
        "collection before each fit; steady state "
        f"(`optimizer.iterations` set to {info['steady_start']} first, so (a) "
        "logs norms every 100 steps and histograms every 500). One timed fit is "
        "one epoch. Each cell: `CPU / wall`, each the median of "
        f"{info['repeats']} pairs (lowest-highest pair); CPU is process time, "
        "user + system, all threads. Row (0) is the noise floor.",
        "",
        *main_table(results, configs),
        "",
    ]
    if info["skipped"]:
        lines += [
            f"Not run: {', '.join(info['skipped'])} (too slow for the default "
            "run on this machine; `--all-cells` runs it).",
            "",
        ]
    lines += [
        "Details. `(a) first steps`, `(d) first steps`: ratios of fits that "
        "start at step 1, where (a) logs norms at its early steps 1-8, 16 and 32 "
        "(and a histogram at step 1) and (d) runs its extra pass on every step. "
        "`(a) logged in timed fits`: the logged steps that fell inside the timed "
        "(a) fits. `+CPU s`: median CPU seconds a fit with X adds to its pair's "
        "plain fit. `host reads/logged step`: device-to-host reads of a fit with "
        "(b) minus a plain fit, per step.",
        "",
        *detail_table(results),
    ]
    if depth_results:
        lines += [
            "",
            "### Depth: `mlp_relu_he`",
            "",
            *depth_table(depth_results, depth_configs),
        ]
    lines += [
        "",
        "### Targets",
        "",
        "On CPU time; met only when the whole spread is below the bound (where "
        "the bound is another measured ratio, below its whole spread): (a) "
        "<= 1.05x, (b) <= 1.15x, (c) <= 1.5x on every cell. Each line names "
        "the cell's noise floor, row (0), when it ran.",
        "",
        *targets(results, depth_results),
    ]
    return "\n".join(lines) + "\n"


def summary(result):
    """One line of CPU medians for the progress log."""
    return ", ".join(
        f"{k}={statistics.median(_cpu(v)):.2f}x" for k, v in result["pairs"].items()
    )
