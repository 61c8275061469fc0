"""The gradient noise scale `B_simple` (McCandlish et al. 2018), on the host.

From one logged step's per-example gradient norms (`kgrad.monitor.step.per_example`)
and the batch gradient the optimizer applies, over the `N` examples of the
(global) batch, for the variables with per-example norms:

- `tr(Sigma) ~ N/(N-1) * (mean_i ||g_i||^2 - ||G||^2)`, the per-example
  gradient's variance summed over the weights;
- `|G|^2 ~ (N ||G||^2 - mean_i ||g_i||^2) / (N-1)`, an unbiased estimate of the
  squared norm of the true (full-data) gradient;
- `B_simple = tr(Sigma) / |G|^2`: near the batch size where a larger batch stops
  saving steps in proportion (the critical batch).

Both sums are smoothed over the logged steps as exponential moving averages of
their own (decay `DECAY` per logged step, as gpt-neox and k-diffusion do), and
`B_simple` is their ratio; the ratio of the two unsmoothed sums of the step is
logged too. Tags (per run, at the logged step; names from `kgrad.tags`):

| tag | what |
|---|---|
| `b_simple/global` | `B_simple` of all covered weights (smoothed) |
| `b_simple/<layer>` | `B_simple` of one layer's weights (smoothed) |
| `noise_scale/b_simple_step` | `B_simple` of this step alone |
| `noise_scale/b_simple_layernorm` | from the LayerNormalization weights only |
|  | (smoothed; Gray et al. 2024: they predict the whole) |
| `noise_scale/trace_sigma` | `tr(Sigma)`, smoothed |
| `noise_scale/grad_sq` | `|G|^2`, smoothed |
| `noise_scale/covered` | share of `||G||^2` in weights with per-example norms |
| `noise_scale/batch` | `N`, the examples of the step |

A `B_simple` whose smoothed `|G|^2` is not positive (noise swamps the signal)
is not written. Weights of layers without a rule, or whose norms were not
taken that step, are left out of every sum, and `noise_scale/covered` says
how much of the gradient they hold. Tested by `tests/test_noise_scale.py`.

Example:

>>> import numpy as np
>>> estimator = NoiseScale()
>>> step = dict(grad_sq=np.array([4.0]), has_grad=np.array([1.0]),
...             per_example_sq=np.array([40.0]), per_example_count=np.array([4.0]),
...             loss_scale=np.array(1.0))
>>> dict(estimator.scalars(step, ["dense/kernel"]))["b_simple/global"]
4.0
"""

import collections

import numpy as np

from kgrad import checks, tags

DECAY = 0.9
"""EMA decay per logged step of `tr(Sigma)` and `|G|^2`."""


def estimate(mean_sq, batch_sq, n):
    """`(tr(Sigma), |G|^2)` from `mean_i ||g_i||^2`, `||G||^2` and the batch `n`.

    Example:

    >>> estimate(mean_sq=10.0, batch_sq=4.0, n=4)
    (8.0, 2.0)
    """
    trace = n / (n - 1) * (mean_sq - batch_sq)
    signal = (n * batch_sq - mean_sq) / (n - 1)
    return trace, signal


class NoiseScale:
    """Smoothed noise scale of one run: call `scalars` at each logged step.

    Args:
        layernorm_paths: Tag names of the LayerNormalization weights.
            Defaults to `()`.
    """

    def __init__(self, layernorm_paths=()):
        self.layernorm_paths = set(layernorm_paths)
        self._ema = {}  # group -> [trace, signal]
        self.last = None  # the last global smoothed B_simple

    def scalars(self, captured, paths):
        """`[(tag, value)]` of one logged step's capture (unpacked fields)."""
        n, covered = self._covered(captured)
        if not n or n < 2 or not covered.any():
            return []
        scale = float(captured["loss_scale"]) or 1.0
        per_example = captured["per_example_sq"] / scale**2
        grad_sq = captured["grad_sq"]
        total_sq = float(grad_sq[captured["has_grad"] > 0].sum())
        groups = collections.defaultdict(list)
        for i in np.flatnonzero(covered):
            groups[tags.GLOBAL_B_SIMPLE].append(i)
            groups[tags.tag(tags.B_SIMPLE, tags.layer_of(paths[i]))].append(i)
            if paths[i] in self.layernorm_paths:
                groups[tags.NOISE_B_SIMPLE_LAYERNORM].append(i)
        out = []
        for group, rows in groups.items():
            trace, signal = estimate(
                per_example[rows].sum() / n, grad_sq[rows].sum(), n
            )
            if group == tags.GLOBAL_B_SIMPLE:
                out += (
                    [(tags.NOISE_B_SIMPLE_STEP, trace / signal)] if signal > 0 else []
                )
            smooth = self._smooth(group, trace, signal)
            if smooth is not None:
                out.append((group, smooth))
            if group == tags.GLOBAL_B_SIMPLE:
                self.last = smooth
                trace_ema, signal_ema = self._ema[group]
                out += [
                    (tags.NOISE_TRACE_SIGMA, trace_ema),
                    (tags.NOISE_GRAD_SQ, signal_ema),
                    (tags.NOISE_COVERED, grad_sq[rows].sum() / total_sq),
                    (tags.NOISE_BATCH, float(n)),
                ]
        return [(tag, float(value)) for tag, value in out]

    def _covered(self, captured):
        """`(N, mask)`: the batch, and the variables whose norms were taken on it."""
        counts = captured["per_example_count"]
        finite = np.isfinite(captured["per_example_sq"]) & np.isfinite(counts)
        finite &= captured["has_grad"] > 0
        if not finite.any():
            return 0, finite
        values, seen = np.unique(counts[finite], return_counts=True)
        n = values[np.argmax(seen)]  # a layer on another leading axis is left out
        return int(n), finite & (counts == n)

    def _smooth(self, group, trace, signal):
        ema = self._ema.get(group)
        if ema is None:
            ema = self._ema[group] = [trace, signal]
        else:
            ema[0] = DECAY * ema[0] + (1 - DECAY) * trace
            ema[1] = DECAY * ema[1] + (1 - DECAY) * signal
        return ema[0] / ema[1] if ema[1] > 0 else None


def not_covered(captured, paths, uncovered):
    """Layers whose weights have gradients but no per-example norms this step.

    Returns `{layer: reason}`: `uncovered` (the layers without a rule) and
    those with a rule whose norms were not taken on the batch.
    """
    out = {}
    n, covered = NoiseScale()._covered(captured)
    for i in np.flatnonzero((captured["has_grad"] > 0) & ~covered):
        layer = tags.layer_of(paths[i])
        out.setdefault(
            layer,
            uncovered.get(layer)
            or "called more than once in the step, inside a loop, or not on "
            "the batch axis",
        )
    return out


class RunNoiseScales:
    """The `NoiseScale` of each run of a monitor, and the layers they leave out.

    Args:
        probe: The capture's per-example probe
            (`kgrad.monitor.step.per_example`).

    Attributes:
        missing: `{layer: why}` of the layers the last step's noise scale left
            out (written into `kgrad.tags.RUN_INFO`).
    """

    def __init__(self, probe):
        self.probe = probe
        self.missing = {}
        self._by_run = {}  # run directory -> its NoiseScale
        self._warned = False

    def scalars(self, run_dir, record, captured):
        """The noise scale's `(tag, value)` scalars of a step of `run_dir`."""
        if "per_example_sq" not in captured:
            return []
        estimator = self._by_run.get(run_dir)
        if estimator is None:
            ids = self.probe.variable_ids("layernorm")
            estimator = self._by_run[run_dir] = NoiseScale(
                p
                for p, v in zip(record.paths, record.variables, strict=True)
                if id(v) in ids
            )
        missing = not_covered(captured, record.paths, self.probe.uncovered)
        if missing and not self._warned:
            self._warned = True
            named = "; ".join(f"{layer} ({why})" for layer, why in missing.items())
            checks.warn(
                "kgrad: the noise scale leaves out the layers without per-example "
                f"gradient norms: {named}. `{tags.NOISE_COVERED}` is the share of "
                "the squared gradient norm it is taken over."
            )
        self.missing = missing
        return estimator.scalars(captured, record.paths)
