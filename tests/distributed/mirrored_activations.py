"""ReLU statistics under MirroredStrategy on 2 logical CPUs: logged vs per-replica.

Run by tests/test_distribute.py in a subprocess. The two halves of the batch
(one per replica) activate the hidden layer very differently, so the average
of the replicas' own statistics differs from statistics pooled over the
whole batch. Prints JSON: the logged values and both candidates.
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

from kgrad import GradientMonitor  # noqa: E402
from tests.support.events import read_events  # noqa: E402


def shares(hidden):
    """`(share of zero outputs, share of units zero on every example)`."""
    zero = hidden == 0
    return float(zero.mean()), float(zero.all(0).mean())


def main(log_dir):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    x[8:] = -np.abs(x[8:])  # the second replica's half: every unit is dead
    y = rng.integers(0, 3, 16)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(
            8, activation="relu", name="hidden", kernel_initializer="ones"
        )(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden))
        model.compile(
            optimizer=keras.optimizers.SGD(0.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    monitor = GradientMonitor(log_dir, norms_every=1, histograms_every=0)
    model.fit(
        x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[monitor]
    )
    logged = read_events(os.path.join(log_dir, "train"))
    outputs = np.maximum(x @ np.ones((6, 8), "float32"), 0)
    per_replica = [shares(outputs[:8]), shares(outputs[8:])]
    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "logged": [
                    float(logged["activation_zero/hidden"][0][1]),
                    float(logged["dead_units/hidden"][0][1]),
                ],
                "replica_mean": np.mean(per_replica, axis=0).tolist(),
                "pooled": list(shares(outputs)),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
