"""Recurrent networks for long-range sequence tasks: SimpleRNN, LSTM, GRU.

`rnn_simple`, `lstm` and `gru` share units (64), layers (1) and the adding-problem
input; only the cell differs (FACTS row 10: plain RNNs fail beyond about 10 steps,
LSTM bridges 1,000+, Hochreiter & Schmidhuber 1997). `rnn_exploding` is a simple
RNN set up to explode (ReLU, recurrent weights orthogonal x 2): with SGD(0.01) on
the adding problem the loss is NaN without clipping and falls with `clipnorm=1.0`
(FACTS row 11); Adam's per-weight step scaling hides most of the explosion.
Layers: `rnn_01`, `rnn_02`, ..., then `output`.
"""

import keras

from kgrad import checks as _checks
from kgrad.lab.zoo._registry import register

CELLS = {
    "simple": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}


def build_rnn(
    *,
    cell="lstm",
    units=64,
    layers=1,
    activation="tanh",
    recurrent_scale=1.0,
    input_shape=(None, 2),
    num_classes=1,
    name="rnn",
    **kwargs,
):
    """Builds `layers` stacked recurrent layers on a sequence and a Dense output.

    Args:
        cell: `"simple"` (SimpleRNN), `"lstm"` or `"gru"`. Defaults to `"lstm"`.
        units: Units per recurrent layer. Defaults to `64`.
        layers: Number of stacked recurrent layers. Defaults to `1`.
        activation: Activation of the recurrent layers' output (tanh in the
            textbooks; `"relu"` with `recurrent_scale` > 1 explodes). Defaults to
            `"tanh"`.
        recurrent_scale: Gain of the orthogonal recurrent initializer, the
            spectral radius of the recurrent weights at initialization; above 1
            the gradient can explode. Defaults to `1.0`.
        input_shape: `(timesteps, features)`; timesteps may be `None` (any
            length). Defaults to `(None, 2)` (adding problem).
        num_classes: Units of the linear `output` layer: 1 for regression, the
            number of classes for classification. Defaults to `1`.
        name: Model name. Defaults to `"rnn"`.
        **kwargs: Rejected; listed only to report unknown names clearly.

    Returns:
        An uncompiled `keras.Model` that maps a sequence to one output vector.

    Raises:
        ValueError: If an argument has a bad value.
        TypeError: If an argument is unknown or has a bad type.

    Example:
        ```python
        model = build_rnn(cell="gru", layers=2, input_shape=(100, 6), num_classes=4)
        ```
    """
    _checks.no_unknown(build_rnn, kwargs)
    _checks.one_of("cell", cell, tuple(CELLS))
    _checks.positive_int("units", units)
    _checks.positive_int("layers", layers)
    _checks.activation("activation", activation)
    _checks.positive_number("recurrent_scale", recurrent_scale)
    _checks.shape(
        "input_shape", input_shape, 2, "(timesteps, features)", allow_none=(0,)
    )
    _checks.positive_int("num_classes", num_classes)

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for index in range(1, layers + 1):
        x = CELLS[cell](
            units,
            activation=activation,
            recurrent_initializer=keras.initializers.Orthogonal(gain=recurrent_scale),
            return_sequences=index < layers,
            name=f"rnn_{index:02d}",
        )(x)
    outputs = keras.layers.Dense(num_classes, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


@register(
    "rnn_simple",
    data="adding",
    task="regression",
    twin="lstm",
    summary="SimpleRNN on the adding problem: cannot learn dependencies beyond "
    "about 10 steps, stays near the predict-the-mean MSE of 0.167 (FACTS row 10).",
)
def rnn_simple(*, cell="simple", name="rnn_simple", **overrides):
    """Simple (Elman) RNN."""
    return build_rnn(cell=cell, name=name, **overrides)


@register(
    "lstm",
    data="adding",
    task="regression",
    twin="rnn_simple",
    summary="LSTM on the adding problem: its gated cell state bridges 1,000+ steps "
    "(FACTS row 10; Hochreiter & Schmidhuber 1997 solved T=1000).",
)
def lstm(*, cell="lstm", name="lstm", **overrides):
    """LSTM."""
    return build_rnn(cell=cell, name=name, **overrides)


@register(
    "gru",
    data="adding",
    task="regression",
    twin="lstm",
    summary="GRU on the adding problem: gated like the LSTM with fewer parameters "
    "(FACTS row 10; Cho et al. 2014).",
)
def gru(*, cell="gru", name="gru", **overrides):
    """GRU."""
    return build_rnn(cell=cell, name=name, **overrides)


@register(
    "rnn_exploding",
    data="adding",
    task="regression",
    twin="rnn_simple",
    summary="SimpleRNN set up to explode: ReLU and recurrent weights of spectral "
    "radius 2. With SGD(0.01) the loss is NaN without clipping and falls with "
    "clipnorm=1.0; clipping fixes explosion, not vanishing (FACTS rows 11-12).",
)
def rnn_exploding(
    *,
    cell="simple",
    activation="relu",
    recurrent_scale=2.0,
    name="rnn_exploding",
    **overrides,
):
    """Simple RNN whose gradients explode."""
    return build_rnn(
        cell=cell,
        activation=activation,
        recurrent_scale=recurrent_scale,
        name=name,
        **overrides,
    )
