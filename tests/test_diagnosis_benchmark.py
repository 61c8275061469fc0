"""`benchmarks/diagnosis/diagnosis.py --quick`: the machinery, not the targets.

Four tiny runs trained 24 steps in-process, read back from their event files,
judged at 8, 16 and 24 steps, scored and written as Markdown. The scoring and
the truncation are also checked on hand-made verdicts.
"""

import pathlib
import sys
from types import SimpleNamespace

import pytest

from kgrad import tags

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "diagnosis"
sys.path.insert(0, str(BENCHMARKS))

import diagnosis  # noqa: E402
import diagnosis_labels  # noqa: E402
import diagnosis_peer  # noqa: E402
import diagnosis_plan  # noqa: E402
import diagnosis_table  # noqa: E402
from diagnosis_runs import RUNS  # noqa: E402


def test_quick_run_judges_every_run_at_every_length(tmp_path):
    out = tmp_path / "DIAGNOSIS.md"
    rows = diagnosis.main(["--quick", "--logs", str(tmp_path), "--out", str(out)])
    assert sorted(r.run.name for r in rows) == sorted(diagnosis_table.QUICK_RUNS)
    for row in rows:
        assert set(row.verdicts) == set(diagnosis.QUICK_LENGTHS)
        losses = row.scalars[tags.LOSS]
        # steps 1-8 and 16 of the schedule (25 is past the 24 trained)
        assert [s for s, _ in losses] == [*range(1, 9), 16]
        assert all(0 < v < 10 for _, v in losses)
    found = {r.run.name: r.verdicts[24][0] for r in rows}
    assert found["relu_bias_minus5"] == {"dead_units"}
    assert found["batchnorm_batch2"] == {"batchnorm_small_batch"}
    text = out.read_text()
    assert "| `relu_bias_minus5` | calibration |" in text
    assert "## calibration runs: per finding kind" in text  # the 4 runs' half


def _row(name, half, must, found, may=()):
    run = SimpleNamespace(name=name, half=half, must=must, may=may)
    return diagnosis_table.Row(run, {50: (found, 0), 300: (found, 0)}, {}, {})


def test_score_counts_true_false_positives_and_negatives():
    rows = [
        _row("a", "held_out", ("dead_units",), {"dead_units"}),
        _row("b", "held_out", ("dead_units",), set()),
        _row("c", "held_out", (), {"dead_units", "exploding"}, may=("exploding",)),
        _row("d", "calibration", (), {"dead_units"}),
    ]
    counts = diagnosis_table.score(rows, "held_out", 300)
    assert counts["dead_units"] == {"tp": 1, "fp": 1, "fn": 1}
    assert counts["exploding"] == {"tp": 0, "fp": 0, "fn": 0}  # `may`
    shortest = diagnosis_table.score(rows, "held_out", 50, shortest=True)
    assert shortest["dead_units"] == {"tp": 1, "fp": 1, "fn": 0}


def test_a_run_written_to_nan_is_labelled_by_what_its_logs_show():
    run = SimpleNamespace(
        name="n", half="fresh", must=("nonfinite",), may=("exploding",)
    )
    finite = {tags.LOSS: [(1, 2.0), (300, 1.5)], tags.GLOBAL_GRAD_NORM: [(1, 1.0)]}
    row = diagnosis_table.Row(run, {}, finite, {})
    must, may = diagnosis_labels.labels(row, 300)
    assert must == () and set(may) == {"exploding", *diagnosis_labels.TOO_FAST}
    nan_late = {**finite, tags.GLOBAL_GRAD_NORM: [(1, 1.0), (200, float("nan"))]}
    row = diagnosis_table.Row(run, {}, nan_late, {})
    assert diagnosis_labels.labels(row, 300) == (("nonfinite",), ("exploding",))
    assert diagnosis_labels.labels(row, 100)[0] == ()  # not yet at step 100


def test_truncate_keeps_the_steps_up_to_the_length():
    scalars = {"a": [(1, 1.0), (8, 2.0), (25, 3.0)], "b": [(25, 4.0)]}
    assert diagnosis.truncate(scalars, 8) == {"a": [(1, 1.0), (8, 2.0)]}


def test_runs_are_labelled_and_split_in_halves():
    names = [r.name for r in RUNS]
    assert len(names) == len(set(names)) >= 24
    halves = {r.half for r in RUNS}
    assert halves == set(diagnosis_table.HALVES)
    for kind in diagnosis_table.KINDS:  # each kind in calibration and held-out
        for half in ("calibration", "held_out"):
            assert any(kind in r.must and r.half == half for r in RUNS), (kind, half)
    assert sum(not r.must for r in RUNS) >= 12  # healthy twins and silent runs


@pytest.mark.parametrize("run", [r for r in RUNS if r.name.startswith("relu_he")])
def test_a_run_builds_a_compiled_model_and_its_data(run):
    model, x, y, batch = run.build()
    assert model.optimizer is not None and len(x) == len(y) and batch > 0


def test_the_plan_hands_out_the_longest_runs_first(monkeypatch):
    recorded = {"a": 60.0, "b": 120.0, "c": 60.0, "d": 30.0}
    monkeypatch.setattr(diagnosis_plan, "estimates", lambda: recorded)
    order, minutes = diagnosis_plan.plan(["a", "b", "c", "d", "new"], 1000, 2)
    assert order == ["b", "a", "c", "d", "new"]  # ties keep their order
    # b on one worker (120 s), a and c on the other (120 s), then d and the
    # unknown run (30 s) one each: 150 s
    assert minutes == 150 / 60
    _, one = diagnosis_plan.plan(["a", "b", "c", "d", "new"], 500, 1)
    assert one == (60 + 120 + 60 + 30 + 30) / 2 / 60  # scaled to 500 steps


def test_unknown_run_name_is_refused(capsys):
    with pytest.raises(SystemExit):
        diagnosis.main(["--only", "relu_hee", "--reuse"])
    assert "unknown run names: ['relu_hee']" in capsys.readouterr().err


def _epochs(accuracies, gradients=None, val=None):
    """Hand-made `PeerProbe.epochs`: 10 steps per epoch, gradients every 3."""
    out = []
    for i, acc in enumerate(accuracies):
        logs = {"loss": 1.0, "accuracy": acc}
        if val is not None:
            logs["val_accuracy"] = val[i]
        record = {"epoch": i + 1, "step": 10 * (i + 1), "logs": logs}
        if (i + 1) % diagnosis_peer.CHECK_GAP == 0:
            healthy = {"first": 1.0, "last": 1.0, "zero_share": 0.1, "nan": False}
            record["gradients"] = {**healthy, **(gradients or {})}
        out.append(record)
    return out


def test_the_peers_criteria_on_hand_made_epochs():
    judge = diagnosis_peer.judge
    flat = [0.3 + 0.001 * i for i in range(12)]
    # slow convergence and nothing else: "not converging"
    assert judge(_epochs(flat), 10, 120) == {"not_learning"}
    # the gradient problems come first, in the peer's order
    assert judge(_epochs(flat, {"zero_share": 0.8}), 10, 120) == {"dead_units"}
    assert judge(_epochs(flat, {"first": 100.0}), 10, 120) == {"exploding"}
    assert judge(_epochs(flat, {"first": 1e-5}), 10, 120) == {"vanishing"}
    assert judge(_epochs(flat, {"nan": True}), 10, 120) == {"nonfinite"}
    # a run that converged, with its accuracy oscillating: "unstable"
    zigzag = [0.8 + (0.05 if i % 2 else 0.0) for i in range(12)]
    assert judge(_epochs(zigzag), 10, 120) == {"unstable"}
    # converged and steady: nothing; and nothing before 30% of the run
    assert judge(_epochs([0.5 + 0.04 * i for i in range(12)]), 10, 120) == set()
    assert judge(_epochs(flat)[:3], 10, 120) == set()
    # a low validation accuracy alone (not converged) names nothing
    rising = [0.5 + 0.04 * i for i in range(12)]
    assert judge(_epochs(rising, val=[0.3] * 12), 10, 120) == set()
