"""The update ratio of large variables, measured on the optimizer's increments.

Every logged `update_ratio` is checked against a snapshot of the weights
taken outside kgrad (a callback that copies them before and after each
batch), for each way a Keras optimizer changes a large variable: `assign_sub`
(Adam), `assign_add` (SGD with momentum), `assign` (Ftrl), weight decay folded
in (AdamW, also on a sparse Embedding gradient), inside Keras's own conds
(gradient accumulation, loss scaling), and the cases that keep the snapshot
(a constraint, EMA overwriting the weights).
"""

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor, tags
from kgrad.monitor.step import stats

BATCH = 16


class WeightSnapshots(keras.callbacks.Callback):
    """`update_ratio` of each batch from copies of the weights (outside kgrad)."""

    def __init__(self):
        super().__init__()
        self.ratios = []  # per batch: {path: ratio}

    def on_train_batch_begin(self, batch, logs=None):
        self._before = [v.numpy().astype("float64") for v in self._variables()]

    def on_train_batch_end(self, batch, logs=None):
        ratios = {}
        for v, before in zip(self._variables(), self._before, strict=True):
            change = np.linalg.norm(v.numpy().astype("float64") - before)
            if np.linalg.norm(before) > 0:  # kgrad logs no ratio of zero weights
                name = tags.in_model(v.path, self.model.name)
                ratios[name] = change / np.linalg.norm(before)
        self.ratios.append(ratios)

    def _variables(self):
        return self.model.trainable_variables


def dense_model(constraint=None):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((300,)),
            keras.layers.Dense(256, activation="relu", kernel_constraint=constraint),
            keras.layers.Dense(10),
        ]
    )


def embedding_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(2000, 48),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(10),
        ]
    )


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(1e-2),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    "ftrl": lambda: keras.optimizers.Ftrl(0.1),
    "adamw": lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.5),
    "accumulation": lambda: keras.optimizers.Adam(1e-2, gradient_accumulation_steps=2),
    "loss_scale": lambda: keras.optimizers.LossScaleOptimizer(
        keras.optimizers.Adam(1e-2)
    ),
    "ema_overwrite": lambda: keras.optimizers.Adam(
        1e-2, use_ema=True, ema_overwrite_frequency=2
    ),
}


def fit_both_ways(tmp_path, model, optimizer, x, y, jit_compile=False):
    model.compile(
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    snapshots = WeightSnapshots()
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=0, first_steps=0
    )
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[snapshots, monitor],
    )
    monitor.flush()
    return snapshots.ratios, monitor


def assert_ratios_equal(events, tmp_path, ratios, model, accumulation=1):
    logged = events(tmp_path / "train")
    checked = 0
    for batch, expected in enumerate(ratios):
        if (batch + 1) % accumulation:
            continue  # a batch that only accumulates is not logged
        step = (batch + 1) // accumulation
        for path, ratio in expected.items():
            values = dict(logged[f"update_ratio/{path}"])
            assert values[step] == pytest.approx(ratio, rel=1e-4), (path, step)
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize("name", sorted(OPTIMIZERS) + ["adamw_xla"])
def test_update_ratio_of_a_large_variable_equals_a_snapshot(tmp_path, events, name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * BATCH, 300)).astype("float32")
    y = np.arange(4 * BATCH) % 10
    model = dense_model()
    jit = name.endswith("_xla")
    optimizer = OPTIMIZERS[name.removesuffix("_xla")]()
    ratios, monitor = fit_both_ways(tmp_path, model, optimizer, x, y, jit)
    accumulation = 2 if name == "accumulation" else 1
    assert_ratios_equal(events, tmp_path, ratios, model, accumulation)
    (channel,) = monitor._capture.traced_channels
    (record,) = channel.records.values()
    kernel = model.layers[0].kernel
    assert kernel.shape.num_elements() > stats.STACK_LIMIT
    measured = [record.variables[i] for i in record.increments]
    assert (kernel in measured) == (name != "ema_overwrite")


def test_a_constrained_large_variable_keeps_the_snapshot(tmp_path, events):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4 * BATCH, 300)).astype("float32")
    y = np.arange(4 * BATCH) % 10
    model = dense_model(constraint=keras.constraints.MaxNorm(0.5))
    ratios, monitor = fit_both_ways(tmp_path, model, keras.optimizers.Adam(1e-2), x, y)
    assert_ratios_equal(events, tmp_path, ratios, model)
    (record,) = monitor._capture.traced_channels[0].records.values()
    assert record.increments == []


def test_sparse_embedding_gradient_with_weight_decay(tmp_path, events):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2000, size=(4 * BATCH, 5)).astype("int32")
    y = np.arange(4 * BATCH) % 10
    model = embedding_model()
    optimizer = keras.optimizers.AdamW(1e-2, weight_decay=0.5)
    ratios, monitor = fit_both_ways(tmp_path, model, optimizer, x, y)
    assert_ratios_equal(events, tmp_path, ratios, model)
    (record,) = monitor._capture.traced_channels[0].records.values()
    assert record.increments == [0]  # the embedding table
