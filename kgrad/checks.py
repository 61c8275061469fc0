"""Argument checks shared by the family builders, with Keras-style messages.

Every builder validates all of its arguments before it creates a layer, so a bad
override fails fast: "`depth` must be a positive integer. Received: depth=-1".
`ValueError` for bad values, `TypeError` for bad types and unknown names.
"""

import difflib
import inspect
import numbers

import keras


def _received(name, value):
    return f"Received: {name}={value!r}"


def positive_int(name, value):
    """Checks that `value` is an integer of at least 1."""
    message = f"`{name}` must be a positive integer. {_received(name, value)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(message)
    if value < 1:
        raise ValueError(message)


def positive_number(name, value):
    """Checks that `value` is a real number greater than 0."""
    message = f"`{name}` must be a positive number. {_received(name, value)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(message)
    if not value > 0:
        raise ValueError(message)


def boolean(name, value):
    """Checks that `value` is `True` or `False`."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False. {_received(name, value)}")


def one_of(name, value, options):
    """Checks that `value` is one of `options` (strings, integers or None)."""
    choices = ", ".join(repr(option) for option in options)
    message = f"`{name}` must be one of {choices}. {_received(name, value)}"
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not (is_int or isinstance(value, (str, type(None)))):
        raise TypeError(message)
    if value not in options:
        raise ValueError(message)


def shape(name, value, rank, description, allow_none=()):
    """Checks an input shape: a tuple of `rank` positive ints.

    Args:
        name: Argument name for the message.
        value: The shape received.
        rank: Required length of the shape.
        description: What the axes are, e.g. "(height, width, channels)".
        allow_none: Axes that may be `None` (variable length).
    """
    message = (
        f"`{name}` must be a tuple of {rank} positive integers {description}. "
        f"{_received(name, value)}"
    )
    if not isinstance(value, (tuple, list)):
        raise TypeError(message)
    if len(value) != rank:
        raise ValueError(message)
    for axis, size in enumerate(value):
        if size is None and axis in allow_none:
            continue
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(message)
        if size < 1:
            raise ValueError(message)


def activation(name, value):
    """Checks that Keras understands `value` as an activation."""
    try:
        keras.activations.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be a Keras activation name or callable. "
            f"{_received(name, value)}"
        ) from error


def initializer(name, value):
    """Checks that Keras understands `value` as an initializer."""
    try:
        keras.initializers.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be a Keras initializer name or instance. "
            f"{_received(name, value)}"
        ) from error


def no_unknown(builder, kwargs):
    """Rejects keyword arguments that `builder` does not define.

    Args:
        builder: The family builder function (its signature lists the valid names).
        kwargs: The leftover keyword arguments it received.

    Raises:
        TypeError: If `kwargs` is not empty; names the first unknown argument.
    """
    if not kwargs:
        return
    valid = [
        parameter.name
        for parameter in inspect.signature(builder).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    key, value = next(iter(kwargs.items()))
    close = difflib.get_close_matches(key, valid, n=3)
    hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    raise TypeError(
        f"Unknown argument `{key}` for `{builder.__name__}`. "
        f"{_received(key, value)}.{hint} Valid arguments: {', '.join(valid)}."
    )
