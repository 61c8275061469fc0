"""Rules of `kgrad.analysis.diagnostics` on synthetic Scalars: must, must not fire."""

import math

import pytest

from kgrad.analysis import diagnostics
from kgrad.analysis.diagnostics import Finding, Thresholds, diagnose
from kgrad.analysis.layer_profile import layer_profile

LAYERS = ["m/d1", "m/d2", "m/d3", "m/out"]
RUN_INFO = {
    "model": "m",
    "variables": [f"{layer}/{v}" for layer in LAYERS for v in ("kernel", "bias")],
    "layers": [["m/d1", "relu"], ["m/d2", "relu"], ["m/d3", "relu"]],
    "batchnorm_layers": [],
    "batch_size": 32,
}


def make_scalars(norms, steps=range(1, 11), global_norms=None, extra=None):
    """Kernel norms per layer (bias = kernel / 10), constant over `steps`."""
    scalars = {}
    for layer, norm in zip(LAYERS, norms, strict=True):
        for var, scale in (("kernel", 1.0), ("bias", 0.1)):
            scalars[f"grad_norm/{layer}/{var}"] = [(s, norm * scale) for s in steps]
            scalars[f"weight_norm/{layer}/{var}"] = [(s, 1.0 * scale) for s in steps]
            scalars[f"update_ratio/{layer}/{var}"] = [(s, 1e-3) for s in steps]
    total = math.sqrt(sum(1.01 * n * n for n in norms))
    scalars["grad_norm/global"] = global_norms or [(s, total) for s in steps]
    scalars["grad_nonfinite/global"] = [
        (s, 0.0) for s, _ in scalars["grad_norm/global"]
    ]
    scalars.update(extra or {})
    return scalars


def kinds(findings):
    return [f.kind for f in findings]


def test_healthy_run_has_no_findings():
    assert diagnose(make_scalars([0.5, 0.6, 0.8, 1.0]), RUN_INFO) == []


def test_layer_profile_orders_combines_and_marks_sides():
    rows = layer_profile(make_scalars([1e-4, 1e-3, 1e-2, 1.0]), RUN_INFO)
    assert [r.layer for r in rows] == LAYERS
    assert rows[0].grad_norm == pytest.approx(1e-4 * math.sqrt(1.01))
    assert rows[0].ratio == pytest.approx(1e-4)
    assert rows[-1].ratio == pytest.approx(1.0)
    assert [r.side for r in rows] == ["input", "", "", "output"]
    # Combined update ratio: sqrt(sum (r w)^2) / sqrt(sum w^2) = 1e-3 here.
    assert rows[0].update_ratio == pytest.approx(1e-3)
    assert rows[0].nonfinite == 0 and rows[0].dead_share is None


def test_layer_profile_without_run_info_falls_back_to_sorted_tags():
    rows = layer_profile(make_scalars([1e-4, 1e-3, 1e-2, 1.0]), {})
    assert [r.layer for r in rows] == sorted(LAYERS)


def test_layer_profile_ignores_layers_without_gradient_for_sides():
    rows = layer_profile(make_scalars([0.0, 1e-3, 1e-2, 1.0]), RUN_INFO)
    assert rows[1].side == "input" and rows[0].side == ""
    assert layer_profile({}, RUN_INFO) == []


@pytest.mark.parametrize(
    ("input_norm", "triggers"), [(0.99e-3, True), (1.01e-3, False)]
)
def test_vanishing_at_the_threshold(input_norm, triggers):
    findings = diagnose(make_scalars([input_norm, 0.1, 0.5, 1.0]), RUN_INFO)
    assert kinds(findings) == (["vanishing"] if triggers else [])
    if triggers:
        assert findings[0].layers == ("m/d1",)
        assert findings[0].severity == "warning"
        assert "m/out" in findings[0].evidence


def test_vanishing_threshold_is_configurable():
    scalars = make_scalars([1e-3 * 0.5, 0.1, 0.5, 1.0])
    assert diagnose(scalars, RUN_INFO, Thresholds(vanishing_ratio=1e-4)) == []


def test_vanishing_uses_the_median_not_one_noisy_step():
    scalars = make_scalars([0.5, 0.6, 0.8, 1.0])
    d1 = [scalars["grad_norm/m/d1/kernel"], scalars["grad_norm/m/d1/bias"]]
    for series in d1:  # one bad step among the last five
        series[-1] = (series[-1][0], 1e-9)
    assert diagnose(scalars, RUN_INFO) == []
    for series in d1:  # three of the last five
        for i in range(-3, 0):
            series[i] = (series[i][0], 1e-9)
    assert kinds(diagnose(scalars, RUN_INFO)) == ["vanishing"]


def test_vanishing_by_near_zero_update_ratio():
    scalars = make_scalars([0.5, 0.6, 0.8, 1.0])
    for var in ("kernel", "bias"):
        tag = f"update_ratio/m/d1/{var}"
        scalars[tag] = [(s, 1e-7) for s, _ in scalars[tag]]
    findings = diagnose(scalars, RUN_INFO)
    assert kinds(findings) == ["vanishing"]
    assert "update/weight" in findings[0].evidence
    # A globally tiny learning rate is not vanishing.
    for tag in [t for t in scalars if t.startswith("update_ratio/")]:
        scalars[tag] = [(s, 1e-7) for s, _ in scalars[tag]]
    assert diagnose(scalars, RUN_INFO) == []


@pytest.mark.parametrize(("growth", "triggers"), [(1.2e3, True), (0.8e3, False)])
def test_exploding_at_the_threshold(growth, triggers):
    steps = range(1, 21)
    global_norms = [(s, 1.0 if s <= 10 else growth) for s in steps]
    findings = diagnose(
        make_scalars([0.5, 0.6, 0.8, 1.0], steps, global_norms), RUN_INFO
    )
    assert kinds(findings) == (["exploding"] if triggers else [])
    if triggers:
        assert "clipnorm=1.0" in findings[0].advice


def test_exploding_ignores_a_single_spike():
    global_norms = [(s, 1e6 if s == 15 else 1.0) for s in range(1, 21)]
    scalars = make_scalars([0.5, 0.6, 0.8, 1.0], range(1, 21), global_norms)
    assert diagnose(scalars, RUN_INFO) == []


def test_nonfinite_names_the_output_most_layer_as_origin():
    scalars = make_scalars([0.5, 0.6, 0.8, 1.0])
    # NaN born in d2 at step 7 propagates to d1 below it; d3 and out stay finite.
    scalars["grad_nonfinite/m/d1/kernel"] = [(7, 48.0), (8, 48.0)]
    scalars["grad_nonfinite/m/d2/kernel"] = [(7, 256.0), (8, 256.0)]
    scalars["grad_nonfinite/m/d3/kernel"] = [(8, 256.0)]
    scalars["grad_nonfinite/global"] = [
        (s, 304.0 if s == 7 else 560.0 if s == 8 else 0.0) for s in range(1, 11)
    ]
    findings = diagnose(scalars, RUN_INFO)
    assert kinds(findings) == ["nonfinite"]
    (finding,) = findings
    assert finding.severity == "error"
    assert finding.layers == ("m/d2",)
    assert "step 7" in finding.evidence and "304" in finding.evidence
    assert "clipnorm=1.0" in finding.advice
    assert layer_profile(scalars, RUN_INFO, step=8)[2].nonfinite == 256


def test_nonfinite_from_a_nan_global_norm_alone():
    global_norms = [(s, math.nan if s > 5 else 1.0) for s in range(1, 11)]
    scalars = make_scalars([0.5, 0.6, 0.8, 1.0], global_norms=global_norms)
    assert kinds(diagnose(scalars, RUN_INFO)) == ["nonfinite"]


@pytest.mark.parametrize(("share", "triggers"), [(0.51, True), (0.5, False)])
def test_dead_units_at_the_threshold(share, triggers):
    extra = {
        "dead_units/m/d2": [(s, share) for s in range(1, 11)],
        "dead_units/m/d1": [(s, 0.1) for s in range(1, 11)],
    }
    findings = diagnose(make_scalars([0.5, 0.6, 0.8, 1.0], extra=extra), RUN_INFO)
    assert kinds(findings) == (["dead_units"] if triggers else [])
    if triggers:
        assert findings[0].layers == ("m/d2",)
        assert "LeakyReLU" in findings[0].advice


@pytest.mark.parametrize(("share", "triggers"), [(0.3, True), (0.2, False)])
def test_saturation_at_the_threshold(share, triggers):
    extra = {"saturation/m/d3": [(s, share) for s in range(1, 11)]}
    findings = diagnose(make_scalars([0.5, 0.6, 0.8, 1.0], extra=extra), RUN_INFO)
    assert kinds(findings) == (["saturation"] if triggers else [])


@pytest.mark.parametrize(
    ("batch", "bn", "triggers"),
    [
        (4, ["m/bn"], True),
        (7, ["m/bn"], True),
        (8, ["m/bn"], False),
        (4, [], False),
        (None, ["m/bn"], False),
    ],
)
def test_batchnorm_small_batch(batch, bn, triggers):
    info = dict(RUN_INFO, batch_size=batch, batchnorm_layers=bn)
    findings = diagnose(make_scalars([0.5, 0.6, 0.8, 1.0]), info)
    assert kinds(findings) == (["batchnorm_small_batch"] if triggers else [])
    if triggers:
        assert "LayerNorm" in findings[0].advice and "GroupNorm" in findings[0].advice


def test_clipping_is_advised_only_for_exploding_and_nonfinite():
    scalars = make_scalars([1e-6, 0.6, 0.8, 1.0], range(1, 21))
    scalars["grad_norm/global"] = [(s, 1.0 if s <= 10 else 1e5) for s in range(1, 21)]
    scalars["grad_nonfinite/global"] = [(20, 3.0)]
    scalars["dead_units/m/d2"] = [(19, 0.9)]  # judged before the NaN step
    scalars["saturation/m/d3"] = [(19, 0.9)]
    info = dict(RUN_INFO, batch_size=2, batchnorm_layers=["m/bn"])
    findings = diagnose(scalars, info)
    assert sorted(kinds(findings)) == sorted(
        [
            "nonfinite",
            "exploding",
            "vanishing",
            "dead_units",
            "saturation",
            "batchnorm_small_batch",
        ]
    )
    for finding in findings:
        clip = "clipnorm" in finding.advice
        assert clip == (finding.kind in ("exploding", "nonfinite")), finding.kind
    # Sorted by severity: the error first.
    assert findings[0].kind == "nonfinite"
    severities = [diagnostics.SEVERITIES.index(f.severity) for f in findings]
    assert severities == sorted(severities)


def test_finding_message():
    finding = Finding("dead_units", "warning", ("m/d1", "m/d2"), "Evidence.", "Fix.")
    assert finding.message() == (
        "Warning: dead ReLU units in m/d1, m/d2. Evidence. Fix."
    )
    assert hash(finding)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vanishing_ratio": 0},
        {"dead_share": 1.5},
        {"window": 0},
        {"explosion_growth": 1.0},
        {"min_batchnorm_batch": 0},
    ],
)
def test_thresholds_are_validated(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Thresholds(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_batchnorm_batch": 2.5},
        {"window": True},
        {"dead_share": "0.5"},
        {"explosion_growth": None},
    ],
)
def test_thresholds_reject_wrong_types(kwargs):
    name, value = next(iter(kwargs.items()))
    with pytest.raises(TypeError, match=f"Received: {name}={value!r}"):
        Thresholds(**kwargs)


def test_layer_rules_judge_the_steps_before_the_first_nan():
    steps = range(1, 11)
    scalars = make_scalars([0.5, 0.6, 0.8, 1.0], steps)
    scalars["grad_nonfinite/global"] = [(s, 0.0 if s < 6 else 4.0) for s in steps]
    # NaN weights make every ReLU output NaN, counted as dead from step 6 on
    scalars["dead_units/m/d2"] = [(s, 0.0 if s < 6 else 1.0) for s in steps]
    assert kinds(diagnose(scalars, RUN_INFO)) == ["nonfinite"]
    scalars["dead_units/m/d2"] = [(s, 0.9) for s in steps]  # dead before the NaN
    assert sorted(kinds(diagnose(scalars, RUN_INFO))) == ["dead_units", "nonfinite"]


def test_still_input_weights_of_a_model_that_learned_are_not_vanishing():
    scalars = make_scalars([0.5, 0.6, 0.8, 1.0])
    for var in ("kernel", "bias"):
        tag = f"update_ratio/m/d1/{var}"
        scalars[tag] = [(s, 1e-7) for s, _ in scalars[tag]]
    # the loss fell from 1.0 to 0.2 (80%): still judged
    scalars["kgrad/loss"] = [(s, 1.0 if s <= 5 else 0.2) for s in range(1, 11)]
    assert kinds(diagnose(scalars, RUN_INFO)) == ["vanishing"]
    # 1.0 to 0.05 (95%, over `learned_drop`): the task is learned
    scalars["kgrad/loss"] = [(s, 1.0 if s <= 5 else 0.05) for s in range(1, 11)]
    assert diagnose(scalars, RUN_INFO) == []
