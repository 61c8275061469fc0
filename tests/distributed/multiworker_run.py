"""One worker of a 2-worker MultiWorkerMirroredStrategy run on 127.0.0.1.

A custom training loop that logs with `GradientMonitor.record` inside
`strategy.run`. (Keras 3.15's `fit` itself fails under this strategy on CPU:
see docs/distributed.md.) Run by tests/test_distribute.py. Usage:
python multiworker_run.py INDEX PORT0 PORT1 LOGDIR
Prints the global gradient norm of the first variable, computed locally on
the whole global batch, for the test to compare with what the chief logged.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(index, port0, port1, log_dir):
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
            "task": {"type": "worker", "index": int(index)},
        }
    )
    import keras
    import numpy as np
    import tensorflow as tf

    from kgrad import GradientMonitor

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.integers(0, 3, size=16)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="sum"
    )
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(5, activation="relu"),
                keras.layers.Dense(3),
            ]
        )
    with tf.GradientTape() as tape:  # the whole global batch, on one worker
        expected = tape.gradient(
            loss_fn(y, model(x)) / 16, model.trainable_variables[0]
        )
    monitor = GradientMonitor(log_dir, histogram_bins=5)
    half = slice(8 * int(index), 8 * int(index) + 8)  # this worker's share

    @tf.function
    def step():
        def replica_step(xs, ys):
            with tf.GradientTape() as tape:
                loss = loss_fn(ys, model(xs)) / 16
            grads = tape.gradient(loss, model.trainable_variables)
            monitor.record(grads, model.trainable_variables, 1)

        strategy.run(replica_step, args=(x[half], y[half]))

    step()
    print(json.dumps({"expected": float(np.linalg.norm(expected))}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
