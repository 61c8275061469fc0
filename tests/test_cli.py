"""The `kgrad` command, called in-process: exit codes and output."""

import io
import json
import os
import subprocess
import sys

import matplotlib.image
import pytest

from kgrad.cli import main
from tests.support.runs import write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runs(tmp_path):
    return {
        "vanishing": write_run(tmp_path / "vanishing", 1e-6),
        "healthy": write_run(tmp_path / "healthy", 0.3),
    }


def test_report_of_one_run(runs, capsys):
    assert main(["report", runs["vanishing"]]) == 0
    out = capsys.readouterr().out
    # the first line states the outcome (these hand-made runs log no loss)
    assert out.splitlines()[0] == (
        f"== {runs['vanishing']}: no loss logged: the outcome of the run is unknown."
    )
    assert "dense_1 [in]" in out and "1.0e-06" in out and "10%" in out
    assert "Warning: vanishing gradients in m/dense_1." in out
    assert "comparison" not in out


def test_report_accepts_the_train_subdirectory(runs, capsys):
    assert main(["report", runs["healthy"] + "/train"]) == 0
    assert "findings: none" in capsys.readouterr().out


def test_report_of_two_runs_side_by_side(runs, capsys):
    assert main(["report", runs["vanishing"], runs["healthy"]]) == 0
    out = capsys.readouterr().out
    assert "== vanishing: no loss logged" in out and "== healthy: no loss" in out
    comparison = out[out.index("== comparison") :].splitlines()
    assert comparison[3].split()[:3] == ["vanishing", "3", "1.0e-06"]
    assert comparison[4].split()[:3] == ["healthy", "3", "3.0e-01"]
    assert comparison[3].endswith("vanishing (warning)")
    assert comparison[4].endswith("none")
    assert max(len(line) for line in out.splitlines()) <= 100


@pytest.mark.parametrize("count", [1, 2])
def test_report_png(runs, tmp_path, capsys, count):
    png = tmp_path / "flow.png"
    logdirs = [runs["vanishing"], runs["healthy"]][:count]
    assert main(["report", *logdirs, "--png", str(png)]) == 0
    assert f"Wrote {png}" in capsys.readouterr().out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_directory_without_kgrad_logs(tmp_path, capsys):
    (tmp_path / "train").mkdir()
    assert main(["report", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"kgrad: error: No kgrad logs in {tmp_path}")
    assert "Traceback" not in captured.err


def test_missing_directory_and_one_bad_run_among_good_ones(runs, tmp_path, capsys):
    missing = str(tmp_path / "missing")
    assert main(["report", runs["healthy"], missing]) == 2
    assert capsys.readouterr().err == f"kgrad: error: {missing} is not a directory.\n"


def test_usage_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["report"]) == 2
    assert "the following arguments are required: LOGDIR" in capsys.readouterr().err
    assert main(["bogus"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "invalid choice: 'bogus'" in line
    assert main([]) == 2
    assert "report" in capsys.readouterr().err


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("kgrad ")
    assert main(["report", "--help"]) == 0
    assert "--png FILE" in capsys.readouterr().out


def test_report_imports_no_tensorflow(runs, tmp_path):
    png = tmp_path / "flow.png"
    code = (
        "import runpy, sys; "
        f"sys.argv = ['kgrad', 'report', {runs['vanishing']!r}, "
        f"'--png', {str(png)!r}]; "
        "exit_ = None\n"
        "try:\n    runpy.run_module('kgrad.__main__', run_name='__main__')\n"
        "except SystemExit as e:\n    exit_ = e.code\n"
        "print('exit', exit_, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "vanishing gradients" in result.stdout
    assert result.stdout.splitlines()[-1] == "exit 0 False False"
    assert png.read_bytes().startswith(PNG_SIGNATURE)


def test_report_finds_every_run_below_a_folder(tmp_path, capsys):
    write_run(tmp_path / "a", 1e-6, model="ma")
    write_run(tmp_path / "b", 1.0, model="mb")
    write_run(tmp_path / "exp" / "train" / "gru", 1.0, model="gru")  # kgrad train
    assert main(["report", str(tmp_path), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    base = os.path.normpath(str(tmp_path))
    assert [(r["name"], r["model"]) for r in runs] == [
        (f"{base}/a", "ma"),
        (f"{base}/b", "mb"),
        (f"{base}/exp/gru", "gru"),
    ]
    assert all(r["steps"] == [1, 2, 3, 4, 5] for r in runs)
    assert [f["kind"] for f in runs[0]["findings"]] == ["vanishing"]
    for below in ("exp", "exp/train"):
        assert main(["report", str(tmp_path / below)]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"== {os.path.normpath(str(tmp_path / below))}/gru: ")
        assert "model gru, 3 layers" in out
