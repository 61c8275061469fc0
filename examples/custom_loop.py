"""A custom `tf.GradientTape` loop: `monitor.record` logs the gradients you computed.

The loop computes the gradients itself and hands them to
`GradientMonitor.record` on the steps it wants logged, inside a
`tf.function`. The tags are those of `model.fit` (without update ratios and
activation statistics, which need the weights before the update).

Run: python examples/custom_loop.py [LOGDIR] [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from kgrad import GradientMonitor, data, zoo  # noqa: E402


def main(log_dir, quick=False):
    keras.utils.set_random_seed(0)
    digits = data.load("digits_flat")
    model = zoo.build("mlp_relu_he", depth=4 if quick else 10)
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    monitor = GradientMonitor(log_dir)
    batches = tf.data.Dataset.from_tensor_slices((digits.x_train, digits.y_train))
    batches = batches.shuffle(2048, seed=0).batch(64)

    @tf.function
    def train_step(x, y, step):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        if step % 10 == 1:  # log every 10th step, in the graph
            monitor.record(grads, model.trainable_variables, step)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    step = 0
    for _ in range(1 if quick else 3):
        for x, y in batches:
            step += 1
            loss = train_step(x, y, tf.constant(step, tf.int64))
    monitor.flush()
    print(f"{step} steps, last loss {float(loss):.3f}; logs in {log_dir}/train")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", nargs="?", default="logs/custom_loop")
    parser.add_argument("--quick", action="store_true", help="one epoch, for tests")
    args = parser.parse_args()
    main(args.log_dir, args.quick)
