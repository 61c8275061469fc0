"""One writer and one model per run: new runs instead of merges, read back."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor
from kgrad.analysis import report
from kgrad.cli import main
from kgrad.monitor.log import run_claim


def mlp(name, width=4):
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(width, "relu"), keras.layers.Dense(3)],
        name=name,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def fit(model, monitor, data, epochs=1):
    x, y = data
    model.fit(
        x, np.eye(3)[y], batch_size=8, epochs=epochs, verbose=0, callbacks=[monitor]
    )


def monitor(log_dir):
    return GradientMonitor(log_dir, norms_every="batch", figure_secs=None, verbose=0)


def test_a_monitor_reused_on_a_second_model_writes_a_new_run(
    tmp_path, classification_data, capsys
):
    shared = GradientMonitor(
        tmp_path, norms_every=3, first_steps=0, figure_secs=None, verbose=0
    )
    fit(mlp("first"), shared, classification_data, epochs=2)  # steps 1-8
    with pytest.warns(
        UserWarning,
        match=r"holds this monitor's run of another "
        r"model: this run goes to .*train_2",
    ):
        fit(mlp("second", width=5), shared, classification_data)  # steps 1-4
    first, first_info = report.load_run(tmp_path / "train")
    second, second_info = report.load_run(tmp_path / "train_2")
    assert (first_info["model"], second_info["model"]) == ("first", "second")
    assert [s for s, _ in first["grad_norm/global"]] == [1, 3, 6]
    assert [s for s, _ in second["grad_norm/global"]] == [1, 3]  # its own schedule
    assert not any(tag.startswith("grad_norm/second") for tag in first)
    assert not any(tag.startswith("grad_norm/first") for tag in second)
    assert main(["report", str(tmp_path), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["name"].rsplit("/", 1)[-1], r["model"]) for r in runs] == [
        (tmp_path.name, "first"),
        ("train_2", "second"),
    ]


def test_the_same_model_continues_its_run_with_a_new_monitor(
    tmp_path, classification_data
):
    model = mlp("same")
    fit(model, monitor(tmp_path), classification_data)
    fit(model, monitor(tmp_path), classification_data)
    scalars, _ = report.load_run(tmp_path)
    assert [s for s, _ in scalars["grad_norm/global"]] == list(range(1, 9))
    assert not (tmp_path / "train_2").exists()


def test_a_model_saved_and_loaded_again_continues_its_run_and_says_so(
    tmp_path, classification_data
):
    shared = monitor(tmp_path / "logs")
    model = mlp("saved")
    fit(model, shared, classification_data)  # steps 1-4
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    with pytest.warns(
        UserWarning,
        match=r"kgrad: model 'saved' continues its run in .*train from "
        r"step 5",
    ):
        fit(reloaded, shared, classification_data)  # steps 5-8
    with pytest.warns(
        UserWarning, match=r"holds a run of this model by an earlier monitor"
    ):
        fit(reloaded, monitor(tmp_path / "logs"), classification_data)  # 9-12
    scalars, _ = report.load_run(tmp_path / "logs" / "train")
    assert [s for s, _ in scalars["grad_norm/global"]] == list(range(1, 13))
    assert not (tmp_path / "logs" / "train_2").exists()


def test_a_fresh_model_of_the_same_name_is_a_new_run(tmp_path, classification_data):
    shared = monitor(tmp_path)
    fit(mlp("same"), shared, classification_data)
    with pytest.warns(UserWarning, match=r"this run goes to .*train_2"):
        fit(mlp("same"), shared, classification_data)  # its optimizer starts at 0
    scalars, _ = report.load_run(tmp_path / "train_2")
    assert [s for s, _ in scalars["grad_norm/global"]] == [1, 2, 3, 4]


def _claim_held_by(root, pid, model):
    root.mkdir(parents=True)
    held = dict(
        run_claim.model_identity(model),
        host=run_claim._HOST,
        pid=pid,
        token="another-writer",
    )
    (root / run_claim.CLAIM_FILE).write_text(json.dumps(held))


def test_a_run_another_process_is_writing_is_not_written_into(
    tmp_path, classification_data
):
    model = mlp("shared")
    model.build((None, 6))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _claim_held_by(tmp_path / "train", other.pid, model)
        with pytest.warns(
            UserWarning,
            match=rf"being written by another kgrad "
            rf"monitor \(process {other.pid} on .*train_2",
        ):
            fit(model, monitor(tmp_path), classification_data)
    finally:
        other.kill()
        other.wait()
    scalars, _ = report.load_run(tmp_path / "train_2")
    assert [s for s, _ in scalars["grad_norm/global"]] == [1, 2, 3, 4]
    # Once that process has ended, the same model continues its run there.
    fit(model, monitor(tmp_path), classification_data)
    scalars, _ = report.load_run(tmp_path / "train")
    assert [s for s, _ in scalars["grad_norm/global"]] == [5, 6, 7, 8]
