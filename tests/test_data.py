"""Tests for kgrad.data: embedded sets, generated tasks, the opt-in Keras sets."""

import keras
import numpy as np
import pytest

from kgrad import data


def test_digits_images_and_flat():
    images = data.digits()
    flat = data.load("digits_flat")
    assert len(images.x_train) + len(images.x_test) == 1797
    assert images.x_train.shape[1:] == (8, 8, 1) == images.input_shape
    assert flat.x_train.shape[1:] == (64,)
    for ds in (images, flat):
        assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
        assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
        assert set(np.unique(ds.y_test)) == set(range(10))
        assert ds.task == "classification" and ds.num_classes == ds.output_units == 10
    np.testing.assert_array_equal(images.x_train.reshape(-1, 64), flat.x_train)


def test_digits_split_is_reproducible():
    a, b, c = data.digits(seed=3), data.digits(seed=3), data.digits(seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert len(data.digits(test_fraction=0.5).x_test) == 899


def test_adding_problem_targets_and_markers():
    x, y = data.adding_problem(length=20, n=500, seed=1)
    assert x.shape == (500, 20, 2) and y.shape == (500, 1)
    assert x.dtype == y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(axis=1), 2.0)
    np.testing.assert_array_equal(markers[:, :10].sum(axis=1), 1.0)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1), rtol=1e-6)
    x2, y2 = data.adding_problem(length=20, n=500, seed=1)
    np.testing.assert_array_equal(x, x2)


def test_adding_problem_predict_the_mean_mse_is_one_sixth():
    # Std of the estimate is about 0.2 / sqrt(n) = 0.0014 for n = 20,000.
    _, y = data.adding_problem(length=10, n=20_000, seed=0)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(0.167, abs=0.005)
    assert np.mean((y - y.mean()) ** 2) == pytest.approx(
        data.ADDING_MEAN_MSE, abs=0.005
    )


def test_temporal_order_label_is_the_order_of_x_and_y():
    length = 40
    x, y = data.temporal_order(length=length, n=400, seed=2)
    assert x.shape == (400, length, 6) and y.shape == (400,) and y.dtype == np.int32
    np.testing.assert_array_equal(x.sum(axis=-1), 1.0)
    symbols = x.argmax(axis=-1)
    for row, label in zip(symbols, y, strict=True):
        positions = np.flatnonzero(row >= 4)
        assert len(positions) == 2
        first, second = positions
        assert 4 <= first < 8 and 20 <= second < 24
        assert label == 2 * (row[first] == 5) + (row[second] == 5)
    assert set(np.unique(y)) == {0, 1, 2, 3}


def test_sequence_loaders_split_and_describe():
    adding = data.load("adding", length=12, n_train=30, n_test=10)
    assert adding.x_train.shape == (30, 12, 2) and adding.x_test.shape == (10, 12, 2)
    assert adding.task == "regression" and adding.num_classes is None
    assert adding.output_units == 1
    order = data.load("temporal_order", length=12, n_train=30, n_test=10, seed=5)
    assert order.input_shape == (12, 6) and order.num_classes == 4
    assert order.task == "classification"


@pytest.mark.parametrize(
    "name, kwargs, error, message",
    [
        ("adding", {"length": 1}, ValueError, "Received: length=1"),
        ("adding", {"n_train": 0}, ValueError, "Received: n_train=0"),
        ("adding", {"length": 2.5}, TypeError, "Received: length=2.5"),
        ("temporal_order", {"length": 9}, ValueError, "Received: length=9"),
        ("digits", {"test_fraction": 1.5}, ValueError, "test_fraction=1.5"),
        ("digits", {"colour": True}, TypeError, "colour"),
        ("mnist", {"n_train": -1}, ValueError, "n_train=-1"),
    ],
)
def test_bad_arguments_are_rejected(name, kwargs, error, message):
    with pytest.raises(error, match=message):
        data.load(name, **kwargs)


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="Did you mean: digits"):
        data.load("digit")
    assert data.names() == tuple(sorted(data.names()))
    assert {
        "digits",
        "digits_flat",
        "adding",
        "temporal_order",
        "mnist",
        "cifar10",
    } <= set(data.names())


def _fake_load_data(shape, label_shape):
    def load_data():
        rng = np.random.default_rng(0)
        train = rng.integers(0, 256, size=(50, *shape), dtype=np.uint8)
        test = rng.integers(0, 256, size=(20, *shape), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(70, *label_shape), dtype=np.uint8)
        return (train, labels[:50]), (test, labels[50:])

    return load_data


@pytest.mark.parametrize(
    "name, shape, label_shape, input_shape",
    [
        ("mnist", (28, 28), (), (28, 28, 1)),
        ("cifar10", (32, 32, 3), (1,), (32, 32, 3)),
    ],
)
def test_keras_datasets_are_opt_in_and_normalized(
    monkeypatch, name, shape, label_shape, input_shape
):
    # Never downloads: keras.datasets.<name>.load_data is replaced.
    module = getattr(keras.datasets, name)
    monkeypatch.setattr(module, "load_data", _fake_load_data(shape, label_shape))
    ds = data.load(name, n_train=10)
    assert ds.x_train.shape == (10, *input_shape) and ds.x_test.shape == (
        20,
        *input_shape,
    )
    assert ds.y_train.shape == (10,) and ds.y_train.dtype == np.int32
    assert (
        ds.x_train.dtype == np.float32
        and 0.0 <= ds.x_train.min() <= ds.x_train.max() <= 1.0
    )
    assert ds.num_classes == 10 and ds.name == name
