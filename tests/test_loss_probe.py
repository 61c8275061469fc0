"""The loss logged beside the gradients is the loss Keras trained on.

Each logged step's `kgrad/loss` is compared with the loss computed
independently from the weights the step started from and the batch it
trained on; the epoch metrics Keras reports are compared with `fit`'s history.
Event files are read back with TensorBoard's own reader.
"""

import warnings

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor
from kgrad.monitor.step.loss_probe import LossProbe, epoch_scalars

BATCH = 8


class _WeightsAtBatchBegin(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


def _model():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss, metrics=["accuracy"])
    return model, loss


def test_logged_loss_is_the_loss_of_the_step_weights_on_its_batch(
    tmp_path, classification_data, events
):
    x, y = classification_data
    model, loss_fn = _model()
    snapshots = _WeightsAtBatchBegin()
    monitor = GradientMonitor(tmp_path, norms_every="batch", verbose=0)
    history = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=2,
        shuffle=False,
        callbacks=[snapshots, monitor],
        verbose=0,
    )
    logged = {s: float(v) for s, v in events(tmp_path / "train")["kgrad/loss"]}
    batches = len(x) // BATCH
    assert sorted(logged) == list(range(1, 2 * batches + 1))
    twin, _ = _model()
    for step, weights in enumerate(snapshots.weights, start=1):
        twin.set_weights(weights)
        i = (step - 1) % batches
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        expected = float(loss_fn(yb, twin(xb, training=True)))
        assert logged[step] == pytest.approx(expected, rel=1e-5)
    # the losses differ from step to step: a constant would not pass
    assert len({round(v, 6) for v in logged.values()}) == len(logged)
    epoch = events(tmp_path / "train")
    for name in ("loss", "accuracy"):
        values = [float(v) for _, v in epoch[f"kgrad/epoch/{name}"]]
        assert values == pytest.approx(history.history[name], rel=1e-6)
    assert [s for s, _ in epoch["kgrad/epoch/loss"]] == [batches, 2 * batches]


def test_steps_per_execution_logs_the_mean_loss_of_the_execution(
    tmp_path, classification_data, events
):
    x, y = classification_data
    model, loss_fn = _model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.0), loss=loss_fn, steps_per_execution=2
    )
    monitor = GradientMonitor(tmp_path, norms_every="batch", verbose=0)
    model.fit(
        x, y, batch_size=BATCH, epochs=1, shuffle=False, callbacks=[monitor], verbose=0
    )
    logged = events(tmp_path / "train")["kgrad/loss"]
    # a learning rate of 0 keeps the weights: each execution's mean is exact
    per_batch = [
        float(loss_fn(y[i : i + BATCH], model(x[i : i + BATCH])))
        for i in range(0, len(x), BATCH)
    ]
    expected = [np.mean(per_batch[0:2]), np.mean(per_batch[2:4])]
    assert [float(v) for _, v in logged] == pytest.approx(expected, rel=1e-5)


def test_probe_returns_nothing_without_a_tracker_or_a_begin():
    probe = LossProbe()
    assert probe.end(object()) == []
    probe.begin(object())
    assert probe.end(object()) == []
    assert epoch_scalars({"loss": 1, "lr": "x"}) == [("kgrad/epoch/loss", 1.0)]


def test_a_tracker_that_cannot_be_read_warns_once_and_logs_no_loss():
    class Broken:
        @property
        def numpy(self):
            raise RuntimeError("device lost")

    model = type("M", (), {})()
    model._loss_tracker = type("T", (), {"total": Broken(), "count": Broken()})()
    probe = LossProbe()
    with pytest.warns(UserWarning, match="loss tracker could not be read"):
        probe.begin(model)
    assert probe.end(model) == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe.begin(model)
    assert probe.end(model) == [] and caught == []  # warned once only
