"""Tag names: unique, and the same for a model saved and loaded again."""

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor, tags
from kgrad.analysis import report
from kgrad.monitor.step import naming


@pytest.mark.parametrize(
    "path, model, expected",
    [
        ("mlp/dense/kernel", "mlp", "dense/kernel"),  # built in the process
        ("dense/kernel", "mlp", "dense/kernel"),  # loaded again
        ("mlp2/dense/kernel", "mlp", "mlp2/dense/kernel"),  # another prefix
        ("inner/dense/kernel", "mlp", "inner/dense/kernel"),  # a sub-model's
        ("mlp", "mlp", "mlp"),  # the model itself
        ("mlp/dense/kernel", None, "mlp/dense/kernel"),  # no model (`record`)
    ],
)
def test_the_models_name_is_taken_off_the_front(path, model, expected):
    assert tags.in_model(path, model) == expected


def test_repeated_names_get_a_number_in_model_order():
    names = ["m/d/w", "d/w", "m/d/b", "d/w_2"]
    assert naming.unique_names([tags.in_model(n, "m") for n in names]) == [
        "d/w",
        "d/w_3",
        "d/b",
        "d/w_2",
    ]


def _sequential(name):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, name="hidden"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Dense(3, name="out"),
        ],
        name=name,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def test_a_reloaded_model_continues_every_series_under_the_same_tags(
    tmp_path, classification_data
):
    x, y = classification_data
    monitor = GradientMonitor(
        tmp_path / "logs", norms_every="batch", figure_secs=None, verbose=0
    )
    model = _sequential("saved")
    assert model.trainable_variables[0].path == "saved/hidden/kernel"
    model.fit(x, np.eye(3)[y], batch_size=8, verbose=0, callbacks=[monitor])
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert reloaded.trainable_variables[0].path == "hidden/kernel"  # Keras's
    with pytest.warns(UserWarning, match="continues its run"):
        reloaded.fit(x, np.eye(3)[y], batch_size=8, verbose=0, callbacks=[monitor])

    scalars, _ = report.load_run(tmp_path / "logs" / "train")
    per_variable = {t for t in scalars if tags.name_of(t, tags.GRAD_NORM)}
    assert per_variable == {
        tags.tag(tags.GRAD_NORM, name)
        for name in ["global", "hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    }
    per_layer = {t for t in scalars if t.startswith(tags.ACTIVATION_ZERO + "/")}
    assert per_layer == {tags.tag(tags.ACTIVATION_ZERO, "relu")}
    for tag_ in per_variable | per_layer:  # one series over both fits
        assert [s for s, _ in scalars[tag_]] == list(range(1, 9)), tag_
