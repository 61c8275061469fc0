"""Per-example squared gradient norms of a layer's weights, from `a` and `g`.

`a` is the layer's input and `g` the loss gradient at the output of its
affine part (before its activation). Neither the per-example gradients nor a
per-example backward pass are made: each rule reads the norms off `a` and `g`
(tests/test_per_example.py checks each against one `tf.GradientTape` per
example):

| layer | weight | `||grad_i||^2` |
|---|---|---|
| Dense, 2-D input | kernel | `||a_i||^2 * ||g_i||^2` (Goodfellow 2015) |
| Dense, on sequences | kernel | `<A_i A_i^T, G_i G_i^T>` (ghost norm), or |
|  |  | `||A_i^T G_i||^2` materialised, whichever costs less |
| Dense, Conv | bias | `||sum over positions of g_i||^2` |
| Conv1D, Conv2D | kernel | the Dense rule on the unfolded input patches |
|  |  | (BackPACK's `BatchL2Grad`, Opacus), or the ghost norm with |
|  |  | `P_i P_i^T` summed from the input's gram, the cheapest |
| EinsumDense | kernel, bias | the per-example gradient, materialised by einsum |
| Embedding | embeddings | `sum_{t,s} [x_t == x_s] <g_t, g_s>` over the tokens |
| LayerNormalization, | gamma | `||sum over positions of g_i * x_hat_i||^2` |
| BatchNormalization | beta | `||sum over positions of g_i||^2` |

The norms returned are those of each example's contribution to the batch's
gradient (for a mean loss, `1/B` times its own gradient); the caller undoes
the scale. Under BatchNormalization in training the examples are coupled
through the batch statistics, so the contributions are not gradients of one
example's loss: their sum is still the batch gradient.

`rule_of(layer)` says which rule a layer takes, or why none fits.

Example:

>>> import keras
>>> rule_of(keras.layers.Dense(3)).name
'dense'
>>> rule_of(keras.layers.GRU(3)).reason
'no per-example rule for GRU'
"""

import keras
import tensorflow as tf

_FLOAT = tf.float32


class Rule:
    """A layer's rule: `norms(layer, a, g, training) -> {id(variable): [B]}`.

    Attributes:
        name: The rule's name (`"dense"`, `"conv"`, ...).
        norms: The function, or `None` when no rule fits.
        affine: Whether `g` is taken before the layer's activation.
        reason: Why no rule fits (when `norms` is `None`).
    """

    def __init__(self, name, norms=None, affine=False, reason=""):
        self.name = name
        self.norms = norms
        self.affine = affine
        self.reason = reason


def rule_of(layer):
    """The `Rule` of `layer` (its `norms` is `None` when no rule fits)."""
    quantized = getattr(layer, "quantization_mode", None)
    if getattr(layer, "lora_enabled", False) or quantized:
        return Rule("none", reason="LoRA or quantized weights")
    kind = type(layer)
    if issubclass(kind, keras.layers.EinsumDense):
        if not _has_batch_axis(layer.equation):
            return Rule("none", reason=f"einsum equation {layer.equation!r}")
        return Rule("einsum_dense", _einsum_dense, affine=True)
    if issubclass(kind, keras.layers.Dense):
        return Rule("dense", _dense, affine=True)
    if issubclass(kind, (keras.layers.Conv1D, keras.layers.Conv2D)) and not issubclass(
        kind, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose)
    ):
        if layer.data_format != "channels_last" or layer.groups != 1:
            return Rule("none", reason="channels_first or grouped convolution")
        return Rule("conv", _conv, affine=True)
    if issubclass(kind, keras.layers.Embedding):
        return Rule("embedding", _embedding)
    if issubclass(kind, keras.layers.LayerNormalization):
        if layer.rms_scaling:
            return Rule("none", reason="rms_scaling=True")
        return Rule("layernorm", _layer_norm)
    if issubclass(kind, keras.layers.BatchNormalization):
        if layer.synchronized or getattr(layer, "renorm", False):  # none in Keras 3.13
            return Rule("none", reason="synchronized or renorm BatchNormalization")
        return Rule("batchnorm", _batch_norm)
    return Rule("none", reason=f"no per-example rule for {kind.__name__}")


def outer_norms(a, g):
    """`[B]` squared norms of `A_i^T G_i` for `a` `[B, T, p]` and `g` `[B, T, q]`.

    The ghost norm `<A_i A_i^T, G_i G_i^T>` costs `T^2 (p + q)` per example,
    the materialised `A_i^T G_i` costs `T p q`: the cheaper is taken (the
    materialised one when `T` is unknown).
    """
    t, p, q = a.shape[1], a.shape[2], g.shape[2]
    if t is not None and t * (p + q) < p * q:
        aa = tf.matmul(a, a, transpose_b=True)
        gg = tf.matmul(g, g, transpose_b=True)
        return tf.reduce_sum(aa * gg, axis=[1, 2])
    return tf.reduce_sum(tf.square(tf.matmul(a, g, transpose_a=True)), axis=[1, 2])


def _as_sequence(x):
    """`x` as `[B, T, features]` (T = 1 for a 2-D `x`).

    `T` stays static when the middle axes are known, even with an unknown
    batch (as Keras traces it), so that `outer_norms` can pick its form.
    """
    x = tf.cast(x, _FLOAT)
    middle = x.shape[1:-1]
    t = middle.num_elements() if middle.is_fully_defined() else -1
    return tf.reshape(x, [tf.shape(x)[0], t, x.shape[-1]])


def _sum_sq(x):
    """`[B]` sums of squares over every axis but the first."""
    return tf.reduce_sum(tf.square(x), axis=list(range(1, len(x.shape))))


def _dense(layer, a, g, training=None):
    if len(a.shape) == 2:  # few ops: a step may hold many such layers
        g_sq = _sum_sq(tf.cast(g, _FLOAT))
        out = {id(layer.kernel): _sum_sq(tf.cast(a, _FLOAT)) * g_sq}
        if layer.bias is not None:
            out[id(layer.bias)] = g_sq
        return out
    a3, g3 = _as_sequence(a), _as_sequence(g)
    out = {id(layer.kernel): outer_norms(a3, g3)}
    if layer.bias is not None:
        out[id(layer.bias)] = _sum_sq(tf.reduce_sum(g3, axis=1))
    return out


def _conv(layer, a, g, training=None):
    a = tf.cast(a, _FLOAT)
    if layer.rank == 1:  # [B, L, C] as an image of height 1
        a, g = a[:, None], g[:, None]
        sizes, strides = (1, *layer.kernel_size), (1, *layer.strides)
        rates = (1, *layer.dilation_rate)
    else:
        sizes, strides = layer.kernel_size, layer.strides
        rates = layer.dilation_rate
    padding = layer.padding.upper()
    if padding == "CAUSAL":
        shift = rates[1] * (sizes[1] - 1)
        a = tf.pad(a, [[0, 0], [0, 0], [shift, 0], [0, 0]])
        padding = "VALID"
    g3 = _as_sequence(g)
    out = {}
    if layer.bias is not None:
        out[id(layer.bias)] = _sum_sq(tf.reduce_sum(g3, axis=1))
    if not (a.shape[1:].is_fully_defined() and g.shape[1:].is_fully_defined()):
        patches = tf.image.extract_patches(
            a,
            sizes=[1, *sizes, 1],
            strides=[1, *strides, 1],
            rates=[1, *rates, 1],
            padding=padding,
        )
        out[id(layer.kernel)] = outer_norms(_as_sequence(patches), g3)
        return out
    view = _Unfolded(a, g.shape[1:3], sizes, strides, rates, padding)
    t, t_in, c = view.positions, view.padded_positions, a.shape[-1]
    form = conv_form(t, t_in, len(view.offsets), c, g.shape[-1])
    if form == "input_gram":
        gram = tf.matmul(g3, g3, transpose_b=True)
        out[id(layer.kernel)] = tf.reduce_sum(view.patch_gram() * gram, axis=[1, 2])
    else:
        patches = view.patches()
        if form == "ghost":
            patch_gram = tf.matmul(patches, patches, transpose_b=True)
            gram = tf.matmul(g3, g3, transpose_b=True)
            out[id(layer.kernel)] = tf.reduce_sum(patch_gram * gram, axis=[1, 2])
        else:
            products = tf.matmul(g3, patches, transpose_a=True)
            out[id(layer.kernel)] = _sum_sq(products)
    return out


def conv_form(t, t_in, k, c, q):
    """The cheapest way to a Conv kernel's `||P_i^T G_i||^2`, per example.

    `t` output positions, `t_in` padded input positions, `k` kernel offsets,
    `c` input channels, `q` filters; `P_i` the `[t, k c]` patches. Costs in
    multiply-adds, plus `MOVE_COST` for each value copied or added
    elementwise (patches made, gram blocks summed):

    - `"materialised"`: `P_i^T G_i` itself, `t k c q`, patches `t k c`;
    - `"ghost"`: `<P_i P_i^T, G_i G_i^T>`, `t^2 (k c + q)`, patches `t k c`;
    - `"input_gram"`: the same with `P_i P_i^T` summed from the `k` shifted
      blocks of the input's own gram `A_i A_i^T`: `t_in^2 c + t^2 q`, blocks
      `(k + 1) t^2`, no patches made.
    """
    patches = MOVE_COST * t * k * c
    costs = {
        "materialised": t * k * c * q + patches,
        "ghost": t * t * (k * c + q) + patches,
        "input_gram": t_in * t_in * c + t * t * q + MOVE_COST * (k + 1) * t * t,
    }
    return min(costs, key=costs.get)


# A value moved costs about 8 multiply-adds: with it, the form chosen was the
# fastest of the three measured on cnn_bn's and resnet18's layers (2 CPU cores).
MOVE_COST = 8


class _Unfolded:
    """A Conv's input, padded so that the convolution is `VALID` on it.

    Args:
        a: `[B, H, W, C]` input (static `H, W, C`).
        out_size: `(H', W')` of the output.
        sizes, strides, rates: The kernel's, two each.
        padding: `"SAME"` or `"VALID"`.
    """

    def __init__(self, a, out_size, sizes, strides, rates, padding):
        self.out_size, self.strides = tuple(out_size), strides
        pads = [[0, 0]]
        for n, out, size, stride, rate in zip(
            a.shape[1:3], out_size, sizes, strides, rates, strict=True
        ):
            total = (out - 1) * stride + (size - 1) * rate + 1 - n
            total = max(total, 0) if padding == "SAME" else 0
            pads.append([total // 2, total - total // 2])
        self.padded = tf.pad(a, [*pads, [0, 0]])
        self.offsets = [
            (i * rates[0], j * rates[1])
            for i in range(sizes[0])
            for j in range(sizes[1])
        ]
        self.positions = out_size[0] * out_size[1]
        self.padded_positions = self.padded.shape[1] * self.padded.shape[2]

    def _window(self, start):
        """The slice of a padded axis pair that meets the kernel offset `start`."""
        return tuple(
            slice(begin, begin + (out - 1) * stride + 1, stride)
            for begin, out, stride in zip(
                start, self.out_size, self.strides, strict=True
            )
        )

    def patches(self):
        """`[B, t, k c]` patches (channels in offset order)."""
        x = self.padded
        rows = [x[(slice(None), *self._window(offset))] for offset in self.offsets]
        return _as_sequence(tf.concat(rows, axis=-1))

    def patch_gram(self):
        """`[B, t, t]` `P_i P_i^T`, summed from the input gram's shifted blocks."""
        x = self.padded
        h, w = x.shape[1], x.shape[2]
        flat = _as_sequence(x)
        gram = tf.reshape(tf.matmul(flat, flat, transpose_b=True), [-1, h, w, h, w])
        blocks = [
            gram[(slice(None), *self._window(offset), *self._window(offset))]
            for offset in self.offsets
        ]
        return tf.reshape(tf.add_n(blocks), [-1, self.positions, self.positions])


def _embedding(layer, a, g, training=None):
    g = tf.cast(g, _FLOAT)
    if len(a.shape) == 1:
        return {id(layer.embeddings): _sum_sq(g)}
    tokens = tf.reshape(a, [tf.shape(a)[0], -1])
    g3 = tf.reshape(g, [tf.shape(g)[0], -1, g.shape[-1]])
    same = tf.cast(tf.equal(tokens[:, :, None], tokens[:, None, :]), _FLOAT)
    gram = tf.matmul(g3, g3, transpose_b=True)
    return {id(layer.embeddings): tf.reduce_sum(same * gram, axis=[1, 2])}


def _positive_axes(axis, rank):
    axes = [axis] if isinstance(axis, int) else list(axis)
    return sorted(x % rank for x in axes)


def _scale_and_shift(layer, g, x_hat, axes):
    """gamma's and beta's per-example norms, summed over the other positions."""
    rank = len(g.shape)
    over = [x for x in range(1, rank) if x not in axes]
    out = {}
    if getattr(layer, "gamma", None) is not None:
        out[id(layer.gamma)] = _sum_sq(tf.reduce_sum(g * x_hat, axis=over))
    if getattr(layer, "beta", None) is not None:
        out[id(layer.beta)] = _sum_sq(tf.reduce_sum(g, axis=over))
    return out


def _layer_norm(layer, a, g, training=None):
    x, g = tf.cast(a, _FLOAT), tf.cast(g, _FLOAT)
    axes = _positive_axes(layer.axis, len(x.shape))
    mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
    x_hat = (x - mean) * tf.math.rsqrt(variance + layer.epsilon)
    return _scale_and_shift(layer, g, x_hat, axes)


def _batch_norm(layer, a, g, training=None):
    x, g = tf.cast(a, _FLOAT), tf.cast(g, _FLOAT)
    axes = _positive_axes(layer.axis, len(x.shape))
    reduced = [i for i in range(len(x.shape)) if i not in axes]
    if tf.is_tensor(training) or training:
        mean, variance = tf.nn.moments(x, axes=reduced, keepdims=True)
    else:
        shape = [x.shape[i] if i in axes else 1 for i in range(len(x.shape))]
        mean = tf.reshape(tf.cast(layer.moving_mean, _FLOAT), shape)
        variance = tf.reshape(tf.cast(layer.moving_variance, _FLOAT), shape)
    x_hat = (x - mean) * tf.math.rsqrt(variance + layer.epsilon)
    return _scale_and_shift(layer, g, x_hat, axes)


def _split_equation(equation):
    """`(input, kernel, output)` letter strings with `...` kept, or `None`."""
    try:
        inputs, output = equation.replace(" ", "").split("->")
        left, kernel = inputs.split(",")
    except ValueError:
        return None
    if "..." in kernel:
        return None
    return left, kernel, output


def _has_batch_axis(equation):
    """Whether input and output start with the same axis, absent from the kernel."""
    split = _split_equation(equation)
    if split is None:
        return False
    left, kernel, output = split
    if left.startswith("...") and output.startswith("..."):
        return True
    return bool(left) and output[:1] == left[0] and left[0] not in kernel


def _spelled(spec, rank, letters):
    """`spec` with its `...` replaced by unused letters for a rank-`rank` tensor."""
    if "..." not in spec:
        return spec
    count = rank - (len(spec) - 3)
    return spec.replace("...", "".join(letters[:count]))


def _einsum_dense(layer, a, g, training=None):
    left, kernel, output = _split_equation(layer.equation)
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in layer.equation]
    left = _spelled(left, len(a.shape), free)
    output = _spelled(output, len(g.shape), free)
    batch = left[0]
    a, g = tf.cast(a, _FLOAT), tf.cast(g, _FLOAT)
    per_example = tf.einsum(f"{left},{output}->{batch}{kernel}", a, g)
    out = {id(layer.kernel): _sum_sq(per_example)}
    if layer.bias is not None:
        kept = "".join(c for c in output[1:] if c in (layer.bias_axes or ""))
        out[id(layer.bias)] = _sum_sq(tf.einsum(f"{output}->{batch}{kept}", g))
    return out
