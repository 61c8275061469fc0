"""What every family builder shares: its argument checks and its `output` layer.

A family builder (`mlp.build_mlp`, `cnn.build_cnn`, `resnet.build_resnet`,
`rnn.build_rnn`, `transformer.build_transformer`) takes keyword-only
arguments, among them `input_shape`, `num_classes` and `name` (the Keras
model's name; a registered model passes its own). It checks every argument
before it creates a layer, with the rules of `kgrad.checks`: `TypeError` for an
unknown argument (with the close matches) or a wrong type, `ValueError` for a
bad value. It returns an uncompiled functional `keras.Model` whose last layer
is the linear Dense layer `"output"` (logits, or one unit for regression).

Example:
    ```python
    inputs = model_input((4,))
    model = output_model(inputs, inputs, num_classes=3, name="tiny")
    ```
"""

import keras

from kgrad import checks


def check_common(builder, kwargs, input_shape, axes, num_classes, allow_none=()):
    """Checks what every family builder takes besides its own arguments.

    Args:
        builder: The family builder (its keyword-only parameters are valid).
        kwargs: The leftover keyword arguments it received: must be empty.
        input_shape: The shape of one input.
        axes: The names of the axes, e.g. `("height", "width", "channels")`.
        num_classes: Units of the `output` layer.
        allow_none: Axes that may be `None` (variable length). Defaults to `()`.
    """
    checks.no_unknown(builder, kwargs)
    description = f"({', '.join(axes)}{',' if len(axes) == 1 else ''})"
    checks.shape("input_shape", input_shape, len(axes), description, allow_none)
    checks.positive_int("num_classes", num_classes)


def model_input(input_shape):
    """The model's `keras.Input` layer, named `"input"`."""
    return keras.Input(shape=tuple(input_shape), name="input")


def output_model(inputs, x, num_classes, name):
    """Adds the linear Dense layer `"output"` on `x` and returns the model."""
    outputs = keras.layers.Dense(num_classes, name="output")(x)
    return keras.Model(inputs, outputs, name=name)
