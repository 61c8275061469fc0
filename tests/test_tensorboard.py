"""What a user sees: kgrad's logs served by a real TensorBoard, over HTTP.

A small sigmoid MLP is trained four steps with every step logged. A TensorBoard
server is started on those logs (a subprocess on 127.0.0.1, a free port), and
the routes its dashboards call are asked which runs and tags each dashboard
has and what data each tag holds. The answers are compared with what
TensorBoard's own reader finds in the event files, and with what kgrad's tag
scheme (the docstring of `kgrad.monitor.log.summaries`) says must be there.

The server is started once for the module, within `STARTUP_SECONDS`, and is
stopped by the fixture's teardown even when a test fails.
"""

import json
import queue
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.distribution import compressor

from kgrad import GradientMonitor, tags, zoo
from kgrad.monitor.log import summaries

STARTUP_SECONDS = 60
REQUEST_SECONDS = 10
STEPS = [1, 2, 3, 4]
DEPTH = 10  # deep enough for a vanishing-gradient finding

# Dashboard -> the plugin whose data it shows (distributions read histograms).
DASHBOARDS = {
    "scalars": "scalars",
    "histograms": "histograms",
    "distributions": "histograms",
    "images": "images",
    "text": "text",
    "custom_scalars": "custom_scalars",
}
STATISTICS = {
    "grad_norm",
    "grad_nonfinite",
    "weight_norm",
    "update_ratio",
    "loss_scale",
    "activation_zero",
    "dead_units",
    "saturation",
    "kgrad",  # kgrad/loss, kgrad/epoch/<metric>
}
FINDINGS_TAG = "kgrad/findings"
FLOW_TAG = "kgrad/gradient_flow"
LAYOUT_TAG = "custom_scalars__config__"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- the logs -----------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Logs of a 10-layer sigmoid MLP (it vanishes) trained 4 steps, all logged."""
    keras.utils.set_random_seed(0)
    log_dir = tmp_path_factory.mktemp("tensorboard")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 3, size=32)
    model = zoo.build(
        "mlp_sigmoid", depth=DEPTH, width=8, input_shape=(6,), num_classes=3
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor = GradientMonitor(log_dir, norms_every=1, histograms_every=1)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[monitor])
    monitor.flush()  # the gradient-flow figure is drawn in the background
    return SimpleNamespace(
        log_dir=log_dir,
        train_dir=log_dir / "train",
        paths=[tags.in_model(v.path, model.name) for v in model.trainable_variables],
        layers=[f"dense_{i:02d}" for i in range(1, DEPTH + 1)],
    )


def _plugins(run_dir):
    """Tag -> name of the plugin that owns it, from the event files' metadata."""
    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return {
        tag: accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        for tag in accumulator.Tags()["tensors"]
    }


def _tags_of(run_dir, plugin):
    return {tag for tag, name in _plugins(run_dir).items() if name == plugin}


def _declared(tag):
    """Whether the tag scheme (`kgrad.monitor.log.summaries` docstring) has `tag`."""
    doc = summaries.__doc__ or ""
    if tag == LAYOUT_TAG:  # TensorBoard's own tag: the scheme names the feature
        return bool(re.search(r"custom[ _]scalars", doc, re.IGNORECASE))
    return f"`{tag}`" in doc


def _expected_or_skip(run, tag, what):
    """Skips only while kgrad neither declares nor writes `tag`."""
    if not _declared(tag) and tag not in _plugins(run.train_dir):
        pytest.skip(f"kgrad does not write {what} (`{tag}`) yet")


# -- the server ---------------------------------------------------------------
@pytest.fixture(scope="module")
def server(run):
    """Base URL of a TensorBoard serving `run.log_dir`; stopped at teardown."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(run.log_dir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",  # the OS picks a free port; TensorBoard prints the URL
            "--load_fast=false",
            "--reload_interval=0",
            "--reload_task=blocking",  # all data is loaded before serving
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = queue.Queue()
    log = []

    def drain():  # keeps the pipe from filling up, and keeps the log for errors
        for line in process.stderr:
            log.append(line)
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        yield _wait_until_serving(process, lines, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_serving(process, lines, log):
    deadline = time.monotonic() + STARTUP_SECONDS
    url = None
    while url is None:
        left = deadline - time.monotonic()
        if left <= 0 or process.poll() is not None:
            pytest.fail(
                "TensorBoard did not start within "
                f"{STARTUP_SECONDS} s:\n{''.join(log[-20:])}"
            )
        try:
            line = lines.get(timeout=min(left, 1.0))
        except queue.Empty:
            continue
        match = re.search(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)", line)
        url = match and match.group(1)
    while time.monotonic() < deadline:
        try:
            if _get(url, "data/runs"):
                return url
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    pytest.fail(f"TensorBoard at {url} listed no run within {STARTUP_SECONDS} s")


def _fetch(url, route, **params):
    query = "?" + urllib.parse.urlencode(params) if params else ""
    with urllib.request.urlopen(url + route + query, timeout=REQUEST_SECONDS) as r:
        assert r.status == 200, (route, params, r.status)
        return r.read()


def _get(url, route, **params):
    return json.loads(_fetch(url, route, **params))


# -- the tests ----------------------------------------------------------------
def test_each_dashboard_with_data_is_enabled(run, server):
    assert _get(server, "data/runs") == ["train"]
    listing = _get(server, "data/plugins_listing")
    plugins = set(_plugins(run.train_dir).values())
    # kgrad always writes these; the others as soon as its tag scheme says so.
    assert {"scalars", "histograms", "text"} <= plugins
    declared = [
        (FLOW_TAG, "images"),
        (FINDINGS_TAG, "text"),
        (LAYOUT_TAG, "custom_scalars"),
    ]
    for tag, plugin in declared:
        assert plugin in plugins or not _declared(tag), tag
    enabled = {name for name in DASHBOARDS if listing[name]["enabled"]}
    assert enabled == {name for name, p in DASHBOARDS.items() if p in plugins}


def test_scalars_dashboard_has_every_norm_with_its_steps_and_values(
    run, server, events
):
    expected = events(run.train_dir)
    tags = set(_get(server, "data/plugin/scalars/tags")["train"])
    assert tags == _tags_of(run.train_dir, "scalars")
    kgrad_tags = {"grad_norm/global", "grad_nonfinite/global"}
    kgrad_tags |= {f"grad_norm/{p}" for p in run.paths}
    kgrad_tags |= {f"weight_norm/{p}" for p in run.paths}
    kgrad_tags |= {f"update_ratio/{p}" for p in run.paths if p.endswith("kernel")}
    kgrad_tags |= {f"saturation/{layer}" for layer in run.layers}
    assert kgrad_tags <= tags
    for tag in sorted(tags):
        points = _get(server, "data/plugin/scalars/scalars", run="train", tag=tag)
        steps = [step for _, step, _ in points]
        assert steps == [step for step, _ in expected[tag]], tag
        values = np.array([value for _, _, value in points], np.float32)
        want = np.array([value for _, value in expected[tag]], np.float32)
        np.testing.assert_array_equal(values, want, err_msg=tag)
    for tag in kgrad_tags:
        assert len(expected[tag]) == len(STEPS), tag
    norms = [
        v
        for _, _, v in _get(
            server, "data/plugin/scalars/scalars", run="train", tag="grad_norm/global"
        )
    ]
    assert all(np.isfinite(norms)) and min(norms) > 0


def test_scalar_charts_group_by_statistic(run, server):
    # TensorBoard puts a tag in the chart group named by its prefix before "/".
    tags = _get(server, "data/plugin/scalars/tags")["train"]
    groups = {tag.split("/", 1)[0] for tag in tags}
    assert groups <= STATISTICS
    assert {"grad_norm", "weight_norm", "update_ratio", "saturation"} <= groups
    assert {"kgrad/loss", "kgrad/epoch/loss"} <= set(tags)


def test_histograms_dashboard_has_every_gradient_with_its_buckets(run, server, events):
    expected = events(run.train_dir)
    tags = set(_get(server, "data/plugin/histograms/tags")["train"])
    assert tags == {f"grad_hist/{p}" for p in run.paths}
    assert tags == _tags_of(run.train_dir, "histograms")
    for tag in sorted(tags):
        points = _get(server, "data/plugin/histograms/histograms", run="train", tag=tag)
        assert [step for _, step, _ in points] == STEPS, tag
        for (_, _, buckets), (_, want) in zip(points, expected[tag], strict=True):
            np.testing.assert_array_equal(np.array(buckets), want, err_msg=tag)
            assert np.array(buckets)[:, 2].sum() > 0, tag


def test_distributions_dashboard_spans_each_gradient_from_min_to_max(
    run, server, events
):
    expected = events(run.train_dir)
    tags = set(_get(server, "data/plugin/distributions/tags")["train"])
    assert tags == {f"grad_hist/{p}" for p in run.paths}
    for tag in sorted(tags):
        points = _get(
            server, "data/plugin/distributions/distributions", run="train", tag=tag
        )
        assert [step for _, step, _ in points] == STEPS, tag
        for (_, _, bands), (_, want) in zip(points, expected[tag], strict=True):
            bands = np.array(bands)  # [basis point, value], as the chart draws
            # From the smallest gradient entry (0%) to the largest (100%).
            assert bands[0].tolist() == [0, want[0, 0]], tag
            np.testing.assert_allclose(bands[-1], [10000, want[-1, 1]], rtol=1e-12)
            np.testing.assert_allclose(
                bands, compressor.compress_histogram(want), rtol=1e-12, err_msg=tag
            )


def test_text_dashboard_shows_run_info(run, server, events):
    expected = events(run.train_dir)
    tags = set(_get(server, "data/plugin/text/tags")["train"])
    assert "kgrad/run_info" in tags
    assert tags == _tags_of(run.train_dir, "text")
    for tag in sorted(tags):
        shown = _get(
            server, "data/plugin/text/text", run="train", tag=tag, markdown="false"
        )
        assert [item["step"] for item in shown] == [s for s, _ in expected[tag]]
        for item, (_, want) in zip(shown, expected[tag], strict=True):
            assert item["text"] == want.item().decode("utf-8"), tag
    (info,) = _get(
        server,
        "data/plugin/text/text",
        run="train",
        tag="kgrad/run_info",
        markdown="false",
    )
    assert info["step"] == 1
    info = json.loads(info["text"])
    assert info["variables"] == run.paths
    assert [layer for layer, _ in info["layers"]] == run.layers


def test_text_dashboard_shows_findings(run, server, events):
    _expected_or_skip(run, FINDINGS_TAG, "a findings text summary")
    expected = events(run.train_dir)
    assert FINDINGS_TAG in _get(server, "data/plugin/text/tags")["train"]
    shown = _get(
        server,
        "data/plugin/text/text",
        run="train",
        tag=FINDINGS_TAG,
        markdown="false",
    )
    assert shown, "no findings served"
    assert [item["step"] for item in shown] == [s for s, _ in expected[FINDINGS_TAG]]
    for item in shown:
        assert item["text"].strip(), "an empty findings text"
    # As markdown (the dashboard's default) it renders to HTML, not an error.
    rendered = _get(server, "data/plugin/text/text", run="train", tag=FINDINGS_TAG)
    assert all(item["text"].strip() for item in rendered)


def test_images_dashboard_shows_gradient_flow(run, server, events):
    _expected_or_skip(run, FLOW_TAG, "a gradient-flow image")
    expected = events(run.train_dir)
    index = _get(server, "data/plugin/images/tags")["train"]
    assert FLOW_TAG in index
    assert index[FLOW_TAG]["samples"] == 1
    shown = _get(server, "data/plugin/images/images", run="train", tag=FLOW_TAG)
    assert [item["step"] for item in shown] == [s for s, _ in expected[FLOW_TAG]]
    for item, (_, want) in zip(shown, expected[FLOW_TAG], strict=True):
        image = _fetch(server, "data/plugin/images/individualImage?" + item["query"])
        assert image.startswith(PNG_MAGIC)
        assert image == want[2]
        width, height = struct.unpack(">II", image[16:24])  # the IHDR chunk
        assert (width, height) == (int(want[0]), int(want[1]))
        assert width >= 100 and height >= 100


def test_custom_scalars_layout_charts_kgrad_tags(run, server, events):
    _expected_or_skip(run, LAYOUT_TAG, "a custom-scalars layout")
    expected = events(run.train_dir)
    layout = _get(server, "data/plugin/custom_scalars/layout")
    assert layout.get("category"), layout
    scalar_tags = set(_get(server, "data/plugin/scalars/tags")["train"])
    for category in layout["category"]:
        assert category.get("title") and category.get("chart"), category
        for chart in category["chart"]:
            regexes = chart.get("multiline", {}).get("tag", [])
            regexes += [
                series[key]
                for series in chart.get("margin", {}).get("series", [])
                for key in ("value", "lower", "upper")
                if series.get(key)
            ]
            assert regexes, chart
            for regex in regexes:
                matched = {t for t in scalar_tags if re.match(regex, t)}
                assert matched, f"chart {chart.get('title')!r}: {regex!r} is empty"
                served = _get(
                    server,
                    "data/plugin/custom_scalars/scalars",
                    run="train",
                    tag=regex,
                )
                assert served["regex_valid"]
                assert set(served["tag_to_events"]) == matched
                for tag in matched:
                    points = served["tag_to_events"][tag]
                    assert [s for _, s, _ in points] == [s for s, _ in expected[tag]]
