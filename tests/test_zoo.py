"""Tests for kgrad.zoo: every registered model builds and trains one step."""

import dataclasses
import fnmatch
import functools
import pathlib
import re

import keras
import numpy as np
import pytest

from kgrad import data, zoo
from kgrad.lab.zoo import _registry

CLAIMS = (pathlib.Path(__file__).parents[1] / "docs" / "CLAIMS.md").read_text()

CITATION = r"docs/CLAIMS\.md, (claims? [\d\- and]+|reference numbers)"

ISSUE_MODELS = [
    "mlp_sigmoid",
    "mlp_tanh_xavier",
    "mlp_relu_he",
    "mlp_leaky_relu",
    "cnn_plain",
    "cnn_bn",
    "resnet18",
    "resnet18_plain",
    "resnet34",
    "resnet34_plain",
    "rnn_simple",
    "lstm",
    "gru",
    "transformer_small",
    "transformer_small_post",
    "transformer_small_nonorm",
]

# Small architecture overrides per family; a model that matches no pattern is
# tested at its default size.
SMALL = [
    ("mlp_*", {"depth": 3, "width": 8}),
    ("cnn_*", {"depth": 2, "filters": 8, "groups": 2}),
    ("resnet*", {"width": 4}),
    ("rnn_*", {"units": 8}),
    ("lstm", {"units": 8}),
    ("gru", {"units": 8}),
    ("transformer*", {"blocks": 2, "d_model": 8, "heads": 2, "ff_dim": 16}),
]


def _small(name):
    return next((args for pattern, args in SMALL if fnmatch.fnmatch(name, pattern)), {})


@functools.lru_cache(maxsize=None)
def _tiny_data(name):
    if name in ("adding", "temporal_order"):
        return data.load(name, length=12, n_train=16, n_test=4)
    return data.load(name)


def _configs(model):
    """Maps layer name to (class name, config without the name)."""
    configs = {}
    for layer in model.layers:
        config = dict(layer.get_config())
        config.pop("name")
        configs[layer.name] = (type(layer).__name__, config)
    return configs


def _inbound(model, name):
    tensors = keras.tree.flatten(model.get_layer(name).input)
    return {tensor._keras_history[0].name for tensor in tensors}


@pytest.mark.parametrize("name", zoo.list())
def test_every_model_trains_one_step(name):
    keras.utils.set_random_seed(0)
    spec = zoo.spec(name)
    ds = _tiny_data(spec.data)
    model = zoo.build(
        name,
        input_shape=ds.input_shape,
        num_classes=ds.output_units,
        **_small(name),
    )
    if spec.task == "classification":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = "mse"
    # Eager: one step, so tracing a graph (about 20 s for resnet34) is wasted.
    model.compile(optimizer="adam", loss=loss, run_eagerly=True)
    x, y = ds.x_train[:16], ds.y_train[:16]
    value = model.train_on_batch(x, y)
    assert np.isfinite(value)
    assert model(x[:4]).shape == (4, ds.output_units)
    assert model.layers[-1].name == "output"
    assert isinstance(model.layers[-1], keras.layers.Dense)
    assert model.layers[-1].get_config()["activation"] == "linear"


def _cites_known_claim(citation):
    if citation == "reference numbers":
        return "## Reference numbers" in CLAIMS
    numbers = [int(n) for n in re.findall(r"\d+", citation)]
    return all(f"\n| {n} |" in CLAIMS for n in numbers)


@pytest.mark.parametrize("name", zoo.list())
def test_spec_is_consistent(name):
    spec = zoo.spec(name)
    assert spec.name == name
    assert spec.task == ("regression" if spec.data == "adding" else "classification")
    assert spec.twin in zoo.list()
    cited = re.findall(
        r"docs/CLAIMS\.md, (claims? [\d\- and]+|reference numbers)", spec.summary
    )
    assert cited, spec.summary
    assert all(_cites_known_claim(citation) for citation in cited), cited
    assert zoo.build(name, **_small(name)).name == name
    text = zoo.describe(name)
    assert name in text and spec.twin in text and spec.data in text


def test_issue_models_are_registered():
    assert set(ISSUE_MODELS) <= set(zoo.list())
    assert zoo.list() == sorted(zoo.list())
    assert zoo.list("resnet*") == [
        "resnet18",
        "resnet18_plain",
        "resnet18_plain_nobn",
        "resnet34",
        "resnet34_plain",
    ]
    assert zoo.list("nothing*") == []


def test_spec_is_frozen_and_has_defaults():
    spec = zoo.spec("mlp_sigmoid")
    assert spec.defaults["activation"] == "sigmoid"
    assert spec.data == "digits_flat" and spec.twin == "mlp_relu_he"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.twin = "lstm"
    with pytest.raises(TypeError):
        spec.defaults["activation"] = "relu"


def test_default_inputs_match_default_data():
    for name in ["mlp_sigmoid", "cnn_plain", "resnet18", "lstm", "transformer_small"]:
        ds = data.load(zoo.spec(name).data)
        model = zoo.build(name, **_small(name))
        shape = model.input_shape[1:]
        assert len(shape) == len(ds.input_shape), name
        assert all(m in (None, d) for m, d in zip(shape, ds.input_shape, strict=True))
        assert model.output_shape[-1] == ds.output_units


def _differing(a, b):
    """Maps each layer name to the config keys that differ between two models."""
    assert a.keys() == b.keys()
    return {
        name: {key for key in a[name][1] if a[name][1][key] != b[name][1].get(key)}
        for name in a
    }


def test_mlp_twins_differ_only_in_activation_and_initializer():
    sigmoid = _configs(zoo.build("mlp_sigmoid", depth=12, width=8))
    relu = _configs(zoo.build("mlp_relu_he", depth=12, width=8))
    tanh = _configs(zoo.build("mlp_tanh_xavier", depth=12, width=8))
    leaky = _configs(zoo.build("mlp_leaky_relu", depth=12, width=8))
    hidden = {"activation", "kernel_initializer"}
    for name, keys in _differing(sigmoid, relu).items():
        assert keys == (hidden if name.startswith("dense_") else set()), name
    for other in (tanh, leaky):
        twin = relu if other is leaky else sigmoid
        for name, keys in _differing(twin, other).items():
            assert keys == ({"activation"} if name.startswith("dense_") else set())


def test_layer_names_sort_from_input_to_output():
    model = zoo.build("mlp_relu_he", depth=12, width=4)
    dense = [layer.name for layer in model.layers if layer.name.startswith("dense_")]
    assert dense == sorted(dense) and dense[-1] == "dense_12"
    names = [layer.name for layer in zoo.build("resnet34", width=2).layers]
    assert "stage2_block1_conv2" in names and "stage3_block6_add" in names


def test_cnn_bn_only_adds_batchnorm():
    plain = _configs(zoo.build("cnn_plain", depth=3, filters=8))
    bn = _configs(zoo.build("cnn_bn", depth=3, filters=8))
    added = set(bn) - set(plain)
    assert added == {"conv_01_norm", "conv_02_norm", "conv_03_norm"}
    assert {bn[name][0] for name in added} == {"BatchNormalization"}
    assert set(plain) <= set(bn)
    assert all(plain[name] == bn[name] for name in plain)


def test_resnet_plain_twin_only_drops_shortcuts():
    residual_model = zoo.build("resnet18", width=4)
    residual = _configs(residual_model)
    plain = _configs(zoo.build("resnet18_plain", width=4))
    extra = set(residual) - set(plain)
    assert set(plain) <= set(residual)
    assert all(plain[name] == residual[name] for name in plain)
    assert {residual[name][0] for name in extra} == {
        "Add",
        "Conv2D",
        "BatchNormalization",
    }
    adds = [name for name in extra if residual[name][0] == "Add"]
    projections = [name for name in extra if name.endswith("proj_conv")]
    assert len(adds) == 8
    assert sorted(projections) == [
        "stage2_block1_proj_conv",
        "stage3_block1_proj_conv",
        "stage4_block1_proj_conv",
    ]
    assert all(name.endswith(("_add", "_proj_conv", "_proj_bn")) for name in extra)
    assert _inbound(residual_model, "stage1_block1_add") == {
        "stage1_block1_bn2",
        "stage0_relu",
    }


def test_resnet_without_batchnorm_has_no_bn_layers():
    model = zoo.build("resnet18_plain_nobn", width=4)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "BatchNormalization" not in kinds and "Add" not in kinds


def test_resnet18_parameter_count_matches_published_figure():
    for name, expected in [("resnet18", 11_173_962), ("resnet18_plain", 11_000_138)]:
        model = zoo.build(name, input_shape=(32, 32, 3), num_classes=10)
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
        assert trainable == expected, name


def test_transformer_pre_and_post_share_layers_but_not_wiring():
    small = {"blocks": 2, "d_model": 8, "heads": 2, "ff_dim": 16}
    pre_model = zoo.build("transformer_small", **small)
    post_model = zoo.build("transformer_small_post", **small)
    pre, post = _configs(pre_model), _configs(post_model)
    assert set(pre) - set(post) == {"final_norm"}
    assert set(post) <= set(pre)
    assert all(pre[name] == post[name] for name in post)
    assert _inbound(pre_model, "block_01_norm1") == {"block_00_position"}
    assert _inbound(post_model, "block_01_norm1") == {"block_01_add1"}
    nonorm = _configs(zoo.build("transformer_small_nonorm", **small))
    assert not [name for name in nonorm if "norm" in name]


def test_rnn_exploding_differs_from_rnn_simple_in_activation_and_scale():
    simple = _configs(zoo.build("rnn_simple", units=4))
    exploding = _configs(zoo.build("rnn_exploding", units=4))
    a, b = simple["rnn_01"][1], exploding["rnn_01"][1]
    assert {key for key in a if a[key] != b[key]} == {
        "activation",
        "recurrent_initializer",
    }
    assert b["recurrent_initializer"]["config"]["gain"] == 2.0


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="resnet18"):
        zoo.build("resnet81")
    with pytest.raises(ValueError, match="mlp_sigmoid"):
        zoo.describe("mlp_sigmoyd")


@pytest.mark.parametrize(
    "name, overrides, error, message",
    [
        ("mlp_sigmoid", {"depth": -1}, ValueError, "Received: depth=-1"),
        ("mlp_sigmoid", {"depth": "3"}, TypeError, "Received: depth='3'"),
        ("mlp_sigmoid", {"activation": "nope"}, ValueError, "activation='nope'"),
        ("mlp_relu_he", {"input_shape": (8, 8)}, ValueError, "input_shape=\\(8, 8\\)"),
        ("mlp_relu_he", {"dpeth": 3}, TypeError, "`dpeth`.*Did you mean: depth"),
        ("cnn_plain", {"norm": "bogus"}, ValueError, "norm='bogus'"),
        ("cnn_gn", {"filters": 6}, ValueError, "groups=8"),
        ("resnet18", {"depth": 50}, ValueError, "Received: depth=50"),
        ("resnet18", {"shortcuts": "no"}, TypeError, "shortcuts='no'"),
        ("resnet18", {"input_shape": (8, 8)}, ValueError, "input_shape"),
        ("lstm", {"cell": "rnn"}, ValueError, "cell='rnn'"),
        ("lstm", {"recurrent_scale": 0}, ValueError, "recurrent_scale=0"),
        ("transformer_small", {"heads": 3}, ValueError, "heads=3"),
        ("transformer_small", {"norm": "pre_ln"}, ValueError, "norm='pre_ln'"),
    ],
)
def test_bad_override_names_argument_and_value(name, overrides, error, message):
    with pytest.raises(error, match=message):
        zoo.build(name, **overrides)


def test_positive_integer_message_is_keras_style():
    with pytest.raises(ValueError) as info:
        zoo.build("mlp_sigmoid", depth=-1)
    assert str(info.value) == ("`depth` must be a positive integer. Received: depth=-1")


def test_register_adds_a_model_and_rejects_duplicates():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
        _register_my_mlp_and_duplicates()
    # The registry is restored: the model registered above is gone.
    assert "my_mlp" not in zoo.list() and "mlp_sigmoid" in zoo.list()


def _register_my_mlp_and_duplicates():
    @zoo.register(data="digits_flat", twin="mlp_relu_he")
    def my_mlp(*, depth=2, **overrides):
        """Mine."""
        return zoo.mlp.build_mlp(depth=depth, **overrides)

    def mlp_sigmoid(**overrides):
        return my_mlp(**overrides)

    assert "my_mlp" in zoo.list("my_*")
    assert zoo.spec("my_mlp").defaults == {"depth": 2}
    assert zoo.spec("my_mlp").summary == "Mine."
    model = zoo.build("my_mlp", width=4)
    assert len(model.layers) == 4 and model.name == "my_mlp"
    assert zoo.spec("my_mlp").builder(width=4, name="renamed").name == "renamed"
    with pytest.raises(ValueError, match="already registered"):
        zoo.register()(my_mlp)
    with pytest.raises(ValueError, match="already registered"):
        zoo.register()(mlp_sigmoid)
    with pytest.raises(ValueError, match="task='ranking'"):
        zoo.register(task="ranking")
    with pytest.raises(ValueError, match="data='imagenet'"):
        zoo.register(data="imagenet")
