"""`kgrad.monitor.log.chance`: the loss of predicting every class equally
likely, from the compiled loss and the output's width, and its place in the
run's info."""

import math

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor
from kgrad.analysis import report
from kgrad.monitor.log.chance import chance_loss


def _model(width, loss):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(width)])
    model.compile(optimizer="sgd", loss=loss)
    return model


@pytest.mark.parametrize(
    "width, loss, expected",
    [
        (4, keras.losses.SparseCategoricalCrossentropy(from_logits=True), 4),
        (10, "sparse_categorical_crossentropy", 10),
        (3, keras.losses.CategoricalCrossentropy(label_smoothing=0.1), 3),
        (3, keras.losses.categorical_crossentropy, 3),
        (1, "binary_crossentropy", 2),
    ],
)
def test_cross_entropy_at_chance_is_ln_of_the_classes(width, loss, expected):
    assert chance_loss(_model(width, loss)) == pytest.approx(math.log(expected))


@pytest.mark.parametrize(
    "width, loss",
    [(1, "mse"), (4, "mae"), (1, "sparse_categorical_crossentropy"), (4, None)],
)
def test_unknown_when_no_data_free_chance_level_exists(width, loss):
    # a regression's mean predictor needs its targets; one class is no choice
    assert chance_loss(_model(width, loss)) is None


def test_a_model_without_outputs_is_unknown():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    model = Subclassed()
    model.compile(loss="sparse_categorical_crossentropy")
    assert chance_loss(model) is None


def test_the_run_info_records_it(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = rng.integers(0, 5, 64)
    model = _model(5, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = GradientMonitor(tmp_path, histograms_every=None, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[monitor], verbose=0)
    _, info = report.load_run(tmp_path)
    assert info["chance_loss"] == pytest.approx(math.log(5))
