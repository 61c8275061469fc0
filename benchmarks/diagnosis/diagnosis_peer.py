"""The peer's rules, as a judge for the benchmark only (never in kgrad).

AutoTrainer (Zhang et al., ICSE 2021) checks a training run every `CHECK_GAP`
epochs and names one problem. Its published criteria, with its defaults:

| problem | criterion (on the gradients of one batch, and the epoch metrics) |
|---|---|
| vanish | first/last layer kernel gradient norm < beta1 (1e-3) and the first |
|  | layer's kernel gradient norm < beta2 (1e-4) |
| explode | first/last layer kernel gradient norm > beta3 (70), or a NaN/Inf |
|  | loss, gradient or weight (then always) |
| relu (dying) | share of gradient entries exactly 0 >= gamma (0.7) |
| unstable | accuracy's local maxima and minima differ by >= zeta (0.03) |
|  | at least eta (0.2) x epochs times |
| not_converge | best train or validation accuracy < Theta (0.7), or no epoch |
|  | raises either accuracy by delta (0.01) (slow convergence) |

The metric criteria are judged from 30% of the planned epochs on. A problem is
named only while the run has not converged (not_converge or slow
convergence), in this order: relu, explode, vanish, not_converge; else
unstable. Its overfitting decision is commented out in its own code, so it
names none. Once a problem is named the judge keeps it.

Where kgrad's benchmark differs from the peer's setting: the gradients are
taken on the first batch of the training data with `training=False` (so that
the probe changes no BatchNorm statistics or dropout stream of the run), the
first and last layers are the first and last variables of two or more
dimensions, and runs that log no validation metrics use their train metrics
for both. On regression runs (no accuracy) only NaN/Inf can be named.

Example:

    probe = PeerProbe(x[:32], y[:32])
    model.fit(x, y, callbacks=[probe])
    judge(probe.epochs, steps_per_epoch=16, length=300)  # e.g. {"not_converge"}
"""

import math

import keras
import numpy as np

PARAMS = {
    "beta1": 1e-3,
    "beta2": 1e-4,
    "beta3": 70.0,
    "gamma": 0.7,
    "zeta": 0.03,
    "eta": 0.2,
    "delta": 0.01,
    "theta": 0.7,
}
CHECK_GAP = 3
JUDGMENT_POINT = 0.3
# What each of the peer's problems is in kgrad's words.
KINDS = {
    "vanish": "vanishing",
    "explode": "exploding",
    "nan": "nonfinite",
    "relu": "dead_units",
    "unstable": "unstable",
    "not_converge": "not_learning",
}


class PeerProbe(keras.callbacks.Callback):
    """Keeps, per epoch, the metrics and (every `CHECK_GAP` epochs) the
    gradient statistics the peer's criteria read."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        record = {
            "epoch": epoch + 1,
            "step": int(self.model.optimizer.iterations.numpy()),
            "logs": {k: float(v) for k, v in logs.items()},
        }
        if (epoch + 1) % CHECK_GAP == 0:
            record["gradients"] = self._gradients()
        self.epochs.append(record)

    def _gradients(self):
        import tensorflow as tf

        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            out = self.model(self.x, training=False)
            loss = self.model.compute_loss(x=self.x, y=self.y, y_pred=out)
        grads = tape.gradient(loss, variables)
        pairs = [
            (v, g.numpy())
            for v, g in zip(variables, grads, strict=True)
            if g is not None
        ]
        kernels = [np.linalg.norm(g) for v, g in pairs if len(v.shape) >= 2]
        entries = sum(g.size for _, g in pairs)
        zeros = sum(int(np.sum(g == 0)) for _, g in pairs)
        weights = self.model.get_weights()
        return {
            "first": float(kernels[0]) if kernels else math.nan,
            "last": float(kernels[-1]) if kernels else math.nan,
            "zero_share": zeros / entries if entries else 0.0,
            "nan": bool(
                any(not np.all(np.isfinite(g)) for _, g in pairs)
                or any(not np.all(np.isfinite(w)) for w in weights)
            ),
        }


def _series(epochs, name):
    return [e["logs"].get(name, math.nan) for e in epochs]


def _oscillates(acc, zeta, eta):
    highs = [
        acc[i]
        for i in range(1, len(acc) - 1)
        if acc[i] >= acc[i - 1] and acc[i] >= acc[i + 1]
    ]
    lows = [
        acc[i]
        for i in range(1, len(acc) - 1)
        if acc[i] <= acc[i - 1] and acc[i] <= acc[i + 1]
    ]
    count = sum(1 for h, lo in zip(highs, lows, strict=False) if h - lo >= zeta)
    return count >= eta * len(acc)


def _largest_rise(values):
    return max([b - a for a, b in zip(values, values[1:], strict=False)] + [0.0])


def judge(epochs, steps_per_epoch, length, params=PARAMS):
    """The problems the peer names on the epochs ended by step `length`, in
    kgrad's kinds (a set, empty for none)."""
    p = params
    done = [e for e in epochs if e["step"] <= length]
    planned = max(1, length // steps_per_epoch)
    features = {"vanish": 0, "explode": 0, "relu": 0}
    for check in [e for e in done if "gradients" in e]:
        seen = done[: check["epoch"]]
        loss = _series(seen, "loss")
        if check["gradients"]["nan"] or any(not math.isfinite(v) for v in loss):
            return {KINDS["nan"]}
        g = check["gradients"]
        rate = g["first"] / g["last"] if g["last"] > 0 else math.inf
        features["vanish"] += rate < p["beta1"] and g["first"] < p["beta2"]
        features["explode"] += rate > p["beta3"]
        features["relu"] += g["zero_share"] >= p["gamma"]
        acc = _series(seen, "accuracy")
        if (
            not acc
            or any(math.isnan(a) for a in acc)
            or len(seen) < JUDGMENT_POINT * planned
        ):
            continue
        val = _series(seen, "val_accuracy")
        val = acc if any(math.isnan(v) for v in val) else val
        not_converge = max(val) < p["theta"] or max(acc) < p["theta"]
        slow = _largest_rise(val) < p["delta"] and _largest_rise(acc) < p["delta"]
        if not_converge or slow:
            for name in ("relu", "explode", "vanish"):
                if features[name] >= 1:
                    return {KINDS[name]}
            if slow:
                return {KINDS["not_converge"]}
        elif _oscillates(acc, p["zeta"], p["eta"]):
            return {KINDS["unstable"]}
    return set()
