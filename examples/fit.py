"""`model.fit` with GradientMonitor: the textbook vanishing gradient, logged.

Trains a 10-layer sigmoid MLP on the bundled 8x8 digits (no download) with
`GradientMonitor` as its only callback, then reads the event file back and
prints the step-1 gradient norm of the first and of the last hidden layer: in
a sigmoid stack the first is orders of magnitude below the last.

Run: python examples/fit.py [LOGDIR] [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from kgrad import GradientMonitor, data, tags  # noqa: E402


def main(log_dir, quick=False):
    keras.utils.set_random_seed(0)
    digits = data.load("digits_flat")
    model = keras.Sequential(
        [keras.Input(digits.input_shape)]
        + [keras.layers.Dense(32, activation="sigmoid") for _ in range(10)]
        + [keras.layers.Dense(10)],
        name="sigmoid_mlp",
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(
        digits.x_train,
        digits.y_train,
        batch_size=64,
        epochs=1 if quick else 5,
        callbacks=[GradientMonitor(log_dir)],
        verbose=0 if quick else "auto",
    )
    run = event_accumulator.EventAccumulator(
        os.path.join(log_dir, "train"), size_guidance={"tensors": 0}
    )
    run.Reload()

    def step_one_norm(variable):
        name = tags.in_model(variable.path, model.name)  # the variable's tag name
        event = run.Tensors(tags.tag(tags.GRAD_NORM, name))[0]
        return float(tensor_util.make_ndarray(event.tensor_proto))

    first, last = model.layers[0].kernel, model.layers[-2].kernel
    print(f"step 1 gradient norm, first layer {first.path}: {step_one_norm(first):.3e}")
    print(f"step 1 gradient norm, last hidden {last.path}: {step_one_norm(last):.3e}")
    print(f"Open the run with: tensorboard --logdir {log_dir}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", nargs="?", default="logs/fit")
    parser.add_argument("--quick", action="store_true", help="one epoch, for tests")
    args = parser.parse_args()
    main(args.log_dir, args.quick)
