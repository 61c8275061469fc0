"""Tag names for variables and layers: always present, unique within a model.

A name is the variable's or layer's Keras path without the model's own name
in front (`kgrad.tags.in_model`): Keras puts it there for a model built in
the process (`mlp/dense/kernel`, inside `Sequential` or a subclassed model's
scope) and not for the same model loaded by `keras.saving.load_model`
(`dense/kernel`), so a saved and reloaded model continues its run under the
same tags.

`variable.path` is unique in Keras 3 only per `add_weight` call site: a custom
layer may create two weights named `w` (same path), and `layer.path` is
`None` for the layers of `keras.applications` models and for bare layers.
Tags are taken from these paths when they exist and are unique; a missing
layer path falls back to `layer.name`, and a name seen before gets `_2`,
`_3`, ... appended (in model order, so the first keeps its plain name).
Tested in tests/test_naming.py.

Example:

>>> unique_names(["d/w", "d/w", "d/b"])
['d/w', 'd/w_2', 'd/b']
>>> in_model("mlp/dense/kernel", "mlp")
'dense/kernel'
"""

from kgrad.tags import in_model


def unique_names(names):
    """`names` with repeats renamed `<name>_2`, `<name>_3`, ..., never clashing."""
    taken, out = set(names), []
    seen = set()
    for name in names:
        if name in seen:
            k = 2
            while f"{name}_{k}" in taken:
                k += 1
            name = f"{name}_{k}"
            taken.add(name)
        seen.add(name)
        out.append(name)
    return out


def variable_names(variables, model_name=None):
    """Unique tag names of `variables` of the model `model_name`: their paths
    (their names if none), the model's name taken off."""
    paths = [
        getattr(v, "path", None) or getattr(v, "name", "variable") for v in variables
    ]
    return unique_names([in_model(path, model_name) for path in paths])


def layer_name(layer, model_name=None):
    """The name used in the tags of a layer of the model `model_name`: its path
    (or its name), the model's name taken off."""
    return in_model(getattr(layer, "path", None) or layer.name, model_name)


def layer_names(layers, model_name=None):
    """Unique tag names of `layers` of the model `model_name` (`layer_name`)."""
    return unique_names([layer_name(layer, model_name) for layer in layers])
