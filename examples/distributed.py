"""`tf.distribute.MirroredStrategy`: the logged gradient is the all-reduced one.

Splits this machine's CPU into two logical devices so that it runs anywhere,
builds and compiles the model in the strategy's scope, and fits with
GradientMonitor. Each replica sees half the batch; the monitor sums the
replicas' gradients as the optimizer does, so the logged norms are those of
the gradient applied to the variables (see docs/distributed.md).

Run: python examples/distributed.py [LOGDIR] [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Logical devices must be set before TensorFlow starts using the CPU.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402

from kgrad import GradientMonitor, data, zoo  # noqa: E402


def main(log_dir, quick=False):
    keras.utils.set_random_seed(0)
    digits = data.load("digits_flat")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = zoo.build("mlp_relu_he", depth=4 if quick else 10)
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    x, y = digits.x_train, digits.y_train
    model.fit(
        x[:256] if quick else x,
        y[:256] if quick else y,
        batch_size=64,
        epochs=1 if quick else 3,
        callbacks=[GradientMonitor(log_dir)],
        verbose=0 if quick else "auto",
    )
    print(f"{strategy.num_replicas_in_sync} replicas; logs in {log_dir}/train")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", nargs="?", default="logs/distributed")
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    args = parser.parse_args()
    main(args.log_dir, args.quick)
