"""Screenshots of TensorBoard's dashboards over kgrad's logs, for the README.

Starts TensorBoard on LOGDIR (127.0.0.1, a free port), opens each dashboard
that has data in headless Chromium (Debian package `chromium`) and saves one
PNG per view in OUTDIR: gradient norms per layer, gradient histograms and
distributions, the gradient-flow image, the findings text and the
custom-scalars layout. If LOGDIR holds no logs yet, it first trains the
vanishing-gradient case there: `zoo.build("mlp_sigmoid")` (20 sigmoid layers)
on `digits_flat` with SGD, a few minutes on 2 CPU cores.

Not part of the tests (CI has no browser). Run by hand:

    apt-get install -y chromium
    python scripts/screenshots.py runs/screenshots docs/screenshots
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from kgrad import tags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STARTUP_SECONDS = 90
# Layers shown on the per-layer dashboards: first, every fifth, last.
LAYERS = "dense_01|dense_05|dense_10|dense_15|dense_20|output"


def _per_kernel(statistic):
    """The tag filter of `statistic` for the kernels of `LAYERS`."""
    return "^" + tags.tag(statistic, f"({LAYERS})/kernel")


# (file name, dashboard, URL hash parameters, window size, what it shows,
#  the tag it needs, if a dashboard may have data without kgrad's view)
VIEWS = [
    (
        "grad_norm.png",
        "scalars",
        {"tagFilter": _per_kernel(tags.GRAD_NORM), "_smoothingWeight": "0"},
        (1400, 1100),
        "gradient norms of six kernels from input to output, over steps",
        None,
    ),
    (
        "histograms.png",
        "histograms",
        {"tagFilter": _per_kernel(tags.GRAD_HIST)},
        (1400, 1100),
        "gradient histograms of the same kernels over steps",
        None,
    ),
    (
        "distributions.png",
        "distributions",
        {"tagFilter": _per_kernel(tags.GRAD_HIST)},
        (1400, 1100),
        "gradient percentiles of the same kernels over steps",
        None,
    ),
    (
        "gradient_flow.png",
        "images",
        {},  # a tag filter would show the image twice: matches, then its group
        (1400, 700),
        "the gradient-flow image: gradient norm per layer, input to output",
        tags.GRADIENT_FLOW,
    ),
    (
        "findings.png",
        "text",
        {},  # the findings come first in the kgrad group, then run_info
        (1400, 700),
        "kgrad's findings, in plain language",
        tags.FINDINGS,
    ),
    (
        "custom_scalars.png",
        "custom_scalars",
        {},
        (1400, 600),
        "kgrad's custom-scalars layout",
        None,
    ),
]


def train(log_dir, epochs):
    """Trains the vanishing-gradient case with `GradientMonitor` into `log_dir`."""
    import keras

    import kgrad
    from kgrad import data, zoo

    keras.utils.set_random_seed(0)
    digits = data.load("digits_flat")
    model = zoo.build("mlp_sigmoid")
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    monitor = kgrad.GradientMonitor(log_dir, norms_every=5, histograms_every=15)
    model.fit(
        digits.x_train,
        digits.y_train,
        batch_size=32,
        epochs=epochs,
        validation_data=(digits.x_test, digits.y_test),
        callbacks=[monitor],
        verbose=2,
    )
    monitor.flush()


def start_tensorboard(log_dir):
    """Starts TensorBoard on a free port; returns the process and its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(log_dir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--load_fast=false",
            "--reload_interval=0",
            "--reload_task=blocking",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    log = []
    try:
        for line in process.stderr:  # ends when the process exits
            log.append(line)
            match = re.search(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)", line)
            if match:
                url = match.group(1)
                break
            if time.monotonic() > deadline:
                raise RuntimeError("TensorBoard did not start in time")
        else:
            raise RuntimeError("TensorBoard exited:\n" + "".join(log[-20:]))
        # Keep reading stderr so that the pipe never fills up.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        while json.loads(fetch(url + "data/runs")) == []:
            if time.monotonic() > deadline:
                raise RuntimeError(f"TensorBoard at {url} lists no run")
            time.sleep(0.5)
    except BaseException:
        stop(process)
        raise
    return process, url


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def has_tag(url, dashboard, tag):
    """Whether some run has `tag` on `dashboard` (a plugin's tags route)."""
    runs = json.loads(fetch(f"{url}data/plugin/{dashboard}/tags"))
    return any(tag in tags for tags in runs.values())


def screenshot(browser, url, path, size, wait_ms):
    """Renders `url` in headless Chromium and saves a PNG at `path`."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                f"--screenshot={path}",
                f"--virtual-time-budget={wait_ms}",
                url,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", type=pathlib.Path)
    parser.add_argument("outdir", type=pathlib.Path)
    parser.add_argument(
        "--epochs", type=int, default=5, help="epochs when training (default 5)"
    )
    parser.add_argument(
        "--wait-ms",
        type=int,
        default=15000,
        help="virtual time Chromium gives a page to load (default 15000)",
    )
    parser.add_argument("--browser", default="chromium")
    args = parser.parse_args(argv)

    browser = shutil.which(args.browser)
    if browser is None:
        sys.exit(f"{args.browser} not found: apt-get install -y chromium")
    if not any(args.logdir.glob("**/events.out.tfevents.*")):
        train(args.logdir, args.epochs)
    args.outdir.mkdir(parents=True, exist_ok=True)

    process, url = start_tensorboard(args.logdir)
    try:
        listing = json.loads(fetch(url + "data/plugins_listing"))
        for name, dashboard, params, size, what, tag in VIEWS:
            if not listing.get(dashboard, {}).get("enabled"):
                print(f"skipped {name}: the logs have no {dashboard} data")
                continue
            if tag and not has_tag(url, dashboard, tag):
                print(f"skipped {name}: the logs have no {tag}")
                continue
            query = "".join(
                f"&{key}={urllib.parse.quote(value, safe='')}"
                for key, value in params.items()
            )
            path = args.outdir / name
            screenshot(browser, f"{url}#{dashboard}{query}", path, size, args.wait_ms)
            print(f"{path}: {what}")
    finally:
        stop(process)


if __name__ == "__main__":
    main()
