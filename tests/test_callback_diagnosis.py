"""GradientMonitor's diagnosis while training: findings, on_nonfinite, pictures."""

import io

import keras
import matplotlib.image
import numpy as np
import pytest

from kgrad import GradientMonitor, data, zoo

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def digits_fit(model, monitor, epochs=2):
    ds = data.load("digits_flat")
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=LOSS)
    return model.fit(
        ds.x_train[:256],
        ds.y_train[:256],
        batch_size=32,
        epochs=epochs,
        verbose=0,
        callbacks=[monitor],
    )


def test_vanishing_is_printed_once_and_written(tmp_path, events, capsys):
    model = zoo.build("mlp_sigmoid", depth=12, width=16)
    monitor = GradientMonitor(tmp_path, norms_every=4, first_steps=8)
    digits_fit(model, monitor, epochs=3)
    out = capsys.readouterr().out
    monitor.flush()  # the gradient-flow figure is drawn in the background
    assert out.count("vanishing gradients") == 1
    logged = events(tmp_path / "train")
    ((_, text),) = logged["kgrad/findings"]
    assert b"vanishing gradients" in text.item()
    ((_, image),) = logged["kgrad/gradient_flow"]
    width, height, png = image
    picture = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert picture.shape[:2] == (int(height), int(width))
    assert (tmp_path / "gradient_flow.png").read_bytes() == png
    layout = logged["custom_scalars__config__"]
    assert b"grad_norm/dense_01/kernel" in layout[0][1].item()


def test_healthy_relu_network_has_no_finding(tmp_path, events, capsys):
    model = zoo.build("mlp_relu_he", depth=12, width=16)
    digits_fit(model, GradientMonitor(tmp_path, norms_every=4, first_steps=8), epochs=3)
    assert "vanishing" not in capsys.readouterr().out
    findings = events(tmp_path / "train").get("kgrad/findings", [])
    assert all(b"vanishing" not in text.item() for _, text in findings)


def test_dead_relu_layer_is_found(tmp_path, capsys):
    inputs = keras.Input((64,))
    dead = keras.layers.Dense(
        16,
        activation="relu",
        name="dead",
        bias_initializer=keras.initializers.Constant(-50.0),
    )(inputs)
    alive = keras.layers.Dense(16, activation="relu", name="alive")(inputs)
    outputs = keras.layers.Dense(10, name="output")(
        keras.layers.Concatenate()([dead, alive])
    )
    digits_fit(keras.Model(inputs, outputs), GradientMonitor(tmp_path), epochs=1)
    out = capsys.readouterr().out
    assert "dead ReLU units in dead" in out
    assert "alive" not in out


def exploding_rnn(length=30, recurrent_scale=2.0):
    model = zoo.build(
        "rnn_exploding",
        units=16,
        input_shape=(length, 2),
        recurrent_scale=recurrent_scale,
    )
    ds = data.load("adding", length=length, n_train=128, n_test=16)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model, ds


def test_exploding_rnn_raises_naming_the_recurrent_layer(tmp_path):
    # Recurrent gain 4 over 58 steps: the loss is still finite (~1e37) but the
    # gradients overflow inside the recurrence, not in the output layer.
    model, ds = exploding_rnn(length=58, recurrent_scale=4.0)
    monitor = GradientMonitor(tmp_path, on_nonfinite="raise")
    with pytest.raises(FloatingPointError, match="non-finite.*rnn_01") as error:
        model.fit(
            ds.x_train,
            ds.y_train,
            batch_size=16,
            epochs=5,
            verbose=0,
            callbacks=[monitor],
        )
    assert "clipnorm=1.0" in str(error.value)
    assert "in output" not in str(error.value)


def test_on_nonfinite_stop_ends_training(tmp_path, capsys):
    model, ds = exploding_rnn(length=58, recurrent_scale=4.0)
    monitor = GradientMonitor(tmp_path, on_nonfinite="stop")
    history = model.fit(
        ds.x_train, ds.y_train, batch_size=16, epochs=5, verbose=0, callbacks=[monitor]
    )
    assert len(history.history["loss"]) < 5
    assert "training stops" in capsys.readouterr().out


def test_clipping_keeps_the_exploding_rnn_finite(tmp_path, capsys):
    model, ds = exploding_rnn()
    model.compile(optimizer=keras.optimizers.SGD(0.05, clipnorm=1.0), loss="mse")
    history = model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=16,
        epochs=5,
        verbose=0,
        callbacks=[GradientMonitor(tmp_path, on_nonfinite="stop")],
    )
    assert len(history.history["loss"]) == 5
    assert np.all(np.isfinite(history.history["loss"]))
    assert "non-finite" not in capsys.readouterr().out


@pytest.mark.parametrize("figure_secs, expected", [(300, 1), (0, 2), (None, 0)])
def test_figure_is_rate_limited(tmp_path, events, figure_secs, expected):
    model = zoo.build("mlp_relu_he", depth=3, width=8)
    monitor = GradientMonitor(tmp_path, figure_secs=figure_secs)
    digits_fit(model, monitor, epochs=1)
    digits_fit(model, monitor, epochs=1)
    monitor.flush()
    images = events(tmp_path / "train").get("kgrad/gradient_flow", [])
    assert len(images) == expected
    assert (tmp_path / "gradient_flow.png").exists() == (expected > 0)
