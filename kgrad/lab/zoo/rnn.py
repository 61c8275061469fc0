"""Recurrent networks for long-range sequence tasks: SimpleRNN, LSTM, GRU.

`rnn_simple`, `lstm` and `gru` share units (64), layers (1) and the adding-problem
input; only the cell differs (docs/CLAIMS.md, claim 10: plain RNNs fail beyond about 10
steps, LSTM bridges 1,000+, Hochreiter & Schmidhuber 1997). `rnn_exploding` is a simple
RNN set up to explode (ReLU, recurrent weights orthogonal x 2): with SGD(0.01) on the
adding problem the loss is NaN without clipping and falls with `clipnorm=1.0`
(docs/CLAIMS.md, claim 11); Adam's per-weight step scaling hides most of the explosion.
Layers: `rnn_01`, `rnn_02`, ..., then `output`.
"""

import keras

from kgrad import checks as _checks
from kgrad.lab.zoo._family import check_common, model_input, output_model
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
        num_classes: Output units (1: the adding problem's sum). Defaults to `1`.

    Returns:
        The recurrent network: a sequence in, one output vector out.
        See `kgrad.lab.zoo._family` for what every builder checks and returns.

    Example:
        ```python
        model = build_rnn(cell="gru", layers=2, input_shape=(100, 6), num_classes=4)
        ```
    """
    check_common(
        build_rnn,
        kwargs,
        input_shape,
        ("timesteps", "features"),
        num_classes,
        allow_none=(0,),
    )
    _checks.one_of("cell", cell, tuple(CELLS))
    _checks.positive_ints(units=units, layers=layers)
    _checks.activation("activation", activation)
    _checks.positive_number("recurrent_scale", recurrent_scale)

    x = inputs = model_input(input_shape)
    for index in range(1, layers + 1):
        x = CELLS[cell](
            units,
            activation=activation,
            recurrent_initializer=keras.initializers.Orthogonal(gain=recurrent_scale),
            return_sequences=index < layers,
            name=f"rnn_{index:02d}",
        )(x)
    return output_model(inputs, x, num_classes, name)


@register(data="adding", task="regression", twin="lstm")
def rnn_simple(*, cell="simple", **overrides):
    """Simple (Elman) RNN.

    SimpleRNN on the adding problem: cannot learn dependencies beyond about 10
    steps, stays near the predict-the-mean MSE of 0.167 (docs/CLAIMS.md, claim 10).
    """
    return build_rnn(cell=cell, **overrides)


@register(data="adding", task="regression", twin="rnn_simple")
def lstm(*, cell="lstm", **overrides):
    """LSTM.

    LSTM on the adding problem: its gated cell state bridges 1,000+ steps
    (docs/CLAIMS.md, claim 10; Hochreiter & Schmidhuber 1997 solved T=1000).
    """
    return build_rnn(cell=cell, **overrides)


@register(data="adding", task="regression", twin="lstm")
def gru(*, cell="gru", **overrides):
    """GRU.

    GRU on the adding problem: gated like the LSTM with fewer parameters
    (docs/CLAIMS.md, claim 10; Cho et al. 2014).
    """
    return build_rnn(cell=cell, **overrides)


@register(data="adding", task="regression", twin="rnn_simple")
def rnn_exploding(
    *, cell="simple", activation="relu", recurrent_scale=2.0, **overrides
):
    """Simple RNN whose gradients explode.

    SimpleRNN set up to explode: ReLU and recurrent weights of spectral radius 2. With
    SGD(0.01) the loss is NaN without clipping and falls with clipnorm=1.0; clipping
    fixes explosion, not vanishing (docs/CLAIMS.md, claims 11-12).
    """
    return build_rnn(
        cell=cell, activation=activation, recurrent_scale=recurrent_scale, **overrides
    )
