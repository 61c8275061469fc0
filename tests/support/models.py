"""Tiny models the monitor's tests train: a ReLU MLP, compiled with SGD."""

import keras

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
BATCH = 8


def mlp(name="mlp"):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="out")(hidden)
    return keras.Model(inputs, outputs, name=name)


def compiled(model, lr=0.1, **kwargs):
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=LOSS, **kwargs)
    return model
