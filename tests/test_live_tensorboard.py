"""A live TensorBoard shows kgrad's and Keras's tags from one `log_dir` while training.

Keras's `TensorBoard` callback and `GradientMonitor` both write `log_dir/train`,
each to its own event file. TensorBoard's loader follows only the newest file
of a run unless `--reload_multifile=true` (README, "TensorBoard beside Keras's
callback"): this test starts `tensorboard` on loopback with that flag before
training and reads both callbacks' scalars from its HTTP API.
"""

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor

WAIT_SECS = 120
EPOCHS = 5


def _tensorboard_command():
    found = shutil.which("tensorboard", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "tensorboard.main"]


@pytest.fixture
def live_tensorboard(tmp_path):
    """`(log_dir, url)` of a TensorBoard serving `log_dir` on 127.0.0.1."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    command = _tensorboard_command() + [
        "--logdir",
        str(log_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--load_fast=false",
        "--reload_multifile=true",
        "--reload_interval=1",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    url, deadline = None, time.monotonic() + WAIT_SECS
    try:
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "tensorboard exited"
                continue
            match = re.search(r"(http://[\w.]+:\d+)/", line)
            url = match.group(1) if match else None
        assert url, f"tensorboard did not start within {WAIT_SECS} s"
        yield log_dir, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _scalars(url, tag):
    query = f"{url}/data/plugin/scalars/scalars?run=train&tag={tag}"
    with urllib.request.urlopen(query, timeout=10) as response:
        return [(step, value) for _, step, value in json.load(response)]


def _wait_for(url, tag, count):
    deadline = time.monotonic() + WAIT_SECS
    points = []
    while time.monotonic() < deadline:
        try:
            points = _scalars(url, tag)
        except OSError:  # not loaded yet: 400 until the tag exists
            points = []
        if len(points) >= count:
            return points
        time.sleep(1)
    return points


def test_both_callbacks_tags_come_through_a_running_tensorboard(live_tensorboard):
    log_dir, url = live_tensorboard
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.normal(size=(32, 3)).astype("float32")
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(3, name="d")], name="m"
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    callbacks = [
        keras.callbacks.TensorBoard(str(log_dir)),
        GradientMonitor(log_dir, norms_every="epoch", figure_secs=None, verbose=0),
    ]
    history = model.fit(
        x, y, batch_size=8, epochs=EPOCHS, verbose=0, callbacks=callbacks
    )
    keras_points = _wait_for(url, "epoch_loss", EPOCHS)
    assert [s for s, _ in keras_points] == list(range(EPOCHS))
    np.testing.assert_allclose(
        [v for _, v in keras_points], history.history["loss"], rtol=1e-6
    )
    kgrad_points = _wait_for(url, "grad_norm/global", 12)
    # first_steps: steps 1-8 and 16 (4 steps per epoch, 20 steps; 5, 9, 13, 17
    # are epoch starts): every step kgrad wrote is served.
    assert [s for s, _ in kgrad_points] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17]
