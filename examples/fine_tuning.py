"""Transfer learning with one monitor: freeze, fit, unfreeze, recompile, fit again.

The keras.io "Transfer learning & fine-tuning" recipe on a small CNN base:
train a new head on a frozen base, then unfreeze the base and recompile with
a lower learning rate (a new optimizer, whose update count starts again at
0) and fit again. The same GradientMonitor follows both fits: the second
fit's steps continue after the first one's, and the base's variables get
their tags from the step they start training.

Run: python examples/fine_tuning.py [LOGDIR] [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from kgrad import GradientMonitor, data  # noqa: E402


def build(input_shape, classes):
    base = keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="base",
    )
    inputs = keras.Input(input_shape)
    features = base(inputs, training=False)
    outputs = keras.layers.Dense(classes, name="head")(features)
    return base, keras.Model(inputs, outputs, name="fine_tuned")


def main(log_dir, quick=False):
    keras.utils.set_random_seed(0)
    digits = data.load("digits")
    x, y = digits.x_train, digits.y_train
    if quick:
        x, y = x[:128], y[:128]
    base, model = build(digits.input_shape, digits.num_classes)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    monitor = GradientMonitor(log_dir)
    epochs = 1 if quick else 3
    verbose = 0 if quick else "auto"

    base.trainable = False  # 1. train the new head on the frozen base
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    model.fit(x, y, batch_size=32, epochs=epochs, callbacks=[monitor], verbose=verbose)

    base.trainable = True  # 2. fine-tune everything, with a lower learning rate
    model.compile(optimizer=keras.optimizers.Adam(1e-5), loss=loss)
    model.fit(x, y, batch_size=32, epochs=epochs, callbacks=[monitor], verbose=verbose)
    print(f"Both fits in {log_dir}/train, one step axis")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", nargs="?", default="logs/fine_tuning")
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    args = parser.parse_args()
    main(args.log_dir, args.quick)
