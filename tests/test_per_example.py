"""Per-example gradient norms (kgrad.monitor.step.per_example and its rules) against
one `tf.GradientTape` per example, for every layer type with a rule."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad.monitor.step import per_example, per_example_rules
from kgrad.monitor.step.per_example import PerExampleProbe, packed_per_example
from kgrad.monitor.train_function import keras_hooks

B = 6


def _dense_2d():
    inputs = keras.Input((5,))
    x = keras.layers.Dense(7, activation="tanh")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(x)), np.random.randn(B, 5)


def _dense_sequence():
    # ghost norm (T (p + q) < p q) in the first layer, materialised in the second
    inputs = keras.Input((3, 16))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.Dense(2, activation="gelu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x)), np.random.randn(B, 3, 16)


def _conv():
    inputs = keras.Input((9, 8, 2))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(3, (2, 3), strides=2, padding="same")(x)
    x = keras.layers.Conv2D(3, 2, dilation_rate=2, padding="same")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x)), np.random.randn(B, 9, 8, 2)


def _conv1d():
    inputs = keras.Input((10, 3))
    x = keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2)(inputs)
    x = keras.layers.Conv1D(2, 2, strides=2, activation="elu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x)), np.random.randn(B, 10, 3)


def _embedding():
    inputs = keras.Input((7,), dtype="int32")
    x = keras.layers.Embedding(5, 4)(inputs)  # 5 tokens in 7 places: repeats
    x = keras.layers.Flatten()(x)
    tokens = np.random.randint(0, 5, size=(B, 7))
    return keras.Model(inputs, keras.layers.Dense(3)(x)), tokens


def _norms():
    inputs = keras.Input((4, 6))
    x = keras.layers.Dense(6)(inputs)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5)(x)
    x = keras.layers.BatchNormalization()(x)  # in inference: examples apart
    return keras.Model(inputs, keras.layers.Dense(3)(x)), np.random.randn(B, 4, 6)


def _attention():
    inputs = keras.Input((4, 8))
    x = keras.layers.MultiHeadAttention(2, 4)(inputs, inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x)), np.random.randn(B, 4, 8)


MODELS = {
    "dense_2d": _dense_2d,
    "dense_sequence": _dense_sequence,
    "conv2d": _conv,
    "conv1d": _conv1d,
    "embedding": _embedding,
    "layernorm_batchnorm": _norms,
    "einsum_dense": _attention,
}


def _loss(model, x, y, training=True):
    out = model(x, training=training)
    return keras.losses.sparse_categorical_crossentropy(y, out, from_logits=True)


def per_example_sums(model, x, y, training=True):
    """`{path: sum_i ||grad_i||^2}` with kgrad's probe, in one backward pass."""
    probe = PerExampleProbe(model, armed=lambda: tf.constant(True))
    restore = []
    for obj, name, value in probe.chain([]):
        keras_hooks.patch(obj, name, value, restore)
    try:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(_loss(model, x, y, training))
        tape.gradient(loss, model.trainable_variables)
    finally:
        while restore:
            restore.pop()()
    sums, counts = packed_per_example(
        probe.take(model.trainable_variables), model.trainable_variables
    )
    assert set(counts.numpy()) == {B}
    paths = [v.path for v in model.trainable_variables]
    return dict(zip(paths, sums.numpy(), strict=True))


def explicit_sums(model, x, y, training=True):
    """The same, from one tape per example."""
    total = {v.path: 0.0 for v in model.trainable_variables}
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(_loss(model, x[i : i + 1], y[i : i + 1], training))
        grads = tape.gradient(loss, model.trainable_variables)
        for v, g in zip(model.trainable_variables, grads, strict=True):
            total[v.path] += float(tf.reduce_sum(tf.square(tf.convert_to_tensor(g))))
    return total


@pytest.fixture(params=["grouped", "own_cond"])
def place(request, monkeypatch):
    """Where the rules run: grouped in the logged branch, or each in its cond."""
    if request.param == "own_cond":
        monkeypatch.setattr(per_example, "GROUPED_VALUES", 0)
    return request.param


@pytest.mark.parametrize("name", sorted(MODELS))
def test_per_example_norms_match_one_tape_per_example(name, place):
    model, x = MODELS[name]()
    x = x.astype("int32" if name == "embedding" else "float32")
    y = np.arange(B) % 3
    # BatchNorm in training couples the examples: tested apart, below
    training = name != "layernorm_batchnorm"
    got = per_example_sums(model, x, y, training)
    want = explicit_sums(model, x, y, training)
    assert sorted(got) == sorted(want)
    # atol: attention's key bias has a zero gradient in theory (round-off only)
    atol = 1e-9 * max(want.values())
    for path, value in want.items():
        np.testing.assert_allclose(got[path], value, rtol=1e-4, atol=atol, err_msg=path)


@pytest.mark.parametrize("name", ["dense_sequence", "conv2d", "conv1d"])
def test_traced_with_an_unknown_batch_the_norms_are_the_same(name, place):
    """Keras traces its step with an unknown batch: the rules still see the
    positions `T` (they pick the cheaper form by them) and give the same norms."""
    model, x = MODELS[name]()
    x, y = x.astype("float32"), np.arange(B) % 3
    variables = model.trainable_variables
    probe = PerExampleProbe(model, armed=lambda: tf.constant(True))
    seen = []

    @tf.function(input_signature=[tf.TensorSpec([None, *x.shape[1:]])])
    def sums_of(inputs):
        restore = []
        for obj, attribute, value in probe.chain([]):
            keras_hooks.patch(obj, attribute, value, restore)
        try:
            with tf.GradientTape() as tape:
                out = model(inputs, training=True)
                seen.append(out.shape[0])
                loss = tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(
                        y, out, from_logits=True
                    )
                )
            tape.gradient(loss, variables)
        finally:
            while restore:
                restore.pop()()
        return packed_per_example(probe.take(variables), variables)[0]

    got = dict(zip([v.path for v in variables], sums_of(x).numpy(), strict=True))
    assert seen == [None]
    want = explicit_sums(model, x, y)
    for path, value in want.items():
        np.testing.assert_allclose(got[path], value, rtol=1e-4, err_msg=path)


def test_sequences_keep_their_positions_under_an_unknown_batch():
    static = []

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 3, 2])])
    def as_sequence(x):
        out = per_example_rules._as_sequence(x)
        static.append(out.shape.as_list())
        return out

    as_sequence.get_concrete_function()
    assert static == [[None, 12, 2]]


@pytest.mark.parametrize("form", ["materialised", "ghost", "input_gram"])
@pytest.mark.parametrize("name", ["conv2d", "conv1d"])
def test_each_conv_form_gives_the_same_norms(name, form, monkeypatch):
    """Strides, dilations, SAME, VALID and causal padding, each way to the norms."""
    asked = []

    def forced(*sizes):
        asked.append(sizes)
        return form

    monkeypatch.setattr(per_example_rules, "conv_form", forced)
    model, x = MODELS[name]()
    x, y = x.astype("float32"), np.arange(B) % 3
    got = per_example_sums(model, x, y)
    want = explicit_sums(model, x, y)
    assert len(asked) == sum("conv" in layer.name for layer in model.layers)
    for path, value in want.items():
        np.testing.assert_allclose(got[path], value, rtol=1e-4, err_msg=path)


def test_conv_form_is_the_cheapest():
    # resnet18 on 8x8: the stem, stage 1 (8x8, 64 -> 64) and stage 4 (1x1);
    # cnn_bn's 8x8, 32 -> 32 (measured: materialised fastest there)
    assert per_example_rules.conv_form(64, 100, 9, 1, 64) == "materialised"
    assert per_example_rules.conv_form(64, 100, 9, 32, 32) == "materialised"
    assert per_example_rules.conv_form(64, 100, 9, 64, 64) == "input_gram"
    assert per_example_rules.conv_form(1, 9, 9, 512, 512) == "ghost"


def test_batchnorm_in_training_gives_each_example_contribution():
    """In training, BatchNorm couples the examples: gamma/beta's norms are those
    of each example's own loss with the batch's statistics (its contribution)."""
    inputs = keras.Input((5,))
    x = keras.layers.BatchNormalization()(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    x_np = np.random.randn(B, 5).astype("float32")
    y = np.arange(B) % 3
    got = per_example_sums(model, x_np, y)
    bn = model.layers[2]
    want = 0.0
    for variable in (bn.gamma, bn.beta):
        want = 0.0
        for i in range(B):
            with tf.GradientTape() as tape:
                losses = _loss(model, x_np, y)  # the whole batch, its statistics
                loss_i = losses[i]
            g = tape.gradient(loss_i, variable)
            want += float(tf.reduce_sum(tf.square(g)))
        np.testing.assert_allclose(got[variable.path], want, rtol=1e-4)


def test_layers_without_a_rule_are_named():
    inputs = keras.Input((4, 3))
    x = keras.layers.GRU(2)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    probe = PerExampleProbe(model, armed=lambda: tf.constant(True))
    assert [layer.name for layer, _ in probe.layers] == [model.layers[-1].name]
    assert list(probe.uncovered) == [model.layers[1].cell.path]
    assert "GRUCell" in probe.uncovered[model.layers[1].cell.path]


def _backpropagate(probe, model, x):
    restore = []
    for obj, name, value in probe.chain([]):
        keras_hooks.patch(obj, name, value, restore)
    try:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(_loss(model, x.astype("float32"), np.zeros(B)))
        tape.gradient(loss, model.trainable_variables)
    finally:
        while restore:
            restore.pop()()


def test_a_layer_in_its_own_cond_gives_zeros_when_not_armed(monkeypatch):
    monkeypatch.setattr(per_example, "GROUPED_VALUES", 0)
    model, x = _dense_2d()
    probe = PerExampleProbe(model, armed=lambda: tf.constant(False))
    _backpropagate(probe, model, x)
    sums, _ = packed_per_example(
        probe.take(model.trainable_variables), model.trainable_variables
    )
    assert sums.numpy().tolist() == [0.0] * 4


def test_grouped_layers_run_their_rules_only_when_packed(monkeypatch):
    calls = []
    original = per_example_rules._dense

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(per_example_rules, "_dense", counting)
    model, x = _dense_2d()  # the rule is looked up when the probe is made
    probe = PerExampleProbe(model, armed=lambda: tf.constant(False))
    assert per_example.grouped(tf.zeros([B, 7]), tf.zeros([B, 3]))
    _backpropagate(probe, model, x)
    taken = probe.take(model.trainable_variables)
    assert calls == []  # backpropagation ran no rule: only the identities
    packed_per_example(taken, model.trainable_variables)
    assert len(calls) == 2


def test_layers_are_grouped_by_the_values_they_hold_per_example():
    limit = per_example.GROUPED_VALUES
    assert per_example.grouped(tf.zeros([2, limit - 1]), tf.zeros([2, 1]))
    assert not per_example.grouped(tf.zeros([2, limit]), tf.zeros([2, 1]))

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3])])
    def unknown(x):
        return tf.constant(per_example.grouped(x, x))

    assert not unknown(tf.zeros([1, 2, 3]))
