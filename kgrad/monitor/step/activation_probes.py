"""Which layers' outputs the capture summarises: ReLU, sigmoid and tanh layers.

Dead ReLU units and saturated sigmoid/tanh outputs are read from the output of
the layers whose activation runs once per forward pass: Dense, convolutions,
`Activation` and `ReLU` (without a negative slope). Recurrent cells run theirs
inside a loop and are not probed (`kgrad.monitor.step.temporal` profiles them).

Example:

>>> import keras
>>> activation_kind(keras.layers.Dense(2, activation="relu"))
'relu'
>>> activation_kind(keras.layers.LeakyReLU()) is None
True
"""

import keras

from kgrad.monitor.train_function import keras_hooks

_ACTIVATION_KINDS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
_PROBED_LAYERS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Activation,
)


def activation_kind(layer):
    """Returns `"relu"`, `"sigmoid"`, `"tanh"` or `None` for a layer.

    Only layers whose activation runs once per forward pass are probed
    (recurrent cells run theirs inside a loop).
    """
    if isinstance(layer, keras.layers.ReLU):
        slope = float(getattr(layer, "negative_slope", 0.0) or 0.0)
        return "relu" if slope == 0.0 else None
    if not isinstance(layer, _PROBED_LAYERS):
        return None
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return _ACTIVATION_KINDS.get(name)


def probed_layers(model):
    """Layers of `model` (nested ones included) whose activations are probed."""
    layers = keras_hooks.all_layers(model)
    return [(layer, kind) for layer in layers if (kind := activation_kind(layer))]
