"""Field problems of issue 14: each was silent or wrong before, each is tested.

Two monitors, a fit that fails, shared layers, duplicate weight paths,
`on_nonfinite="stop"`, findings across `fit` calls, steps that capture
nothing, other Keras backends, all-zero gradients, damaged event files.
"""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor
from kgrad.analysis import diagnostics, events, layer_profile, report
from kgrad.cli import main

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def mlp(name="mlp"):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="out")(hidden)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    return model


def monitor(log_dir, **kwargs):
    kwargs = {"norms_every": 1, "histograms_every": 0, "first_steps": 0, **kwargs}
    return GradientMonitor(log_dir, **kwargs)


def untouched(model):
    """Whether the model and its optimizer are as Keras made them."""
    return "apply" not in vars(model.optimizer) and not hasattr(
        model.train_function, "_kgrad_plain"
    )


def test_two_monitors_in_one_fit_are_refused_and_leave_the_model_clean(
    tmp_path, classification_data
):
    x, y = classification_data
    model = mlp()
    first, second = monitor(tmp_path / "a"), monitor(tmp_path / "b")
    with pytest.raises(ValueError, match="Only one GradientMonitor per `fit`") as err:
        model.fit(x, y, batch_size=8, verbose=0, callbacks=[first, second])
    assert str(tmp_path / "a") in str(err.value) and str(tmp_path / "b") in str(
        err.value
    )
    assert untouched(model)
    # A later fit without monitors trains plainly; one with a monitor logs.
    model.fit(x, y, batch_size=8, verbose=0)
    assert untouched(model)
    model.fit(x, y, batch_size=8, verbose=0, callbacks=[first])
    assert untouched(model)
    scalars, _ = report.load_run(tmp_path / "a")
    assert [s for s, _ in scalars["grad_norm/global"]] == [5, 6, 7, 8]


class FailsAtStep3(keras.Model):
    def train_step(self, data):
        tf.debugging.assert_less(self.optimizer.iterations, tf.constant(2, "int64"))
        return super().train_step(data)


def test_a_fit_that_fails_in_the_train_step_leaves_the_model_as_it_was(
    tmp_path, classification_data
):
    x, y = classification_data
    inputs = keras.Input((6,))
    model = FailsAtStep3(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    with pytest.raises(tf.errors.InvalidArgumentError):
        model.fit(x, y, batch_size=8, verbose=0, callbacks=[monitor(tmp_path)])
    assert untouched(model)


def test_shared_layer_gets_statistics_of_all_its_calls(tmp_path, events):
    shared = keras.layers.ReLU(name="shared_relu")
    inputs = keras.Input((4,))
    up = keras.layers.Dense(4, kernel_initializer="ones", name="up")(inputs)
    active = shared(up)  # inputs are positive: every unit active
    down = keras.layers.Dense(4, kernel_initializer=keras.initializers.Constant(-1.0))
    dead = shared(down(active))  # negative: every unit zero
    outputs = keras.layers.Dense(3, name="out")(dead)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=LOSS)
    x = np.abs(np.random.default_rng(0).normal(size=(8, 4))).astype("float32") + 0.1
    model.fit(x, np.zeros(8), batch_size=8, verbose=0, callbacks=[monitor(tmp_path)])
    logged = events(tmp_path / "train")
    assert float(logged["activation_zero/shared_relu"][0][1]) == 0.5
    assert float(logged["dead_units/shared_relu"][0][1]) == 0.0  # not 100% dead


class TwoWs(keras.layers.Layer):
    def build(self, input_shape):
        self.w1 = self.add_weight(shape=(input_shape[-1], 3), name="w")
        self.w2 = self.add_weight(shape=(3,), name="w", initializer="ones")

    def call(self, x):
        return tf.matmul(x, self.w1) * self.w2


def test_two_weights_with_one_path_get_two_tags(tmp_path, events, classification_data):
    x, y = classification_data
    inputs = keras.Input((6,))
    layer = TwoWs(name="two")
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    assert layer.w1.path == layer.w2.path == "two/w"
    with tf.GradientTape() as tape:
        loss = LOSS(y[:8], model(x[:8]))
    g1, g2 = tape.gradient(loss, [layer.w1, layer.w2])
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[monitor(tmp_path)],
    )
    logged = events(tmp_path / "train")
    assert float(logged["grad_norm/two/w"][0][1]) == pytest.approx(
        float(tf.norm(g1)), rel=1e-5
    )
    assert float(logged["grad_norm/two/w_2"][0][1]) == pytest.approx(
        float(tf.norm(g2)), rel=1e-5
    )
    # `kgrad report` counts both in the layer's norm.
    scalars, run_info = report.load_run(tmp_path)
    (row,) = layer_profile.layer_profile(scalars, run_info, step=1)
    expected = float(np.sqrt(tf.norm(g1) ** 2 + tf.norm(g2) ** 2))
    assert row.layer == "two" and row.grad_norm == pytest.approx(expected, rel=1e-5)


def nan_data(classification_data):
    x, y = classification_data
    x = x.copy()
    x[0, 0] = np.nan  # the first batch's gradients are NaN
    return x, y


def test_stop_on_nonfinite_stops_after_the_step_and_says_so_once(
    tmp_path, classification_data, capsys
):
    x, y = nan_data(classification_data)
    model = mlp()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[monitor(tmp_path, on_nonfinite="stop")],
    )
    assert int(model.optimizer.iterations.numpy()) == 1
    assert capsys.readouterr().out.count("training stops") == 1


def test_findings_are_printed_once_across_fit_calls(
    tmp_path, classification_data, capsys
):
    x, y = nan_data(classification_data)
    model = mlp()
    gm = monitor(tmp_path)
    for _ in range(3):
        model.fit(
            x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[gm]
        )
    assert capsys.readouterr().out.count("non-finite (NaN/Inf) gradients") == 1


class ForeignOptimizer(keras.Model):
    """Applies an optimizer the model does not hold."""

    def __init__(self, optimizer, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3)
        self.holder = [optimizer]  # hidden from attribute search below

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = LOSS(y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        FOREIGN[0].apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}


FOREIGN = []


def test_a_step_that_reaches_no_monitored_optimizer_warns_once_and_at_the_end(
    tmp_path, classification_data
):
    x, y = classification_data
    FOREIGN[:] = [keras.optimizers.SGD(0.1)]
    model = ForeignOptimizer(keras.optimizers.SGD(0.1))
    model.holder = []
    model.compile(optimizer="sgd", loss=LOSS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x, y, batch_size=8, epochs=2, verbose=0, callbacks=[monitor(tmp_path)]
        )
    messages = [str(w.message) for w in caught if str(w.message).startswith("kgrad:")]
    assert len(messages) == 2
    assert (
        "training step 1 was due" in messages[0] and "optimizers=[...]" in messages[0]
    )
    assert "logged no gradient at all" in messages[1]
    # Passed explicitly, the foreign optimizer is monitored (Keras's function,
    # traced before this monitor, is made anew as the refusal's warning says).
    model.make_train_function(force=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=1,
            verbose=0,
            callbacks=[monitor(tmp_path / "x", optimizers=FOREIGN)],
        )
    assert not [w for w in caught if str(w.message).startswith("kgrad:")]
    scalars, _ = report.load_run(tmp_path / "x")
    assert [s for s, _ in scalars["grad_norm/global"]] == [9, 10, 11, 12]


class BypassesTheHook(keras.Model):
    """Calls `apply` through the class, as a future Keras might route it."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = LOSS(y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        keras.optimizers.Optimizer.apply(
            self.optimizer, grads, self.trainable_variables
        )
        return {"loss": loss}


def test_a_keras_that_bypasses_the_hook_is_not_silent(tmp_path, classification_data):
    x, y = classification_data
    inputs = keras.Input((6,))
    model = BypassesTheHook(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    with pytest.warns(UserWarning, match="training step 1 was due to be logged"):
        model.fit(
            x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor(tmp_path)]
        )


def test_other_backends_are_refused_by_name(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(ValueError, match="TensorFlow and JAX backends.*'torch'"):
        GradientMonitor("runs")


def test_all_zero_gradients_are_an_error_finding(tmp_path, classification_data, capsys):
    x, y = classification_data
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="out")(hidden)  # logits...
    model = keras.Model(inputs, outputs)
    # ...into a loss that expects probabilities: the gradients die.
    model.compile(
        optimizer=keras.optimizers.SGD(1.0), loss="sparse_categorical_crossentropy"
    )
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[monitor(tmp_path)])
    scalars, run_info = report.load_run(tmp_path)
    assert all(v == 0.0 for _, v in scalars["grad_norm/global"][-5:])
    kinds = [f.kind for f in diagnostics.diagnose(scalars, run_info)]
    assert kinds[0] == "zero_gradients"
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "all gradients are exactly zero" in out and "from_logits" in out
    assert "look healthy" not in out


def test_zero_gradients_rule_on_synthetic_scalars():
    zero = {
        "grad_norm/global": [(s, 0.0) for s in range(1, 7)],
        "grad_norm/m/d/kernel": [(s, 0.0) for s in range(1, 7)],
    }
    (finding,) = diagnostics.diagnose(zero, {})
    assert (finding.kind, finding.severity, finding.layers) == (
        "zero_gradients",
        "error",
        ("m/d",),
    )
    recovering = {"grad_norm/global": [(1, 0.0), (2, 0.0), (3, 1e-3)]}
    assert diagnostics.diagnose(recovering, {}) == []


# -- damaged event files -------------------------------------------------------
@pytest.fixture
def trained_run(tmp_path, classification_data):
    x, y = classification_data
    model = mlp()
    model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[monitor(tmp_path)])
    (path,) = report.find_event_files(str(tmp_path))
    return tmp_path, path


def _record_offsets(path):
    data = open(path, "rb").read()
    offsets, offset = [], 0
    while offset < len(data):
        offsets.append(offset)
        length = int(np.frombuffer(data[offset : offset + 8], "<u8")[0])
        offset += 12 + length + 4
    return offsets, data


def _steps_before(path, offset):
    data = open(path, "rb").read()
    with open(path + ".head", "wb") as file:
        file.write(data[:offset])
    steps = events.read_file(path + ".head").steps
    os.remove(path + ".head")
    return sorted({s for s in steps if s > 0})


def test_report_reads_a_truncated_file_up_to_the_damage(trained_run, capsys):
    run, path = trained_run
    offsets, data = _record_offsets(path)
    cut = offsets[len(offsets) // 2] + 5
    with open(path, "wb") as file:
        file.write(data[:cut])
    scalars, run_info = report.load_run(run)
    expected = _steps_before(path, offsets[len(offsets) // 2])
    assert [s for s, _ in scalars["grad_norm/global"]] == expected
    assert len(expected) >= 8
    assert main(["report", str(run)]) == 0
    captured = capsys.readouterr()
    assert f"is damaged from byte {offsets[len(offsets) // 2]}" in captured.err
    assert os.path.basename(path) in captured.err
    assert "layer (input -> output)" in captured.out


def test_report_reads_a_file_with_a_flipped_byte_up_to_the_damage(trained_run, capsys):
    run, path = trained_run
    offsets, data = _record_offsets(path)
    bad = offsets[len(offsets) // 2]
    flipped = bytearray(data)
    flipped[bad + 14] ^= 0x40  # inside the record's data
    with open(path, "wb") as file:
        file.write(bytes(flipped))
    scalars, run_info = report.load_run(run)
    assert run_info["damaged_files"] == [
        {"file": path, "byte": bad, "reason": "record data fails its CRC check"}
    ]
    assert [s for s, _ in scalars["grad_norm/global"]] == _steps_before(path, bad)
    assert main(["report", str(run)]) == 0
    assert f"damaged from byte {bad}" in capsys.readouterr().err


def test_report_of_a_file_of_random_bytes_is_a_clear_error(tmp_path, capsys):
    run = tmp_path / "train"
    run.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
    (run / "events.out.tfevents.1.host.kgrad").write_bytes(noise.tobytes())
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is damaged from byte 0" in err and "no gradient norm" in err


def test_a_short_last_chunk_of_steps_per_execution_is_not_a_full_one(tmp_path, events):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype("float32")  # 5 steps of 8 per epoch
    y = rng.integers(0, 3, size=40)
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS, steps_per_execution=4)
    gm = monitor(tmp_path, norms_every=4)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[gm])
    # Chunks [1-4] [5] [6-9] [10]: only [1-4] and [6-9] hold a due step (4, 8);
    # a chunk logs its first step.
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged["grad_norm/global"]] == [1, 6]


# -- `kgrad train` ---------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "-3", "--quick"], "`steps` must be a positive integer"),
        (["--batch-size", "0", "--quick"], "`batch_size` must be a positive integer"),
        (["--learning-rate", "-1", "--quick"], "`learning_rate` must be a positive"),
        (["--clipnorm", "0", "--quick"], "`clipnorm` must be a positive number"),
    ],
)
def test_kgrad_train_rejects_bad_settings_also_with_quick(
    tmp_path, capsys, args, message
):
    code = main(["train", "mlp_relu_he", "--logdir", str(tmp_path), *args])
    assert code == 2 and message in capsys.readouterr().err


def test_kgrad_train_names_the_data_a_model_cannot_take(tmp_path, capsys):
    code = main(
        ["train", "lstm", "--data", "digits", "--quick", "--logdir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "'lstm' cannot train on data set 'digits'" in err and "(8, 8, 1)" in err


def test_kgrad_train_quick_keeps_the_given_steps_and_batch_size():
    from kgrad.lab import experiments
    from kgrad.lab.experiments import RunConfig

    config = experiments.quick(RunConfig("mlp_relu_he"), steps=5, batch_size=4)
    assert (config.steps, config.batch_size) == (5, 4)


class InterruptAtBatch2(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            raise KeyboardInterrupt


def test_a_monitor_reused_after_an_interrupted_fit_logs_each_step_once(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model = mlp()
    gm = monitor(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, verbose=0, callbacks=[gm, InterruptAtBatch2()])
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[gm])
    assert untouched(model)
    gm.flush()
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged["grad_norm/global"]] == [1, 2, 3, 4, 5, 6]


def test_explosion_across_fit_calls_is_seen(tmp_path, classification_data, capsys):
    x, y = classification_data
    scale = tf.Variable(1.0, trainable=False)

    def scaled_loss(labels, logits):
        return LOSS(labels, logits) * scale

    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=scaled_loss)
    gm = monitor(tmp_path)
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[gm])
    scale.assign(1e5)  # the gradients grow 1e5-fold in the next fit
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[gm])
    out = capsys.readouterr().out
    assert out.count("exploding gradients") == 1 and "steps 1-" in out


def test_event_files_opened_in_one_second_sort_in_opening_order(tmp_path, monkeypatch):
    import itertools

    from kgrad.monitor.log import event_writer

    monkeypatch.setattr(event_writer.time, "time", lambda: 1700000000.0)
    monkeypatch.setattr(event_writer.EventFile, "_files_opened", itertools.count(8))
    paths = []
    for _ in range(3):  # counters 8, 9, 10 in one second
        events_file = event_writer.EventFile(str(tmp_path))
        events_file.close()
        paths.append(events_file.path)
    assert sorted(paths) == paths
