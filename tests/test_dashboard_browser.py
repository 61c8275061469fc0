"""End to end: `tensorboard --logdir X --port 0` and headless Chromium.

A real `fit` with `GradientMonitor`, the `tensorboard` command in a
subprocess (the default fast loader; the plugin found through the
`tensorboard_plugins` entry point), its routes over HTTP, and the tab loaded
in Debian's `chromium`, which `.ci/run` installs: the page marks itself ready
and its heat map drew layers x steps cells.
"""

import html
import importlib.util
import pathlib
import re

import pytest

from tests.dashboard_logs import MLP_STEPS, fit_runs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _session():
    spec = importlib.util.spec_from_file_location(
        "kgrad_bench_dashboard_session", ROOT / "benchmarks" / "dashboard_session.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


session = _session()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("browser")
    fit_runs(logdir)
    with session.TensorBoardServer(logdir) as tensorboard:
        tensorboard.wait_for_runs(2)
        yield tensorboard


def canvases(dom):
    """The attributes of each heat map canvas in a dumped DOM."""
    found = []
    for tag in re.findall(r'<canvas class="heatmap"[^>]*>', dom):
        found.append(dict(re.findall(r'data-([\w-]+)="([^"]*)"', tag)))
    return found


def test_tensorboard_lists_the_tab_and_answers_its_routes(server):
    listing = server.json("/data/plugins_listing")["kgrad"]
    assert listing["enabled"] and listing["tab_name"] == "Gradients"
    status, kind, body = server.get(listing["loading_mechanism"]["module_path"])
    assert status == 200 and kind.startswith("text/javascript")
    assert b"export async function render()" in body
    runs = {r["run"] for r in server.json("/data/plugin/kgrad/runs")}
    assert runs == {"mlp/train", "rnn/train"}
    grid = server.json("/data/plugin/kgrad/heatmap?run=mlp/train&statistic=grad_norm")
    assert len(grid["rows"]) == 6 and grid["steps"] == list(range(1, MLP_STEPS + 1))
    status, _, body = server.get("/data/plugin/kgrad/static/..%2f..%2floader.py")
    assert status == 404


def test_chromium_draws_layers_times_steps_cells(server):
    if session.chromium() is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
    dom = session.chromium_dom(server.tab_url(compare="rnn/train"))
    assert re.search(r'<body[^>]* data-ready="true"', dom), dom[-2000:]
    drawn = canvases(dom)
    grids = [
        server.json(f"/data/plugin/kgrad/heatmap?run={run}&statistic=grad_norm")
        for run in ("mlp/train", "rnn/train")
    ]
    assert [int(c["cells"]) for c in drawn] == [
        len(g["rows"]) * len(g["steps"]) for g in grids
    ]
    assert [int(c["rows"]) for c in drawn] == [6, 5]
    assert [int(c["steps"]) for c in drawn] == [MLP_STEPS, MLP_STEPS]
    findings = server.json("/data/plugin/kgrad/findings?run=mlp/train")["findings"]
    assert findings and all(f["text"] in html.unescape(dom) for f in findings)


def test_chromium_draws_the_temporal_map(server):
    if session.chromium() is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
    url = server.tab_url(run="rnn/train", statistic="temporal_grad")
    dom = session.chromium_dom(url)
    assert re.search(r'<body[^>]* data-ready="true"', dom), dom[-2000:]
    (drawn,) = canvases(dom)
    assert (int(drawn["rows"]), int(drawn["steps"])) == (5, MLP_STEPS)
    assert int(drawn["cells"]) == 5 * MLP_STEPS
