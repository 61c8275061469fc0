"""Deep fully connected networks: the vanishing-gradient textbook cases.

The four registered MLPs share depth (20) and width (64) and differ only in the
activation and the initializer of the hidden layers, so their per-layer gradient
norms can be compared directly (FACTS rows 1-3 and 5).
Layers: `dense_01` ... `dense_20`, then `output`.
"""

import keras

from kgrad import checks as _checks
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
        num_classes: Units of the linear `output` layer (1 for regression).
            Defaults to `10`.
        name: Model name. Defaults to `"mlp"`.
        **kwargs: Rejected; listed only to report unknown names clearly.

    Returns:
        An uncompiled `keras.Model` that outputs logits.

    Raises:
        ValueError: If an argument has a bad value.
        TypeError: If an argument is unknown or has a bad type.

    Example:
        ```python
        model = build_mlp(depth=10, activation="tanh", initializer="glorot_normal")
        ```
    """
    _checks.no_unknown(build_mlp, kwargs)
    _checks.positive_int("depth", depth)
    _checks.positive_int("width", width)
    _checks.activation("activation", activation)
    _checks.initializer("initializer", initializer)
    _checks.shape("input_shape", input_shape, 1, "(features,)")
    _checks.positive_int("num_classes", num_classes)

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for index in range(1, depth + 1):
        x = keras.layers.Dense(
            width,
            activation=activation,
            kernel_initializer=initializer,
            name=f"dense_{index:02d}",
        )(x)
    outputs = keras.layers.Dense(num_classes, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


@register(
    "mlp_sigmoid",
    data="digits_flat",
    twin="mlp_relu_he",
    summary="Sigmoid's derivative is at most 0.25, so over 20 layers the gradient "
    "shrinks by up to 0.25^20 = 9.1e-13 (FACTS row 1; Glorot & Bengio 2010).",
)
def mlp_sigmoid(
    *,
    activation="sigmoid",
    initializer="glorot_uniform",
    name="mlp_sigmoid",
    **overrides,
):
    """Sigmoid MLP with Keras' default Glorot initializer."""
    return build_mlp(
        activation=activation, initializer=initializer, name=name, **overrides
    )


@register(
    "mlp_tanh_xavier",
    data="digits_flat",
    twin="mlp_sigmoid",
    summary="tanh with Xavier/Glorot init, Var(W) = 2/(n_in + n_out), suits "
    "symmetric activations; same init as mlp_sigmoid (FACTS row 3; Glorot & "
    "Bengio 2010: test error 27.15% vs 82.61% for sigmoid on Shapeset).",
)
def mlp_tanh_xavier(
    *,
    activation="tanh",
    initializer="glorot_uniform",
    name="mlp_tanh_xavier",
    **overrides,
):
    """tanh MLP with Glorot (Xavier) initialization."""
    return build_mlp(
        activation=activation,
        initializer=initializer,
        name=name,
        **overrides,
    )


@register(
    "mlp_relu_he",
    data="digits_flat",
    twin="mlp_sigmoid",
    summary="ReLU with He init, Var(W) = 2/n_in, keeps the gradient magnitude "
    "across 20 layers (FACTS row 2; He et al. 2015).",
)
def mlp_relu_he(
    *, activation="relu", initializer="he_normal", name="mlp_relu_he", **overrides
):
    """ReLU MLP with He initialization."""
    return build_mlp(
        activation=activation, initializer=initializer, name=name, **overrides
    )


@register(
    "mlp_leaky_relu",
    data="digits_flat",
    twin="mlp_relu_he",
    summary="Leaky ReLU (slope 0.2 below 0) with He init: units cannot die, the fix "
    "for more than 50% zero activations in a ReLU layer (FACTS row 5).",
)
def mlp_leaky_relu(
    *,
    activation="leaky_relu",
    initializer="he_normal",
    name="mlp_leaky_relu",
    **overrides,
):
    """Leaky ReLU MLP with He initialization."""
    return build_mlp(
        activation=activation,
        initializer=initializer,
        name=name,
        **overrides,
    )
