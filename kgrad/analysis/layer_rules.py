"""Rules on single layers: dead units, saturation, BatchNorm with small batches.

Part of `kgrad.analysis.diagnostics` (its table lists the rules); pure Python.

Example:

>>> from kgrad.analysis.findings import Thresholds
>>> info = {"batchnorm_layers": ["m/bn"], "batch_size": 2}
>>> [f.kind for f in batchnorm(info, Thresholds())]
['batchnorm_small_batch']
"""

import math

import numpy as np

from kgrad import tags
from kgrad.analysis import loss_trend
from kgrad.analysis.findings import Finding


def _median(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.median(values)) if values else math.nan


def activations(scalars, info, t, kind):
    """Dead ReLU units (`kind="dead_units"`) or saturated sigmoid/tanh outputs
    (`kind="saturation"`): the median share over the last `t.window` steps.

    Dead units are not reported once the loss has fallen by more than
    `t.learned_drop`: units that die after the task is learned did not stop
    it (MobileNetV3Small in docs/DIAGNOSIS.md).
    """
    if kind == tags.DEAD_UNITS and loss_trend.improvement(scalars) > t.learned_drop:
        return []
    threshold = t.dead_share if kind == tags.DEAD_UNITS else t.saturation_share
    logged = tags.names(scalars, kind)
    shares = {}
    for layer in tags.in_model_order(logged, tags.layer_order(info)):
        share = _median([v for _, v in scalars[tags.tag(kind, layer)][-t.window :]])
        if share > threshold:
            shares[layer] = share
    if not shares:
        return []
    listed = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    if kind == tags.DEAD_UNITS:
        evidence = (
            f"Share of units that output zero on every example of the batch: {listed} "
            f"(median of the last {t.window} logged steps; threshold: {threshold:.0%})."
        )
        advice = (
            "Dead ReLU units pass no gradient and stop learning: use "
            "`keras.layers.LeakyReLU(negative_slope=0.01)` (or ELU/GELU), He "
            "initialisation, and a lower learning rate."
        )
    else:
        evidence = (
            f"Share of outputs within 1% of the activation's bounds: {listed} "
            f"(median of the last {t.window} logged steps; threshold: {threshold:.0%})."
        )
        advice = (
            "Near its bounds the derivative of sigmoid/tanh is ~0 (sigmoid's is at "
            "most 0.25 anywhere), so saturated units pass almost no gradient back: "
            "use ReLU-family activations with He initialisation in hidden layers, "
            "or Glorot/Xavier initialisation and normalised inputs for sigmoid/tanh, "
            "or BatchNorm/LayerNorm before the activation."
        )
    numbers = (*shares.items(), ("threshold", threshold))
    return [Finding(kind, "warning", tuple(shares), evidence, advice, numbers=numbers)]


def batchnorm(info, t):
    """BatchNorm layers trained on batches smaller than `t.min_batchnorm_batch`."""
    bn, batch = info.get("batchnorm_layers") or [], info.get("batch_size")
    if not bn or batch is None or batch >= t.min_batchnorm_batch:
        return []
    evidence = (
        f"The model trains {len(bn)} BatchNormalization layer(s) with batches of "
        f"{batch} examples; batch statistics are too noisy below "
        f"{t.min_batchnorm_batch}."
    )
    advice = (
        "Use `keras.layers.LayerNormalization` or `keras.layers.GroupNormalization`, "
        "which do not depend on the batch, or batches of "
        f"{t.min_batchnorm_batch} or more."
    )
    numbers = (("batch_size", batch), ("min_batch", t.min_batchnorm_batch))
    return [
        Finding(
            "batchnorm_small_batch",
            "warning",
            tuple(bn),
            evidence,
            advice,
            numbers=numbers,
        )
    ]
