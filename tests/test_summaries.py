"""`summaries.clip_scalars`: what the optimizer's clipping did, read back."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgrad import GradientMonitor, tags

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6)).astype("float32") * 10
    return x, rng.integers(0, 3, size=8)


def mlp():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, name="d"), keras.layers.Dense(3)]
    )


def first_step_norms(model, x, y):
    """Per-variable gradient norms of the first step, with a tape."""
    with tf.GradientTape() as tape:
        loss = LOSS(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    return np.array([np.linalg.norm(g.numpy()) for g in grads]), grads


@pytest.mark.parametrize(
    "clipping", [{"clipnorm": 0.5}, {"global_clipnorm": 0.5}, {"clipvalue": 0.05}]
)
def test_clipping_is_logged_and_training_is_unchanged(tmp_path, events, clipping):
    x, y = data()
    plain, model = mlp(), mlp()
    norms, grads = first_step_norms(model, x, y)
    for twin, callbacks in (
        (plain, []),
        (model, [GradientMonitor(tmp_path, norms_every=1, histograms_every=1)]),
    ):
        twin.compile(optimizer=keras.optimizers.SGD(0.1, **clipping), loss=LOSS)
        twin.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=callbacks)
    for a, b in zip(plain.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    logged = events(tmp_path / "train")
    first = {t: float(v[0][1]) for t, v in logged.items() if t.startswith("grad_clip")}
    total = float(np.sqrt((norms**2).sum()))
    if "clipvalue" in clipping:
        beyond = [np.abs(g.numpy()).max() > 0.05 for g in grads]
        assert first == {tags.GRAD_CLIP_CLIPPED: float(sum(beyond))}
        assert sum(beyond) > 0
        return
    if "clipnorm" in clipping:
        after = float(np.sqrt((np.minimum(norms, 0.5) ** 2).sum()))
        clipped = float((norms > 0.5).sum())
    else:
        after, clipped = 0.5, float(len(norms))
    assert clipped > 0 and total > 0.5  # the clipping acted
    assert first[tags.GRAD_CLIP_GLOBAL_NORM] == pytest.approx(after, rel=1e-5)
    assert first[tags.GRAD_CLIP_RATIO] == pytest.approx(after / total, rel=1e-5)
    assert first[tags.GRAD_CLIP_CLIPPED] == clipped
    assert [s for s, _ in logged[tags.GRAD_CLIP_RATIO]] == [1, 2]


def test_no_clipping_no_clip_tags(tmp_path, events):
    x, y = data()
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    model.fit(x, y, verbose=0, callbacks=[GradientMonitor(tmp_path, norms_every=1)])
    assert not any(t.startswith(tags.GRAD_CLIP) for t in events(tmp_path / "train"))
