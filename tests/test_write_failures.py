"""Honest under faults: a full disk loses only the steps it hit, figures stay whole."""

import errno
import logging
import os

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor
from kgrad.analysis import atomic, report
from kgrad.cli import main
from kgrad.monitor.log import event_writer


class Disk:
    """A disk that is full on some training steps (set by `DiskFull`)."""

    full = False


class FlakyEventFile(event_writer.EventFile):
    """An event file on `Disk`: while it is full, opening and writing fail,
    and a failing write leaves half a record behind, as a real full disk does."""

    def __init__(self, log_dir, suffix=""):
        if Disk.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().__init__(log_dir, suffix)

    def write(self, data):
        if Disk.full:
            self._records.flush()
            with open(self.path, "ab") as file:
                file.write(b"\x2a\x00\x00\x00\x00\x00\x00\x00\x11\x22")
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(data)


class DiskFull(keras.callbacks.Callback):
    def __init__(self, steps):
        super().__init__()
        self.steps = steps
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.step += 1
        Disk.full = self.step in self.steps


@pytest.fixture
def flaky_disk(monkeypatch):
    monkeypatch.setattr(event_writer, "EventFile", FlakyEventFile)
    yield
    Disk.full = False


def test_steps_after_a_full_disk_are_written_and_the_lost_ones_named(
    tmp_path, flaky_disk, classification_data, events, caplog, capsys
):
    x, y = classification_data
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, "relu"), keras.layers.Dense(3)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    monitor = GradientMonitor(tmp_path, norms_every="batch", figure_secs=None)
    with caplog.at_level(logging.WARNING, logger="kgrad"):
        model.fit(
            x,
            np.eye(3)[y],
            batch_size=4,
            epochs=2,  # 16 steps; the disk is full on steps 5 to 7
            verbose=0,
            callbacks=[DiskFull(range(5, 8)), monitor],
        )
    errors = [r.getMessage() for r in caplog.records]
    assert "No space left on device" in errors[0]
    assert errors[-1].endswith("steps 5-7 could not be written (a write failure).")
    first, second = sorted((tmp_path / "train").glob("*tfevents*"))
    assert [s for s, _ in events(first)["grad_norm/global"]] == [1, 2, 3, 4]
    after = events(second)  # the new file reads back with TensorBoard's reader
    assert [s for s, _ in after["grad_norm/global"]] == list(range(8, 17))
    scalars, run_info = report.load_run(tmp_path)
    steps = [s for s, _ in scalars["grad_norm/global"]]
    assert steps == [1, 2, 3, 4] + list(range(8, 17))
    assert run_info["missing_steps"] == [5, 6, 7]
    assert run_info["damaged_files"][0]["file"] == str(first)
    assert main(["report", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "steps 5-7 could not be written (a write failure)" in err


def test_a_figure_that_cannot_be_written_is_not_left_empty(tmp_path, monkeypatch):
    path = tmp_path / "gradient_flow.png"
    path.write_bytes(b"the previous figure")

    def half_then_full(file, data):
        file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_write_all", half_then_full)
    writer = event_writer.RunWriter(str(tmp_path / "train"))
    scalars = {"grad_norm/global": [(1, 1.0)], "grad_norm/m/d/kernel": [(1, 1.0)]}
    event_writer.write_gradient_flow(writer, str(path), scalars, {}, 1, "m")
    assert path.read_bytes() == b"the previous figure"
    assert sorted(os.listdir(tmp_path)) == ["gradient_flow.png", "train"]
    path.unlink()
    event_writer.write_gradient_flow(writer, str(path), scalars, {}, 1, "m")
    assert not path.exists()
    writer.close()
