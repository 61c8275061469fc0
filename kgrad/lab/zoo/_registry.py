"""The model registry: a dict of `ModelSpec` plus the `register` decorator.

A registered function is a few lines that call a family builder with the
architecture arguments of one textbook model. Its name is the model's name,
written once: the registry passes it on as the default `name` of the Keras
model. Its docstring is the summary; its keyword defaults are the model's
defaults and the caller's keyword arguments override them.
"""

import dataclasses
import fnmatch
import functools
import inspect
import types
from typing import Callable, Mapping, Optional

from kgrad import checks
from kgrad.lab import data as _data

TASKS = ("classification", "regression")

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about one registered model.

    Attributes:
        name: Registered name, e.g. `"resnet18_plain"`.
        summary: The registered function's docstring: what the model
            demonstrates and the claim of `docs/CLAIMS.md` it tests.
        twin: Name of the model it is compared with, or `None`.
        data: Name of the `kgrad.data` set its default input matches, or `None`.
        task: `"classification"` (logits output) or `"regression"` (1 linear unit).
        defaults: The keyword defaults of the registered function: the
            architecture arguments that make this model what it is.
        builder: `builder(**overrides)` calls the registered function with the
            model's name as the default `name` and returns the model.
    """

    name: str
    summary: str
    twin: Optional[str]
    data: Optional[str]
    task: str
    defaults: Mapping = dataclasses.field(repr=False)
    builder: Callable = dataclasses.field(repr=False, compare=False)


def register(*, data=None, task="classification", twin=None):
    """Decorator that adds a model-building function to the zoo.

    The function's name is the model's name (and the default `name` of the
    Keras model it builds), its docstring is the model's summary, its keyword
    defaults are the architecture arguments that make the model.

    Args:
        data: Name of the `kgrad.data` set that suits the model's default input.
            Defaults to `None`.
        task: `"classification"` or `"regression"`. Defaults to
            `"classification"`.
        twin: Name of the model this one is compared with. Defaults to `None`.

    Returns:
        A decorator that registers the function and returns it unchanged.

    Raises:
        ValueError: If the function's name is already registered, or `task` or
            `data` is unknown.

    Example:
        ```python
        from kgrad import zoo
        from kgrad.lab.zoo import mlp

        @zoo.register(data="digits_flat", twin="mlp_tanh_xavier")
        def mlp_deep_tanh(*, depth=50, activation="tanh", **overrides):
            \"\"\"A 50-layer tanh MLP.\"\"\"
            return mlp.build_mlp(depth=depth, activation=activation, **overrides)

        model = zoo.build("mlp_deep_tanh", width=32)
        ```
    """
    checks.one_of("task", task, TASKS)
    checks.one_of("data", data, (*_data.names(), None))

    def decorator(fn):
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(
                f"A model named {name!r} is already registered. Received: {fn!r}"
            )
        defaults = {
            parameter.name: parameter.default
            for parameter in inspect.signature(fn).parameters.values()
            if parameter.default is not inspect.Parameter.empty
        }

        @functools.wraps(fn)
        def builder(**overrides):
            return fn(**{"name": name, **overrides})

        _REGISTRY[name] = ModelSpec(
            name=name,
            summary=" ".join(inspect.getdoc(fn).split()) if fn.__doc__ else "",
            twin=twin,
            data=data,
            task=task,
            defaults=types.MappingProxyType(defaults),
            builder=builder,
        )
        return fn

    return decorator


def spec(name):
    """Returns the `ModelSpec` of a registered model.

    Args:
        name: A registered model name.

    Returns:
        The model's `ModelSpec` (data set, task, twin, defaults).

    Raises:
        ValueError: If `name` is not registered; lists the close matches.

    Example:
        ```python
        zoo.spec("lstm").task  # "regression"
        ```
    """
    see = "See `kgrad.zoo.list()` for all names."
    checks.known_name("model", name, sorted(_REGISTRY), see=see)
    return _REGISTRY[name]


def build(name, **overrides):
    """Builds a registered model, uncompiled.

    Args:
        name: A registered model name, see `list()`.
        **overrides: Architecture arguments that replace the model's defaults,
            e.g. `depth=8`, `input_shape=(32, 32, 3)`, `num_classes=10`.

    Returns:
        An uncompiled functional `keras.Model` whose last layer is the Dense layer
        named `"output"` (logits, or one linear unit for regression).

    Raises:
        ValueError: If `name` is unknown, or an override has a bad value.
        TypeError: If an override is unknown or has a bad type.

    Example:
        ```python
        model = zoo.build("resnet18", input_shape=(8, 8, 1), num_classes=10)
        ```
    """
    return spec(name).builder(**overrides)


def list_models(pattern="*"):
    """Returns the sorted names of the registered models that match `pattern`.

    Args:
        pattern: A shell-style pattern (`fnmatch`). Defaults to `"*"`.

    Returns:
        A sorted list of model names.

    Example:
        ```python
        zoo.list("resnet*")
        ```
    """
    return sorted(fnmatch.filter(_REGISTRY, pattern))


def describe(name):
    """Returns a short human-readable description of a registered model.

    Args:
        name: A registered model name.

    Returns:
        Text with what the model demonstrates, its data, task, defaults and twin.

    Raises:
        ValueError: If `name` is not registered; lists the close matches.

    Example:
        ```python
        print(zoo.describe("mlp_sigmoid"))
        ```
    """
    model = spec(name)
    defaults = ", ".join(f"{key}={value!r}" for key, value in model.defaults.items())
    lines = [
        f"{model.name}: {model.summary}",
        f"  data: {model.data} ({model.task})",
        f"  defaults: {defaults or 'those of its family builder'}",
        f"  twin: {model.twin}",
    ]
    return "\n".join(lines)
