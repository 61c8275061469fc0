"""GradientMonitor under tf.distribute, each run in its own process.

Logical devices and TF_CONFIG must be set before TensorFlow starts, so the
runs are scripts in tests/distributed/ started as subprocesses, bounded in time.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.plugins.histogram import summary_v2 as histogram_summary
from tensorboard.util import tensor_util

import kgrad

SCRIPTS = Path(__file__).parent / "distributed"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def run_mirrored(log_dir, *args):
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "mirrored_run.py"), str(log_dir), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mirrored_logs_the_all_reduced_gradients(tmp_path):
    out = run_mirrored(tmp_path)
    assert out["replicas"] == 2
    for path, v in out["variables"].items():
        assert v["logged_norm"] == pytest.approx(v["expected_norm"], rel=1e-5), path
        # One replica's share alone would be a different number.
        assert v["replica_share_norm"] != pytest.approx(v["expected_norm"], rel=1e-3)
        reference = histogram_summary.histogram_pb("t", v["expected_finite"], buckets=6)
        expected = tensor_util.make_ndarray(reference.value[0].tensor)
        hist = np.array(v["logged_hist"])
        np.testing.assert_array_equal(hist[:, 2], expected[:, 2])
        np.testing.assert_allclose(hist[:, :2], expected[:, :2], rtol=1e-5, atol=1e-7)


def test_mirrored_counts_nonfinite_entries_across_replicas(tmp_path):
    out = run_mirrored(tmp_path, "nan")
    counts = {p: v["expected_nonfinite"] for p, v in out["variables"].items()}
    assert counts["hidden/kernel"] > 0  # the NaN was on the second replica
    for path, v in out["variables"].items():
        assert v["logged_nonfinite"] == v["expected_nonfinite"], path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multiworker_only_the_chief_writes(tmp_path, events):
    ports = [str(free_port()), str(free_port())]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPTS / "multiworker_run.py"),
                str(i),
                *ports,
                str(tmp_path / f"worker{i}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for i in range(2)
    ]
    try:
        outputs = [w.communicate(timeout=180) for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, (_, stderr) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, stderr[-3000:]
    expected = json.loads(outputs[0][0].strip().splitlines()[-1])["expected"]
    assert not list((tmp_path / "worker1").rglob("events.out.*"))
    logged = events(tmp_path / "worker0" / "train")
    # `record()` is handed variables and no model: their paths name the model.
    ((step, norm),) = logged["grad_norm/sequential/dense/kernel"]
    # The chief logged the gradient of the global batch, summed over workers.
    assert step == 1 and float(norm) == pytest.approx(expected, rel=1e-5)
    assert logged["grad_hist/sequential/dense/kernel"][0][1][:, 2].sum() == 6 * 5


def test_unsupported_strategy_is_rejected_at_set_model():
    class FakeModel:
        name = "m"
        optimizer = object()
        distribute_strategy = object.__new__(
            tf.distribute.experimental.ParameterServerStrategy
        )

    with pytest.raises(ValueError, match="Received: a model trained under"):
        kgrad.GradientMonitor("runs").set_model(FakeModel())


def test_mirrored_temporal_profile_is_all_reduced():
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "mirrored_temporal.py")],
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    np.testing.assert_allclose(out["logged"], out["expected"], rtol=1e-5)
    # One replica's share alone would be a different profile.
    assert not np.allclose(out["one_replica"], out["expected"], rtol=1e-2)


def test_mirrored_activation_statistics_average_each_replicas_own_share(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "mirrored_activations.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**ENV, "PYTHONPATH": str(SCRIPTS.parent.parent)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["logged"] == pytest.approx(out["replica_mean"], abs=1e-6)
    # Outputs pooled across replicas (a race between the replicas' threads)
    # would give other numbers: every unit lives on the first half.
    assert out["pooled"][1] != pytest.approx(out["replica_mean"][1], abs=0.1)


def test_mirrored_noise_scale_sums_per_example_norms_over_replicas(tmp_path):
    """Each replica's per-example norms, summed over the replicas, give the
    estimator of one device (examples, not replicas, as the small batches)."""
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "mirrored_noise_scale.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and out["batch"] == 16
    assert out["logged"] == pytest.approx(out["expected"], rel=1e-4)
