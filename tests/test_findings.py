"""Findings as data: verbose, Keras's print channel, monitor.findings, on_finding."""

import logging

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor


def exploding_fit(monitor, epochs=30):
    """Linear regression with a learning rate far too large: norms grow ~10x/step."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32") * 3
    y = rng.normal(size=(16, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, name="d")], name="reg"
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    history = model.fit(
        x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=[monitor]
    )
    return model, history


def stop_on_exploding(finding, monitor):
    """The README recipe: stop like TerminateOnNaN when gradients explode."""
    if finding.kind in ("exploding", "nonfinite"):
        monitor.model.stop_training = True


def test_on_finding_stops_training_on_exploding_gradients(tmp_path, events):
    seen = []

    def hook(finding, monitor):
        seen.append(finding)
        stop_on_exploding(finding, monitor)

    monitor = GradientMonitor(tmp_path, norms_every=1, verbose=0, on_finding=hook)
    _, history = exploding_fit(monitor, epochs=30)
    ran = len(history.history["loss"])
    assert [f.kind for f in seen] == ["exploding"]
    assert ran < 30
    assert seen[0].step == ran  # one step per epoch: found at the last one run
    numbers = dict(seen[0].numbers)
    assert numbers["growth"] >= numbers["threshold"] == 1e3
    assert numbers["peak_norm"] / numbers["start_norm"] == pytest.approx(
        numbers["growth"]
    )
    assert monitor.findings.current == seen
    assert monitor.findings.history == seen
    # A sequence of the current findings, with .history and .runs beside it.
    assert list(monitor.findings) == seen and len(monitor.findings) == 1
    assert monitor.findings[0] == seen[0] and monitor.findings[-1:] == seen
    assert [f for f in monitor.findings if f.kind == "exploding"] == seen
    assert monitor.findings.runs == {"": seen}
    (written,) = events(tmp_path / "train")["kgrad/findings"]
    assert written[0] == seen[0].step
    assert "exploding gradients" in written[1].reshape(-1)[0].decode()


def test_without_hook_training_runs_on_and_findings_are_data(tmp_path):
    monitor = GradientMonitor(tmp_path, norms_every=1, verbose=0)
    _, history = exploding_fit(monitor, epochs=12)
    assert len(history.history["loss"]) == 12
    kinds = [f.kind for f in monitor.findings.history]
    assert kinds[0] == "exploding"
    finding = monitor.findings.history[0]
    assert finding.severity == "warning" and finding.layers == ("reg/d",)
    assert finding.advice and isinstance(finding.step, int)


def test_verbose_prints_through_keras_channel(tmp_path, capsys, caplog):
    exploding_fit(GradientMonitor(tmp_path / "a", norms_every=1, verbose=0), 12)
    assert "kgrad" not in capsys.readouterr().out
    exploding_fit(GradientMonitor(tmp_path / "b", norms_every=1), 12)
    assert "kgrad: Warning: exploding gradients" in capsys.readouterr().out
    keras.config.disable_interactive_logging()
    try:
        with caplog.at_level(logging.INFO):
            exploding_fit(GradientMonitor(tmp_path / "c", norms_every=1), 12)
    finally:
        keras.config.enable_interactive_logging()
    assert "kgrad" not in capsys.readouterr().out
    assert any("exploding gradients" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"verbose": 2}, ValueError, "Received: verbose=2"),
        ({"on_finding": "stop"}, TypeError, "Received: on_finding='stop'"),
    ],
)
def test_bad_findings_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        GradientMonitor("logs", **kwargs)
