"""Tag names for variables and layers: always present, unique within a model.

`variable.path` is unique in Keras 3 only per `add_weight` call site: a custom
layer may create two weights named `w` (same path), and `layer.path` is
`None` for the layers of `keras.applications` models and for bare layers.
Tags are taken from these paths when they exist and are unique; a missing
layer path falls back to `layer.name`, and a name seen before gets `_2`,
`_3`, ... appended (in model order, so the first keeps its plain name).

Example:

>>> unique_names(["d/w", "d/w", "d/b"])
['d/w', 'd/w_2', 'd/b']
"""


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


def variable_names(variables):
    """Unique tag names of `variables`: their paths (their names if none)."""
    return unique_names(
        [getattr(v, "path", None) or getattr(v, "name", "variable") for v in variables]
    )


def layer_name(layer):
    """The name used in the layer's tags: its path (or its name)."""
    return layer.path or layer.name


def layer_names(layers):
    """Unique tag names of `layers`: `layer.path`, or `layer.name` when it is `None`."""
    return unique_names(
        [getattr(layer, "path", None) or layer.name for layer in layers]
    )
