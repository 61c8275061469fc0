"""JAX runs of the zoo, read by `kgrad report`, `--json` and the Gradients tab."""

import json

import keras
import numpy as np
import pytest
from tensorboard import default, program
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester
from werkzeug.test import Client

from kgrad import tags, zoo
from kgrad.cli import main
from kgrad.dashboard.loader import GradientsLoader
from tests.support.events import read_events
from tests.support.jax_fits import monitor

FAMILIES = {  # one model per zoo family, at a tiny size
    "mlp_sigmoid": dict(depth=3, width=8, input_shape=(12,)),
    "cnn_bn": dict(depth=2, filters=4, input_shape=(8, 8, 1)),
    "lstm": dict(units=4, input_shape=(6, 2)),
    "resnet18": dict(width=2, input_shape=(8, 8, 1)),
    "transformer_small": dict(
        blocks=1, d_model=8, heads=2, ff_dim=8, input_shape=(6, 3)
    ),
}


def _fit(name, log_dir):
    keras.utils.set_random_seed(0)
    args = dict(FAMILIES[name], num_classes=3)
    model = zoo.build(name, **args)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.RandomState(0)
    x = rng.randn(16, *args["input_shape"]).astype("float32")
    y = rng.randint(0, 3, 16)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[monitor(log_dir)])
    return model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    return root, {name: _fit(name, root / name) for name in FAMILIES}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_logs_every_variable(runs, name):
    root, models = runs
    events = read_events(root / name / "train")
    model = models[name]
    paths = [tags.in_model(v.path, model.name) for v in model.trainable_variables]
    assert {f"grad_norm/{p}" for p in paths} <= set(events)
    assert [s for s, _ in events["grad_norm/global"]] == [1, 2, 3, 4]
    info = json.loads(events["kgrad/run_info"][-1][1].item())
    assert info["variables"] == paths and info["model"] == name


def test_report_and_json_read_a_jax_run(runs, capsys):
    root, _ = runs
    assert main(["report", str(root / "mlp_sigmoid")]) == 0
    text = capsys.readouterr().out
    assert "mlp_sigmoid" in text and "4 logged steps" in text
    assert main(["report", str(root / "mlp_sigmoid"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert "mlp_sigmoid" in json.dumps(answer)


def test_the_gradients_tab_serves_a_jax_run(runs):
    root, _ = runs
    loaders = [p for p in default.get_plugins() if p is not GradientsLoader]
    loaders = [p for p in loaders if not isinstance(p, GradientsLoader)]
    loaders.append(GradientsLoader())
    board = program.TensorBoard(plugins=loaders)
    board.configure(["", f"--logdir={root}", "--load_fast=false"])
    ingester = data_ingester.LocalDataIngester(board.flags)
    ingester.deprecated_multiplexer.AddRunsFromDirectory(str(root))
    ingester.deprecated_multiplexer.Reload()
    app = application.TensorBoardWSGIApp(
        board.flags,
        loaders,
        ingester.data_provider,
        None,
        ingester.deprecated_multiplexer,
    )
    client = Client(app)
    listed = json.loads(client.get("/data/plugin/kgrad/runs").get_data())
    assert {r["run"] for r in listed} == {f"{name}/train" for name in FAMILIES}
    answer = client.get(
        "/data/plugin/kgrad/heatmap?run=cnn_bn/train&statistic=grad_norm"
    )
    assert answer.status_code == 200
    heatmap = json.loads(answer.get_data())
    assert heatmap["steps"] == [1, 2, 3, 4] and len(heatmap["rows"]) > 4
