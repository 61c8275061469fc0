"""Temporal profile under MirroredStrategy on 2 logical CPUs; prints logged vs expected.

Run by tests/test_distribute.py in a subprocess (logical devices must be set
before TensorFlow starts). Usage: python mirrored_temporal.py
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kgrad.monitor.step.host import GradientCapture  # noqa: E402

LENGTH, FEATURES, BATCH = 7, 3, 16


def build():
    return keras.Sequential(
        [
            keras.Input((LENGTH, FEATURES)),
            keras.layers.Dense(FEATURES, activation="tanh", name="front"),
            keras.layers.GRU(4, name="gru"),
            keras.layers.Dense(1, name="out"),
        ]
    )


def main():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, LENGTH, FEATURES)).astype("float32")
    y = rng.normal(size=(BATCH, 1)).astype("float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    reference = build()
    reference.set_weights(model.get_weights())

    with tf.GradientTape() as tape:
        hidden = reference.layers[0](tf.constant(x))
        tape.watch(hidden)
        loss = keras.losses.MeanSquaredError()(
            y, reference.layers[2](reference.layers[1](hidden))
        )
    grad = tape.gradient(loss, hidden).numpy().astype(np.float64)
    expected = np.sqrt((grad**2).sum(axis=(0, 2)))
    half = np.sqrt((grad[: BATCH // 2] ** 2).sum(axis=(0, 2)))

    capture = GradientCapture(model)
    capture.install()
    capture.arm(histograms=False)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    capture.uninstall()
    ((_, _, captured),) = capture.read()  # one channel: the model's optimizer
    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "logged": captured["temporal"][0][:LENGTH].tolist(),
                "expected": expected.tolist(),
                "one_replica": half.tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
