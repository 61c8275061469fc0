"""Quickstart: log the real training gradients of a Keras model to TensorBoard.

Trains a 10-layer sigmoid MLP on scikit-learn's bundled 8x8 digits (no
download) with `GradientMonitor`, then prints where the logs are, the gradient
norms of the first and last layer, and the command that opens TensorBoard.
A sigmoid stack is the textbook case of vanishing gradients: the first layer's
gradient norm is orders of magnitude below the last one's.

Run: python examples/quickstart.py [LOGDIR]
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from kgrad import GradientMonitor  # noqa: E402


def main(log_dir="logs/quickstart"):
    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target
    layers = [keras.Input((64,))]
    for i in range(1, 11):
        layers.append(
            keras.layers.Dense(32, activation="sigmoid", name=f"dense_{i:02d}")
        )
    layers.append(keras.layers.Dense(10, name="output"))
    model = keras.Sequential(layers, name="sigmoid_mlp")
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    monitor = GradientMonitor(log_dir, norms_every=20, histograms_every=100)
    model.fit(x, y, batch_size=64, epochs=5, validation_split=0.2, callbacks=[monitor])

    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    run = event_accumulator.EventAccumulator(
        os.path.join(log_dir, "train"), size_guidance={"tensors": 0}
    )
    run.Reload()

    def first_norm(path):
        event = run.Tensors(f"grad_norm/{path}")[0]
        return float(tensor_util.make_ndarray(event.tensor_proto))

    first, last = model.layers[0].kernel.path, model.layers[-2].kernel.path
    print(f"\nkgrad wrote {len(run.Tags()['tensors'])} tags to {log_dir}/train")
    print(f"step 1 gradient norm, first layer {first}: {first_norm(first):.3e}")
    print(f"step 1 gradient norm, last hidden layer {last}: {first_norm(last):.3e}")
    print(f"Open them with: tensorboard --logdir {log_dir}")


if __name__ == "__main__":
    main(*sys.argv[1:])
