"""Tiny models, data and monitors shared by the JAX suite (tests/jax/)."""

import keras
import numpy as np

from kgrad import GradientMonitor


def data(n=64, features=6, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, features).astype("float32")
    y = (x[:, :2].sum(1, keepdims=True) > 0).astype("float32")
    return x, y


def mlp(dropout=0.0, batchnorm=False, features=6):
    layers = [keras.Input((features,)), keras.layers.Dense(16, activation="relu")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    if batchnorm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    return keras.Sequential(layers)


def monitor(log_dir, **kwargs):
    kwargs.setdefault("norms_every", "batch")
    kwargs.setdefault("histograms_every", 3)
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("figure_secs", None)
    return GradientMonitor(str(log_dir), **kwargs)
