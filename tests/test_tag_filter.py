"""include/exclude patterns and per-layer tags, checked against GradientTape."""

import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor
from kgrad.monitor.log.tag_filter import TagFilter, merge_histograms
from tests.support.models import BATCH, LOSS, compiled, mlp


def model_and_tape_gradients():
    """A compiled MLP, a batch, and its step-1 gradients from an independent tape."""
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    y = np.arange(8) % 3
    model = compiled(mlp())
    with tf.GradientTape() as tape:
        loss = LOSS(y, model(x, training=True))
    return x, y, model, tape.gradient(loss, model.trainable_variables)


def test_patterns_select_variables_and_globals_cover_all(tmp_path, events):
    x, y, model, grads = model_and_tape_gradients()
    total = np.sqrt(sum(float(np.sum(g.numpy() ** 2)) for g in grads))
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=1, include="*kernel", exclude="out*"
    )
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[monitor])
    logged = events(tmp_path / "train")
    per_variable = {t for t in logged if t.startswith(("grad_norm/", "grad_hist/"))}
    assert per_variable == {
        "grad_norm/global",
        "grad_norm/hidden/kernel",
        "grad_hist/hidden/kernel",
    }
    assert not any(t.startswith("activation_zero/") for t in logged)  # hidden
    assert float(logged["grad_norm/global"][0][1]) == pytest.approx(total, rel=1e-5)


def test_per_layer_tags_combine_the_layer_variables(tmp_path, events):
    x, y, model, grads = model_and_tape_gradients()
    by_layer = {}
    for v, g in zip(model.trainable_variables, grads, strict=True):
        by_layer.setdefault(v.path.rsplit("/", 1)[0], []).append(g.numpy().ravel())
    monitor = GradientMonitor(
        tmp_path, norms_every=1, histograms_every=1, histogram_bins=7, per_layer=True
    )
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[monitor])
    logged = events(tmp_path / "train")
    norms = {t for t in logged if t.startswith("grad_norm/")}
    assert norms == {
        "grad_norm/global",
        "grad_norm/hidden/(all)",
        "grad_norm/out/(all)",
    }
    for layer, parts in by_layer.items():
        entries = np.concatenate(parts)
        norm = float(logged[f"grad_norm/{layer}/(all)"][0][1])
        assert norm == pytest.approx(np.linalg.norm(entries), rel=1e-5)
        hist = logged[f"grad_hist/{layer}/(all)"][0][1]
        assert hist[:, 2].sum() == pytest.approx(entries.size)
        assert hist[0, 0] == pytest.approx(entries.min(), rel=1e-5)
        assert hist[-1, 1] == pytest.approx(entries.max(), rel=1e-5)


def test_merged_histogram_keeps_count_and_range():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(3, 1, size=20)
    parts = [np.histogram(v, bins=10) for v in (a, b)]
    low, high, counts = merge_histograms(
        [e[0] for _, e in parts], [e[-1] for _, e in parts], [c for c, _ in parts]
    )
    assert (low, high) == (min(a.min(), b.min()), max(a.max(), b.max()))
    assert counts.sum() == pytest.approx(70)
    exact, _ = np.histogram(np.concatenate([a, b]), bins=10, range=(low, high))
    assert np.abs(counts - exact).max() < 7  # exact to about one source bucket


def test_bad_patterns_are_refused():
    with pytest.raises(TypeError, match="Received: include=3"):
        GradientMonitor("logs", include=3)
    with pytest.raises(TypeError, match="Received: per_layer='yes'"):
        GradientMonitor("logs", per_layer="yes")
    assert TagFilter(["a/k", "b/k"], include=["a*"]).paths == ["a/k"]
