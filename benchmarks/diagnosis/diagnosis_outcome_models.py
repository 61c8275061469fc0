"""Builders of the runs whose outcome is the problem: not learning, stalled,
unstable, overfitting (`benchmarks/diagnosis/diagnosis_outcome_runs.py`).

Each `*_run(...)` returns a `build()` that seeds everything and returns
`(model, x, y, batch_size)`, the model compiled with an `accuracy` metric for
classification (the peer's criteria, `benchmarks/diagnosis/diagnosis_peer.py`, read it).

Example:

    model, x, y, batch = classify_run(lr=1e-7)()
"""

import keras
import numpy as np

from kgrad.lab import data


def _seeded(seed):
    keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)


def _task(rng, n, task, features, classes, label_noise):
    """Inputs and labels: a linear rule (`"linear"`), a rule no linear model
    can fit (`"rings"`: the class is the band of the input's norm), or labels
    independent of the inputs (`"random"`); `label_noise` of them shuffled."""
    x = rng.normal(size=(n, features)).astype("float32")
    if task == "linear":
        y = np.argmax(x @ rng.normal(size=(features, classes)), axis=1)
    elif task == "rings":
        radius = np.linalg.norm(x, axis=1)
        edges = np.quantile(radius, np.linspace(0, 1, classes + 1)[1:-1])
        y = np.digitize(radius, edges)
    else:
        y = rng.integers(0, classes, n)
    noisy = rng.random(n) < label_noise
    y[noisy] = rng.integers(0, classes, int(noisy.sum()))
    return x, y.astype("int32")


def _optimizer(name, lr, **kwargs):
    return keras.optimizers.get(
        {"class_name": name, "config": {"learning_rate": lr, **kwargs}}
    )


def classify_run(
    depth=2,
    width=32,
    activation="relu",
    lr=1e-3,
    optimizer="adam",
    schedule=None,
    n=512,
    task="linear",
    label_noise=0.0,
    classes=4,
    features=16,
    batch=32,
    input_scale=1.0,
    momentum=None,
    nan_at=None,
    seed=0,
):
    """An MLP classifier; `depth=0` is a linear model (softmax regression).

    `nan_at=i` puts a NaN in the `i`-th example's inputs (a broken record).

    `schedule=(boundary, after)` drops the learning rate to `after` at step
    `boundary`.
    """

    def build():
        rng = _seeded(seed)
        x, y = _task(rng, n, task, features, classes, label_noise)
        x = x * input_scale
        if nan_at is not None:
            x[nan_at, 0] = np.nan
        layers = [keras.Input((features,))]
        for i in range(depth):
            layers.append(
                keras.layers.Dense(
                    width,
                    activation=activation,
                    kernel_initializer="he_normal",
                    name=f"dense_{i:02d}",
                )
            )
        layers.append(keras.layers.Dense(classes, name="output"))
        rate = lr
        if schedule is not None:
            boundary, after = schedule
            rate = keras.optimizers.schedules.PiecewiseConstantDecay(
                [boundary], [lr, after]
            )
        extra = {} if momentum is None else {"momentum": momentum}
        model = keras.Sequential(layers)
        model.compile(
            optimizer=_optimizer(optimizer, rate, **extra),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model, x, y, batch

    return build


def sequence_run(
    cell="lstm", lr=1e-3, n=512, length=20, units=32, label_noise=0.0, seed=0
):
    """A recurrent classifier on the temporal-order problem (4 classes),
    `label_noise` of its labels drawn at random."""

    def build():
        rng = _seeded(seed)
        x, y = data.temporal_order(length=length, n=n, seed=seed)
        noisy = rng.random(n) < label_noise
        y = np.where(noisy, rng.integers(0, 4, n), y)
        layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
        model = keras.Sequential(
            [
                keras.Input((length, x.shape[-1])),
                layer(units, name="rnn_01"),
                keras.layers.Dense(4, name="output"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model, x, y.astype("int32"), 32

    return build


def adding_lr_run(cell="lstm", lr=1e-6, length=20, seed=0):
    """A recurrent regressor on the adding problem at a given Adam rate."""

    def build():
        _seeded(seed)
        x, y = data.adding_problem(length=length, n=512, seed=seed)
        layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
        model = keras.Sequential(
            [
                keras.Input((length, 2)),
                layer(16, name="rnn_01"),
                keras.layers.Dense(1, name="output"),
            ]
        )
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
        return model, x, y, 32

    return build
