"""`kgrad demo`, `kgrad compare` and `kgrad train` end to end, with `--quick`."""

import glob
import os

import numpy as np
from matplotlib import image

from kgrad.cli import main
from kgrad.lab import demo, results_markdown
from kgrad.lab.experiments import RunConfig, RunResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    with open(path, "rb") as file:
        assert file.read(8) == PNG_MAGIC
    pixels = image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100
    assert np.ptp(pixels) > 0  # not a blank image


def test_demo_quick_end_to_end(tmp_path, capsys, events):
    assert main(["demo", "--quick", "--logdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out

    found = demo.demo_experiments(quick=True)
    runs = [(e.name, r.run_name) for e in found for r in e.runs]
    assert len(runs) == 14
    assert "| experiment " in out and "| in/out @1 " in out
    for experiment, run in runs:
        assert f"| {experiment} " in out and f"| {run} " in out
        files = glob.glob(str(tmp_path / experiment / run / "train" / "*tfevents*"))
        assert files, (experiment, run)
    assert out.rstrip().endswith(f"tensorboard --logdir {tmp_path}")

    logged = events(tmp_path / "depth20_mlp" / "mlp_sigmoid" / "train")
    steps = [step for step, _ in logged["grad_norm/global"]]
    assert steps == [1, 2, 3]
    assert "grad_norm/dense_01/kernel" in logged

    markdown = (tmp_path / "RESULTS.md").read_text()
    assert markdown.startswith("# kgrad results")
    assert f"`kgrad demo --logdir {tmp_path} --quick`" in markdown
    for experiment in found:
        assert f"## {experiment.title}" in markdown
        assert f"]({experiment.name}.png)" in markdown
        _assert_png(tmp_path / f"{experiment.name}.png")
    sweep = markdown.split("## Row 16: batch-size sweep and the gradient noise scale")
    assert len(sweep) == 2 and "| 64 |" in sweep[1]
    assert (tmp_path / "batch_sweep" / "train").is_dir()


def test_compare_quick(tmp_path, capsys):
    argv = ["compare", "mlp_sigmoid", "mlp_relu_he", "--quick"]
    assert main(argv + ["--logdir", str(tmp_path), "--optimizer", "sgd"]) == 0
    out = capsys.readouterr().out
    assert "| compare " in out and "| mlp_relu_he " in out
    for model in ("mlp_sigmoid", "mlp_relu_he"):
        assert glob.glob(str(tmp_path / "compare" / model / "train" / "*tfevents*"))
    markdown = (tmp_path / "compare" / "RESULTS.md").read_text()
    assert "`kgrad compare mlp_sigmoid mlp_relu_he --optimizer sgd" in markdown
    assert "sgd(0.001)" in markdown
    _assert_png(tmp_path / "compare" / "compare.png")


def test_train_quick_with_data_and_out(tmp_path, capsys):
    out_file = tmp_path / "one.md"
    argv = ["train", "lstm", "--quick", "--data", "temporal_order"]
    assert main(argv + ["--logdir", str(tmp_path), "--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "| train " in out and "| lstm " in out
    assert glob.glob(str(tmp_path / "train" / "lstm" / "train" / "*tfevents*"))
    assert "lstm on temporal_order" in out_file.read_text()
    _assert_png(tmp_path / "train.png")
    for logdir in (tmp_path, tmp_path / "train"):  # what the user is told to open
        assert main(["report", str(logdir)]) == 0
        report_out = capsys.readouterr().out
        assert report_out.startswith(f"== {logdir}/lstm: loss "), report_out[:200]


def test_unknown_model_lists_close_matches(tmp_path, capsys):
    assert main(["train", "mlp_sigmod", "--logdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'mlp_sigmod'" in err and "mlp_sigmoid" in err
    assert not os.listdir(tmp_path)  # nothing trained, nothing written


def test_unknown_data_set(tmp_path, capsys):
    argv = ["compare", "lstm", "gru", "--data", "addding", "--logdir", str(tmp_path)]
    assert main(argv) == 2
    assert "Did you mean: adding" in capsys.readouterr().err


def test_epochs_and_steps_are_exclusive(capsys):
    assert main(["compare", "lstm", "gru", "--epochs", "2", "--steps", "5"]) == 2
    assert "not allowed with argument --epochs" in capsys.readouterr().err


def test_bad_number(tmp_path, capsys):
    assert main(["train", "lstm", "--steps", "0", "--logdir", str(tmp_path)]) == 2
    assert "`steps` must be a positive integer" in capsys.readouterr().err


def _result(name, **overrides):
    fields = dict(
        experiment="exp",
        config=RunConfig("cnn_bn", name=name, target=0.9),
        log_dir="unused",
        steps=100,
        seconds=12.3,
        loss=0.5,
        val_loss=float("nan"),
        val_accuracy=0.875,
        first_ratio=1.5e-7,
        last_ratio=float("nan"),
        steps_to_target=None,
        diverged_at=None,
        findings=[],
    )
    fields.update(overrides)
    return RunResult(**fields)


def test_results_table_cells():
    table = results_markdown.results_table(
        [_result("a"), _result("b", steps_to_target=40), _result("c", diverged_at=7)]
    )
    lines = table.splitlines()
    assert len(lines) == 5 and len({len(line) for line in lines}) == 1
    a, b, c = (line.split("|")[1:-1] for line in lines[2:])
    cells = dict(
        zip(results_markdown.COLUMNS, (cell.strip() for cell in a), strict=True)
    )
    assert cells["in/out @1"] == "1.5e-07" and cells["in/out @end"] == "n/a"
    assert cells["test loss"] == "nan" and cells["test acc"] == "0.875"
    assert cells["event"] == "90% not reached" and cells["findings"] == "none"
    assert "90% at step 40" in b[8] and "loss NaN at step 7" in c[8]


def test_regression_target_gives_the_sequences_it_took():
    config = RunConfig("lstm", name="lstm_T50", target=demo.ADDING_TARGET)
    reached = _result("r", config=config, val_accuracy=None, steps_to_target=540)
    missed = _result("m", config=config, val_accuracy=None)
    table = results_markdown.results_table([reached, missed])
    assert "MSE<=0.0167 at step 540 (17,280 seq.)" in table
    assert "MSE<=0.0167 not reached" in table


def test_demo_rows_6_and_10_and_the_full_demo():
    default = {e.name: e for e in demo.demo_experiments()}
    row6 = default["resnet34_skips_nobn"].runs
    assert [r.model for r in row6] == ["resnet34_plain", "resnet34"]
    assert all(r.model_kwargs["batchnorm"] is False for r in row6)
    adding = default["adding_lengths"].runs
    assert {r.data_kwargs["length"] for r in adding} == set(demo.ADDING_LENGTHS)
    assert all(r.target == demo.ADDING_TARGET for r in adding)
    full = {e.name: e for e in demo.demo_experiments(full=True)}
    lengths = {r.data_kwargs["length"] for r in full["adding_lengths"].runs}
    assert max(lengths) >= 100 and set(demo.ADDING_LENGTHS) <= lengths
    bn_or_skips = [r.model for r in full["resnet18_bn_or_skips"].runs]
    assert bn_or_skips == ["resnet18_plain", "resnet18_plain_nobn", "resnet18"]
    assert full["resnet34_skips_nobn"].runs[0].epochs > row6[0].epochs
    assert set(default) < set(full)
