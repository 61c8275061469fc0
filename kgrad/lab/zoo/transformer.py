"""A small Transformer encoder for sequence classification, with three norm styles.

- `norm="pre"`: x + f(LN(x)) in each sublayer and a final LayerNorm (Xiong et al.
  2020: gradient norms stay flat over depth at initialization, no warm-up needed).
- `norm="post"`: LN(x + f(x)), the original Transformer (Vaswani et al. 2017):
  gradient norms grow toward the output layers, needs learning-rate warm-up.
- `norm="none"`: x + f(x), residuals without LayerNorm.
The three share every weight layer except the pre-norm's `final_norm`; they differ in
wiring (docs/CLAIMS.md, claim 13). Layers: `block_00_embed`, `block_00_position`, then
per block `block_NN_norm1`, `block_NN_attention`, `block_NN_norm2`, `block_NN_ffn1`,
`block_NN_ffn2`; `final_norm`, `pool`, `output`.
"""

import keras

from kgrad import checks as _checks
from kgrad.lab.zoo._family import check_common, model_input, output_model
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
        num_classes: Orders of the two symbols. Defaults to `4`.

    Returns:
        The encoder: a sequence in, logits out.
        See `kgrad.lab.zoo._family` for what every builder checks and returns.

    Example:
        ```python
        model = build_transformer(blocks=6, norm="post", input_shape=(100, 6))
        ```
    """
    check_common(
        build_transformer, kwargs, input_shape, ("timesteps", "features"), num_classes
    )
    _checks.positive_ints(blocks=blocks, d_model=d_model, heads=heads)
    if d_model % heads:
        raise ValueError(
            f"`heads` must divide `d_model` ({d_model}). Received: heads={heads!r}"
        )
    _checks.positive_int("ff_dim", ff_dim)
    _checks.one_of("norm", norm, NORMS)

    inputs = model_input(input_shape)
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
    return output_model(inputs, x, num_classes, name)


@register(data="temporal_order", twin="transformer_small_post")
def transformer_small(*, norm="pre", **overrides):
    """Pre-norm Transformer encoder.

    Pre-LN Transformer encoder: residuals + LayerNorm keep it trainable,
    gradient norms flat over blocks (docs/CLAIMS.md, claim 13; Xiong et al. 2020).
    """
    return build_transformer(norm=norm, **overrides)


@register(data="temporal_order", twin="transformer_small")
def transformer_small_post(*, norm="post", **overrides):
    """Post-norm Transformer encoder.

    Post-LN Transformer encoder (Vaswani et al. 2017): gradient norms grow toward the
    output at initialization, needs warm-up (docs/CLAIMS.md, claim 13; Xiong et al.
    2020).
    """
    return build_transformer(norm=norm, **overrides)


@register(data="temporal_order", twin="transformer_small")
def transformer_small_nonorm(*, norm="none", **overrides):
    """Transformer encoder without LayerNorm.

    Transformer encoder with residuals but no LayerNorm: what the norm adds, per
    block (docs/CLAIMS.md, claim 13).
    """
    return build_transformer(norm=norm, **overrides)
