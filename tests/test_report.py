"""kgrad.analysis.report on real event files: read back, diagnose, format."""

import os

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor
from kgrad.analysis import layer_profile, report
from kgrad.cli import main
from kgrad.monitor.log import event_writer, summaries

DEPTH, WIDTH = 12, 16


def train_mlp(log_dir, activation, initializer):
    """A tiny deep MLP trained for 8 steps with norms logged at every step."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = rng.integers(0, 3, size=256)
    model = keras.Sequential(
        [keras.Input((8,))]
        + [
            keras.layers.Dense(
                WIDTH,
                activation=activation,
                kernel_initializer=initializer,
                name=f"dense_{i:02d}",
            )
            for i in range(1, DEPTH + 1)
        ]
        + [keras.layers.Dense(3, name="output")],
        name=f"mlp_{activation}",
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor = GradientMonitor(log_dir, norms_every=1, histograms_every=0)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[monitor])
    return str(log_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "sigmoid": train_mlp(root / "sigmoid", "sigmoid", "glorot_uniform"),
        "relu": train_mlp(root / "relu", "relu", "he_normal"),
    }


def test_load_run_matches_tensorboards_reader(trained, events):
    scalars, run_info = report.load_run(trained["sigmoid"])
    expected = events(os.path.join(trained["sigmoid"], "train"))
    expected_scalars = {
        tag: [(step, float(value)) for step, value in series]
        for tag, series in expected.items()
        if not tag.startswith(
            ("grad_hist/", "kgrad/findings", "kgrad/run_info", "kgrad/gradient_flow")
            + ("custom_scalars__",)
        )
    }
    assert scalars.keys() == expected_scalars.keys()
    for tag, series in expected_scalars.items():
        assert [s for s, _ in scalars[tag]] == [s for s, _ in series], tag
        np.testing.assert_allclose([v for _, v in scalars[tag]], [v for _, v in series])
    assert [s for s, _ in scalars["grad_norm/global"]] == list(range(1, 9))
    assert run_info["model"] == "mlp_sigmoid"
    assert run_info["batch_size"] == 32
    assert run_info["variables"][0] == "dense_01/kernel"


def test_load_run_accepts_the_run_dir_and_its_parent(trained):
    parent = report.load_run(trained["relu"])
    child = report.load_run(os.path.join(trained["relu"], "train"))
    assert parent == child


def test_sigmoid_mlp_vanishes_relu_he_does_not(trained):
    runs = {name: report.load_run(path) for name, path in trained.items()}
    sigmoid = report.diagnostics.diagnose(*runs["sigmoid"])
    relu = report.diagnostics.diagnose(*runs["relu"])
    assert "vanishing" in [f.kind for f in sigmoid]
    (vanishing,) = [f for f in sigmoid if f.kind == "vanishing"]
    assert vanishing.layers[0] == "dense_01"
    assert "vanishing" not in [f.kind for f in relu]
    rows = layer_profile.layer_profile(*runs["relu"])
    assert len(rows) == DEPTH + 1
    assert rows[0].side == "input" and rows[-1].side == "output"
    assert 1e-1 < rows[0].ratio < 1e1  # docs/CLAIMS.md, claim 2: within about one order


def test_kgrad_report_command_on_trained_runs(trained, capsys):
    assert main(["report", trained["sigmoid"], trained["relu"]]) == 0
    out = capsys.readouterr().out
    assert out.count("layer (input -> output)") == 2
    assert "dense_01 [in]" in out and "output [out]" in out
    assert "vanishing gradients in dense_01" in out
    assert "== comparison" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    # the loss beside the gradients: the logged values, at the first and last step
    scalars, _ = report.load_run(trained["relu"])
    (first, start), (last, end) = scalars["kgrad/loss"][0], scalars["kgrad/loss"][-1]
    assert f"loss {start:.2e} (step {first}) -> {end:.2e} (step {last})" in out
    assert f"at step {last} (loss {end:.3e}):" in out
    print(out)  # shown with pytest -s


def write_run(run_dir, steps, norm, model="m"):
    writer = event_writer.RunWriter(str(run_dir))
    info = {"model": model, "variables": [f"{model}/a/kernel", f"{model}/b/kernel"]}
    writer.write(steps[0], [summaries.run_info_value(info)])
    for step in steps:
        writer.write(
            step,
            [
                summaries.scalar_value("grad_norm/global", norm),
                summaries.scalar_value(f"grad_norm/{model}/a/kernel", norm / 10),
                summaries.scalar_value(f"grad_norm/{model}/b/kernel", norm),
            ],
        )
    writer.close()


def test_a_new_run_in_the_same_directory_replaces_the_old_steps(tmp_path):
    write_run(tmp_path / "train", range(1, 11), 1.0)
    write_run(tmp_path / "train", range(1, 4), 2.0)
    scalars, _ = report.load_run(tmp_path)
    assert scalars["grad_norm/global"] == [(1, 2.0), (2, 2.0), (3, 2.0)]


def test_directories_without_kgrad_logs(tmp_path):
    keras_only = tmp_path / "keras_only" / "train"
    keras_only.mkdir(parents=True)
    (keras_only / "events.out.tfevents.1.host.v2").write_bytes(b"")
    with pytest.raises(ValueError, match="No kgrad logs in .*keras_only"):
        report.load_run(tmp_path / "keras_only")
    with pytest.raises(ValueError, match="is not a directory"):
        report.load_run(tmp_path / "missing")
    write_run(tmp_path / "runs" / "a" / "train", [1], 1.0)
    with pytest.raises(ValueError, match=r"Runs found below it: .*runs[/\\]a"):
        report.load_run(tmp_path / "runs")
    writer = event_writer.RunWriter(str(tmp_path / "early" / "train"))
    writer.write(1, [summaries.run_info_value({"model": "m"})])
    writer.close()
    with pytest.raises(ValueError, match="no gradient norms yet"):
        report.load_run(tmp_path / "early")
