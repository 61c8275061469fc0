"""Finds every optimizer a model's train step may apply.

Keras's own `train_step` applies `model.optimizer`. A custom `train_step`
(the keras.io GAN pattern) applies optimizers the model holds as attributes,
in lists or in dicts, while `model.optimizer` is an unused default. All of
them are wrapped; the ones the train step really calls are found when Keras
traces its train function with the wrappers in place (`Channel.traced`).
Optimizers held elsewhere are passed explicitly
(`GradientMonitor(..., optimizers=[...])`). Tested in tests/test_callback.py
and tests/test_several_updates.py.

Slot names say where the optimizer was found: `optimizer` (`model.optimizer`),
the attribute name (`d_optimizer`), `<attribute>_<index or key>` for lists
and dicts, the optimizer's `name` for explicit ones.

Example:

```python
find_optimizers(gan)  # a keras.io GAN after compile(d_optimizer=..., g_optimizer=...)
# [('optimizer', <RMSprop>), ('d_optimizer', <Adam>), ('g_optimizer', <Adam>)]
```
"""

import keras

from kgrad.monitor.step.naming import unique_names


def find_optimizers(model, explicit=None):
    """`[(slot name, optimizer)]`: `explicit` ones, else those the model holds.

    Args:
        model: A `keras.Model`.
        explicit: A list of optimizers, or `None` to search the model.

    Returns:
        Distinct optimizers (by identity), `model.optimizer` first.
    """
    if explicit is not None:
        found = [(opt.name, opt) for opt in explicit]
    else:
        found = [("optimizer", getattr(model, "optimizer", None))]
        for name, value in vars(model).items():
            if not name.startswith("_") and name != "optimizer":
                found += _held(name, value)
    out, ids = [], set()
    for name, opt in found:
        if isinstance(opt, keras.optimizers.Optimizer) and id(opt) not in ids:
            ids.add(id(opt))
            out.append((name, opt))
    names = unique_names([name for name, _ in out])
    return [(name, opt) for name, (_, opt) in zip(names, out, strict=True)]


def _held(name, value):
    if isinstance(value, (list, tuple)):
        return [(f"{name}_{i}", v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return [(f"{name}_{k}", v) for k, v in value.items()]
    return [(name, value)]


def checked_optimizers(optimizers):
    """`GradientMonitor`'s `optimizers` argument as a list, or `None`.

    Raises:
        TypeError: If it is not an optimizer, a list of them or `None`.
        ValueError: If the list is empty.
    """
    if optimizers is None:
        return None
    if isinstance(optimizers, keras.optimizers.Optimizer):
        optimizers = [optimizers]
    if not isinstance(optimizers, (list, tuple)) or not all(
        isinstance(o, keras.optimizers.Optimizer) for o in optimizers
    ):
        raise TypeError(
            "`optimizers` must be a list of `keras.optimizers.Optimizer` or None. "
            f"Received: optimizers={optimizers!r}"
        )
    if not optimizers:
        raise ValueError(
            "`optimizers` must name at least one optimizer, or be None. "
            f"Received: optimizers={optimizers!r}"
        )
    return list(optimizers)
