"""Argument checks for the whole package, with Keras-style messages.

One rule per kind of mistake: a wrong type (including `bool` where a number is
expected) raises `TypeError`, a wrong value raises `ValueError`, and the message
names the argument and the value received:
"`depth` must be a positive integer. Received: depth=-1". Unknown names get
the close matches from `suggest`. Keras is imported only inside `activation`
and `initializer`, so `kgrad.analysis` can use this module without TensorFlow.
`warn` attributes a warning to the user's line (e.g. their `model.fit`), not
to the Keras or TensorFlow frame that happened to call kgrad.

Example:

>>> positive_int("depth", 3)
>>> positive_int("depth", True)
Traceback (most recent call last):
TypeError: `depth` must be a positive integer. Received: depth=True
>>> suggest("dpeth", ["depth", "units"])
' Did you mean: depth?'
"""

import difflib
import inspect
import numbers
import os
import sys
import warnings


def _received(name, value):
    return f"Received: {name}={value!r}"


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def suggest(value, options):
    """The close-match hint of an error message, or `""` if nothing is close.

    Args:
        value: The name received.
        options: The valid names.

    Returns:
        `" Did you mean: a, b?"` (with a leading space) or `""`.
    """
    close = difflib.get_close_matches(str(value), list(options), n=3, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def known_name(what, value, options, *, see=None):
    """Checks that `value` is one of the names in `options`.

    Args:
        what: What the names are, for the message, e.g. `"data set"`.
        value: The name received.
        options: The valid names.
        see: Sentence appended to the message. Defaults to listing `options`.

    Raises:
        ValueError: If `value` is not in `options`; lists the close matches.
    """
    if value in options:
        return
    see = see or f"Known: {', '.join(options)}."
    raise ValueError(f"Unknown {what} {value!r}.{suggest(value, options)} {see}")


def int_at_least(name, value, minimum, *, description=None):
    """Checks that `value` is an integer (not a bool) of at least `minimum`.

    Args:
        name: Argument name for the message.
        value: The value received.
        minimum: The smallest valid value.
        description: What the message says it must be. Defaults to
            `"an integer >= {minimum}"`.
    """
    description = description or f"an integer >= {minimum}"
    message = f"`{name}` must be {description}. {_received(name, value)}"
    if not _is_int(value):
        raise TypeError(message)
    if value < minimum:
        raise ValueError(message)


def positive_int(name, value):
    """Checks that `value` is an integer of at least 1."""
    int_at_least(name, value, 1, description="a positive integer")


def positive_ints(**values):
    """Checks that each keyword argument is a positive integer, in order.

    Example:

    >>> positive_ints(depth=20, width=64)
    """
    for name, value in values.items():
        positive_int(name, value)


def non_negative_int(name, value):
    """Checks that `value` is an integer of at least 0."""
    int_at_least(name, value, 0, description="a non-negative integer")


def number_in(name, value, interval):
    """Checks that `value` is a real number inside `interval`.

    Args:
        name: Argument name for the message.
        value: The value received.
        interval: Written as in mathematics: `"(0, 1)"`, `"[0, 1)"`,
            `"(1, inf)"`; `(` and `)` exclude the bound, `[` and `]` include it.

    Example:

    >>> number_in("dead_share", 0.5, "[0, 1)")
    >>> number_in("dead_share", 1.5, "[0, 1)")
    Traceback (most recent call last):
    ValueError: `dead_share` must be a number in [0, 1). Received: dead_share=1.5
    """
    message = f"`{name}` must be a number in {interval}. {_received(name, value)}"
    if not _is_number(value):
        raise TypeError(message)
    low, high = (float(bound) for bound in interval[1:-1].split(","))
    above = value >= low if interval[0] == "[" else value > low
    below = value <= high if interval[-1] == "]" else value < high
    if not (above and below):
        raise ValueError(message)


def positive_number(name, value):
    """Checks that `value` is a real number greater than 0."""
    message = f"`{name}` must be a positive number. {_received(name, value)}"
    if not _is_number(value):
        raise TypeError(message)
    if not value > 0:
        raise ValueError(message)


def number_or_none(name, value):
    """Checks that `value` is `None` or a finite real number (not a bool)."""
    message = f"`{name}` must be a finite number or None. {_received(name, value)}"
    if value is None:
        return
    if not _is_number(value):
        raise TypeError(message)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(message)


def boolean(name, value):
    """Checks that `value` is `True` or `False`."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False. {_received(name, value)}")


def path_like(name, value):
    """Checks that `value` is a non-empty `str` or `os.PathLike` path."""
    message = f"`{name}` must be a non-empty path. {_received(name, value)}"
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(message)
    if not os.fspath(value):
        raise ValueError(message)


def one_of(name, value, options):
    """Checks that `value` is one of `options` (strings, integers or None)."""
    choices = ", ".join(repr(option) for option in options)
    message = f"`{name}` must be one of {choices}. {_received(name, value)}"
    if not (_is_int(value) or isinstance(value, (str, type(None)))):
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
        if not _is_int(size):
            raise TypeError(message)
        if size < 1:
            raise ValueError(message)


def activation(name, value):
    """Checks that Keras understands `value` as an activation."""
    import keras

    _keras_object(name, value, keras.activations.get, "activation name or callable")


def initializer(name, value):
    """Checks that Keras understands `value` as an initializer."""
    import keras

    _keras_object(name, value, keras.initializers.get, "initializer name or instance")


def _keras_object(name, value, get, description):
    try:
        get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be a Keras {description}. {_received(name, value)}"
        ) from error


def no_unknown(function, kwargs):
    """Rejects keyword arguments that `function` does not define.

    Args:
        function: The function (its keyword-only parameters are the valid names).
        kwargs: The leftover keyword arguments it received.

    Raises:
        TypeError: If `kwargs` is not empty; names the first unknown argument.
    """
    if not kwargs:
        return
    valid = [
        parameter.name
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    key, value = next(iter(kwargs.items()))
    raise TypeError(
        f"Unknown argument `{key}` for `{function.__name__}`. "
        f"{_received(key, value)}.{suggest(key, valid)} "
        f"Valid arguments: {', '.join(valid)}."
    )


_LIBRARIES = ("kgrad", "keras", "tensorflow", "tf_keras", "absl", "contextlib")


def _library_roots():
    """The folders (or files) of the libraries whose frames `warn` skips."""
    roots = ["<frozen "]
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path is None:
            continue
        if os.path.basename(path) == "__init__.py":
            path = os.path.dirname(path) + os.sep
        roots.append(os.path.abspath(path) if not path.endswith(os.sep) else path)
    return tuple(roots)


# `is_generated(filename)` of code a framework generates while tracing, whose
# frames `warn` skips: `kgrad.monitor.train_function.keras_hooks` adds
# TensorFlow autograph's when imported (it holds every TensorFlow internal).
_GENERATED_CODE = []


def skip_generated_code(is_generated):
    """Has `warn` skip the frames of the files `is_generated(filename)` tells."""
    if is_generated not in _GENERATED_CODE:
        _GENERATED_CODE.append(is_generated)


def warn(message, category=UserWarning):
    """`warnings.warn(message)` attributed to the first frame of the user's code.

    The frames of kgrad, Keras, TensorFlow (and the code it generates while
    tracing) are skipped, so a warning raised while Keras traces its train
    function points at the user's `model.fit(...)` line.

    Example:

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("kgrad: example")
    >>> caught[0].filename.endswith("checks.py")  # a doctest is no user code
    False
    """
    roots = _library_roots()
    level, frame = 1, sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename.startswith(roots)
        or any(generated(frame.f_code.co_filename) for generated in _GENERATED_CODE)
    ):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level + 1)


# Public attributes that say what an object really does: an argument that
# takes effect only when it is used first is read-only (assigning it raises
# `AttributeError`, not silently nothing); one that may change later is checked
# on assignment, or forwards to the object using it, which checks the value.
def read_only(attribute, doc):
    """A property returning `self.<attribute>`; it cannot be assigned."""
    return property(lambda self: getattr(self, attribute), doc=doc)


def checked(attribute, check, doc):
    """A property storing `check(value)` in `self.<attribute>` on assignment."""

    def set_(self, value):
        setattr(self, attribute, check(value))

    return property(lambda self: getattr(self, attribute), set_, doc=doc)


def forwarded(owner, name, doc):
    """A property reading and setting `self.<owner>.<name>` (which checks it)."""

    def get(self):
        return getattr(getattr(self, owner), name)

    def set_(self, value):
        setattr(getattr(self, owner), name, value)

    return property(get, set_, doc=doc)
