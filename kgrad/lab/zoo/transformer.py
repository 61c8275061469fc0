"""A small Transformer encoder for sequence classification, with three norm styles.

- `norm="pre"`: x + f(LN(x)) in each sublayer and a final LayerNorm (Xiong et al.
  2020: gradient norms stay flat over depth at initialization, no warm-up needed).
- `norm="post"`: LN(x + f(x)), the original Transformer (Vaswani et al. 2017):
  gradient norms grow toward the output layers, needs learning-rate warm-up.
- `norm="none"`: x + f(x), residuals without LayerNorm.
The three share every weight layer except the pre-norm's `final_norm`; they differ
in wiring (FACTS row 13). Layers: `block_00_embed`, `block_00_position`, then per
block `block_NN_norm1`, `block_NN_attention`, `block_NN_norm2`, `block_NN_ffn1`,
`block_NN_ffn2`; `final_norm`, `pool`, `output`.
"""

import keras

from kgrad import checks as _checks
from kgrad.lab.zoo._registry import register

NORMS = ("pre", "post", "none")


@keras.saving.register_keras_serializable(package="kgrad")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to a (batch, length, d_model) input.

    Args:
        length: Number of positions, the fixed sequence length.
        **kwargs: Standard layer arguments such as `name`.
    """

    def __init__(self, length, **kwargs):
        super().__init__(**kwargs)
        self.length = length

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.length, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="embeddings",
        )

    def call(self, inputs):
        return inputs + self.embeddings

    def get_config(self):
        return {**super().get_config(), "length": self.length}


def _sublayer(x, layer_fn, norm, prefix, index):
    """Wraps `layer_fn` in a residual connection with LayerNorm placed by `norm`."""
    if norm == "pre":
        y = layer_fn(keras.layers.LayerNormalization(name=f"{prefix}_norm{index}")(x))
        return keras.layers.Add(name=f"{prefix}_add{index}")([x, y])
    y = keras.layers.Add(name=f"{prefix}_add{index}")([x, layer_fn(x)])
    if norm == "post":
        y = keras.layers.LayerNormalization(name=f"{prefix}_norm{index}")(y)
    return y


def build_transformer(
    *,
    blocks=4,
    d_model=64,
    heads=4,
    ff_dim=128,
    norm="pre",
    input_shape=(50, 6),
    num_classes=4,
    name="transformer",
    **kwargs,
):
    """Builds an encoder of `blocks` attention blocks, mean pooling and Dense.

    Args:
        blocks: Number of encoder blocks. Defaults to `4`.
        d_model: Width of the residual stream; `heads` must divide it. Defaults
            to `64`.
        heads: Attention heads per block. Defaults to `4`.
        ff_dim: Hidden units of each block's feed-forward network. Defaults to
            `128`.
        norm: Where the LayerNorms go: `"pre"`, `"post"` or `"none"`. Defaults to
            `"pre"`.
        input_shape: `(timesteps, features)`, fixed length for the learned
            position embedding. Defaults to `(50, 6)` (temporal_order).
        num_classes: Units of the linear `output` layer (1 for regression).
            Defaults to `4`.
        name: Model name. Defaults to `"transformer"`.
        **kwargs: Rejected; listed only to report unknown names clearly.

    Returns:
        An uncompiled `keras.Model` that outputs logits.

    Raises:
        ValueError: If an argument has a bad value.
        TypeError: If an argument is unknown or has a bad type.

    Example:
        ```python
        model = build_transformer(blocks=6, norm="post", input_shape=(100, 6))
        ```
    """
    _checks.no_unknown(build_transformer, kwargs)
    _checks.positive_int("blocks", blocks)
    _checks.positive_int("d_model", d_model)
    _checks.positive_int("heads", heads)
    if d_model % heads:
        raise ValueError(
            f"`heads` must divide `d_model` ({d_model}). Received: heads={heads!r}"
        )
    _checks.positive_int("ff_dim", ff_dim)
    _checks.one_of("norm", norm, NORMS)
    _checks.shape("input_shape", input_shape, 2, "(timesteps, features)")
    _checks.positive_int("num_classes", num_classes)

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = keras.layers.Dense(d_model, name="block_00_embed")(inputs)
    x = PositionEmbedding(input_shape[0], name="block_00_position")(x)
    for index in range(1, blocks + 1):
        prefix = f"block_{index:02d}"
        attention = keras.layers.MultiHeadAttention(
            heads, d_model // heads, name=f"{prefix}_attention"
        )
        ffn1 = keras.layers.Dense(ff_dim, activation="relu", name=f"{prefix}_ffn1")
        ffn2 = keras.layers.Dense(d_model, name=f"{prefix}_ffn2")
        x = _sublayer(x, lambda h, a=attention: a(h, h), norm, prefix, 1)
        x = _sublayer(x, lambda h, f=ffn1, g=ffn2: g(f(h)), norm, prefix, 2)
    if norm == "pre":
        x = keras.layers.LayerNormalization(name="final_norm")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


@register(
    "transformer_small",
    data="temporal_order",
    twin="transformer_small_post",
    summary="Pre-LN Transformer encoder: residuals + LayerNorm keep it trainable, "
    "gradient norms flat over blocks (FACTS row 13; Xiong et al. 2020).",
)
def transformer_small(*, norm="pre", name="transformer_small", **overrides):
    """Pre-norm Transformer encoder."""
    return build_transformer(norm=norm, name=name, **overrides)


@register(
    "transformer_small_post",
    data="temporal_order",
    twin="transformer_small",
    summary="Post-LN Transformer encoder (Vaswani et al. 2017): gradient norms grow "
    "toward the output at initialization, needs warm-up (FACTS row 13; Xiong et "
    "al. 2020).",
)
def transformer_small_post(*, norm="post", name="transformer_small_post", **overrides):
    """Post-norm Transformer encoder."""
    return build_transformer(norm=norm, name=name, **overrides)


@register(
    "transformer_small_nonorm",
    data="temporal_order",
    twin="transformer_small",
    summary="Transformer encoder with residuals but no LayerNorm: what the norm "
    "adds, per block (FACTS row 13).",
)
def transformer_small_nonorm(
    *, norm="none", name="transformer_small_nonorm", **overrides
):
    """Transformer encoder without LayerNorm."""
    return build_transformer(norm=norm, name=name, **overrides)
