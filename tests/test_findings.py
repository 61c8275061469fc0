"""Findings as data: verbose, Keras's print channel, monitor.findings, on_finding."""

import logging
import warnings

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor
from kgrad.analysis import diagnostics
from kgrad.analysis.findings import Thresholds


def exploding_fit(monitor, epochs=30):
    """Linear regression with a learning rate far too large: norms grow ~10x/step."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32") * 3
    y = rng.normal(size=(16, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, name="d")], name="reg"
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    callbacks = [] if monitor is None else [monitor]
    history = model.fit(
        x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks
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
    assert finding.severity == "warning" and finding.layers == ("d",)
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
        ({"verbose": 3}, ValueError, "Received: verbose=3"),
        ({"on_finding": "stop"}, TypeError, "Received: on_finding='stop'"),
        (
            {"thresholds": {"vanishing_orders": 2.0}},
            ValueError,
            r"`thresholds` has no field 'vanishing_orders' .* Did you mean: "
            r"vanishing_ratio\? Received: thresholds=\{'vanishing_orders': 2.0\}",
        ),
        ({"thresholds": {"window": 0}}, ValueError, "Received: window=0"),
        ({"thresholds": "strict"}, TypeError, "Received: thresholds='strict'"),
    ],
)
def test_bad_findings_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        GradientMonitor("logs", **kwargs)


def test_thresholds_as_a_dict_of_known_fields_are_used_and_checked_on_assignment():
    monitor = GradientMonitor("logs", thresholds={"window": 3, "dead_share": 0.7})
    assert monitor.thresholds == Thresholds(window=3, dead_share=0.7)
    monitor.thresholds = None
    assert monitor.thresholds is None
    with pytest.raises(ValueError, match="no field 'windows'"):
        monitor.thresholds = {"windows": 3}


def test_a_diagnosis_that_raises_is_warned_once_and_training_goes_on(
    tmp_path, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("a broken rule")

    keras.utils.set_random_seed(1)
    plain, plain_history = exploding_fit(None, epochs=6)
    monkeypatch.setattr(diagnostics, "diagnose", broken)
    keras.utils.set_random_seed(1)
    monitor = GradientMonitor(tmp_path, norms_every="batch", verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, history = exploding_fit(monitor, epochs=6)
    failures = [w for w in caught if "diagnosis" in str(w.message)]
    assert len(failures) == 1, [str(w.message) for w in caught]
    assert "kgrad: the diagnosis of" in str(failures[0].message)
    assert "RuntimeError: a broken rule" in str(failures[0].message)
    assert history.history == plain_history.history
    for a, b in zip(plain.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(history.history["loss"]) == 6
