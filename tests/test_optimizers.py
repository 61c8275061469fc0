"""Statistics of a layer go to the run of the optimizer that trains it.

keras.io's CycleGAN applies four optimizers after one forward pass of all its
networks, SimCLR two; DDIM keeps an EMA copy of its network that never trains.
Activation statistics, findings and the BatchNorm list of each run must name
that optimizer's own layers only.
"""

import json

import keras
import numpy as np
import tensorflow as tf

from kgrad import GradientMonitor


def generator(name):
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="relu", name=f"{name}_hidden"),
            keras.layers.BatchNormalization(name=f"{name}_norm"),
            keras.layers.Dense(4, name=f"{name}_out"),
        ],
        name=name,
    )


class TwoNetworksOneTape(keras.Model):
    """CycleGAN's shape: one forward pass of both networks, then one apply each."""

    def __init__(self):
        super().__init__()
        self.gen_g = generator("gen_g")
        self.gen_f = generator("gen_f")

    def compile(self, g_optimizer, f_optimizer):
        super().compile()
        self.g_optimizer = g_optimizer
        self.f_optimizer = f_optimizer

    def train_step(self, x):
        with tf.GradientTape(persistent=True) as tape:
            forward = self.gen_g(x, training=True)
            back = self.gen_f(forward, training=True)
            g_loss = tf.reduce_mean(tf.square(forward - x))
            f_loss = tf.reduce_mean(tf.square(back - x))
        for loss, net, optimizer in (
            (g_loss, self.gen_g, self.g_optimizer),
            (f_loss, self.gen_f, self.f_optimizer),
        ):
            grads = tape.gradient(loss, net.trainable_weights)
            optimizer.apply_gradients(zip(grads, net.trainable_weights, strict=True))
        return {"g_loss": g_loss, "f_loss": f_loss}


def run_info(events, run_dir):
    (_, value), *_ = events(run_dir)["kgrad/run_info"]
    return json.loads(value.item() if hasattr(value, "item") else value)


def test_each_optimizer_run_holds_its_own_networks_layers(tmp_path, events):
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model = TwoNetworksOneTape()
    model.compile(keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01))
    monitor = GradientMonitor(tmp_path, figure_secs=None, verbose=0)
    model.fit(x, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    for mine, other in (("g_optimizer", "gen_f"), ("f_optimizer", "gen_g")):
        name = "gen_g" if other == "gen_f" else "gen_f"
        logged = events(tmp_path / "train" / mine)
        dead = [tag for tag in logged if tag.startswith("dead_units/")]
        assert dead == [f"dead_units/{name}/{name}_hidden"]
        assert not [tag for tag in logged if other in tag]
        info = run_info(events, tmp_path / "train" / mine)
        assert info["batchnorm_layers"] == [f"{name}/{name}_norm"]
        assert [layer for layer, _ in info["layers"]] == [f"{name}/{name}_hidden"]


class WithEmaCopy(keras.Model):
    """keras.io DDIM's shape: an EMA copy of the network, never trained."""

    def __init__(self):
        super().__init__()
        self.network = generator("network")
        self.ema_network = generator("ema_network")

    def call(self, x):
        return self.ema_network(x)

    def train_step(self, x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.network(x, training=True) - x))
        grads = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(
            zip(grads, self.network.trainable_weights, strict=True)
        )
        for weight, ema in zip(
            self.network.weights, self.ema_network.weights, strict=True
        ):
            ema.assign(0.9 * ema + 0.1 * weight)
        return {"loss": loss}


def test_an_ema_copy_that_never_trains_has_no_batchnorm_in_the_run(tmp_path, events):
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model = WithEmaCopy()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    model(x[:2])
    monitor = GradientMonitor(tmp_path, figure_secs=None, verbose=0)
    model.fit(x, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    info = run_info(events, tmp_path / "train")
    assert info["batchnorm_layers"] == ["network/network_norm"]
    assert info["batch_size"] == 8
    logged = events(tmp_path / "train")
    assert not [tag for tag in logged if "ema_network" in tag]
