"""Which layers' activations kgrad probes, and how: the same on every backend.

A layer is probed when its activation runs once per forward pass on its
output: a `ReLU` layer (without a negative slope), or a Dense, convolution or
`Activation` layer whose activation is ReLU, sigmoid or tanh (recurrent
cells run theirs inside a loop). Needs neither TensorFlow nor JAX: the
TensorFlow probes (`step.forward_probes`) and the JAX capture
(`step.jax_capture`) both choose their layers here.

Tested in tests/test_callback.py and tests/jax/test_jax_capture.py.

Example:

>>> import keras
>>> activation_kind(keras.layers.Dense(3, activation="tanh"))
'tanh'
>>> activation_kind(keras.layers.LeakyReLU()) is None
True
"""

import keras

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
    """Returns `"relu"`, `"sigmoid"`, `"tanh"` or `None` for a layer."""
    if isinstance(layer, keras.layers.ReLU):
        slope = float(getattr(layer, "negative_slope", 0.0) or 0.0)
        return "relu" if slope == 0.0 else None
    if not isinstance(layer, _PROBED_LAYERS):
        return None
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return _ACTIVATION_KINDS.get(name)


def probed(layers):
    """`[(layer, kind)]` of the `layers` whose activations are probed."""
    return [(layer, kind) for layer in layers if (kind := activation_kind(layer))]
