"""Noise scale under MirroredStrategy on 2 logical CPUs; prints logged vs expected.

Run by tests/test_distribute.py in a subprocess (logical devices must be set
before TensorFlow starts). Usage: python mirrored_noise_scale.py LOG_DIR
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

from kgrad import GradientMonitor, tags  # noqa: E402
from kgrad.monitor.log import noise_scale  # noqa: E402

BATCH = 16
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build():
    return keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.LayerNormalization(),
            keras.layers.Dense(3),
        ]
    )


def main():
    log_dir = sys.argv[1]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 5)).astype("float32")
    y = rng.choice(3, size=BATCH, p=[0.8, 0.1, 0.1])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build()
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss=LOSS)
    monitor = GradientMonitor(
        log_dir, norms_every="batch", noise_scale=True, verbose=0, figure_secs=None
    )
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[monitor])
    monitor.flush()
    per_example = 0.0
    for i in range(BATCH):
        with tf.GradientTape() as tape:
            loss = LOSS(y[i : i + 1], model(x[i : i + 1], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        per_example += sum(float(tf.reduce_sum(g**2)) for g in grads)
    with tf.GradientTape() as tape:
        loss = LOSS(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    batch_sq = sum(float(tf.reduce_sum(g**2)) for g in grads)
    trace, signal = noise_scale.estimate(per_example / BATCH, batch_sq, BATCH)
    events = event_accumulator.EventAccumulator(os.path.join(log_dir, "train"))
    events.Reload()

    def logged(tag):
        (event,) = events.Tensors(tag)
        return float(tf.make_ndarray(event.tensor_proto))

    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "expected": trace / signal,
                "logged": logged(tags.NOISE_B_SIMPLE_STEP),
                "batch": logged(tags.NOISE_BATCH),
            }
        )
    )


if __name__ == "__main__":
    main()
