"""norms_every / histograms_every: one scheme, Keras names refused, live attributes."""

import numpy as np
import pytest

from kgrad import GradientMonitor
from kgrad.monitor.drive.schedule import Schedule
from tests.support.models import BATCH, compiled, mlp


def logged_steps(schedule, steps_per_epoch, epochs):
    norms, histograms = [], []
    for epoch in range(epochs):
        for batch in range(steps_per_epoch):
            step = epoch * steps_per_epoch + batch + 1
            n, h = schedule.due(step, step, batch == 0)
            norms += [step] * n
            histograms += [step] * h
    return norms, histograms


@pytest.mark.parametrize(
    "every, expected",
    [
        ("batch", list(range(1, 13))),
        ("epoch", [1, 5, 9]),
        (5, [1, 5, 10]),
        (1, list(range(1, 13))),
        (0, []),
        (None, []),
    ],
)
def test_norms_and_histograms_take_the_same_forms(every, expected):
    schedule = Schedule(norms_every=every, histograms_every=every, first_steps=0)
    norms, histograms = logged_steps(schedule, steps_per_epoch=4, epochs=3)
    assert norms == expected
    assert histograms == expected


def test_first_steps_add_norms_only_every_early_step_then_doubling_ones():
    schedule = Schedule(norms_every=7, histograms_every=6, first_steps=20)
    norms, histograms = logged_steps(schedule, steps_per_epoch=6, epochs=4)
    assert norms == [1, 2, 3, 4, 5, 6, 7, 8, 14, 16, 21]
    assert histograms == [1, 6, 12, 18, 24]


def test_a_chunk_holding_an_early_step_is_logged():
    schedule = Schedule(norms_every=100, histograms_every=0, first_steps=50)
    chunks = [(first, first + 2) for first in range(1, 60, 3)]  # 3 steps a call
    logged = [c for c in chunks if schedule.due(*c, epoch_start=False)[0]]
    assert logged == [(1, 3), (4, 6), (7, 9), (16, 18), (31, 33)]


@pytest.mark.parametrize(
    "name, new", [("histogram_freq", "histograms_every"), ("norm_freq", "norms_every")]
)
def test_keras_names_are_refused_with_the_argument_to_use(name, new):
    with pytest.raises(TypeError, match=rf"`{name}`.*use `{new}`.*Received: {name}=1"):
        GradientMonitor("logs", **{name: 1})


def test_unknown_argument_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument `nroms_every`"):
        GradientMonitor("logs", nroms_every=1)


def test_defaults_follow_keras():
    monitor = GradientMonitor()
    assert monitor.log_dir == "logs"
    assert (monitor.norms_every, monitor.histograms_every) == (100, 500)


def test_frequency_attributes_act_and_are_checked(tmp_path, events):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 3, size=32)
    monitor = GradientMonitor(
        tmp_path, norms_every=0, histograms_every=0, first_steps=0
    )
    monitor.norms_every = "epoch"
    monitor.histograms_every = "batch"
    model = compiled(mlp())
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[monitor])
    logged = events(tmp_path / "train")
    assert [s for s, _ in logged["grad_norm/global"]] == [1, 5]
    assert [s for s, _ in logged["grad_hist/out/kernel"]] == list(range(1, 9))
    with pytest.raises(ValueError, match="Received: norms_every=-2"):
        monitor.norms_every = -2
    with pytest.raises(AttributeError):
        monitor.histogram_bins = 10
