"""Deep fully connected networks: the vanishing-gradient textbook cases.

The four registered MLPs share depth (20) and width (64) and differ only in the
activation and the initializer of the hidden layers, so their per-layer gradient
norms can be compared directly (docs/CLAIMS.md, claims 1-3 and 5).
Layers: `dense_01` ... `dense_20`, then `output`.
"""

import keras

from kgrad import checks as _checks
from kgrad.lab.zoo._family import check_common, model_input, output_model
from kgrad.lab.zoo._registry import register


def build_mlp(
    *,
    depth=20,
    width=64,
    activation="relu",
    initializer="he_normal",
    input_shape=(64,),
    num_classes=10,
    name="mlp",
    **kwargs,
):
    """Builds a deep MLP of `depth` equal Dense layers and a Dense output.

    Args:
        depth: Number of hidden Dense layers. Defaults to `20`.
        width: Units per hidden layer. Defaults to `64`.
        activation: Activation of the hidden layers. Defaults to `"relu"`.
        initializer: Kernel initializer of the hidden layers, e.g. `"he_normal"`
            (Var(W) = 2/n_in) or `"glorot_uniform"` (Var(W) = 2/(n_in + n_out)).
            Defaults to `"he_normal"`.
        input_shape: Shape of one input, rank 1. Defaults to `(64,)` (digits_flat).
        num_classes: Output units (1 for regression). Defaults to `10`.

    Returns:
        The MLP: a feature vector in, logits out.
        See `kgrad.lab.zoo._family` for what every builder checks and returns.

    Example:
        ```python
        model = build_mlp(depth=10, activation="tanh", initializer="glorot_normal")
        ```
    """
    check_common(build_mlp, kwargs, input_shape, ("features",), num_classes)
    _checks.positive_ints(depth=depth, width=width)
    _checks.activation("activation", activation)
    _checks.initializer("initializer", initializer)

    x = inputs = model_input(input_shape)
    for index in range(1, depth + 1):
        x = keras.layers.Dense(
            width,
            activation=activation,
            kernel_initializer=initializer,
            name=f"dense_{index:02d}",
        )(x)
    return output_model(inputs, x, num_classes, name)


@register(data="digits_flat", twin="mlp_relu_he")
def mlp_sigmoid(*, activation="sigmoid", initializer="glorot_uniform", **overrides):
    """Sigmoid MLP with Keras' default Glorot initializer.

    Sigmoid's derivative is at most 0.25, so over 20 layers the gradient shrinks
    by up to 0.25^20 = 9.1e-13 (docs/CLAIMS.md, claim 1; Glorot & Bengio 2010).
    """
    return build_mlp(activation=activation, initializer=initializer, **overrides)


@register(data="digits_flat", twin="mlp_sigmoid")
def mlp_tanh_xavier(*, activation="tanh", initializer="glorot_uniform", **overrides):
    """tanh MLP with Glorot (Xavier) initialization.

    tanh with Xavier/Glorot init, Var(W) = 2/(n_in + n_out), suits symmetric
    activations; same init as mlp_sigmoid (docs/CLAIMS.md, claim 3; Glorot & Bengio
    2010: test error 27.15% vs 82.61% for sigmoid on Shapeset).
    """
    return build_mlp(activation=activation, initializer=initializer, **overrides)


@register(data="digits_flat", twin="mlp_sigmoid")
def mlp_relu_he(*, activation="relu", initializer="he_normal", **overrides):
    """ReLU MLP with He initialization.

    ReLU with He init, Var(W) = 2/n_in, keeps the gradient magnitude across 20
    layers (docs/CLAIMS.md, claim 2; He et al. 2015).
    """
    return build_mlp(activation=activation, initializer=initializer, **overrides)


@register(data="digits_flat", twin="mlp_relu_he")
def mlp_leaky_relu(*, activation="leaky_relu", initializer="he_normal", **overrides):
    """Leaky ReLU MLP with He initialization.

    Leaky ReLU (slope 0.2 below 0) with He init: units cannot die, the fix for
    more than 50% zero activations in a ReLU layer (docs/CLAIMS.md, claim 5).
    """
    return build_mlp(activation=activation, initializer=initializer, **overrides)
