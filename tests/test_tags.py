"""The tag contract (`kgrad.tags`): every build/parse pair round-trips, and
the tags a monitored fit writes are exactly those the contract builds."""

import ast
import pathlib
import re
import subprocess
import sys

import pytest
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata

from kgrad import tags

ROOT = pathlib.Path(__file__).resolve().parents[1]
PATHS = ["mlp/dense/kernel", "w", "m/block/conv_2/bias", "d/w_2", "d/(all)"]


@pytest.mark.parametrize(
    "statistic", tags.PER_VARIABLE + tags.PER_LAYER + (tags.TEMPORAL_GRAD,)
)
@pytest.mark.parametrize("name", PATHS + [tags.GLOBAL])
def test_tag_and_name_of_round_trip(statistic, name):
    built = tags.tag(statistic, name)
    assert tags.name_of(built, statistic) == name
    others = set(tags.PER_VARIABLE + tags.PER_LAYER) - {statistic}
    assert all(tags.name_of(built, other) is None for other in others)


def test_names_keeps_tag_order_and_leaves_global_out():
    written = [tags.tag(tags.GRAD_NORM, p) for p in PATHS]
    written += [tags.GLOBAL_GRAD_NORM, tags.tag(tags.WEIGHT_NORM, "x/y"), tags.LOSS]
    assert tags.names(written, tags.GRAD_NORM) == PATHS
    assert tags.GLOBAL_GRAD_NORM == tags.tag(tags.GRAD_NORM, tags.GLOBAL)
    assert tags.GLOBAL_NONFINITE == tags.tag(tags.GRAD_NONFINITE, tags.GLOBAL)


@pytest.mark.parametrize(
    "path, layer",
    [
        ("mlp/dense/kernel", "mlp/dense"),
        ("m/block/conv_2/bias", "m/block/conv_2"),
        ("d/w_2", "d"),
        # A variable outside any layer is its own layer, never dropped.
        ("w", "w"),
        ("/w", "/w"),
        ("d/(all)", "d"),
    ],
)
def test_layer_of(path, layer):
    assert tags.layer_of(path) == layer


@pytest.mark.parametrize("layer", ["mlp/dense", "w", "m/block/lstm"])
def test_whole_layer_round_trips_through_layer_of(layer):
    assert tags.layer_of(tags.whole_layer(layer)) == layer
    assert tags.whole_layer(layer).endswith("/" + tags.ALL)


@pytest.mark.parametrize("metric", ["loss", "accuracy", "val/auc"])
def test_epoch_round_trip(metric):
    assert tags.epoch_metric(tags.epoch(metric)) == metric
    assert tags.epoch_metric(tags.LOSS) is None


@pytest.mark.parametrize("last", [0, 9, 10, 99, 100, 1234])
@pytest.mark.parametrize("rnn", ["lstm", "m/bidirectional/forward_lstm", "r/t1"])
def test_temporal_round_trip(rnn, last):
    for k in sorted({0, last // 2, last}):
        built = tags.temporal(rnn, k, last)
        assert tags.parse_temporal(built) == (rnn, k)
        # zero-padded to the digits of the last timestep: sorts as numbers
        assert len(built.rpartition("/")[2]) == 1 + len(str(last))
    assert tags.parse_temporal(tags.temporal_ratio(rnn)) is None
    assert tags.parse_temporal_ratio(tags.temporal_ratio(rnn)) == rnn
    assert tags.parse_temporal_ratio(tags.temporal(rnn, 0, last)) is None
    assert tags.name_of(tags.temporal_ratio(rnn), tags.TEMPORAL_GRAD).endswith(
        tags.FIRST_OVER_LAST
    )


def test_parse_temporal_refuses_other_tags():
    for other in [tags.LOSS, tags.tag(tags.GRAD_NORM, "r/t1"), "temporal_grad/t1"]:
        assert tags.parse_temporal(other) is None


def test_timestep_rows_and_recurrent_layers():
    written = [tags.temporal("b", k, 12) for k in (12, 0, 6)]
    written += [tags.temporal("a", 0, 3), tags.temporal_ratio("b"), tags.LOSS]
    assert tags.recurrent_layers(written) == ["a", "b"]
    rows = tags.timestep_rows(written, "b")
    assert [label for label, _ in rows] == ["t00", "t06", "t12"]
    assert [tags.parse_temporal(t) for _, t in rows] == [("b", 0), ("b", 6), ("b", 12)]


def test_model_order_and_run_info_readers():
    info = {
        "variables": ["m/in/kernel", "m/in/bias", "w", "m/out/kernel", 3],
        "layers": [["m/relu", "relu"], [], [5, "relu"]],
        "recurrent_layers": ["m/rnn", None],
    }
    assert tags.variable_order(info) == [
        "m/in/kernel",
        "m/in/bias",
        "w",
        "m/out/kernel",
    ]
    assert tags.layer_order(info) == ["m/relu"]
    assert tags.recurrent_order(info) == ["m/rnn"]
    assert tags.model_layers(info) == ["m/in", "w", "m/out", "m/relu", "m/rnn"]
    names = ["zz", "m/out/kernel", "a", "m/in/kernel"]
    assert tags.in_model_order(names, tags.variable_order(info)) == [
        "m/in/kernel",
        "m/out/kernel",
        "a",
        "zz",
    ]
    assert tags.variable_order(None) == [] and tags.model_layers({}) == []


def test_kgrad_tags_are_in_the_namespace():
    own = [tags.LOSS, tags.RUN_INFO, tags.FINDINGS, tags.FINDINGS_DATA]
    own += [tags.MISSING_STEPS, tags.GRADIENT_FLOW, tags.TEMPORAL_PROFILE]
    assert len(set(own)) == len(own)
    assert all(t.startswith(tags.NAMESPACE + "/") for t in own)
    assert tags.epoch("x").startswith(tags.NAMESPACE + "/")


def test_the_module_imports_no_tensorflow():
    code = "import sys, kgrad.tags; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def _string_literals(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
            yield node.lineno, "".join(str(p) for p in parts)


def test_no_tag_literal_outside_the_contract():
    """No string in the package, scripts, benchmarks or examples spells a tag
    prefix (docstrings included): they import `kgrad.tags`."""
    prefixes = [f"{s}/" for s in tags.PER_VARIABLE + tags.PER_LAYER]
    prefixes += [f"{tags.TEMPORAL_GRAD}/", f"{tags.LOSS_SCALE}/", "kgrad/"]
    found = []
    for folder in ["kgrad", "scripts", "benchmarks", "examples"]:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "kgrad" / "tags.py":
                continue
            for line, text in _string_literals(path):
                found += [
                    f"{path.relative_to(ROOT)}:{line}: {p}"
                    for p in prefixes
                    if p in text
                ]
    assert found == []


STATIC = ROOT / "kgrad" / "dashboard" / "static"


def test_the_tab_imports_every_name_it_uses_from_the_served_contract():
    from kgrad.dashboard import plugin

    module = plugin.tags_module()
    exported = set(re.findall(r"^export const (\w+) = ", module, re.M))
    assert {"GRAD_NORM", "TEMPORAL_GRAD", "LOSS", "PER_VARIABLE"} <= exported
    assert f'export const TEMPORAL_GRAD = "{tags.TEMPORAL_GRAD}";' in module
    imported = set()
    for path in STATIC.glob("*.js"):
        for names in re.findall(
            r'import \{([^}]*)\} from "\./tags\.js"', path.read_text()
        ):
            imported |= {n.strip() for n in names.split(",")}
    assert imported and imported <= exported


def test_no_statistic_name_is_spelled_in_the_tab():
    statistics = tags.PER_VARIABLE + tags.PER_LAYER + (tags.TEMPORAL_GRAD,)
    found = [
        f"{path.name}: {name}"
        for path in sorted(STATIC.glob("*.js"))
        for name in statistics + (tags.NAMESPACE + "/",)
        if re.search(
            rf"[\"'`]{re.escape(name)}|^\s*{re.escape(name)}:", path.read_text(), re.M
        )
    ]
    assert found == []


def _classify(tag_, info):
    """Which contract entry `tag_` is, checked against the run's `run_info`."""
    own = (tags.LOSS, tags.RUN_INFO, tags.GRADIENT_FLOW, tags.FINDINGS)
    if tag_ in own + (tags.FINDINGS_DATA,):
        return tag_
    if tag_ == custom_scalar_metadata.CONFIG_SUMMARY_TAG:  # TensorBoard's own
        return tag_
    if tags.epoch_metric(tag_) is not None:
        return tags.EPOCH_PREFIX
    if parsed := tags.parse_temporal(tag_):
        assert parsed[0] in tags.recurrent_order(info)
        return tags.TEMPORAL_GRAD
    if rnn := tags.parse_temporal_ratio(tag_):
        assert rnn in tags.recurrent_order(info)
        return tags.FIRST_OVER_LAST
    for statistic in tags.PER_VARIABLE:
        name = tags.name_of(tag_, statistic)
        if name is not None:
            assert name == tags.GLOBAL or name in tags.variable_order(info), tag_
            return statistic
    for statistic in tags.PER_LAYER:
        name = tags.name_of(tag_, statistic)
        if name is not None:
            assert name in tags.layer_order(info), tag_
            return statistic
    return None


def test_every_tag_a_monitored_fit_writes_is_built_by_the_contract(tmp_path):
    """A small RNN + ReLU model, two logged steps, read back with
    TensorBoard's reader: each tag parses with `kgrad.tags` and names a
    variable, layer or recurrent layer of the run's `run_info`."""
    import json

    import keras
    import numpy as np
    from tensorboard.backend.event_processing import event_accumulator

    from kgrad import GradientMonitor

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.SimpleRNN(4),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    x, y = np.random.rand(8, 5, 3), np.random.rand(8, 1)
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[GradientMonitor(str(tmp_path), verbose=0)],
    )
    run = event_accumulator.EventAccumulator(
        str(tmp_path / "train"), size_guidance={"tensors": 0}
    )
    run.Reload()
    written = run.Tags()["tensors"]
    info = json.loads(run.Tensors(tags.RUN_INFO)[-1].tensor_proto.string_val[0])
    kinds = {t: _classify(t, info) for t in written}
    assert [t for t, kind in kinds.items() if kind is None] == []
    expected = {tags.GRAD_NORM, tags.WEIGHT_NORM, tags.GRAD_HIST, tags.LOSS}
    expected |= {tags.TEMPORAL_GRAD, tags.FIRST_OVER_LAST, tags.DEAD_UNITS}
    assert expected <= set(kinds.values())
    assert tags.names(written, tags.GRAD_NORM) == [
        p for p in tags.variable_order(info) if tags.tag(tags.GRAD_NORM, p) in written
    ]
    assert tags.recurrent_layers(written) == tags.recurrent_order(info)
    rnn = tags.recurrent_order(info)[0]
    cell_variables = [p for p in tags.variable_order(info) if p.startswith(rnn + "/")]
    assert cell_variables and {
        tags.layer_of(p, tags.recurrent_order(info)) for p in cell_variables
    } == {rnn}
