"""Mixed precision: the logged gradients are unscaled, skipped steps are not explosions.

Under `keras.mixed_precision.set_global_policy("mixed_float16")` Keras wraps
the optimizer in a `LossScaleOptimizer`: the gradients it receives are
multiplied by the loss scale (32768 at first) and steps whose scaled
gradients overflow are skipped while the scale settles. GradientMonitor logs
the gradients divided by the scale, and beside them the loss scale and the
batches skipped (`kgrad.tags.LOSS_SCALE_VALUE` and `LOSS_SCALE_SKIPPED`).

Run: python examples/mixed_precision.py [LOGDIR] [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from kgrad import GradientMonitor, data, zoo  # noqa: E402


def main(log_dir, quick=False):
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        digits = data.load("digits")
        model = zoo.build("cnn_bn", depth=2 if quick else 4)
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x, y = digits.x_train, digits.y_train
        model.fit(
            x[:256] if quick else x,
            y[:256] if quick else y,
            batch_size=32,
            epochs=1 if quick else 3,
            callbacks=[GradientMonitor(log_dir)],
            verbose=0 if quick else "auto",
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    print(f"Unscaled gradients and the loss scale in {log_dir}/train")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", nargs="?", default="logs/mixed_precision")
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    args = parser.parse_args()
    main(args.log_dir, args.quick)
