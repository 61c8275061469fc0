"""Screenshots of the Gradients tab on three real runs, for the docs.

Trains (once, into LOGS, skipped when a run is there) three cases a user
opens the tab for, then saves one PNG per view at 1280x800 in OUT, named
`<prefix><view>.png`:

- `twins`: the zoo twins `mlp_sigmoid` and `mlp_relu_he` (depth 8, digits)
  side by side: vanishing next to healthy.
- `rnn`: `rnn_simple` on the adding problem (length 50): the
  `vanishing_in_time` finding on `rnn_01`.
- `densenet121`: `keras.applications.DenseNet121` (364 trainable variables)
  on random 32x32 images, 60 logged steps.

Not part of the tests. Training takes a few minutes on 2 cores; the
screenshots a few seconds each. Run by hand:

    python scripts/tab_screenshots.py --logs /tmp/tab_logs --out docs/screenshots
    python scripts/tab_screenshots.py --logs /tmp/tab_logs --prefix tab_before_
"""

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from kgrad import tags  # noqa: E402
from tests.support import chromium_pipe  # noqa: E402
from tests.support import dashboard_session as session  # noqa: E402

SIZE = (1280, 800)
TRAIN = {
    "twins": (
        "import keras; from kgrad import GradientMonitor, data, zoo\n"
        "ds = data.digits(flat=True)\n"
        "for name in ('mlp_sigmoid', 'mlp_relu_he'):\n"
        "    keras.utils.set_random_seed(0)\n"
        "    model = zoo.build(name, depth=8)\n"
        "    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
        "    model.compile('sgd', loss)\n"
        "    monitor = GradientMonitor(LOGS + '/' + name, norms_every=5, verbose=0)\n"
        "    model.fit(ds.x_train, ds.y_train, batch_size=32, epochs=6,\n"
        "              callbacks=[monitor], verbose=0)\n"
    ),
    "rnn": (
        "import os\n"
        "from kgrad.lab import experiments\n"
        "config = experiments.RunConfig('rnn_simple',\n"
        "    data_kwargs={'length': 50, 'n_train': 1000, 'n_test': 64},\n"
        "    model_kwargs={'units': 32}, learning_rate=1e-2, steps=150)\n"
        "quiet = open(os.devnull, 'w')\n"
        "experiments.train(config, LOGS + '/rnn_simple', stream=quiet)\n"
    ),
    "densenet121": (
        "import keras, numpy as np; from kgrad import GradientMonitor\n"
        "keras.utils.set_random_seed(0)\n"
        "model = keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3),"
        " classes=10)\n"
        "model.compile('sgd', 'sparse_categorical_crossentropy')\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.normal(size=(240, 32, 32, 3)).astype('float32')\n"
        "y = rng.integers(0, 10, size=240)\n"
        "monitor = GradientMonitor(LOGS + '/densenet121', norms_every=1,\n"
        "                          histograms_every=20, verbose=0)\n"
        "model.fit(x, y, batch_size=8, epochs=2, callbacks=[monitor], verbose=0)\n"
    ),
}
# (view, logs case, query of the tab's page, the row clicked in the first map)
VIEWS = [
    (
        "twins",
        "twins",
        {"run": "mlp_sigmoid/train", "compare": "mlp_relu_he/train"},
        "dense_01/kernel",
    ),
    (
        "rnn",
        "rnn",
        {"run": "rnn_simple/train", "statistic": tags.TEMPORAL_GRAD, "layer": "rnn_01"},
        None,
    ),
    ("densenet121", "densenet121", {"run": "densenet121/train"}, "conv3_block1"),
]
# Clicks a cell of `row` at the middle logged step, where the tab says where.
CLICK = """(() => {
  const c = document.querySelector('canvas.heatmap'), d = c.dataset;
  if (!d.rowKeys) return null;
  const r = c.getBoundingClientRect(), row = d.rowKeys.split('\\n').indexOf(ROW);
  const column = Math.floor(d.stepList.split(',').length / 2);
  return [r.left + Number(d.labelWidth) + (column + 0.5) * Number(d.cellWidth),
          r.top + 1 + (row + 0.5) * Number(d.rowHeight)];
})()"""


def train(logs):
    """Trains each case whose folder is missing (one subprocess each)."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    for case, code in TRAIN.items():
        folder = os.path.join(logs, case)
        if os.path.isdir(folder):
            continue
        print(f"training {case} into {folder}", flush=True)
        subprocess.run(
            [sys.executable, "-c", f"LOGS = {folder!r}\n" + code], check=True, env=env
        )


def shoot(logs, out, prefix, views, source=None):
    """Saves `<out>/<prefix><view>.png` of each view, tab from `source`."""
    for view, case, query, row in VIEWS:
        if views and view not in views:
            continue
        with session.TensorBoardServer(
            os.path.join(logs, case), source=source
        ) as server:
            server.wait_for_runs(2 if "compare" in query else 1)
            with chromium_pipe.Browser(size=SIZE) as page:
                page.goto(server.tab_url(**query))
                page.wait("document.body && document.body.dataset.ready === 'true'")
                point = row and page.evaluate(CLICK.replace("ROW", repr(row)))
                if point:
                    page.click(*point)
                    page.wait("document.querySelector('.detail').dataset.run")
                    time.sleep(1)  # the histogram's answer
                path = os.path.join(out, f"{prefix}{view}.png")
                with open(path, "wb") as file:
                    file.write(page.screenshot())
            print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", required=True, help="where the runs are trained")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "screenshots"))
    parser.add_argument("--prefix", default="tab_", help="file name prefix")
    parser.add_argument("--views", nargs="*", help="only these views")
    parser.add_argument("--source", help="the checkout whose tab is shown")
    args = parser.parse_args(argv)
    if session.chromium() is None:
        parser.error("Debian's chromium is needed: apt-get install chromium")
    train(args.logs)
    shoot(args.logs, args.out, args.prefix, args.views, args.source)


if __name__ == "__main__":
    main()
