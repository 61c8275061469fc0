"""Smoke tests of the benchmarks with `--quick`: tables read back from the file.

No timing assertion: the machine is shared. What is checked is what the
written `RESULTS.md` says: its sections, a finite CPU ratio and wall
ratio in every cell with its median inside its spread, target lines that
agree with the spreads they quote, and sections rewritten one at a time.
"""

import importlib.util
import math
import pathlib
import re
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "perf"
NUMBER = r"(-?\d+\.\d+)"
SPREAD = rf"{NUMBER}x \({NUMBER}-{NUMBER}\)"
CPU_WALL = rf"{SPREAD} / {SPREAD}"


def load(name):
    spec = importlib.util.spec_from_file_location(
        f"kgrad_bench_{name}", BENCHMARKS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def overhead():
    return load("overhead")


@pytest.fixture(scope="module")
def results(overhead, tmp_path_factory):
    """The file a quick run of the default sections writes."""
    output = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    sections = overhead.main(["--quick", "--output", str(output)])
    return output, sections


def rows(section):
    """The table rows of a section, each a list of stripped cells."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
    ]


def cpu_wall(cell, suffix=""):
    """`(cpu median, low, high), (wall median, low, high)`, checked."""
    match = re.fullmatch(CPU_WALL + suffix, cell)
    assert match, cell
    numbers = [float(x) for x in match.groups()[:6]]
    for median, low, high in (numbers[:3], numbers[3:]):
        assert all(math.isfinite(x) for x in (median, low, high)), cell
        assert 0 < low <= median <= high, cell
    return numbers[:3], numbers[3:]


def check_targets(section, pattern):
    """Each target line is `met` exactly when its whole CPU spread is in bound."""
    lines = [line for line in section.splitlines() if line.startswith("- ")]
    checked = 0
    for line in lines:
        match = re.match(pattern, line)
        if match is None:
            continue
        verdict, bound, cell = match.group("verdict", "bound", "cell")
        (_, _, highest), _ = cpu_wall(cell)
        if highest != float(bound):  # equal to 2 decimals: either side of it
            assert (verdict == "met") == (highest < float(bound)), line
        checked += 1
    return checked


def test_quick_run_writes_its_sections_in_order(overhead, results):
    output, sections = results
    text = output.read_text()
    results_file = sys.modules["results_file"]
    assert text.startswith(results_file.TITLE)
    positions = [text.index(results_file.begin_marker(s)) for s in sections]
    assert list(sections) == [*results_file.SECTIONS, results_file.JAX_SECTION]
    assert positions == sorted(positions)
    for name, section in sections.items():
        assert results_file.read_section(text, name) == section.strip()
        assert "Command: `python benchmarks/perf/overhead.py --quick" in section


def test_steady_section_has_cpu_and_wall_in_every_cell(overhead, results):
    output, _ = results
    section = sys.modules["results_file"].read_section(output.read_text(), "steady")
    table = {row[0][1]: row[1:] for row in rows(section) if row[0].startswith("(")}
    assert set(table) == set(overhead.CONFIGS)  # (0), the noise floor, included
    for cells in table.values():
        assert len(cells) == 1  # --quick: one model at one batch size
        for cell in cells:
            cpu_wall(cell)
    detail = [row for row in rows(section) if row[0] == "mlp_relu_he"]
    assert len(detail) == 1
    for cell in detail[0][5:7]:  # (a) and (d) first steps
        cpu_wall(cell, suffix=r" \(\d+ steps\)")
    depth = [row for row in rows(section) if row[0] == "2"]
    assert len(depth) == 1
    cpu_wall(depth[0][4])
    checked = check_targets(
        section,
        rf"- (?P<verdict>met|MISSED): \(\w\) <= (?P<bound>{NUMBER})x CPU on "
        rf"mlp_relu_he b16: (?P<cell>{CPU_WALL}); noise floor",
    )
    assert checked == 3  # (a), (b), (c)


def test_fresh_section_has_cpu_and_wall_in_every_cell(overhead, results):
    output, _ = results
    section = sys.modules["results_file"].read_section(output.read_text(), "fresh")
    table = [row for row in rows(section) if row[0] == "mlp_relu_he"]
    fresh_fit = sys.modules["fresh_fit"]
    assert [row[4] for row in table] == list(fresh_fit.CONFIGS)
    for row in table:
        assert all(float(x) > 0 for x in row[1:4])  # plain wall, CPU, step 1 s
        for cell in row[5:8]:  # fit, step 1, later
            cpu_wall(cell)
    checked = check_targets(
        section,
        rf"- (?P<verdict>met|MISSED): .* <= (?P<bound>{NUMBER})x CPU on "
        rf"mlp_relu_he: (?P<cell>{CPU_WALL}); noise floor",
    )
    assert checked == 3  # fit, step 1, later


def test_memory_section_extras_agree_with_peaks(overhead, results):
    output, _ = results
    section = sys.modules["results_file"].read_section(output.read_text(), "memory")
    param_mib = float(re.search(r"parameters ([\d.e-]+) MiB", section).group(1))
    to = rf"{NUMBER} \({NUMBER} to {NUMBER}\)"
    table = {}
    for row in rows(section):
        if row[0] in sys.modules["peak_memory"].CONFIGS:
            peak = re.fullmatch(r"(\d+) \((\d+) to (\d+)\)", row[1])
            extra = re.fullmatch(to, row[2])
            ratio = re.fullmatch(rf"{NUMBER}x \({NUMBER} to {NUMBER}\)", row[3])
            assert peak and extra and ratio, row
            for match in (peak, extra, ratio):
                median, low, high = map(float, match.groups())
                assert math.isfinite(median) and low <= median <= high, row
            table[row[0]] = [float(peak[1]), float(extra[1]), float(ratio[1])]
    assert list(table) == list(sys.modules["peak_memory"].CONFIGS)
    assert table["plain"][1:] == [0.0, 0.0]
    for peak, extra, ratio in table.values():
        assert peak > 0
        assert math.isclose(ratio * param_mib, extra, rel_tol=0.01, abs_tol=0.06)
    verdicts = []
    for line in section.splitlines():
        match = re.match(rf"- (met|MISSED): a logged step .*: {NUMBER}x \(", line)
        if match:
            highest = float(re.search(rf"to {NUMBER}\)", line).group(1))
            assert (match.group(1) == "met") == (highest <= 1.0), line
            verdicts.append(match.group(1))
    assert len(verdicts) == 2  # norms, norms+histograms


def test_one_section_is_rewritten_and_the_rest_kept(overhead, results):
    output, _ = results
    results_file = sys.modules["results_file"]
    before = output.read_text() + "\nA note written by hand.\n"
    output.write_text(before)

    sections = overhead.main(
        ["--quick", "--sections", "fresh", "--fresh-configs", "plain-again"]
        + ["--output", str(output)]
    )

    after = output.read_text()
    assert list(sections) == ["fresh"]
    for name in ("steady", "memory"):
        assert results_file.read_section(after, name) == results_file.read_section(
            before, name
        )
    fresh = results_file.read_section(after, "fresh")
    assert (
        fresh == sections["fresh"].strip() != results_file.read_section(before, "fresh")
    )
    assert [row[4] for row in rows(fresh) if row[0] == "mlp_relu_he"] == ["plain-again"]
    assert after.endswith("A note written by hand.\n")


def test_write_sections_creates_the_file_and_refuses_unknown_names(tmp_path):
    results_file = load("results_file")
    path = tmp_path / "RESULTS.md"
    text = results_file.write_sections(str(path), {"memory": "## Memory\n\n1 MiB"})
    assert text == path.read_text()
    assert text.startswith(results_file.TITLE)
    assert results_file.read_section(text, "memory") == "## Memory\n\n1 MiB"
    assert results_file.read_section(text, "steady") is None
    with pytest.raises(ValueError, match="speed"):
        results_file.write_sections(str(path), {"speed": "x"})


def test_peak_rss_is_the_childs_own_not_its_parents():
    """A child of a process that holds 256 MiB reports its own, smaller peak."""
    ballast = bytearray(256 * 2**20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # touch every page
    code = (
        f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); "
        "import peak_memory; print(peak_memory.peak_rss_mib())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert 1 < float(out.stdout) < 128
    del ballast


def test_unknown_configuration_or_section_is_refused(overhead):
    for argv in (["--configs", "z"], ["--sections", "speed"]):
        with pytest.raises(SystemExit):
            overhead.parse_args(argv)
    with pytest.raises(SystemExit):
        overhead.parse_args(["--fresh-configs", "z"])


def test_fresh_fit_runs_alone():
    fresh_fit = load("fresh_fit")
    report = fresh_fit.main(["--quick", "--configs", "plain-again"])
    table = [row for row in rows(report) if row[0] == "mlp_relu_he"]
    assert [row[4] for row in table] == ["plain-again"]
    for cell in table[0][5:8]:
        cpu_wall(cell)
    assert "Command: `python benchmarks/perf/fresh_fit.py --quick" in report


def test_logged_step_profile_times_every_piece(capsys):
    module = load("logged_step")

    out = module.profile("mlp_relu_he", depth=3, batch_size=8, calls=3, ops=True)

    assert out["variables"] == 8  # 3 hidden layers and the output, kernel and bias
    for key in module.PIECES:
        assert math.isfinite(out[key]) and out[key] > 0, key
    kgrad_ops = [name for _, name in out["ops"] if "kgrad" in name]
    model_ops = [name for _, name in out["ops"] if "kgrad" not in name]
    assert kgrad_ops and model_ops  # the profile tells kgrad's ops apart
    module.print_ops(out["ops"], top=2)
    printed = capsys.readouterr().out
    assert "kgrad's ops:" in printed and "the model's ops:" in printed
    assert len([line for line in printed.splitlines() if "`" in line]) == 2

    inside = module.in_fit("mlp_relu_he", depth=3, batch_size=8, steps=3)
    assert set(inside) == set(module.IN_FIT)
    assert all(math.isfinite(v) and v > 0 for v in inside.values())


def test_jax_section_measures_both_monitored_configs_on_jax(results):
    _, sections = results
    section = sections["jax"]
    assert "on JAX" in section
    assert "Command: `python benchmarks/perf/overhead.py --quick" in section
    table = [row for row in rows(section) if row[0] == "mlp_relu_he"]
    assert [row[3] for row in table] == ["plain-again", "defaults", "every-step"]
    for row in table:
        assert all(float(x) > 0 for x in row[1:3])  # plain CPU s, its step 1
        for cell in row[4:6]:  # fit, step 1
            cpu_wall(cell)
        assert re.fullmatch(rf"[+]?{NUMBER} / [+]?{NUMBER}", row[6]), row[6]
    checked = check_targets(
        section,
        rf"- (?P<verdict>met|MISSED): \S+ <= (?P<bound>{NUMBER})x CPU on "
        rf"mlp_relu_he: (?P<cell>{CPU_WALL}); noise floor",
    )
    assert checked == 2  # defaults, every step
