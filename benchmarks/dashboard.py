"""The Gradients tab at scale, and its screenshot.

Sections (each prints what it measured; nothing is written unless asked):

- `route`: synthetic events shaped like DenseNet121 (364 variables) x 1,000
  logged steps; the `heatmap` route's answer time over HTTP from a real
  `tensorboard` (default fast loader) once the loader has every step: cold
  (its first answer, read through the data provider; one per fresh
  `tensorboard`, `--servers` of them) and warm (5 more per server, answered
  from the plugin's cache).
- `draw`: headless Chromium loading the tab over that run until it marks
  itself ready with every cell drawn, cold (first load on a fresh server)
  and warm (2 more), minus Chromium loading an empty page.
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
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dashboard_session as session  # noqa: E402

from kgrad import tags  # noqa: E402

VARIABLES, STEPS = 364, 1000


def _seconds(action, repeats):
    """The seconds of `repeats` calls of `action`, one by one."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def _report(label, seconds):
    print(
        f"{label}: median {statistics.median(seconds):.3f} s "
        f"(min {min(seconds):.3f}, max {max(seconds):.3f}, n={len(seconds)})"
    )


def route_and_draw(logdir, sections, servers):
    """Measures the `heatmap` route and the drawing over a DenseNet121-sized run.

    Each of `servers` fresh `tensorboard` processes waits until its loader
    has every step, then times the first answer (cold: read through the data
    provider) and 5 more (warm: the plugin's cache), and Chromium loading the
    tab once cold (a second fresh process) and twice warm.
    """
    run = "densenet121_like/train"
    session.write_synthetic_run(os.path.join(logdir, run), VARIABLES, STEPS)
    path = f"/data/plugin/{tags.PLUGIN_NAME}/heatmap?run={run}&statistic="
    path += tags.GRAD_NORM
    last_tag = tags.tag(tags.GRAD_NORM, f"layer_{VARIABLES - 1:03d}/kernel")
    last = f"/data/plugin/scalars/scalars?run={run}&tag={last_tag}"
    times = {"cold route": [], "warm route": [], "cold tab": [], "warm tab": []}
    for _ in range(servers):
        with session.TensorBoardServer(logdir) as server:
            _wait_for_every_step(server, last)
            if "route" in sections:
                start = time.perf_counter()
                grid = server.json(path)
                times["cold route"].append(time.perf_counter() - start)
                _check_grid(grid)
                times["warm route"] += _seconds(functools.partial(server.get, path), 5)
        if "draw" not in sections:
            continue
        with session.TensorBoardServer(logdir) as server:
            _wait_for_every_step(server, last)
            url = server.tab_url()
            times["cold tab"] += _seconds(functools.partial(_draw, url), 1)
            times["warm tab"] += _seconds(functools.partial(_draw, url), 2)
    if "draw" in sections:
        blank = _seconds(lambda: session.chromium_dom("about:blank"), servers)
        times["chromium empty page"] = blank
    for label, seconds in times.items():
        if seconds:
            _report(label, seconds)
    if "draw" in sections:
        for kind in ("cold", "warm"):
            extra = statistics.median(times[f"{kind} tab"]) - statistics.median(blank)
            print(f"{kind}: tab drawn in {extra:.3f} s beyond an empty page")


def _wait_for_every_step(server, last_tag_path, timeout=300):
    """Waits until the loader holds every step of the last variable."""
    server.wait_for_runs(1, timeout=timeout)
    deadline = time.perf_counter() + timeout
    while len(server.json(last_tag_path)) < STEPS:
        if time.perf_counter() > deadline:
            raise TimeoutError("the loader did not read every step")
        time.sleep(1)


def _check_grid(grid):
    if (len(grid["rows"]), len(grid["steps"])) != (VARIABLES, STEPS):
        raise RuntimeError(f"heat map of {len(grid['rows'])} x {len(grid['steps'])}")


def _draw(url):
    dom = session.chromium_dom(url)
    if 'data-ready="true"' not in dom or f'data-cells="{VARIABLES * STEPS}"' not in dom:
        raise RuntimeError("the tab did not draw every cell and mark itself ready")


def startup(logdir):
    """Median start-up of `tensorboard` with and without the plugin."""
    installed = session.plugin_installed()
    with_plugin = _seconds(lambda: _start_stop(session.TensorBoardServer(logdir)), 5)
    _report("tensorboard start-up with the Gradients tab", with_plugin)
    if installed:
        print("without the tab: not measurable here (kgrad's entry point is installed)")
        return
    without = _seconds(
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
    parser.add_argument(
        "--servers",
        type=int,
        default=3,
        help="fresh tensorboard processes for the cold figures (default 3)",
    )
    parser.add_argument("--screenshot", help="save a PNG of the tab here")
    args = parser.parse_args(argv)
    if session.chromium() is None and ("draw" in args.sections or args.screenshot):
        parser.error("Debian's chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as logdir:
        if {"route", "draw"} & set(args.sections):
            route_and_draw(logdir, args.sections, args.servers)
        if "startup" in args.sections:
            startup(logdir)
    if args.screenshot:
        screenshot(args.screenshot)


if __name__ == "__main__":
    main()
