"""The Gradients tab at scale, and its screenshot.

Sections (each prints what it measured; nothing is written unless asked):

- `route`: synthetic events shaped like DenseNet121 (364 variables) x 1,000
  logged steps; the `heatmap` route's answer time over HTTP from a real
  `tensorboard` (default fast loader), median of 5 after the loader is done.
- `draw`: headless Chromium loading the tab over that run until it marks
  itself ready, minus Chromium loading an empty page (median of 3 each).
- `startup`: `tensorboard` start-up until it prints its port, median of 5,
  with and without the plugin (without is only measurable when kgrad's entry
  point is not installed; the with-plugin runs then add it by a shim).
- `--screenshot PATH`: trains the zoo twins `mlp_sigmoid` and `mlp_relu_he`
  (depth 8) on the digits with `GradientMonitor`, opens the Gradients tab's
  page with both side by side, and saves a PNG.

Timings on a shared machine are not final figures.

Example:

    python benchmarks/dashboard.py --sections route draw startup
    python benchmarks/dashboard.py --sections --screenshot docs/gradients_tab.png
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dashboard_session as session  # noqa: E402

VARIABLES, STEPS = 364, 1000


def _median_seconds(action, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def _report(label, spread):
    median, low, high = spread
    print(f"{label}: median {median:.3f} s (min {low:.3f}, max {high:.3f})")


def route_and_draw(logdir, sections):
    """Measures the `heatmap` route and the drawing over a DenseNet121-sized run."""
    session.write_synthetic_run(
        os.path.join(logdir, "densenet121_like", "train"), VARIABLES, STEPS
    )
    path = "/data/plugin/kgrad/heatmap?run=densenet121_like/train&statistic=grad_norm"
    with session.TensorBoardServer(logdir) as server:
        server.wait_for_runs(1, timeout=300)
        deadline = time.perf_counter() + 300
        while True:  # until the loader has read every step
            grid = server.json(path)
            if len(grid["steps"]) == STEPS or time.perf_counter() > deadline:
                break
            time.sleep(1)
        print(
            f"heat map: {len(grid['rows'])} rows x {len(grid['steps'])} steps, "
            f"sampling note: {grid['sampling']}"
        )
        if "route" in sections:
            _report(
                "heatmap route over HTTP", _median_seconds(lambda: server.get(path), 5)
            )
        if "draw" in sections:
            url = server.tab_url()
            dom = session.chromium_dom(url)
            if 'data-ready="true"' not in dom:
                raise RuntimeError("the tab did not mark itself ready")
            tab = _median_seconds(lambda: session.chromium_dom(url), 3)
            blank = _median_seconds(lambda: session.chromium_dom("about:blank"), 3)
            _report("chromium: tab until ready", tab)
            _report("chromium: empty page", blank)
            print(f"tab drawn in about {tab[0] - blank[0]:.3f} s beyond an empty page")


def startup(logdir):
    """Median start-up of `tensorboard` with and without the plugin."""
    installed = session.plugin_installed()
    with_plugin = _median_seconds(
        lambda: _start_stop(session.TensorBoardServer(logdir)), 5
    )
    _report("tensorboard start-up with the Gradients tab", with_plugin)
    if installed:
        print("without the tab: not measurable here (kgrad's entry point is installed)")
        return
    without = _median_seconds(
        lambda: _start_stop(session.TensorBoardServer(logdir, plugin=False)), 5
    )
    _report("tensorboard start-up without it", without)


def _start_stop(server):
    server.start()
    server.stop()


def screenshot(path):
    """Trains the zoo twins and saves the tab with both side by side."""
    logdir = tempfile.mkdtemp(prefix="kgrad_tab_shot_")
    code = (
        "import keras; from kgrad import GradientMonitor, data, zoo\n"
        "ds = data.digits(flat=True)\n"
        "for name in ('mlp_sigmoid', 'mlp_relu_he'):\n"
        "    keras.utils.set_random_seed(0)\n"
        "    model = zoo.build(name, depth=8)\n"
        "    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
        "    model.compile('sgd', loss)\n"
        f"    monitor = GradientMonitor({logdir!r} + '/' + name, norms_every=5, "
        "verbose=0)\n"
        "    model.fit(ds.x_train, ds.y_train, batch_size=32, epochs=6, "
        "callbacks=[monitor], verbose=0)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    with session.TensorBoardServer(logdir) as server:
        server.wait_for_runs(2)
        url = server.tab_url(run="mlp_sigmoid/train", compare="mlp_relu_he/train")
        session.chromium_screenshot(url, path, size=(1500, 760))
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sections",
        nargs="*",
        default=["route", "draw", "startup"],
        choices=["route", "draw", "startup"],
    )
    parser.add_argument("--screenshot", help="save a PNG of the tab here")
    args = parser.parse_args(argv)
    if session.chromium() is None and ("draw" in args.sections or args.screenshot):
        parser.error("Debian's chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as logdir:
        if {"route", "draw"} & set(args.sections):
            route_and_draw(logdir, args.sections)
        if "startup" in args.sections:
            startup(logdir)
    if args.screenshot:
        screenshot(args.screenshot)


if __name__ == "__main__":
    main()
