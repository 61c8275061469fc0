"""A train function traced while no histogram can be due leaves their code out.

When histograms become due (between fits or between batches) the function is
retraced with it, and training stays bit for bit what it is without kgrad.
"""

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor
from kgrad.monitor.step import stats
from tests.support.models import compiled, mlp

FIT = dict(batch_size=4, shuffle=False, verbose=0)  # 32 examples: 8 steps


def same_models(jit_compile, count=2):
    """`count` copies of `mlp`, with the same initial weights."""
    keras.utils.set_random_seed(0)
    models = [compiled(mlp(), jit_compile=jit_compile) for _ in range(count)]
    for model in models[1:]:
        model.set_weights(models[0].get_weights())
    return models


@pytest.fixture
def histogram_traces(monkeypatch):
    """The bins of each trace of kgrad's histogram code."""
    traces = []
    histograms = stats.histograms

    def counted(blocks, bins):
        traces.append(bins)
        return histograms(blocks, bins)

    monkeypatch.setattr(stats, "histograms", counted)
    return traces


def assert_same_weights(model, plain):
    for monitored, unmonitored in zip(model.weights, plain.weights, strict=True):
        np.testing.assert_array_equal(monitored.numpy(), unmonitored.numpy())


def assert_same_histograms(logged, reference, steps):
    """`out/kernel`'s histograms at `steps` are the reference's, bit for bit."""
    tag = "grad_hist/out/kernel"
    assert [step for step, _ in logged[tag]] == steps
    expected = dict(reference[tag])
    for step, histogram in logged[tag]:
        assert histogram[:, 2].sum() == 15  # 5 x 3 entries
        np.testing.assert_array_equal(histogram, expected[step])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_histogram_code_is_traced_when_histograms_become_due_between_fits(
    tmp_path, events, classification_data, histogram_traces, jit_compile
):
    x, y = classification_data
    model, plain, reference = same_models(jit_compile, count=3)
    every = dict(norms_every=1, first_steps=0, figure_secs=None)
    monitor = GradientMonitor(tmp_path / "run", histograms_every=0, **every)
    model.fit(x, y, callbacks=[monitor], **FIT)
    assert histogram_traces == []  # norms only: no histogram code
    monitor.histograms_every = 3
    model.fit(x, y, callbacks=[monitor], **FIT)
    assert histogram_traces == [30]  # retraced once, with it
    plain.fit(x, y, **FIT)
    plain.fit(x, y, **FIT)
    assert_same_weights(model, plain)
    always = GradientMonitor(tmp_path / "reference", histograms_every=3, **every)
    reference.fit(x, y, callbacks=[always], **FIT)
    reference.fit(x, y, callbacks=[always], **FIT)
    logged = events(tmp_path / "run" / "train")
    assert [step for step, _ in logged["grad_norm/global"]] == list(range(1, 17))
    assert_same_histograms(
        logged, events(tmp_path / "reference" / "train"), [9, 12, 15]
    )


def test_histogram_code_is_traced_when_histograms_become_due_within_a_fit(
    tmp_path, events, classification_data, histogram_traces
):
    x, y = classification_data
    model, plain, reference = same_models(jit_compile=False, count=3)
    every = dict(norms_every=0, first_steps=0, figure_secs=None)
    monitor = GradientMonitor(tmp_path / "run", histograms_every=0, **every)

    class SwitchOn(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                monitor.histograms_every = 2

    model.fit(x, y, callbacks=[monitor, SwitchOn()], **FIT)
    plain.fit(x, y, **FIT)
    assert histogram_traces == [30]
    assert_same_weights(model, plain)
    always = GradientMonitor(tmp_path / "reference", histograms_every=2, **every)
    reference.fit(x, y, callbacks=[always], **FIT)
    assert_same_histograms(
        events(tmp_path / "run" / "train"),
        events(tmp_path / "reference" / "train"),
        [6, 8],
    )


def test_a_function_that_cannot_be_retraced_logs_norms_and_says_why(
    tmp_path, events, classification_data, histogram_traces
):
    x, y = classification_data
    model, plain = same_models(jit_compile=False)
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=0, first_steps=0, figure_secs=None
    )
    model.fit(x, y, callbacks=[monitor], **FIT)
    plain.fit(x, y, **FIT)
    for twin in (model, plain):  # Keras keeps training the variables it traced
        twin.get_layer("hidden").trainable = False
    monitor.histograms_every = 1
    with pytest.warns(UserWarning, match="while `histograms_every` was off"):
        model.fit(x, y, callbacks=[monitor], **FIT)
    plain.fit(x, y, **FIT)
    assert histogram_traces == []
    assert_same_weights(model, plain)
    logged = events(tmp_path / "train")
    assert [step for step, _ in logged["grad_norm/global"]] == list(range(1, 17))
    assert "grad_hist/out/kernel" not in logged


def test_a_function_with_one_trace_without_histograms_is_retraced(
    tmp_path, events, classification_data, histogram_traces
):
    x, y = classification_data
    model, plain, reference = same_models(jit_compile=False, count=3)
    every = dict(norms_every=1, first_steps=0, figure_secs=None)
    monitor = GradientMonitor(tmp_path / "run", histograms_every=0, **every)
    always = GradientMonitor(tmp_path / "reference", histograms_every=1, **every)
    model.fit(x, y, callbacks=[monitor], **FIT)  # traced at batch 4, without
    monitor.histograms_every = 100  # none due in the next fit, whose short
    model.fit(x[:30], y[:30], callbacks=[monitor], **FIT)  # last batch traces with
    monitor.histograms_every = 1
    model.fit(x, y, callbacks=[monitor], **FIT)  # batch 4 again: needs a retrace
    for twin, callbacks in ((plain, []), (reference, [always])):
        for data in ((x, y), (x[:30], y[:30]), (x, y)):
            twin.fit(*data, callbacks=callbacks, **FIT)
    assert_same_weights(model, plain)
    assert_same_histograms(
        events(tmp_path / "run" / "train"),
        events(tmp_path / "reference" / "train"),
        list(range(17, 25)),
    )
