"""Trains under MirroredStrategy on 2 logical CPUs; prints logged vs expected.

Run by tests/test_distribute.py in a subprocess (logical devices must be set
before TensorFlow starts). Usage: python mirrored_run.py LOGDIR [nan]
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
from tensorboard.util import tensor_util  # noqa: E402

from kgrad import GradientMonitor  # noqa: E402

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build():
    inputs = keras.Input((6,))
    # tanh, not relu: oneDNN may turn relu(NaN) into 0 on some CPUs, and the
    # NaN must reach every gradient in the fit and in the eager reference alike.
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden))


def main(log_dir, poison=False):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.integers(0, 3, size=16)
    if poison:
        x[12, 2] = np.nan  # in the second replica's half of the batch
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    reference = build()
    reference.set_weights(model.get_weights())
    with tf.GradientTape() as tape:
        loss = LOSS(y, reference(x, training=True))
    grads = tape.gradient(loss, reference.trainable_variables)
    with tf.GradientTape() as tape:  # what one replica alone would see
        loss = LOSS(y[:8], reference(x[:8], training=True))
    shares = tape.gradient(loss, reference.trainable_variables)
    monitor = GradientMonitor(
        log_dir, norms_every=1, histograms_every=1, histogram_bins=6
    )
    model.fit(
        x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[monitor]
    )
    run = event_accumulator.EventAccumulator(
        os.path.join(log_dir, "train"), size_guidance={"tensors": 0}
    )
    run.Reload()

    def logged(tag):
        return tensor_util.make_ndarray(run.Tensors(tag)[0].tensor_proto).tolist()

    tags = run.Tags()["tensors"]
    out = {"replicas": strategy.num_replicas_in_sync, "variables": {}}
    for variable, grad, share in zip(
        reference.trainable_variables, grads, shares, strict=True
    ):
        path = variable.path
        g = grad.numpy()
        out["variables"][path] = {
            "logged_norm": logged(f"grad_norm/{path}"),
            "expected_norm": float(np.linalg.norm(g)),
            "replica_share_norm": float(np.linalg.norm(share.numpy())),
            "logged_hist": logged(f"grad_hist/{path}")
            if f"grad_hist/{path}" in tags
            else None,
            "expected_finite": g[np.isfinite(g)].tolist(),
            "logged_nonfinite": logged(f"grad_nonfinite/{path}")
            if f"grad_nonfinite/{path}" in tags
            else 0.0,
            "expected_nonfinite": int(np.sum(~np.isfinite(g))),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], poison=len(sys.argv) > 2)
