"""A run resumed by BackupAndRestore keeps the logging grid of the uninterrupted run."""

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor

STEPS_PER_EPOCH, EPOCHS = 6, 5


def net():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, "relu", name="h"),
            keras.layers.Dense(3, name="out"),
        ],
        name="net",
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


class Interrupt(keras.callbacks.Callback):
    """Stops training with an error at the end of epoch `epoch` (after backup)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def train(log_dir, data, callbacks):
    x, y = data
    monitor = GradientMonitor(
        log_dir,
        norms_every=5,
        histograms_every=0,
        first_steps=8,
        figure_secs=None,
        verbose=0,
    )
    net_model = net()
    net_model.fit(
        x,
        y,
        batch_size=4,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[monitor, *callbacks],
    )


@pytest.mark.parametrize("save_freq", ["epoch", 3])
def test_resume_keeps_the_every_n_grid(tmp_path, events, save_freq):
    rng = np.random.default_rng(0)
    data = (
        rng.normal(size=(STEPS_PER_EPOCH * 4, 6)).astype("float32"),
        rng.normal(size=(STEPS_PER_EPOCH * 4, 3)).astype("float32"),
    )
    train(tmp_path / "whole", data, [])
    backup = keras.callbacks.BackupAndRestore(
        str(tmp_path / "backup"), save_freq=save_freq
    )
    with pytest.raises(RuntimeError, match="interrupted"):
        train(tmp_path / "resumed", data, [backup, Interrupt(epoch=1)])
    train(tmp_path / "resumed", data, [backup])
    whole = events(tmp_path / "whole" / "train")["grad_norm/global"]
    resumed = events(tmp_path / "resumed" / "train")["grad_norm/global"]
    grid = [1, 2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 25, 30]  # steps 1-8, then every 5th
    assert [s for s, _ in whole] == grid
    if save_freq == "epoch":  # resumed at step 13, where the backup was taken
        assert [s for s, _ in resumed] == grid
        np.testing.assert_allclose(
            [float(v) for _, v in resumed], [float(v) for _, v in whole], rtol=1e-5
        )
    else:  # a backup inside epoch 2: Keras runs that epoch again, 6 updates more
        assert [s for s, _ in resumed] == grid + [35]
