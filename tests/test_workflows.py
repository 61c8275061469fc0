"""The training workflows of the Keras guides, logged exactly and never silently.

GAN with two optimizers (keras.io DCGAN pattern), transfer learning with a
recompile, keras.applications models, gradient accumulation.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor, tags
from kgrad.analysis import report
from kgrad.cli import main
from tests.support.gan import (
    discriminator_step,
    gan_data,
    generator_step,
    make_gan,
)


def replay_gan(gan, real, noise, steps, batch=8):
    """Independent replay of the GAN's steps: per-step global norms of d and g."""
    initial = [v.numpy() for v in gan.variables]
    norms = {"d": [], "g": []}
    for step in range(steps):
        i = step % (len(real) // batch)
        r, z = real[i * batch : (i + 1) * batch], noise[i * batch : (i + 1) * batch]
        _, d_grads = discriminator_step(gan, r, z)
        for v, g in zip(gan.discriminator.trainable_weights, d_grads, strict=True):
            v.assign_sub(0.05 * g)
        _, g_grads = generator_step(gan, z)
        for v, g in zip(gan.generator.trainable_weights, g_grads, strict=True):
            v.assign_sub(0.02 * g)
        norms["d"].append(float(tf.linalg.global_norm(d_grads)))
        norms["g"].append(float(tf.linalg.global_norm(g_grads)))
    for v, value in zip(gan.variables, initial, strict=True):
        v.assign(value)
    return norms


def test_gan_logs_both_optimizers_exactly(tmp_path, events, capsys):
    gan = make_gan()
    real, noise = gan_data()
    expected = replay_gan(gan, real, noise, steps=6)
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=0, first_steps=0
    )
    gan.fit(
        real,
        noise,
        batch_size=8,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[monitor],
    )
    d = events(tmp_path / "train" / "d_optimizer")
    g = events(tmp_path / "train" / "g_optimizer")
    for logged, name, prefix in ((d, "d", "discriminator"), (g, "g", "generator")):
        steps = [s for s, _ in logged["grad_norm/global"]]
        assert steps == [1, 2, 3, 4, 5, 6]  # each optimizer's own update count
        values = [float(v) for _, v in logged["grad_norm/global"]]
        np.testing.assert_allclose(values, expected[name], rtol=1e-5)
        kernels = {t for t in logged if t.startswith("grad_norm/") and "kernel" in t}
        assert kernels == {
            f"grad_norm/{prefix}/{prefix[0]}_hidden/kernel",
            f"grad_norm/{prefix}/{prefix[0]}_out/kernel",
        }
    # The unused default optimizer of `compile()` writes nothing.
    assert not list((tmp_path / "train").glob("*tfevents*"))
    monitor.flush()  # one gradient-flow figure per optimizer
    assert (tmp_path / "gradient_flow_d_optimizer.png").stat().st_size > 0
    assert (tmp_path / "gradient_flow_g_optimizer.png").stat().st_size > 0
    # `kgrad report` covers both optimizers.
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "d_optimizer" in out and "g_optimizer" in out
    assert "discriminator/d_hidden" in out and "generator/g_hidden" in out


def test_gan_runs_are_found_by_load_runs(tmp_path):
    gan = make_gan()
    real, noise = gan_data()
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=0, first_steps=0
    )
    gan.fit(real, noise, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    runs = report.find_runs(tmp_path)
    assert [r.rpartition("train/")[2] for r in runs] == ["d_optimizer", "g_optimizer"]


def classifier():
    base = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu", name="base_dense"),
        ],
        name="base",
    )
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, name="head")(base(inputs, training=False))
    return keras.Model(inputs, outputs, name="transfer"), base


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_fine_tuning_recipe_steps_never_go_backwards(
    tmp_path, events, classification_data
):
    x, y = classification_data  # 32 examples: 4 batches of 8
    model, base = classifier()
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=0, first_steps=0
    )
    base.trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    model.fit(
        x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[monitor]
    )
    base.trainable = True
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=LOSS)
    assert int(model.optimizer.iterations.numpy()) == 0  # Keras starts again
    # The first step of the second fit, replayed independently.
    with tf.GradientTape() as tape:
        loss = LOSS(y[:8], model(x[:8], training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    expected = {
        tags.in_model(v.path, model.name): float(tf.norm(g))
        for v, g in zip(model.trainable_variables, grads, strict=True)
    }
    model.fit(
        x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[monitor]
    )
    logged = events(tmp_path / "train")
    steps = [s for s, _ in logged["grad_norm/global"]]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]
    # The base's variables get tags from the step they start training.
    base_kernel = logged["grad_norm/base/base_dense/kernel"]
    assert [s for s, _ in base_kernel] == [5, 6, 7, 8]
    assert [s for s, _ in logged["grad_norm/head/kernel"]] == steps
    for path, norm in expected.items():
        assert float(dict(logged[f"grad_norm/{path}"])[5]) == pytest.approx(
            norm, rel=1e-5
        )
    # The run info of the second fit orders the unfrozen base first.
    _, run_info = report.load_run(tmp_path)
    assert run_info["variables"][:2] == [
        "base/base_dense/kernel",
        "base/base_dense/bias",
    ]


def test_mobilenet_v2_gets_one_activation_tag_per_relu_layer(tmp_path, events):
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=3
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy"
    )
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    assert len(relus) == 35 and all(layer.path is None for layer in relus)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    y = np.array([0, 2])
    probe = keras.Model(model.inputs, [layer.output for layer in relus])
    expected = [float(np.mean(o.numpy() <= 0)) for o in probe(x, training=True)]
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=0, first_steps=0
    )
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[monitor])
    logged = events(tmp_path / "train")
    zero_tags = sorted(t for t in logged if t.startswith("activation_zero/"))
    assert zero_tags == sorted(f"activation_zero/{layer.name}" for layer in relus)
    assert not any(t.endswith("/None") for t in logged)
    for layer, share in zip(relus, expected, strict=True):
        logged_share = float(logged[f"activation_zero/{layer.name}"][0][1])
        assert logged_share == pytest.approx(share, abs=1e-6)


def test_gradient_accumulation_logs_the_applied_average_once_per_step(
    tmp_path, events, classification_data
):
    x, y = classification_data
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, name="out")(inputs)
    model = keras.Model(inputs, outputs, name="acc")
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, gradient_accumulation_steps=2), loss=LOSS
    )
    weights = model.get_weights()
    expected = []
    for update in range(2):  # 4 batches of 8 -> 2 updates of the mean of 2
        grads = []
        for i in (2 * update, 2 * update + 1):
            with tf.GradientTape() as tape:
                loss = LOSS(y[i * 8 : (i + 1) * 8], model(x[i * 8 : (i + 1) * 8]))
            grads.append(tape.gradient(loss, model.trainable_variables))
        mean = [(a + b) / 2 for a, b in zip(*grads, strict=True)]
        expected.append(float(tf.linalg.global_norm(mean)))
        for v, g in zip(model.trainable_variables, mean, strict=True):
            v.assign_sub(0.1 * g)
    model.set_weights(weights)
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=0, first_steps=0
    )
    model.fit(
        x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[monitor]
    )
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged["grad_norm/global"]] == [1, 2]
    values = [float(v) for _, v in logged["grad_norm/global"]]
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    ratios = logged["update_ratio/out/kernel"]
    assert [s for s, _ in ratios] == [1, 2] and all(float(v) > 0 for _, v in ratios)
