"""Builders of the tiny models and data of the diagnosis benchmark's runs.

Each `*_run(...)` returns a `build()` function that seeds everything and
returns `(model, x, y, batch_size)`, the model compiled; used by
`benchmarks/diagnosis/diagnosis_runs.py`.

Example:

    model, x, y, batch = mlp_run(depth=5, bias=-3.0)()
"""

import keras
import numpy as np

from kgrad.lab import data
from kgrad.lab.zoo.rnn import build_rnn
from kgrad.lab.zoo.transformer import build_transformer


def _seeded(seed=0):
    keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)


def _classes(rng, n=512, features=16, classes=4, random_labels=False):
    """A learnable linear classification task (or random labels)."""
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features, classes))
    y = rng.integers(0, classes, n) if random_labels else np.argmax(x @ w, axis=1)
    return x, y.astype("int32")


def _mlp(
    depth,
    width,
    activation="relu",
    init="he_normal",
    bias=0.0,
    out=4,
    softmax=False,
    batchnorm=False,
    features=16,
):
    layers = [keras.Input((features,))]
    for i in range(depth):
        layers.append(
            keras.layers.Dense(
                width,
                kernel_initializer=init,
                bias_initializer=keras.initializers.Constant(bias),
                name=f"dense_{i:02d}",
            )
        )
        if batchnorm:
            layers.append(keras.layers.BatchNormalization(name=f"bn_{i:02d}"))
        layers.append(keras.layers.Activation(activation, name=f"act_{i:02d}"))
    layers.append(
        keras.layers.Dense(
            out, activation=_plain_softmax if softmax else None, name="output"
        )
    )
    return keras.Sequential(layers)


def _plain_softmax(logits):
    """A hand-written softmax: Keras cannot recover the logits from it (it does
    from `keras.activations.softmax`), so a probability loss clips its outputs."""
    e = keras.ops.exp(logits - keras.ops.max(logits, axis=-1, keepdims=True))
    return e / keras.ops.sum(e, axis=-1, keepdims=True)


def _compile(model, optimizer, logits=True, loss=None):
    model.compile(
        optimizer=optimizer,
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
    )
    return model


def mlp_run(
    depth=3,
    width=32,
    activation="relu",
    init="he_normal",
    bias=0.0,
    optimizer=("adam", 1e-3),
    batch=32,
    softmax=False,
    logits=True,
    batchnorm=False,
    random_labels=False,
    seed=0,
):
    """A builder of an MLP classification run.

    `init` is an initializer's name, or a number: the standard deviation of
    normal weights, drawn from `seed` (an initializer made before `build`
    seeds would draw from the process's own random state).
    """

    def build():
        rng = _seeded(seed)
        x, y = _classes(rng, random_labels=random_labels)
        if isinstance(init, float | int):
            weights = keras.initializers.RandomNormal(stddev=init)
        else:
            weights = init
        model = _mlp(
            depth,
            width,
            activation,
            weights,
            bias,
            softmax=softmax,
            batchnorm=batchnorm,
        )
        kind, lr = optimizer
        opt = keras.optimizers.get(
            {"class_name": kind, "config": {"learning_rate": lr}}
        )
        return _compile(model, opt, logits), x, y, batch

    return build


def adding_run(
    cell,
    length,
    units=16,
    lr=1e-2,
    recurrent_scale=1.0,
    activation="tanh",
    sgd=False,
    clipnorm=None,
    random=False,
    seed=0,
):
    """A builder of a recurrent run on the adding problem (or random data)."""

    def build():
        rng = _seeded(seed)
        x, y = data.adding_problem(length=length, n=512, seed=seed)
        if random:
            x = rng.normal(size=x.shape).astype("float32")
            y = rng.normal(size=y.shape).astype("float32")
        model = build_rnn(
            cell=cell,
            units=units,
            input_shape=(length, 2),
            recurrent_scale=recurrent_scale,
            activation=activation,
        )
        cls = keras.optimizers.SGD if sgd else keras.optimizers.Adam
        model.compile(optimizer=cls(lr, clipnorm=clipnorm), loss="mse")
        return model, x, y, 32

    return build


def transformer_run(norm, blocks, lr=1e-3, seed=0):
    """A builder of a small Transformer on the temporal-order task (length 20)."""

    def build():
        _seeded(seed)
        x, y = data.temporal_order(length=20, n=512, seed=seed)
        model = build_transformer(
            blocks=blocks,
            d_model=16,
            heads=2,
            ff_dim=32,
            norm=norm,
            input_shape=(20, 6),
        )
        return _compile(model, keras.optimizers.Adam(lr)), x, y, 16

    return build


def applications_run(version, seed=0):
    """A keras.applications MobileNet (random weights) on 32x32 images."""

    def build():
        rng = _seeded(seed)
        x = rng.normal(size=(256, 32, 32, 3)).astype("float32")
        y = x[:, :16].mean(axis=(1, 2, 3)) > x[:, 16:].mean(axis=(1, 2, 3))
        common = dict(
            input_shape=(32, 32, 3), weights=None, classes=2, classifier_activation=None
        )
        if version == 2:
            model = keras.applications.MobileNetV2(alpha=0.35, **common)
        else:
            model = keras.applications.MobileNetV3Small(
                alpha=0.75, minimalistic=True, include_preprocessing=False, **common
            )
        return _compile(model, keras.optimizers.Adam(1e-3)), x, y.astype("int32"), 8

    return build
