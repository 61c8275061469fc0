"""`model.fit` on Keras's JAX backend with GradientMonitor: same tags, report, tab.

Sets `KERAS_BACKEND=jax` before Keras is imported, trains a small ReLU MLP
on the bundled 8x8 digits with `GradientMonitor` as its only callback (norms
every 10 steps, histograms every 50), then prints the report of the run (as
`kgrad report LOGDIR` does).
No TensorFlow is needed: `pip install "kgrad[jax]"`.

Run: python examples/jax_fit.py [LOGDIR] [--quick]
"""

import argparse
import os

os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402

from kgrad import GradientMonitor, data  # noqa: E402
from kgrad.analysis import report  # noqa: E402


def main(log_dir, quick=False):
    keras.utils.set_random_seed(0)
    digits = data.load("digits_flat")
    model = keras.Sequential(
        [keras.Input(digits.input_shape)]
        + [keras.layers.Dense(32, activation="relu") for _ in range(4)]
        + [keras.layers.Dense(10)],
        name="relu_mlp",
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor = GradientMonitor(log_dir, norms_every=10, histograms_every=50)
    model.fit(
        digits.x_train,
        digits.y_train,
        batch_size=64,
        epochs=1 if quick else 5,
        callbacks=[monitor],
        verbose=0,
    )
    print(f"backend: {keras.backend.backend()}")
    run = report.load_run(os.path.join(log_dir, "train"))
    print(report.format_report({"jax_fit": run}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log_dir", nargs="?", default="logs/jax_fit")
    parser.add_argument("--quick", action="store_true", help="one epoch")
    args = parser.parse_args()
    main(args.log_dir, args.quick)
