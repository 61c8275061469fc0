"""What the diagnosis says: `Finding`, and the `Thresholds` of its rules.

A `Finding` is one verdict in plain words (what, where, the numbers, the fix);
`kgrad.analysis.diagnostics` makes them, the callback and `kgrad report` print
them, `monitor.findings` and `kgrad report --json` hand them over as data.

Example:

>>> finding = Finding("vanishing", "warning", ("m/d1",), "It is small.", "Fix it.")
>>> finding.message()
'Warning: vanishing gradients in m/d1. It is small. Fix it.'
>>> Thresholds(vanishing_ratio=1e-4).window
5
"""

import dataclasses
from dataclasses import dataclass

from kgrad import checks, tags

SEVERITIES = ("error", "warning", "advice")


@dataclass(frozen=True)
class Finding:
    """One verdict of the diagnosis.

    Attributes:
        kind: `"vanishing"`, `"exploding"`, `"nonfinite"`, `"zero_gradients"`,
            `"dead_units"`, `"saturation"`, `"batchnorm_small_batch"`,
            `"vanishing_in_time"`, or one of the outcome kinds
            (`kgrad.analysis.outcome`): `"not_learning"`, `"stalled"`,
            `"unstable"`, `"overfitting"`; `"batch_size"` (advice).
        severity: `"error"`, `"warning"` or `"advice"` (below a warning: the
            batch size against the noise scale, `kgrad.analysis.batch_advice`).
        layers: Layer paths concerned, input side first (for `nonfinite`: the
            layer where non-finite values first appear in backpropagation).
        evidence: The numbers behind the verdict.
        advice: The fix the literature recommends.
        step: The last logged step the diagnosis saw (`None` if unknown).
        numbers: The numbers behind the verdict as `(name, value)` pairs
            (`dict(finding.numbers)` for a dict), e.g. `("growth", 3.2e4)`.
        statistic: The statistic the verdict is judged on, a `kgrad.tags`
            statistic (`tags.LOSS` for the loss), or `None` to take the kind's
            (`about()`).
        reference_layers: Healthy layers the verdict compares against (the
            output side of a vanishing gradient); never in `layers`.
    """

    kind: str
    severity: str
    layers: tuple[str, ...]
    evidence: str
    advice: str
    step: int | None = None
    numbers: tuple[tuple[str, float], ...] = ()
    statistic: str | None = None
    reference_layers: tuple[str, ...] = ()

    def title(self):
        """The first sentence: severity, what and where."""
        where = f" in {name_list(self.layers)}" if self.layers else ""
        title = _TITLES.get(self.kind, self.kind)
        return f"{self.severity.capitalize()}: {title}{where}."

    def message(self):
        """One plain-language paragraph: what, where, the numbers, the fix."""
        return f"{self.title()} {self.evidence} {self.advice}"

    def about(self):
        """The statistic the verdict is judged on (see `statistic`).

        Example:

        >>> Finding("dead_units", "warning", ("m/d",), "", "").about()
        'dead_units'
        """
        if self.statistic is not None:
            return self.statistic
        return _STATISTICS.get(self.kind, tags.GRAD_NORM)


_TITLES = {
    "vanishing": "vanishing gradients",
    "exploding": "exploding gradients",
    "nonfinite": "non-finite (NaN/Inf) gradients",
    "zero_gradients": "all gradients are exactly zero",
    "dead_units": "dead ReLU units",
    "saturation": "saturated sigmoid/tanh outputs",
    "batchnorm_small_batch": "BatchNorm with small batches",
    "vanishing_in_time": "vanishing gradients through time",
    "not_learning": "the loss does not fall",
    "stalled": "the loss stalled",
    "unstable": "the loss is unstable",
    "overfitting": "overfitting",
    "batch_size": "batch size against the gradient noise scale",
}
# The statistic of a kind whose rule does not say (`Finding.statistic`);
# `None`: no logged statistic (the batch size).
_STATISTICS = {
    "dead_units": tags.DEAD_UNITS,
    "saturation": tags.SATURATION,
    "vanishing_in_time": tags.TEMPORAL_GRAD,
    "batchnorm_small_batch": None,
    "not_learning": tags.LOSS,
    "stalled": tags.LOSS,
    "unstable": tags.LOSS,
    "overfitting": tags.LOSS,
    "batch_size": tags.B_SIMPLE,
}


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of the rules; the defaults follow the literature.

    Args:
        vanishing_ratio: Vanishing when the input side's gradient norm is below
            this fraction of the output side's: a drop of more than 3 orders of
            magnitude (docs/CLAIMS.md, claim 4). Defaults to `1e-3`.
        min_update_ratio: Vanishing also when the input side's update/weight
            norm ratio is below this while the output side's is not: 3 orders
            below the healthy ~1e-3 (docs/CLAIMS.md, claim 15). Defaults to `1e-6`.
        explosion_growth: Exploding when the global gradient norm grows by this
            factor from the first logged steps to a later window. Defaults to
            `1e3`.
        dead_share: Dead units when more than this share of a ReLU layer's
            units is zero on a whole batch (docs/CLAIMS.md, claim 5). Defaults to `0.5`.
        saturation_share: Saturation when more than this share of a sigmoid or
            tanh layer's outputs lie within 1% of a bound, where the derivative
            is ~0. Defaults to `0.25`.
        min_batchnorm_batch: BatchNorm needs batches of at least this size
            (docs/CLAIMS.md, claim 9). Defaults to `8`.
        window: Number of last logged steps whose median is judged. Defaults
            to `5`.
        temporal_ratio: Vanishing through time, when no loss is logged, when
            a recurrent layer's gradient at its first timestep is below this
            fraction of the one at its last (see
            `temporal_profile.vanishing_in_time`). Defaults to `1e-3`.
        temporal_ratio_stalled: The same ratio's threshold when the loss is
            logged and has stalled (chosen on the calibration runs of
            docs/DIAGNOSIS.md). Defaults to `0.1`.
        temporal_explosion: Exploding through time when a recurrent layer's
            gradient at its first timestep is above this multiple of the one
            at its last. Defaults to `10`.
        learned_drop: The update-ratio form of vanishing is not judged once
            the loss has fallen by more than this share of its start
            (`loss_trend.improvement`): the weights of a model that has learned
            its task stop moving everywhere. Defaults to `0.9`.
        stall_drop: The loss has stalled when the median of the last third of
            the logged losses is above `1 - stall_drop` times the middle
            third's (`loss_trend.stalled`). Defaults to `0.2`.
        fell_drop: The outcome rules (`kgrad.analysis.outcome`): the loss
            did not fall when less than this share of its start is gone.
            Defaults to `0.15`.
        plateau_drop: Stalled when the last third of the loss curve is less
            than this share below the middle third. Defaults to `0.05`.
        stall_remaining: Stalled only while the loss is still above this
            share of its start (far from fitted). Defaults to `0.2`.
        unstable_rise: Unstable when the loss rises back by more than this
            share of what it had learned, `unstable_rises` times. Defaults
            to `0.1`.
        unstable_rises: See `unstable_rise`. Defaults to `1`.
        unstable_spike: A rise whose global gradient norm is this many times
            its median before blames the learning rate. Defaults to `3`.
        overfit_rise: Overfitting when the validation loss is this share
            above its lowest while the training loss fell. Defaults to `0.2`.
        tiny_update: An update/weight ratio below this, on every layer, is a
            learning rate too small (healthy: ~1e-3). Defaults to `1e-4`.
        min_outcome_steps: The outcome rules wait for this many steps.
            Defaults to `100`.
    """

    vanishing_ratio: float = 1e-3
    min_update_ratio: float = 1e-6
    explosion_growth: float = 1e3
    dead_share: float = 0.5
    saturation_share: float = 0.25
    min_batchnorm_batch: int = 8
    window: int = 5
    temporal_ratio: float = 1e-3
    temporal_ratio_stalled: float = 0.1
    temporal_explosion: float = 10.0
    stall_drop: float = 0.2
    learned_drop: float = 0.9
    fell_drop: float = 0.15
    plateau_drop: float = 0.05
    stall_remaining: float = 0.2
    unstable_rise: float = 0.1
    unstable_rises: int = 1
    unstable_spike: float = 3.0
    overfit_rise: float = 0.2
    tiny_update: float = 1e-4
    min_outcome_steps: int = 100

    def __post_init__(self):
        checks.number_in("vanishing_ratio", self.vanishing_ratio, "(0, 1)")
        checks.number_in("min_update_ratio", self.min_update_ratio, "(0, 1)")
        checks.number_in("temporal_ratio", self.temporal_ratio, "(0, 1)")
        checks.number_in(
            "temporal_ratio_stalled", self.temporal_ratio_stalled, "(0, 1)"
        )
        checks.number_in("stall_drop", self.stall_drop, "(0, 1)")
        checks.number_in("learned_drop", self.learned_drop, "(0, 1)")
        for name in ("fell_drop", "plateau_drop", "stall_remaining", "unstable_rise"):
            checks.number_in(name, getattr(self, name), "(0, 1)")
        checks.number_in("overfit_rise", self.overfit_rise, "(0, inf)")
        checks.number_in("unstable_spike", self.unstable_spike, "(1, inf)")
        checks.number_in("tiny_update", self.tiny_update, "(0, 1)")
        checks.number_in("temporal_explosion", self.temporal_explosion, "(1, inf)")
        checks.number_in("dead_share", self.dead_share, "[0, 1)")
        checks.number_in("saturation_share", self.saturation_share, "[0, 1)")
        checks.number_in("explosion_growth", self.explosion_growth, "(1, inf)")
        checks.positive_ints(
            min_batchnorm_batch=self.min_batchnorm_batch,
            window=self.window,
            unstable_rises=self.unstable_rises,
            min_outcome_steps=self.min_outcome_steps,
        )


def checked_thresholds(value):
    """`GradientMonitor`'s `thresholds`: a `Thresholds`, a dict of fields, `None`.

    A dict is turned into `Thresholds(**value)` after its keys are checked, so
    that a misspelt or invented key fails at once, naming the argument,
    instead of the diagnosis at the first epoch end.

    Args:
        value: `None`, a `Thresholds`, or a dict of `Thresholds` fields.

    Returns:
        A `Thresholds`, or `None` for the defaults.

    Raises:
        TypeError: If `value` is none of these.
        ValueError: For an unknown key, or a value out of its range.

    Example:

    >>> checked_thresholds({"window": 3}).window
    3
    >>> checked_thresholds({"vanishing_orders": 2.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: `thresholds` has no field 'vanishing_orders' ... Did you mean: \
vanishing_ratio? Received: thresholds={'vanishing_orders': 2.0}
    """
    if value is None or isinstance(value, Thresholds):
        return value
    if not isinstance(value, dict):
        raise TypeError(
            "`thresholds` must be a `kgrad.analysis.findings.Thresholds`, a dict "
            f"of its fields, or None. Received: thresholds={value!r}"
        )
    fields = [field.name for field in dataclasses.fields(Thresholds)]
    for key in value:
        if key not in fields:
            raise ValueError(
                f"`thresholds` has no field {key!r} (Thresholds fields: "
                f"{', '.join(fields)}).{checks.suggest(key, fields)} "
                f"Received: thresholds={value!r}"
            )
    return Thresholds(**value)


def name_list(names, limit=3):
    """`a, b, c and 2 more`: a short list of names for a message."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"
