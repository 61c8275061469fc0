"""A monitored fit trains exactly like a plain one, through every Keras lifecycle.

Each test runs one workflow twice from the same seed, without and with
`GradientMonitor`, and compares the final weights bit for bit and the
`history` exactly; then it checks what the monitor logged (steps, tags,
values against a `GradientTape`), read back with TensorBoard's reader.
"""

import json
import os
import pathlib
import subprocess
import sys
import warnings
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor, tags
from tests.support import optimizers
from tests.support.example_runner import (
    IN_PROCESS,
    assert_same_examples,
    run_example,
)

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
SEED = 3


def both(scenario, log_dir, **monitor_kwargs):
    """`scenario(monitor)` plain and monitored: `(plain, monitored, monitor)`.

    `scenario` builds its model after the seed is set and returns
    `(model, [history dicts])`; the two runs must agree exactly.
    """
    outcomes = []
    monitor = None
    for monitored in (False, True):
        keras.utils.set_random_seed(SEED)
        if monitored:
            settings = dict(norms_every=2, figure_secs=None, verbose=0)
            settings.update(monitor_kwargs)
            monitor = GradientMonitor(log_dir, **settings)
        outcomes.append(scenario(monitor))
    (plain, plain_histories), (model, histories) = outcomes
    assert_same_training(plain, model, plain_histories, histories)
    if monitor is not None:
        monitor.flush()
    return plain, model, monitor


def assert_same_training(plain, model, plain_histories, histories):
    assert len(plain.weights) == len(model.weights)
    for a, b in zip(plain.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert json.dumps(plain_histories) == json.dumps(histories)


def callbacks(monitor, *others):
    return ([monitor] if monitor is not None else []) + list(others)


def history(fit):
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


def data(n=32, features=6):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, features)).astype("float32")
    return x, rng.integers(0, 3, size=n)


def tape_global_norm(model, loss, x, y):
    with tf.GradientTape() as tape:
        value = loss(y, model(x, training=True))
    grads = tape.gradient(value, model.trainable_variables)
    return float(tf.linalg.global_norm(grads))


# -- building --------------------------------------------------------------
def test_sequential_without_input_builds_in_its_first_trace(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = keras.Sequential(
            [keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)]
        )
        model.compile(optimizer="adam", loss=LOSS)
        fit = model.fit(
            x, y, batch_size=8, epochs=2, verbose=0, callbacks=callbacks(monitor)
        )
        return model, [history(fit)]

    plain, model, _ = both(scenario, tmp_path)
    logged = events(tmp_path / "train")
    for variable in model.trainable_variables:
        assert (
            tags.tag(tags.GRAD_NORM, tags.in_model(variable.path, model.name)) in logged
        )
    assert [s for s, _ in logged["grad_norm/global"]] == list(range(1, 9))


class TwoDense(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.out = keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.hidden(x))


def test_subclassed_model_never_called_before_fit(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = TwoDense()
        model.compile(optimizer="sgd", loss=LOSS)
        fit = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        return model, [history(fit)]

    _, model, _ = both(scenario, tmp_path)
    logged = events(tmp_path / "train")
    assert len([t for t in logged if t.startswith("grad_norm/")]) == 5  # 4 + global
    assert (
        tags.tag(tags.SATURATION, tags.in_model(model.hidden.path, model.name))
        in logged
    )


class WithEncoder(keras.Model):
    """keras.io SimCLR's shape: a sub-model without `Input`, used in train_step."""

    def __init__(self):
        super().__init__()
        self.encoder = keras.Sequential(
            [keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)]
        )
        self.head = keras.layers.Dense(3)

    def call(self, x):
        return self.head(self.encoder(x))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = LOSS(y, self.head(self.encoder(x, training=True)))
        variables = self.encoder.trainable_variables + self.head.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return {"loss": loss}


def test_sub_model_built_inside_the_first_traced_step(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = WithEncoder()  # nothing built: the first trace builds it
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        fit = model.fit(x, y, batch_size=32, verbose=0, callbacks=callbacks(monitor))
        return model, [history(fit)]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "No gradient for ..." warning
        _, model, _ = both(scenario, tmp_path)
    logged = events(tmp_path / "train")
    assert len([t for t in logged if t.startswith("grad_norm/")]) == 7
    expected = tape_global_norm(model, LOSS, x, y)  # SGD(0): the weights at step 1
    assert float(logged["grad_norm/global"][0][1]) == pytest.approx(expected, rel=1e-5)


# -- compile and recompile ---------------------------------------------------
def mlp(dropout=0.0):
    layers = [keras.Input((6,)), keras.layers.Dense(8, activation="relu")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    return keras.Sequential([*layers, keras.layers.Dense(3)])


def test_recompile_with_the_same_optimizer_and_new_loss_weights(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        optimizer = keras.optimizers.Adam(0.01)
        model.compile(optimizer=optimizer, loss=LOSS)
        first = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        model.compile(optimizer=optimizer, loss=LOSS, loss_weights=10.0)
        second = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        return model, [history(first), history(second)]

    both(scenario, tmp_path)
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged["grad_norm/global"]] == list(range(1, 9))
    loss = {step: float(value) for step, value in logged["kgrad/loss"]}
    assert loss[5] > 5 * loss[4]  # the recompiled step trains the new, 10x loss


def test_recompile_with_new_metrics_and_a_new_loss(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        optimizer = keras.optimizers.Adam(0.01)
        model.compile(optimizer=optimizer, loss=LOSS)
        first = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
            metrics=["categorical_accuracy"],
        )
        onehot = keras.utils.to_categorical(y, 3)
        second = model.fit(
            x, onehot, batch_size=8, verbose=0, callbacks=callbacks(monitor)
        )
        return model, [history(first), history(second)]

    both(scenario, tmp_path)
    steps = [s for s, _ in events(tmp_path / "train")["grad_norm/global"]]
    assert steps == list(range(1, 9))  # both fits logged, steps continue


class CountCalls(keras.layers.Layer):
    """Identity counting its Python calls: one per trace, or per eager step."""

    calls = 0

    def call(self, x):
        CountCalls.calls += 1
        return x


def test_recompile_with_run_eagerly_runs_eager_steps(tmp_path, events):
    x, y = data()
    counts = []

    def scenario(monitor):
        CountCalls.calls = 0
        model = keras.Sequential(
            [keras.Input((6,)), CountCalls(), keras.layers.Dense(3)]
        )
        optimizer = keras.optimizers.SGD(0.1)
        model.compile(optimizer=optimizer, loss=LOSS)
        first = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        model.compile(optimizer=optimizer, loss=LOSS, run_eagerly=True)
        before = CountCalls.calls
        second = model.fit(x, y, batch_size=4, verbose=0, callbacks=callbacks(monitor))
        counts.append(CountCalls.calls - before)
        return model, [history(first), history(second)]

    both(scenario, tmp_path)
    assert counts == [8, 8]  # 8 eager steps, with and without the monitor
    steps = [s for s, _ in events(tmp_path / "train")["grad_norm/global"]]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8, 10, 12]


# -- trainable ---------------------------------------------------------------
def test_trainable_toggled_without_recompile_keeps_the_compiled_function(
    tmp_path, events
):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS)
        first = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        model.layers[0].trainable = False  # Keras keeps its traced function
        second = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        return model, [history(first), history(second)]

    _, model, _ = both(scenario, tmp_path)
    # Keras's kept function still trains the first layer; kgrad logs it.
    frozen = tags.in_model(model.layers[0].kernel.path, model.name)
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged[f"grad_norm/{frozen}"]] == list(range(1, 9))


def test_trainable_toggled_with_recompile(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS)
        first = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        model.layers[0].trainable = False
        model.compile(optimizer="adam", loss=LOSS)
        second = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        return model, [history(first), history(second)]

    _, model, _ = both(scenario, tmp_path)
    logged = events(tmp_path / "train")
    frozen = tags.in_model(model.layers[0].kernel.path, model.name)
    assert [s for s, _ in logged[f"grad_norm/{frozen}"]] == [1, 2, 3, 4]
    head = tags.in_model(model.layers[1].kernel.path, model.name)
    assert [s for s, _ in logged[f"grad_norm/{head}"]] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_function_traced_before_the_monitor_with_trainable_changed_is_kept(
    tmp_path,
):
    x, y = data()
    said = []

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS)
        first = model.fit(x, y, batch_size=8, verbose=0)  # traced without kgrad
        model.layers[0].trainable = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            second = model.fit(
                x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor)
            )
        said.append([str(w.message) for w in caught if "kgrad" in str(w.message)])
        return model, [history(first), history(second)]

    both(scenario, tmp_path)
    assert said[0] == []
    assert len(said[1]) == 1 and "model.compile" in said[1][0]


def test_a_function_traced_before_the_monitor_is_retraced_and_logged(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS)
        first = model.fit(x, y, batch_size=8, verbose=0)
        second = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        return model, [history(first), history(second)]

    both(scenario, tmp_path)
    assert [s for s, _ in events(tmp_path / "train")["grad_norm/global"]] == [
        5,
        6,
        7,
        8,
    ]


# -- XLA, steps_per_execution, data of unknown length ------------------------
def test_xla_with_dropout_keeps_xla_and_the_dropout_masks(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = mlp(dropout=0.5)
        model.compile(optimizer="adam", loss=LOSS, jit_compile=True)
        fit = model.fit(
            x, y, batch_size=8, epochs=2, verbose=0, callbacks=callbacks(monitor)
        )
        return model, [history(fit)]

    both(scenario, tmp_path)
    assert len(events(tmp_path / "train")["grad_norm/global"]) == 8


def test_steps_per_execution(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS, steps_per_execution=2)
        fit = model.fit(
            x, y, batch_size=4, epochs=2, verbose=0, callbacks=callbacks(monitor)
        )
        return model, [history(fit)]

    both(scenario, tmp_path, norms_every=4, first_steps=0)
    # Step 1, then the first step of each chunk holding a multiple of 4.
    assert [s for s, _ in events(tmp_path / "train")["grad_norm/global"]] == [
        1,
        3,
        7,
        11,
        15,
    ]


def test_dataset_of_unknown_length_logs_every_epoch(tmp_path, events):
    x, y = data()
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .filter(lambda features, label: label >= 0)  # every example, length unknown
        .batch(8)
    )
    assert dataset.cardinality() == tf.data.UNKNOWN_CARDINALITY

    updates = UpdatesAtEpochStart()

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS)
        fit = model.fit(
            dataset,
            epochs=3,
            shuffle=False,
            verbose=0,
            callbacks=callbacks(monitor, updates),
        )
        return model, [history(fit)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        both(scenario, tmp_path, norms_every="epoch", first_steps=0)
    assert not [w for w in caught if str(w.message).startswith("kgrad:")]
    # At the end of an epoch of unknown length Keras's function advances
    # `optimizer.iterations` once without changing a weight (with and without
    # the monitor); steps are update counts, so epochs start at 1, 6, 11.
    logged = [s for s, _ in events(tmp_path / "train")["grad_norm/global"]]
    assert logged == updates.first[-3:] == [1, 6, 11]


class UpdatesAtEpochStart(keras.callbacks.Callback):
    """The optimizer's update count of each epoch's first step (1-based)."""

    def __init__(self):
        super().__init__()
        self.first = []

    def on_epoch_begin(self, epoch, logs=None):
        self.first.append(int(self.model.optimizer.iterations) + 1)


class RemakeTrainFunction(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.make_train_function(force=True)


def test_make_train_function_force_in_a_callback(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS)
        fit = model.fit(
            x,
            y,
            batch_size=8,
            epochs=2,
            verbose=0,
            callbacks=callbacks(monitor, RemakeTrainFunction()),
        )
        return model, [history(fit)]

    both(scenario, tmp_path, norms_every=3, first_steps=0)
    assert [s for s, _ in events(tmp_path / "train")["grad_norm/global"]] == [1, 3, 6]


# -- mixed precision, accumulation -------------------------------------------
def test_mixed_precision(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        keras.config.set_dtype_policy("mixed_float16")
        try:
            model = mlp()
            model.compile(optimizer="adam", loss=LOSS)
            fit = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        finally:
            keras.config.set_dtype_policy("float32")
        return model, [history(fit)]

    both(scenario, tmp_path)
    assert float(events(tmp_path / "train")["loss_scale/value"][0][1]) > 1.0


def test_gradient_accumulation(tmp_path, events):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        optimizer = keras.optimizers.SGD(0.1, gradient_accumulation_steps=2)
        model.compile(optimizer=optimizer, loss=LOSS)
        fit = model.fit(x, y, batch_size=4, verbose=0, callbacks=callbacks(monitor))
        return model, [history(fit)]

    both(scenario, tmp_path)
    assert [s for s, _ in events(tmp_path / "train")["grad_norm/global"]] == [
        1,
        2,
        3,
        4,
    ]


@pytest.mark.parametrize("name, make", optimizers.assigning_builds())
def test_an_optimizer_whose_build_assigns_values(tmp_path, events, name, make):
    # These copy the weights into a slot in `build`; a plain fit builds them in
    # a trace that never runs, so the slot starts at zero.
    x, y = data()

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer=make(), loss=LOSS)
        fit = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        slots = model.optimizer.variables[2:]  # past iterations and learning rate
        return model, [history(fit), [float(np.abs(v).sum()) for v in slots]]

    both(scenario, tmp_path)
    assert [s for s, _ in events(tmp_path / "train")["grad_norm/global"]] == [
        1,
        2,
        3,
        4,
    ]


# -- callbacks that save, restore or stop --------------------------------------
def test_callbacks_that_save_restore_and_stop(tmp_path):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=LOSS)
        others = [
            keras.callbacks.EarlyStopping(
                monitor="loss", patience=1, restore_best_weights=True
            ),
            keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=1),
            keras.callbacks.TerminateOnNaN(),
        ]
        fit = model.fit(
            x,
            y,
            batch_size=8,
            epochs=6,
            verbose=0,
            callbacks=callbacks(monitor, *others),
        )
        return model, [history(fit)]

    both(scenario, tmp_path)


class InterruptAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def test_backup_and_restore_after_an_interruption(tmp_path):
    x, y = data()

    def scenario(monitor):
        backup = str(tmp_path / f"backup_{monitor is not None}")
        model = mlp()
        model.compile(optimizer="adam", loss=LOSS)
        restore = keras.callbacks.BackupAndRestore(backup)
        with pytest.raises(RuntimeError, match="interrupted"):
            model.fit(
                x,
                y,
                batch_size=8,
                epochs=4,
                verbose=0,
                callbacks=callbacks(monitor, restore, InterruptAtEpoch(2)),
            )
        fit = model.fit(
            x,
            y,
            batch_size=8,
            epochs=4,
            verbose=0,
            callbacks=callbacks(monitor, restore),
        )
        return model, [history(fit)]

    both(scenario, tmp_path / "logs")


@keras.saving.register_keras_serializable(package="mypackage")
def relu(x):
    """A custom activation that shares Keras's name."""
    return keras.ops.maximum(x, 0.0) * 0.5


def test_model_checkpoint_saves_a_custom_activation_named_relu(tmp_path):
    x, y = data()
    configs = []

    def scenario(monitor):
        path = tmp_path / f"model_{monitor is not None}.keras"
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(8, activation=relu),
                keras.layers.Dense(3),
            ]
        )
        model.compile(optimizer="adam", loss=LOSS)
        checkpoint = keras.callbacks.ModelCheckpoint(str(path))
        fit = model.fit(
            x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor, checkpoint)
        )
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        layers = config["config"]["layers"]
        configs.append(
            [c["config"]["activation"] for c in layers if "activation" in c["config"]]
        )
        reloaded = keras.saving.load_model(path)
        np.testing.assert_array_equal(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )
        return model, [history(fit)]

    both(scenario, tmp_path / "logs")
    plain, monitored = configs
    assert plain == monitored
    assert "mypackage>relu" in json.dumps(monitored)


# -- degenerate models get Keras's own errors --------------------------------
def test_no_trainable_variables_gets_keras_warning(tmp_path):
    x, y = data()

    def scenario(monitor):
        model = mlp()
        model.trainable = False
        model.compile(optimizer="adam", loss=LOSS)
        with pytest.warns(UserWarning, match="does not have any trainable weights"):
            fit = model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        return model, [history(fit)]

    both(scenario, tmp_path)


def test_every_gradient_none_gets_keras_error(tmp_path):
    x, y = data()

    def unrelated_loss(labels, logits):
        return tf.reduce_mean(tf.cast(labels, "float32")) + 0.0 * tf.stop_gradient(
            tf.reduce_sum(logits)
        )

    for monitor in (None, GradientMonitor(tmp_path, verbose=0)):
        model = mlp()
        model.compile(optimizer="adam", loss=unrelated_loss)
        with pytest.raises(ValueError, match="No gradients provided for any variable"):
            model.fit(x, y, batch_size=8, verbose=0, callbacks=callbacks(monitor))
        assert "apply" not in vars(model.optimizer)


# -- nothing of kgrad is left after an exception --------------------------------
def instance_state(model):
    """What kgrad could set on the instances: `call`, `activation`, `apply`."""
    layers = [model, *model._flatten_layers(include_self=False, recursive=True)]
    state = [(id(layer), vars(layer).get("call")) for layer in layers]
    state += [(id(layer), vars(layer).get("activation")) for layer in layers]
    return state + [vars(model.optimizer).get("apply")]


class RaiseAtEpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("boom")


def test_an_exception_anywhere_in_fit_leaves_nothing_on_the_model(tmp_path):
    x, y = data()
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3),
        ]
    )
    model.compile(optimizer="adam", loss=LOSS)
    config = model.get_config()
    state = instance_state(model)
    monitor = GradientMonitor(tmp_path, verbose=0)
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, batch_size=8, verbose=0, callbacks=[monitor, RaiseAtEpochEnd()])
    assert instance_state(model) == state
    assert model.get_config() == config
    before = [w.numpy() for w in model.weights]
    model.fit(x, y, batch_size=8, verbose=0)  # a plain fit: the guard steps aside
    assert not hasattr(model.train_function, "_kgrad_inner")
    assert any(
        (w.numpy() != b).any() for w, b in zip(model.weights, before, strict=True)
    )


# -- every example, with and without the monitor -------------------------------
@pytest.mark.parametrize("name", IN_PROCESS)
def test_example_trains_the_same_with_and_without_the_monitor(name, tmp_path):
    monitored = run_example(name, tmp_path, monitored=True)
    plain = run_example(name, tmp_path, monitored=False)
    assert_same_examples(plain, monitored)


def weights_of(archive, entry):
    count = sum(1 for name in archive.files if name.startswith(f"{entry}_"))
    return [archive[f"{entry}_{i}"] for i in range(count)]


def test_distributed_example_trains_the_same_with_and_without_the_monitor(tmp_path):
    script = pathlib.Path(__file__).parent / "distributed" / "example_unchanged.py"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    saved = {}
    for mode in ("monitored", "plain"):  # the plain run reads the monitored logs
        saved[mode] = tmp_path / f"{mode}.npz"
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path), mode, str(saved[mode])],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    runs = []
    for mode in ("plain", "monitored"):
        with np.load(saved[mode]) as archive:
            histories = json.loads(str(archive["histories"]))
            runs.append(
                [
                    (weights_of(archive, j), history_)
                    for j, history_ in enumerate(histories)
                ]
            )
    assert_same_examples(*runs)


# -- the noise scale ---------------------------------------------------------
def _covered_layers_model():
    """Every layer type with a per-example rule, and a GRU without one."""
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(10, 8)(tokens)
    x = keras.layers.MultiHeadAttention(2, 4, dropout=0.2)(x, x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Conv1D(8, 3, activation="relu")(x)
    x = keras.layers.GRU(4, return_sequences=True)(x)
    x = keras.layers.Dense(8, activation="gelu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(tokens, keras.layers.Dense(3)(x))


@pytest.mark.parametrize("variant", ["default", "xla", "mixed_float16", "chunks"])
def test_noise_scale_trains_the_same(variant, tmp_path, events):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 10, size=(32, 6)), rng.integers(0, 3, size=32)

    def scenario(monitor):
        if variant == "mixed_float16":
            keras.config.set_dtype_policy("mixed_float16")
        try:
            model = _covered_layers_model()
            model.compile(
                optimizer="adam",
                loss=LOSS,
                jit_compile=variant == "xla",
                steps_per_execution=2 if variant == "chunks" else 1,
            )
            fit = model.fit(
                x, y, batch_size=8, epochs=2, verbose=0, callbacks=callbacks(monitor)
            )
        finally:
            keras.config.set_dtype_policy("float32")
        return model, [history(fit)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        both(scenario, tmp_path, noise_scale=True)
    logged = events(tmp_path / "train")
    refused = [w for w in caught if "noise_scale is off" in str(w.message)]
    if variant == "xla":  # XLA may fuse differently around the per-example ops
        assert len(refused) == 1 and "noise_scale/covered" not in logged
    else:
        assert not refused
        assert len(logged["noise_scale/covered"]) == len(logged["grad_norm/global"])
