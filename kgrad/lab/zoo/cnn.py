"""A plain convolution stack, with or without normalization after each convolution.

`cnn_plain` and `cnn_bn` share the convolutions (same filters, biases, He init);
`cnn_bn` only adds a BatchNormalization layer between each convolution and its
ReLU (docs/CLAIMS.md, claim 8, Ioffe & Szegedy 2015). `cnn_gn` uses GroupNormalization
instead, which does not depend on the batch size (docs/CLAIMS.md, claim 9).
Layers: `conv_01`, `conv_01_norm`, `conv_01_relu`, ..., `pool`, then `output`.
"""

import keras

from kgrad import checks as _checks
from kgrad.lab.zoo._family import check_common, model_input, output_model
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
        num_classes: Classes of the digits. Defaults to `10`.

    Returns:
        The convolution stack: an image in, logits out.
        See `kgrad.lab.zoo._family` for what every builder checks and returns.

    Example:
        ```python
        model = build_cnn(norm="group", groups=4, input_shape=(32, 32, 3))
        ```
    """
    check_common(
        build_cnn, kwargs, input_shape, ("height", "width", "channels"), num_classes
    )
    _checks.positive_ints(depth=depth, filters=filters, kernel_size=kernel_size)
    _checks.one_of("norm", norm, NORMS)
    _checks.positive_int("groups", groups)
    if norm == "group" and filters % groups:
        raise ValueError(
            f"`groups` must divide `filters` ({filters}) when norm='group'. "
            f"Received: groups={groups!r}"
        )
    _checks.initializer("initializer", initializer)

    x = inputs = model_input(input_shape)
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
    return output_model(inputs, x, num_classes, name)


@register(data="digits", twin="cnn_bn")
def cnn_plain(*, norm=None, **overrides):
    """Convolution stack without normalization.

    Six convolutions without normalization: the baseline for the steps-to-
    accuracy comparison with cnn_bn (docs/CLAIMS.md, claim 8).
    """
    return build_cnn(norm=norm, **overrides)


@register(data="digits", twin="cnn_plain")
def cnn_bn(*, norm="batch", **overrides):
    """Convolution stack with BatchNormalization.

    cnn_plain plus BatchNormalization after each convolution; BN reached the
    same ImageNet accuracy in 14x fewer steps (docs/CLAIMS.md, claim 8; Ioffe & Szegedy
    2015). Needs batches of about 8 or more (docs/CLAIMS.md, claim 9).
    """
    return build_cnn(norm=norm, **overrides)


@register(data="digits", twin="cnn_bn")
def cnn_gn(*, norm="group", **overrides):
    """Convolution stack with GroupNormalization.

    cnn_bn with GroupNormalization (8 groups) instead of BatchNorm: independent of the
    batch size, the fix for batches below about 8 (docs/CLAIMS.md, claim 9; Wu & He
    2018).
    """
    return build_cnn(norm=norm, **overrides)
