"""Two zoo models side by side: a sigmoid stack against its He-initialised ReLU twin.

Builds `mlp_sigmoid` and `mlp_relu_he` from `kgrad.zoo`, trains each with the
same SGD on the bundled digits with its own GradientMonitor, then reads both
runs back with `kgrad.analysis.report` (what `kgrad report` prints): the
per-layer table, the diagnosis (vanishing gradients in the sigmoid stack,
none in the ReLU one) and the comparison of their input/output ratios.

Run: python examples/zoo_comparison.py [LOGDIR] [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from kgrad import GradientMonitor, data, zoo  # noqa: E402
from kgrad.analysis import report  # noqa: E402

MODELS = ("mlp_sigmoid", "mlp_relu_he")


def main(log_dir, quick=False):
    digits = data.load("digits_flat")
    for name in MODELS:
        keras.utils.set_random_seed(0)
        print(zoo.describe(name).splitlines()[0])
        model = zoo.build(name, depth=8 if quick else 20)
        model.compile(
            optimizer=keras.optimizers.SGD(0.05),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(
            digits.x_train,
            digits.y_train,
            batch_size=64,
            epochs=1 if quick else 5,
            callbacks=[GradientMonitor(os.path.join(log_dir, name))],
            verbose=0,
        )
    runs = {name: report.load_run(os.path.join(log_dir, name)) for name in MODELS}
    print(report.format_report(runs))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", nargs="?", default="logs/zoo_comparison")
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    args = parser.parse_args()
    main(args.log_dir, args.quick)
