"""A plain convolution stack, with or without normalization after each convolution.

`cnn_plain` and `cnn_bn` share the convolutions (same filters, biases, He init);
`cnn_bn` only adds a BatchNormalization layer between each convolution and its
ReLU (FACTS row 8, Ioffe & Szegedy 2015). `cnn_gn` uses GroupNormalization
instead, which does not depend on the batch size (FACTS row 9).
Layers: `conv_01`, `conv_01_norm`, `conv_01_relu`, ..., `pool`, then `output`.
"""

import keras

from kgrad import checks as _checks
from kgrad.lab.zoo._registry import register

NORMS = (None, "batch", "layer", "group")


def _norm_layer(norm, groups, name):
    if norm == "batch":
        return keras.layers.BatchNormalization(name=name)
    if norm == "layer":
        return keras.layers.LayerNormalization(name=name)
    return keras.layers.GroupNormalization(groups=groups, name=name)


def build_cnn(
    *,
    depth=6,
    filters=32,
    kernel_size=3,
    norm=None,
    groups=8,
    initializer="he_normal",
    input_shape=(8, 8, 1),
    num_classes=10,
    name="cnn",
    **kwargs,
):
    """Builds `depth` equal 'same' convolutions, global average pooling and Dense.

    Args:
        depth: Number of convolution layers. Defaults to `6`.
        filters: Filters per convolution. Defaults to `32`.
        kernel_size: Side of the square kernels. Defaults to `3`.
        norm: Normalization after each convolution: `None`, `"batch"`,
            `"layer"` (over channels) or `"group"`. Defaults to `None`.
        groups: Groups of GroupNormalization; must divide `filters`. Used only
            with `norm="group"`. Defaults to `8`.
        initializer: Kernel initializer of the convolutions. Defaults to
            `"he_normal"`.
        input_shape: Shape of one image, `(height, width, channels)`. Defaults to
            `(8, 8, 1)` (digits).
        num_classes: Units of the linear `output` layer. Defaults to `10`.
        name: Model name. Defaults to `"cnn"`.
        **kwargs: Rejected; listed only to report unknown names clearly.

    Returns:
        An uncompiled `keras.Model` that outputs logits.

    Raises:
        ValueError: If an argument has a bad value.
        TypeError: If an argument is unknown or has a bad type.

    Example:
        ```python
        model = build_cnn(norm="group", groups=4, input_shape=(32, 32, 3))
        ```
    """
    _checks.no_unknown(build_cnn, kwargs)
    _checks.positive_int("depth", depth)
    _checks.positive_int("filters", filters)
    _checks.positive_int("kernel_size", kernel_size)
    _checks.one_of("norm", norm, NORMS)
    _checks.positive_int("groups", groups)
    if norm == "group" and filters % groups:
        raise ValueError(
            f"`groups` must divide `filters` ({filters}) when norm='group'. "
            f"Received: groups={groups!r}"
        )
    _checks.initializer("initializer", initializer)
    _checks.shape("input_shape", input_shape, 3, "(height, width, channels)")
    _checks.positive_int("num_classes", num_classes)

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for index in range(1, depth + 1):
        prefix = f"conv_{index:02d}"
        x = keras.layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            kernel_initializer=initializer,
            name=prefix,
        )(x)
        if norm is not None:
            x = _norm_layer(norm, groups, f"{prefix}_norm")(x)
        x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


@register(
    "cnn_plain",
    data="digits",
    twin="cnn_bn",
    summary="Six convolutions without normalization: the baseline for the "
    "steps-to-accuracy comparison with cnn_bn (FACTS row 8).",
)
def cnn_plain(*, norm=None, name="cnn_plain", **overrides):
    """Convolution stack without normalization."""
    return build_cnn(norm=norm, name=name, **overrides)


@register(
    "cnn_bn",
    data="digits",
    twin="cnn_plain",
    summary="cnn_plain plus BatchNormalization after each convolution; BN reached "
    "the same ImageNet accuracy in 14x fewer steps (FACTS row 8; Ioffe & Szegedy "
    "2015). Needs batches of about 8 or more (FACTS row 9).",
)
def cnn_bn(*, norm="batch", name="cnn_bn", **overrides):
    """Convolution stack with BatchNormalization."""
    return build_cnn(norm=norm, name=name, **overrides)


@register(
    "cnn_gn",
    data="digits",
    twin="cnn_bn",
    summary="cnn_bn with GroupNormalization (8 groups) instead of BatchNorm: "
    "independent of the batch size, the fix for batches below about 8 "
    "(FACTS row 9; Wu & He 2018).",
)
def cnn_gn(*, norm="group", name="cnn_gn", **overrides):
    """Convolution stack with GroupNormalization."""
    return build_cnn(norm=norm, name=name, **overrides)
