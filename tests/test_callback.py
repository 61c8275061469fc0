"""GradientMonitor logs the gradients the optimizer applies, at the right steps."""

import logging
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.plugins.histogram import summary_v2 as histogram_summary

from kgrad import GradientMonitor, tags
from tests.support.models import BATCH, LOSS, compiled, mlp


def replay(model, x, y, steps, lr=0.1):
    """Independent SGD replay: gradients, weights and updates of each step.

    The model's weights are restored afterwards.

    Returns:
        Dict step -> dict tag name (`tags.in_model`) -> (grad, weight_before,
        update).
    """
    initial = model.get_weights()
    batches = len(x) // BATCH
    out = {}
    for step in range(1, steps + 1):
        i = (step - 1) % batches
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        with tf.GradientTape() as tape:
            loss = LOSS(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        out[step] = {}
        for v, g in zip(model.trainable_variables, grads, strict=True):
            before = v.numpy().copy()
            v.assign_sub(lr * g)
            name = tags.in_model(v.path, model.name)
            out[step][name] = (g.numpy(), before, v.numpy() - before)
    model.set_weights(initial)
    return out


def scalar(logged, tag, step):
    return float(dict(logged[tag])[step])


def test_logged_statistics_equal_independent_gradients(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model = compiled(mlp())
    expected = replay(model, x, y, steps=8)
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=1, histogram_bins=7, first_steps=0
    )
    model.fit(
        x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[monitor]
    )
    logged = events(tmp_path / "train")
    for step, per_variable in expected.items():
        total = 0.0
        for path, (grad, before, update) in per_variable.items():
            norm = np.linalg.norm(grad)
            total += norm**2
            assert scalar(logged, f"grad_norm/{path}", step) == pytest.approx(
                norm, rel=1e-5
            )
            assert scalar(logged, f"weight_norm/{path}", step) == pytest.approx(
                np.linalg.norm(before), rel=1e-5, abs=1e-7
            )
            if np.linalg.norm(before) > 0:
                assert scalar(logged, f"update_ratio/{path}", step) == pytest.approx(
                    np.linalg.norm(update) / np.linalg.norm(before), rel=1e-4
                )
            hist = dict(logged[f"grad_hist/{path}"])[step]
            reference = histogram_summary.histogram_pb("t", grad, buckets=7)
            reference = tf.make_ndarray(reference.value[0].tensor)
            np.testing.assert_allclose(hist[:, :2], reference[:, :2], rtol=1e-6)
            np.testing.assert_array_equal(hist[:, 2], reference[:, 2])
            assert hist[:, 2].sum() == grad.size
        assert scalar(logged, "grad_norm/global", step) == pytest.approx(
            np.sqrt(total), rel=1e-5
        )
        assert scalar(logged, "grad_nonfinite/global", step) == 0


def test_steps_run_on_across_epochs_and_fit_calls(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model = compiled(mlp())
    monitor = GradientMonitor(
        tmp_path, norms_every=3, histograms_every=0, first_steps=2
    )
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[monitor])
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[monitor])
    steps = [s for s, _ in events(tmp_path / "train")["grad_norm/global"]]
    assert steps == [1, 2, 3, 6, 9, 12]
    assert int(model.optimizer.iterations.numpy()) == 12


def test_histogram_freq_epoch_logs_first_step_of_each_epoch(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model = compiled(mlp())
    monitor = GradientMonitor(tmp_path, norms_every=0, histograms_every="epoch")
    model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[monitor])
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged["grad_hist/out/kernel"]] == [1, 5, 9]
    assert not any(tag.startswith("grad_norm/") for tag in logged)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.hidden = keras.layers.Dense(5, activation="relu", name="hidden")
        self.out = keras.layers.Dense(3, name="out")

    def call(self, x):
        return self.out(self.hidden(x))


class CustomStep(Subclassed):
    """Its own train_step, which hands its gradients to the optimizer."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = LOSS(y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def nested():
    inner = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="relu")], name="inner"
    )
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(3)(inner(inputs)), name="outer")


MODELS = {
    "sequential": lambda: keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu"),
            keras.layers.Dense(3),
        ]
    ),
    "functional": mlp,
    "subclassed": Subclassed,
    "nested": nested,
    "custom_train_step": CustomStep,
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_kind_of_model(kind, tmp_path, events, classification_data):
    x, y = classification_data
    model = MODELS[kind]()
    model(x[:1])
    compiled(model)
    expected = replay(model, x, y, steps=1)[1]
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[GradientMonitor(tmp_path)],
    )
    logged = events(tmp_path / "train")
    assert len(expected) == 4
    for path, (grad, _, _) in expected.items():
        assert scalar(logged, f"grad_norm/{path}", 1) == pytest.approx(
            np.linalg.norm(grad), rel=1e-5
        )


class WithUnusedLayer(Subclassed):
    def __init__(self):
        super().__init__()
        self.unused = keras.layers.Dense(2, name="unused")

    def build(self, input_shape):
        self.unused.build(input_shape)


def test_none_gradients_are_skipped_with_one_warning(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model = WithUnusedLayer()
    model(x[:1])
    compiled(model)
    with pytest.warns(UserWarning, match="kgrad: no gradient for 2 variable") as record:
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=2,
            verbose=0,
            callbacks=[GradientMonitor(tmp_path)],
        )
    assert sum("no gradient for" in str(w.message) for w in record) == 1
    logged = events(tmp_path / "train")
    assert "grad_norm/out/kernel" in logged
    assert not any("unused" in tag for tag in logged)


def test_embedding_gradient_is_logged_as_its_dense_equivalent(tmp_path, events):
    model = keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(50, 4, name="emb"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, name="out"),
        ],
        name="seq",
    )
    x = np.array([[1, 1, 2, 7, 1]] * 8, dtype="int32")  # repeated indices
    y = np.arange(8) % 3
    compiled(model)
    with tf.GradientTape() as tape:
        loss = LOSS(y, model(x, training=True))
    grad = tape.gradient(loss, model.trainable_variables[0])
    assert isinstance(grad, tf.IndexedSlices)
    dense = tf.convert_to_tensor(grad).numpy()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[GradientMonitor(tmp_path, histogram_bins=5)],
    )
    logged = events(tmp_path / "train")
    assert scalar(logged, "grad_norm/emb/embeddings", 1) == pytest.approx(
        np.linalg.norm(dense), rel=1e-5
    )
    hist = dict(logged["grad_hist/emb/embeddings"])[1]
    reference = histogram_summary.histogram_pb("t", dense, buckets=5)
    np.testing.assert_array_equal(
        hist[:, 2], tf.make_ndarray(reference.value[0].tensor)[:, 2]
    )
    assert hist[:, 2].sum() == 50 * 4


def test_mixed_precision_logs_unscaled_gradients_and_marks_skipped_steps(
    tmp_path, events, classification_data
):
    keras.config.set_dtype_policy("mixed_float16")
    x, y = classification_data
    model = mlp()
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.1), initial_scale=2.0**19
    )
    model.compile(optimizer=optimizer, loss=LOSS)
    tries = []
    for i in range(4):  # unscaled gradient of each batch at the initial weights
        with tf.GradientTape() as tape:
            loss = LOSS(y[i * BATCH : (i + 1) * BATCH], model(x[i * BATCH :][:BATCH]))
        tries.append(np.linalg.norm(tape.gradient(loss, model.trainable_variables)[0]))
    monitor = GradientMonitor(tmp_path, norms_every=1, first_steps=0)
    model.fit(
        x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[monitor]
    )
    logged = events(tmp_path / "train")
    skipped = [(s, float(v)) for s, v in logged["loss_scale/skipped"]]
    scales = [float(v) for _, v in logged["loss_scale/value"]]
    # 2**19 overflows float16: the first tries of step 1 are skipped while the
    # scale halves; they are counted at step 1, whose gradients are the first
    # applied try's. One value per tag and step.
    n_skipped = int(skipped[0][1])
    assert skipped[0][0] == 1 and 1 <= n_skipped < 8
    assert scales[0] == 2.0 ** (19 - n_skipped)
    assert [s for s, _ in skipped] == list(range(1, 9 - n_skipped))
    assert all(v == 0 for _, v in skipped[1:])
    norms = logged["grad_norm/hidden/kernel"]
    assert [s for s, _ in norms] == [s for s, _ in skipped]
    assert all(v == 0 for _, v in logged["grad_nonfinite/global"])
    # The first applied try ran on batch `n_skipped` at the initial weights.
    assert float(norms[0][1]) == pytest.approx(tries[n_skipped % 4], rel=1e-2)


def test_steps_per_execution_logs_first_step_of_chunk(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model = compiled(mlp(), steps_per_execution=3)
    expected = replay(model, x, y, steps=8)
    monitor = GradientMonitor(
        tmp_path, norms_every=4, histograms_every=0, first_steps=0
    )
    model.fit(
        x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[monitor]
    )
    logged = events(tmp_path / "train")
    steps = [s for s, _ in logged["grad_norm/global"]]
    # Chunks [1-3] [4] per epoch of 4 steps: steps 1, 4 and 8 are due, in
    # chunks that start at steps 1, 4 and 8.
    assert steps == [1, 4, 8]
    for step in steps:
        grad = expected[step]["hidden/kernel"][0]
        assert scalar(logged, "grad_norm/hidden/kernel", step) == pytest.approx(
            np.linalg.norm(grad), rel=1e-5
        )


def test_validation_data_does_not_disturb_training_gradients(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model = compiled(mlp())
    expected = replay(model, x, y, steps=1)[1]
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=2,
        shuffle=False,
        verbose=0,
        validation_data=(x[:16], y[:16]),
        callbacks=[GradientMonitor(tmp_path)],
    )
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged["grad_norm/global"]] == list(range(1, 9))
    grad = expected["out/kernel"][0]
    assert scalar(logged, "grad_norm/out/kernel", 1) == pytest.approx(
        np.linalg.norm(grad), rel=1e-5
    )
    assert not (tmp_path / "validation").exists()


def test_activation_statistics_of_relu_layers(tmp_path, events, classification_data):
    x, y = classification_data
    inputs = keras.Input((6,))
    dead = keras.layers.Dense(
        5,
        activation="relu",
        bias_initializer=keras.initializers.Constant(-100.0),
        name="dead",
    )(inputs)
    alive = keras.layers.Dense(4, activation="relu", name="alive")(inputs)
    merged = keras.layers.Concatenate()([dead, alive])
    model = compiled(keras.Model(inputs, keras.layers.Dense(3)(merged), name="m"))
    hidden = model.get_layer("alive")(x[:BATCH]).numpy()
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[GradientMonitor(tmp_path)],
    )
    logged = events(tmp_path / "train")
    assert scalar(logged, "dead_units/dead", 1) == 1.0
    assert scalar(logged, "activation_zero/dead", 1) == 1.0
    assert scalar(logged, "activation_zero/alive", 1) == pytest.approx(
        np.mean(hidden <= 0)
    )


def test_record_from_custom_loop_eager_and_in_tf_function(tmp_path, events):
    model = mlp()
    x = np.random.default_rng(1).normal(size=(BATCH, 6)).astype("float32")
    y = np.arange(BATCH) % 3
    monitor = GradientMonitor(tmp_path, histogram_bins=4)

    def gradients():
        with tf.GradientTape() as tape:
            loss = LOSS(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    @tf.function
    def graph_step(step):
        monitor.record(gradients(), model.trainable_variables, step)

    monitor.record(gradients(), model.trainable_variables, 1)
    graph_step(tf.constant(2, tf.int64))
    expected = np.linalg.norm(gradients()[0].numpy())
    logged = events(tmp_path / "train")
    for step in (1, 2):
        assert scalar(logged, "grad_norm/hidden/kernel", step) == pytest.approx(
            expected, rel=1e-5
        )
        hist = dict(logged["grad_hist/hidden/kernel"])[step]
        assert hist[:, 2].sum() == 6 * 5
    assert not any(tag.startswith("update_ratio/") for tag in logged)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"norms_every": -1}, ValueError, "Received: norms_every=-1"),
        ({"histograms_every": "step"}, ValueError, "Received: histograms_every='step'"),
        ({"histograms_every": 2.5}, TypeError, "Received: histograms_every=2.5"),
        ({"histogram_bins": 0}, ValueError, "Received: histogram_bins=0"),
        ({"histogram_bins": 2.5}, TypeError, "Received: histogram_bins=2.5"),
        ({"figure_secs": "soon"}, TypeError, "Received: figure_secs='soon'"),
        ({"log_dir": 3}, TypeError, "Received: log_dir=3"),
        ({"first_steps": None}, TypeError, "Received: first_steps=None"),
        ({"on_nonfinite": "ignore"}, ValueError, "Received: on_nonfinite='ignore'"),
        ({"figure_secs": -1}, ValueError, "Received: figure_secs=-1"),
        ({"optimizers": "adam"}, TypeError, "Received: optimizers='adam'"),
        ({"optimizers": []}, ValueError, "Received: optimizers=\\[\\]"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        GradientMonitor(**{"log_dir": "logs", **kwargs})


def test_unwritable_log_dir_fails_before_training(tmp_path, classification_data):
    x, y = classification_data
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    model = compiled(mlp())
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="`log_dir` cannot be written.*a_file/run"):
        model.fit(x, y, verbose=0, callbacks=[GradientMonitor(blocker / "run")])
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_uncompiled_model_is_rejected():
    with pytest.raises(ValueError, match="needs a compiled model"):
        GradientMonitor("runs").set_model(mlp())


def test_the_class_instead_of_an_instance_is_rejected_by_name(classification_data):
    model = compiled(mlp())
    x, y = classification_data
    with pytest.raises(TypeError, match=r"instance, not the class: pass `callbacks="):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[GradientMonitor])


def test_write_failure_is_reported_once_and_training_goes_on(
    tmp_path, classification_data, monkeypatch, caplog
):
    from kgrad.monitor.log import event_writer

    def full_disk(self, event):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(event_writer.EventFile, "write", full_disk)
    x, y = classification_data
    model = compiled(mlp())
    with caplog.at_level(logging.ERROR, logger="kgrad"):
        history = model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=3,
            verbose=0,
            callbacks=[GradientMonitor(tmp_path)],
        )
    assert len(history.history["loss"]) == 3
    errors = [r for r in caplog.records if r.name == "kgrad"]
    assert len(errors) == 1 and "No space left" in errors[0].getMessage()


class Interrupt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 5:
            raise KeyboardInterrupt


def test_keyboard_interrupt_loses_nothing_already_logged(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model = compiled(mlp())
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x,
            y,
            batch_size=4,
            epochs=1,
            verbose=0,
            callbacks=[GradientMonitor(tmp_path), Interrupt()],
        )
    # No further call: the background writer puts what was logged on disk.
    deadline = time.monotonic() + 10
    steps = []
    while steps[:5] != [1, 2, 3, 4, 5] and time.monotonic() < deadline:
        time.sleep(0.1)
        logged = events(tmp_path / "train")
        steps = [s for s, _ in logged.get("grad_norm/global", [])]
    assert steps[:5] == [1, 2, 3, 4, 5]
    # The model still trains without the monitor afterwards.
    history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
