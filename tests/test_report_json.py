"""`kgrad report --fail-on` exit codes and `--json` output, for CI."""

import json

import pytest

from kgrad.cli import main
from tests.support.runs import write_run


@pytest.fixture
def runs(tmp_path):
    return {
        "vanishing": write_run(tmp_path / "vanishing", 1e-6),
        "healthy": write_run(tmp_path / "healthy", 0.3),
    }


@pytest.mark.parametrize(
    "run, level, code",
    [
        ("vanishing", "warning", 1),  # a warning finding: the gate fails
        ("vanishing", "error", 0),  # no error finding
        ("healthy", "warning", 0),
        ("vanishing", None, 0),  # no gate: findings are only printed
    ],
)
def test_fail_on_exit_codes(runs, run, level, code, capsys):
    argv = ["report", runs[run]] + (["--fail-on", level] if level else [])
    assert main(argv) == code
    assert "==" in capsys.readouterr().out


def test_fail_on_counts_any_run(runs):
    assert main(["report", runs["healthy"], runs["vanishing"], "--fail-on", "warning"])


def test_bad_level_is_a_usage_error_not_a_finding(runs, capsys):
    assert main(["report", runs["vanishing"], "--fail-on", "info"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_json_is_parseable_and_holds_the_findings(runs, capsys):
    code = main(["report", runs["vanishing"], runs["healthy"], "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {run["name"]: run for run in data["runs"]}
    assert set(by_name) == {"vanishing", "healthy"}
    vanishing = by_name["vanishing"]
    assert vanishing["steps"] == [1, 2, 3, 4, 5]
    assert [row["grad_norm"] for row in vanishing["layers"]] == pytest.approx(
        [1e-6, 0.5, 1.0]
    )
    (finding,) = vanishing["findings"]
    assert finding["kind"] == "vanishing" and finding["severity"] == "warning"
    assert finding["step"] == 5
    assert finding["numbers"]["ratio"] == pytest.approx(1e-6)
    assert finding["layers"] == ["m/dense_1"]
    assert by_name["healthy"]["findings"] == []


def test_help_lists_the_exit_codes(capsys):
    assert main(["report", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 a finding at or above it" in out and "2 usage error" in out
