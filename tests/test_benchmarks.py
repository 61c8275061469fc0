"""Smoke test of `benchmarks/overhead.py --quick`: a table row per configuration.

No timing assertion: the machine is shared, only the table's shape and the
finiteness of its ratios are checked.
"""

import importlib.util
import math
import pathlib
import re

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "overhead.py"


@pytest.fixture(scope="module")
def overhead():
    spec = importlib.util.spec_from_file_location("kgrad_bench_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_has_a_finite_ratio_per_configuration(overhead, tmp_path, capsys):
    output = tmp_path / "RESULTS.md"
    report = overhead.main(["--quick", "--output", str(output)])

    assert output.read_text() == report
    assert "| config |" in capsys.readouterr().out
    rows = {}
    for line in report.splitlines():
        match = re.match(r"\| \((\w)\) [^|]+\| (.+) \|$", line)
        if match:
            rows[match.group(1)] = [c.strip() for c in match.group(2).split("|")]
    assert set(rows) == set(overhead.CONFIGS)
    for cells in rows.values():
        assert cells, "a configuration row without a model column"
        for cell in cells:
            assert cell.endswith("x")
            assert math.isfinite(float(cell[:-1]))
    assert "## Depth" in report
    assert "Machine:" in report and "Command:" in report


def test_unknown_configuration_is_refused(overhead):
    with pytest.raises(SystemExit):
        overhead.parse_args(["--configs", "z"])


def test_logged_step_profile_times_every_piece(capsys):
    path = SCRIPT.parent / "logged_step.py"
    spec = importlib.util.spec_from_file_location("kgrad_bench_logged_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

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


def test_fresh_fit_quick_run_has_a_finite_ratio_per_configuration():
    path = SCRIPT.parent / "fresh_fit.py"
    spec = importlib.util.spec_from_file_location("kgrad_bench_fresh", path)
    fresh_fit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh_fit)
    report = fresh_fit.main(["--quick"])
    rows = [line for line in report.splitlines() if line.startswith("| mlp_relu_he")]
    assert [row.split("|")[5].strip() for row in rows] == list(fresh_fit.CONFIGS)
    for row in rows:  # CPU, wall, trace, later: "median x (lowest-highest)"
        for cell in row.split("|")[6:10]:
            median, low, high = map(float, re.findall(r"\d+\.\d+", cell))
            assert 0 < low <= median <= high and math.isfinite(high)
