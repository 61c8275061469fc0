"""Basic-block ResNets (He et al. 2015) with the small-image stem used for CIFAR.

Stem: 3x3 convolution, stride 1, no max-pool (`stage0_*`). Stages 1-4 of basic
blocks (two 3x3 convolutions) at width, 2x, 4x and 8x width (64/128/256/512),
stride 2 at the start of stages 2-4; global average pooling and a Dense `output`.
With `shortcuts=True` each block adds its input back (`stageS_blockB_add`), through
a 1x1 convolution + BN projection (`..._proj_conv`, `..._proj_bn`) where the shape
changes; the plain twin (`shortcuts=False`) is the same network without the Add
and projection layers. For 32x32x3 input and 10 classes ResNet-18 has 11,173,962
parameters and its plain twin 11,000,138.

He et al. 2015, Table 2 (ImageNet top-1 error %): plain-18 27.94, ResNet-18 27.88;
plain-34 28.54, ResNet-34 25.03 (docs/CLAIMS.md, claims 6-7). Their plain nets use
BatchNorm, which keeps gradients from vanishing; `batchnorm=False` shows vanishing far
more sharply.
"""

import keras

from kgrad import checks as _checks
from kgrad.lab.zoo._family import check_common, model_input, output_model
from kgrad.lab.zoo._registry import register

BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def _conv_bn(x, filters, kernel_size, strides, batchnorm, conv_name, bn_name):
    """A convolution (with a bias only without BN), then BN when `batchnorm`."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not batchnorm,
        kernel_initializer="he_normal",
        name=conv_name,
    )(x)
    if batchnorm:
        x = keras.layers.BatchNormalization(name=bn_name)(x)
    return x


def _basic_block(x, filters, strides, shortcuts, batchnorm, prefix):
    """Two 3x3 convolutions; with `shortcuts`, adds the (projected) input."""
    y = _conv_bn(x, filters, 3, strides, batchnorm, f"{prefix}_conv1", f"{prefix}_bn1")
    y = keras.layers.Activation("relu", name=f"{prefix}_relu1")(y)
    y = _conv_bn(y, filters, 3, 1, batchnorm, f"{prefix}_conv2", f"{prefix}_bn2")
    if shortcuts:
        if strides != 1 or x.shape[-1] != filters:
            x = _conv_bn(
                x,
                filters,
                1,
                strides,
                batchnorm,
                f"{prefix}_proj_conv",
                f"{prefix}_proj_bn",
            )
        y = keras.layers.Add(name=f"{prefix}_add")([y, x])
    return keras.layers.Activation("relu", name=f"{prefix}_relu2")(y)


def build_resnet(
    *,
    depth=18,
    shortcuts=True,
    batchnorm=True,
    width=64,
    input_shape=(8, 8, 1),
    num_classes=10,
    name="resnet",
    **kwargs,
):
    """Builds a CIFAR-style basic-block ResNet-18 or -34, or its plain twin.

    Args:
        depth: 18 (blocks 2-2-2-2) or 34 (blocks 3-4-6-3). Defaults to `18`.
        shortcuts: Add each block's input to its output (residual); `False`
            gives the plain network of He et al. Defaults to `True`.
        batchnorm: BatchNormalization after every convolution; without it the
            convolutions get biases. Defaults to `True`.
        width: Filters of the stem and stage 1; stages 2-4 double it each.
            Defaults to `64`.
        input_shape: Shape of one image, `(height, width, channels)`. Defaults to
            `(8, 8, 1)` (digits); CIFAR-10 is `(32, 32, 3)`.
        num_classes: Classes, 10 for digits and CIFAR-10. Defaults to `10`.

    Returns:
        The ResNet: an image in, logits out.
        See `kgrad.lab.zoo._family` for what every builder checks and returns.

    Example:
        ```python
        model = build_resnet(depth=34, shortcuts=False, input_shape=(32, 32, 3))
        ```
    """
    check_common(
        build_resnet, kwargs, input_shape, ("height", "width", "channels"), num_classes
    )
    _checks.one_of("depth", depth, tuple(BLOCKS))
    _checks.boolean("shortcuts", shortcuts)
    _checks.boolean("batchnorm", batchnorm)
    _checks.positive_int("width", width)

    inputs = model_input(input_shape)
    x = _conv_bn(inputs, width, 3, 1, batchnorm, "stage0_conv", "stage0_bn")
    x = keras.layers.Activation("relu", name="stage0_relu")(x)
    for stage, blocks in enumerate(BLOCKS[depth], start=1):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = _basic_block(
                x,
                width * 2 ** (stage - 1),
                strides,
                shortcuts,
                batchnorm,
                f"stage{stage}_block{block}",
            )
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return output_model(inputs, x, num_classes, name)


@register(data="digits", twin="resnet18_plain")
def resnet18(*, depth=18, shortcuts=True, **overrides):
    """ResNet-18 with shortcuts.

    ResNet-18 (He et al. 2015), CIFAR stem: with skips the gradient norms stay
    uniform over depth (docs/CLAIMS.md, claim 6; 89.9% vs 84.1% on CIFAR-10 without).
    """
    return build_resnet(depth=depth, shortcuts=shortcuts, **overrides)


@register(data="digits", twin="resnet18")
def resnet18_plain(*, depth=18, shortcuts=False, **overrides):
    """Plain 18-layer network (with BatchNorm, like He et al.).

    ResNet-18 without the shortcuts: gradient norms drop sharply in the early
    layers (docs/CLAIMS.md, claim 6; He et al. 2015 plain-18).
    """
    return build_resnet(depth=depth, shortcuts=shortcuts, **overrides)


@register(data="digits", twin="resnet18_plain")
def resnet18_plain_nobn(*, depth=18, shortcuts=False, batchnorm=False, **overrides):
    """Plain 18-layer network without BatchNorm.

    resnet18_plain without BatchNorm: He et al. argue BN keeps their plain nets
    from vanishing, so this one shows the vanishing far more sharply (docs/CLAIMS.md,
    reference numbers).
    """
    return build_resnet(
        depth=depth, shortcuts=shortcuts, batchnorm=batchnorm, **overrides
    )


@register(data="digits", twin="resnet34_plain")
def resnet34(*, depth=34, shortcuts=True, **overrides):
    """ResNet-34 with shortcuts.

    ResNet-34: with residuals deeper is better, 25.03% vs 27.88% top-1 error for
    ResNet-18 on ImageNet (docs/CLAIMS.md, claim 7; He et al. 2015).
    """
    return build_resnet(depth=depth, shortcuts=shortcuts, **overrides)


@register(data="digits", twin="resnet34")
def resnet34_plain(*, depth=34, shortcuts=False, **overrides):
    """Plain 34-layer network (with BatchNorm).

    Plain-34 trains worse than plain-18 (28.54% vs 27.94% top-1 error): the
    degradation problem (docs/CLAIMS.md, claim 7; He et al. 2015).
    """
    return build_resnet(depth=depth, shortcuts=shortcuts, **overrides)
