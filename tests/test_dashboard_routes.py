"""The Gradients tab's routes, in process, over event files kgrad wrote.

TensorBoard's own WSGI app with its Python loader (`--load_fast=false`; the
Rust loader is exercised by `test_dashboard_browser.py`), over a real `fit`
with `GradientMonitor` and over a synthetic run of 1,200 logged steps. Values
are checked against the event files read back with TensorBoard's reader.
"""

import base64
import configparser
import gzip
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from tensorboard import default, program
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester
from werkzeug.test import Client

from kgrad import findings_record, tags
from kgrad.analysis.findings import Finding
from kgrad.dashboard import series, timeline
from kgrad.dashboard.loader import GradientsLoader
from tests.support import dashboard_session
from tests.support.dashboard_logs import MLP_STEPS, findings_data, fit_runs
from tests.support.events import read_events, read_texts

ROOT = pathlib.Path(__file__).resolve().parent.parent
TAB = "/data/plugin/kgrad"


def tensorboard_client(logdir, *flags, wrap_provider=None):
    """A werkzeug client of TensorBoard's app with its Python loader.

    `wrap_provider`, if given, is called with the data provider and returns
    the one the app reads; the client's `multiplexer` reloads the logdir.
    """
    # Without kgrad's entry point installed (a bare checkout), add the loader;
    # with it (`pip install -e .`), TensorBoard's defaults already hold it.
    others = [
        p
        for p in default.get_plugins()
        if not (p is GradientsLoader or isinstance(p, GradientsLoader))
    ]
    loaders = others + [GradientsLoader()]
    tensorboard = program.TensorBoard(plugins=loaders)
    tensorboard.configure(["", f"--logdir={logdir}", "--load_fast=false", *flags])
    ingester = data_ingester.LocalDataIngester(tensorboard.flags)
    multiplexer = ingester.deprecated_multiplexer
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    data_provider = ingester.data_provider
    if wrap_provider is not None:
        data_provider = wrap_provider(data_provider)
    app = application.TensorBoardWSGIApp(
        tensorboard.flags, loaders, data_provider, None, multiplexer
    )
    client = Client(app)
    client.multiplexer = multiplexer
    return client


def get_json(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.loads(response.get_data())


def grid_of(answer):
    values = np.frombuffer(base64.b64decode(answer["values"]), "<f4")
    return values.reshape(len(answer["rows"]), len(answer["steps"]))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("fitted")
    fit_runs(logdir)
    return logdir, tensorboard_client(logdir)


def test_listing_has_the_gradients_tab_as_an_es_module(fitted):
    _, client = fitted
    listing = get_json(client, "/data/plugins_listing")["kgrad"]
    assert listing["enabled"] and listing["tab_name"] == "Gradients"
    assert listing["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": f"{TAB}/static/index.js",
    }


def test_runs_lists_what_each_run_can_show(fitted):
    _, client = fitted
    runs = {r["run"]: r for r in get_json(client, f"{TAB}/runs")}
    assert sorted(runs) == ["mlp/train", "rnn/train"]
    assert runs["mlp/train"]["statistics"] == [
        "grad_norm",
        "update_ratio",
        "weight_norm",
        "dead_units",
    ]
    assert runs["mlp/train"]["recurrent"] == []
    assert runs["rnn/train"]["recurrent"] == ["recurrent"]


@pytest.mark.parametrize("statistic", ["grad_norm", "update_ratio", "dead_units"])
def test_heatmap_is_every_logged_value_in_model_order(fitted, statistic):
    logdir, client = fitted
    answer = get_json(client, f"{TAB}/heatmap?run=mlp/train&statistic={statistic}")
    events = read_events(logdir / "mlp" / "train")
    info = json.loads(events["kgrad/run_info"][-1][1].item())
    if statistic == "dead_units":
        expected_rows = [layer for layer, _ in info["layers"]]
    else:
        expected_rows = [p for p in info["variables"] if f"{statistic}/{p}" in events]
    assert answer["rows"] == expected_rows and answer["scale"] in ("log10", "linear")
    assert answer["steps"] == list(range(1, MLP_STEPS + 1))
    assert answer["sampling"] is None
    # NaN where a row has no value at a step (an update ratio of a weight at 0).
    expected = [
        [
            dict(events[f"{statistic}/{row}"]).get(step, np.nan)
            for step in answer["steps"]
        ]
        for row in expected_rows
    ]
    np.testing.assert_allclose(grid_of(answer), np.float32(expected), rtol=1e-6)


def test_heatmap_names_each_rows_layer_and_its_undefined_cells(fitted):
    logdir, client = fitted
    answer = get_json(client, f"{TAB}/heatmap?run=mlp/train&statistic=update_ratio")
    assert answer["layers"] == [row.rsplit("/", 1)[0] for row in answer["rows"]]
    events = read_events(logdir / "mlp" / "train")
    # A logged step without a ratio: the weight's norm was 0 (a bias at step 1).
    expected = [
        r * len(answer["steps"]) + c
        for r, row in enumerate(answer["rows"])
        for c, step in enumerate(answer["steps"])
        if step in dict(events[f"grad_norm/{row}"])
        and step not in dict(events[f"update_ratio/{row}"])
    ]
    assert expected and answer["undefined"] == expected
    rnn = get_json(client, f"{TAB}/heatmap?run=rnn/train&statistic=grad_norm")
    assert set(rnn["layers"]) == {"recurrent", "out"}


def test_loss_is_the_logged_loss_and_runs_count_active_findings(fitted):
    logdir, client = fitted
    answer = get_json(client, f"{TAB}/loss?run=mlp/train")
    logged = read_events(logdir / "mlp" / "train")["kgrad/loss"]
    assert answer["steps"] == [step for step, _ in logged]
    assert answer["values"] == pytest.approx([float(v) for _, v in logged])
    runs = {r["run"]: r for r in get_json(client, f"{TAB}/runs")}
    assert runs["mlp/train"]["loss"] and runs["mlp/train"]["findings"] >= 1
    assert runs["rnn/train"]["findings"] == 0 and runs["rnn/train"]["errors"] == 0


def test_temporal_map_has_a_row_per_timestep(fitted):
    logdir, client = fitted
    answer = get_json(
        client,
        f"{TAB}/heatmap?run=rnn/train&statistic=temporal_grad&layer=recurrent",
    )
    assert answer["rows"] == ["t0", "t1", "t2", "t3", "t4"]
    events = read_events(logdir / "rnn" / "train")
    grid = grid_of(answer)
    first = dict((s, float(v)) for s, v in events["temporal_grad/recurrent/t0"])
    assert [float(x) for x in grid[0]] == pytest.approx(
        [first[s] for s in answer["steps"]], rel=1e-6
    )
    assert np.isfinite(grid).all() and (grid > 0).all()


def test_histogram_is_the_logged_one_nearest_the_step(fitted):
    logdir, client = fitted
    path = "logits/kernel"
    answer = get_json(client, f"{TAB}/histogram?run=mlp/train&path={path}&step=7")
    events = dict(read_events(logdir / "mlp" / "train")[f"grad_hist/{path}"])
    assert answer["steps"] == sorted(events) == [1, 4, 8, 12]
    assert answer["step"] == 8
    np.testing.assert_allclose(answer["buckets"], events[8])


def test_findings_come_with_their_steps_and_layers(fitted):
    logdir, client = fitted
    answer = get_json(client, f"{TAB}/findings?run=mlp/train")
    events = read_events(logdir / "mlp" / "train")
    prose = events[tags.FINDINGS]
    texts = read_texts(logdir / "mlp" / "train", tags.FINDINGS_DATA)
    records = findings_record.records_of(texts)
    assert answer["structured"] and answer["sampling"] is None
    assert [{k: f[k] for k in records[0]} for f in answer["findings"]] == records
    dead = [f for f in answer["findings"] if f["kind"] == "dead_units"]
    assert len(dead) == 1 and dead[0]["heat_map"] == tags.DEAD_UNITS
    assert dead[0]["first_step"] == prose[0][0]  # data and prose together
    assert dead[0]["title"] in prose[0][1].item().decode()
    assert "hidden_1" in dead[0]["layers"]
    assert "logits" not in dead[0]["layers"]


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("heatmap?run=mlp/train&statistic=norms", 400, "Received: statistic='norms'"),
        ("heatmap?statistic=grad_norm", 400, "`run` is required. Received: run=None"),
        (
            "heatmap?run=rnn/train&statistic=temporal_grad&layer=lstm",
            400,
            "Received: layer='lstm'",
        ),
        ("heatmap?run=nope&statistic=grad_norm", 404, "run 'nope' has no"),
        ("histogram?run=mlp/train&path=x&step=two", 400, "Received: step='two'"),
        ("histogram?run=mlp/train&path=nope/kernel&step=1", 404, "grad_hist/nope"),
    ],
)
def test_bad_arguments_are_named_with_the_value_received(
    fitted, query, status, message
):
    _, client = fitted
    response = client.get(f"{TAB}/{query}")
    assert response.status_code == status
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "static/../plugin.py",
        "static/%2e%2e/plugin.py",
        "static/..%2fplugin.py",
        "static//etc/passwd",
        "static/%2Fetc%2Fpasswd",
        "static/static/index.js",
        "static/",
        "static/__init__.py",
    ],
)
def test_static_route_serves_only_its_own_files(fitted, path):
    _, client = fitted
    response = client.get(f"{TAB}/{path}")
    assert response.status_code == 404
    assert b"import" not in response.get_data()


def test_static_route_serves_javascript_as_javascript(fitted):
    _, client = fitted
    response = client.get(f"{TAB}/static/index.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert b"export async function render()" in response.get_data()


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("long")
    paths = dashboard_session.write_synthetic_run(logdir / "long" / "train", 3, 1200)
    return logdir, paths


def test_a_long_run_returns_every_step_when_the_loader_keeps_them(long_run):
    logdir, paths = long_run
    client = tensorboard_client(logdir, "--samples_per_plugin=scalars=0")
    answer = get_json(client, f"{TAB}/heatmap?run=long/train&statistic=grad_norm")
    assert answer["rows"] == paths
    assert answer["steps"] == list(range(1, 1201))
    assert answer["sampling"] is None
    value = dashboard_session.synthetic_value
    expected = [[value(3, i, s) for s in range(1, 1201)] for i in range(3)]
    np.testing.assert_allclose(grid_of(answer), np.float32(expected), rtol=1e-7)


def test_a_sampled_long_run_says_so_and_names_the_flag(long_run):
    logdir, _ = long_run
    client = tensorboard_client(logdir)
    answer = get_json(client, f"{TAB}/heatmap?run=long/train&statistic=grad_norm")
    assert len(answer["steps"]) == 1000 and answer["steps"][-1] == 1200
    assert answer["sampling"] == {
        "plugin": "scalars",
        "limit": 1000,
        "flag": "--samples_per_plugin=scalars=0",
    }


class CountingProvider:
    """A data provider that counts its `read_scalars` calls."""

    def __init__(self, data_provider):
        self.data_provider = data_provider
        self.scalar_reads = 0

    def read_scalars(self, *args, **kwargs):
        self.scalar_reads += 1
        return self.data_provider.read_scalars(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.data_provider, name)


def test_heatmap_is_read_once_until_the_run_gains_a_step(tmp_path):
    run_dir = tmp_path / "grow" / "train"
    paths = dashboard_session.write_synthetic_run(run_dir, 2, 5)
    counting = []

    def wrap(data_provider):
        counting.append(CountingProvider(data_provider))
        return counting[0]

    client = tensorboard_client(tmp_path, wrap_provider=wrap)
    path = f"{TAB}/heatmap?run=grow/train&statistic=grad_norm"
    first = client.get(path).get_data()
    zipped = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.get_data()) == first
    assert counting[0].scalar_reads == 1  # the second answer was kept
    from kgrad.monitor.log.event_writer import RunWriter

    writer = RunWriter(str(run_dir))  # a second event file: steps 6 and 7
    for step in (6, 7):
        writer.write(step, [], [(f"grad_norm/{p}", 0.5 * step) for p in paths])
    writer.close()
    client.multiplexer.Reload()
    grown = get_json(client, path)
    assert counting[0].scalar_reads == 2
    assert grown["steps"] == [1, 2, 3, 4, 5, 6, 7]
    value = dashboard_session.synthetic_value
    expected = [[value(2, i, s) for s in range(1, 6)] + [3.0, 3.5] for i in range(2)]
    np.testing.assert_allclose(grid_of(grown), np.float32(expected), rtol=1e-7)


def test_timeline_follows_a_finding_that_clears_and_returns():
    def dead(share):
        return Finding("dead_units", "warning", ("m/a",), f"{share}% dead.", "Fix.")

    nan = Finding("nonfinite", "error", ("m/b",), "X.", "Y.")
    diagnoses = [(2, [dead(60)]), (4, [dead(70), nan]), (6, []), (9, [dead(90)])]
    texts = [(s, text) for s, _, text in findings_data(diagnoses)]
    answer = timeline.timeline(texts, series.STATISTICS)
    found = answer["findings"]
    assert [(f["id"], f["first_step"], f["cleared_step"]) for f in found] == [
        ("dead_units@2", 2, 6),
        ("nonfinite@4", 4, 6),
        ("dead_units@9", 9, None),
    ]
    assert found[0]["text"] == "Warning: dead ReLU units in m/a. 70% dead. Fix."
    assert [f["heat_map"] for f in found] == ["dead_units", "grad_norm", "dead_units"]
    assert found[1]["severity"] == "error" and found[0]["last_step"] == 4


def test_a_run_without_findings_data_has_no_structured_findings():
    prose = [(4, "- Warning: dead ReLU units in m/a. 60% dead. Fix.")]
    answer = timeline.timeline(prose, series.STATISTICS)
    assert answer == {"findings": [], "structured": False, "note": timeline.NO_DATA}


def test_loader_imports_neither_tensorflow_nor_the_plugin():
    code = (
        "import sys, kgrad.dashboard.loader as l; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy', "
        "'kgrad.dashboard.plugin') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_setup_cfg_registers_the_plugin_and_ships_its_files():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    entry = config["options.entry_points"]["tensorboard_plugins"].strip()
    assert entry == dashboard_session.ENTRY_POINT
    patterns = config["options.package_data"]["kgrad.dashboard"]
    from kgrad.dashboard import plugin

    static = ROOT / "kgrad" / "dashboard" / "static"
    assert sorted(p.name for p in static.iterdir()) == sorted(plugin.STATIC_FILES)
    assert patterns == "static/*.js"


def test_noise_scale_is_a_heat_map_of_layers(tmp_path):
    """`GradientMonitor(noise_scale=True)`: `b_simple/<layer>` as rows, read back."""
    import keras

    from kgrad import GradientMonitor

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x), name="m")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(64, 6)).astype("float32")
    y = rng.choice(3, size=64, p=[0.8, 0.1, 0.1])
    monitor = GradientMonitor(
        tmp_path / "m",
        norms_every="batch",
        noise_scale=True,
        verbose=0,
        figure_secs=None,
    )
    model.fit(x_np, y, batch_size=16, epochs=2, verbose=0, callbacks=[monitor])
    monitor.flush()
    client = tensorboard_client(tmp_path)
    runs = {r["run"]: r for r in get_json(client, f"{TAB}/runs")}
    assert tags.B_SIMPLE in runs["m/train"]["statistics"]
    answer = get_json(client, f"{TAB}/heatmap?run=m/train&statistic={tags.B_SIMPLE}")
    events = read_events(tmp_path / "m" / "train")
    rows = [r for r in ("hidden", "out") if tags.tag(tags.B_SIMPLE, r) in events]
    assert answer["rows"] == rows and answer["scale"] == "log10"
    expected = [
        [
            dict(events[tags.tag(tags.B_SIMPLE, row)]).get(step, np.nan)
            for step in answer["steps"]
        ]
        for row in rows
    ]
    np.testing.assert_allclose(grid_of(answer), np.float32(expected), rtol=1e-6)
