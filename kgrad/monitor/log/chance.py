"""The chance level of a run's loss: what a model that learned nothing scores.

A classifier that predicts every one of its `K` classes equally likely has a
cross-entropy of `ln(K)` per example, whatever its labels; a binary
cross-entropy's is `ln(2)`. Both come from the compiled loss and the width of
the model's output, without data. The class prior's loss (the entropy of the
labels) and a regression's mean predictor's (the variance of its targets)
would need the labels, which the monitor never sees: they are not computed.
Recorded in the run's `tags.RUN_INFO` as `chance_loss`, read by
`kgrad.analysis.outcome` (tested in tests/test_chance.py).

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
>>> model.compile(loss="sparse_categorical_crossentropy")
>>> round(chance_loss(model), 4)
1.3863
"""

import math

_CATEGORICAL = ("sparse_categorical_crossentropy", "categorical_crossentropy")
_BINARY = "binary_crossentropy"


def chance_loss(model):
    """`ln(K)` for a (sparse) categorical cross-entropy over `K >= 2` classes,
    `ln(2)` for a binary one on a single output, else `None` (another loss,
    several outputs or losses, or a model whose output is unknown)."""
    try:
        loss = model.loss
        name = loss if isinstance(loss, str) else getattr(loss, "name", None)
        name = name or getattr(loss, "__name__", None)
        outputs = model.outputs
        if not isinstance(name, str) or len(outputs) != 1:
            return None
        width = outputs[0].shape[-1]
    except Exception:  # a subclassed model without outputs: unknown
        return None
    if name in _CATEGORICAL and width is not None and width >= 2:
        return math.log(width)
    if name == _BINARY and width == 1:
        return math.log(2)
    return None
