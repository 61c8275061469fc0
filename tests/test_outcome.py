"""kgrad.analysis.outcome: the outcome line and the outcome findings, on
hand-made loss curves and on a real monitored fit."""

import math

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor, tags
from kgrad.analysis import diagnostics, outcome, report
from kgrad.analysis.findings import Thresholds
from kgrad.dashboard import series, timeline
from tests.support.events import read_texts

STEPS = range(1, 401)


def _run(loss, update=1e-3, norm=1.0, epochs=None):
    """Scalars of a two-layer run: `loss(step)`, `norm(step)`, `update`."""
    scalars = {
        tags.LOSS: [(s, loss(s)) for s in STEPS],
        tags.GLOBAL_GRAD_NORM: [
            (s, norm(s) if callable(norm) else norm) for s in STEPS
        ],
    }
    for layer in ("m/d1", "m/d2"):
        scalars[tags.tag(tags.GRAD_NORM, f"{layer}/kernel")] = [(s, 0.7) for s in STEPS]
        scalars[tags.tag(tags.UPDATE_RATIO, f"{layer}/kernel")] = [
            (s, update) for s in STEPS
        ]
    if epochs:
        for name, values in epochs.items():
            scalars[tags.epoch(name)] = [
                (20 * (i + 1), v) for i, v in enumerate(values)
            ]
    return scalars


def _kinds(scalars):
    return sorted(f.kind for f in diagnostics.diagnose(scalars, {}))


def _finding(scalars, kind):
    return next(f for f in diagnostics.diagnose(scalars, {}) if f.kind == kind)


def test_a_flat_loss_with_tiny_updates_is_a_learning_rate_too_small():
    scalars = _run(lambda s: 2.30 - 1e-4 * s, update=1e-7)
    assert _kinds(scalars) == ["not_learning"]
    finding = _finding(scalars, "not_learning")
    assert "learning rate is too small" in finding.evidence
    assert dict(finding.numbers)["fell"] == pytest.approx(1 - 2.26 / 2.2995, abs=0.01)
    assert outcome.outcome_line(scalars).startswith("loss did not fall: 2.30 -> 2.26")


def test_a_flat_loss_with_moving_weights_points_to_the_labels():
    finding = _finding(_run(lambda s: 1.39 + 0.05 * math.sin(s)), "not_learning")
    assert "labels may not follow from the inputs" in finding.evidence
    assert "Raise the learning rate" not in finding.advice


def test_a_flat_loss_with_a_gradient_finding_names_it():
    scalars = _run(lambda s: 1.39)
    scalars[tags.tag(tags.GRAD_NORM, "m/d1/kernel")] = [
        (s, 1e-8) for s in STEPS
    ]  # vanishing
    assert _kinds(scalars) == ["not_learning", "vanishing"]
    assert "vanishing gradients" in _finding(scalars, "not_learning").evidence


def test_a_loss_that_fell_then_stopped_far_from_fitted_has_stalled():
    scalars = _run(lambda s: max(1.0, 2.3 - 0.02 * s), update=1e-3)
    assert _kinds(scalars) == ["stalled"]
    # the same fall to a fitted loss is a run that learned
    assert _kinds(_run(lambda s: max(0.05, 2.3 - 0.02 * s))) == []


def test_a_fall_to_chance_level_only_is_not_learning():
    # from 1.70 (an untrained model worse than uniform) to 1.33 and flat: 20%
    # of its start gone, but only 4% of ln(4) = 1.386, predicting 4 classes
    # equally likely
    def loss(s):
        return max(1.33, 1.70 - 0.01 * s)

    chance = {"chance_loss": math.log(4)}
    found = {f.kind: f for f in diagnostics.diagnose(_run(loss), chance)}
    assert sorted(found) == ["not_learning"]
    finding = found["not_learning"]
    assert dict(finding.numbers)["fell"] == pytest.approx(1 - 1.33 / math.log(4))
    assert "(20% gone, 4% below the chance level; threshold 15%" in finding.evidence
    assert "Chance level (every class predicted equally likely) is 1.39" in (
        finding.evidence
    )
    assert "the loss is at it" in finding.evidence
    # without the chance level the same fall is 20% of the start: stalled
    assert _kinds(_run(loss)) == ["stalled"]
    # a run that learned below chance is told how far below
    low = _finding(_run(lambda s: max(1.0, 2.3 - 0.02 * s)), "stalled")
    assert "Chance" not in low.evidence
    low = next(
        f
        for f in diagnostics.diagnose(_run(lambda s: max(1.0, 2.3 - 0.02 * s)), chance)
        if f.kind == "stalled"
    )
    assert "the loss is 28% below it" in low.evidence


def test_a_loss_that_rose_back_is_unstable_not_stalled():
    epochs = [max(0.2, 2.3 - 0.4 * i) for i in range(20)]
    epochs[14:] = [1.2] * 6  # the last third (steps > 267) back up at 1.2

    def steps(s):
        return 1.2 if s > 280 else max(0.2, 2.3 - 0.01 * s)

    # the last third (1.2) is above the middle one (0.2) and 52% of the start:
    # the stall rule's numbers, but the loss went back up
    assert _kinds(_run(steps, epochs={"loss": epochs})) == ["unstable"]
    # a plateau that did not rise stays `stalled`
    flat = [max(1.0, 2.3 - 0.4 * i) for i in range(20)]
    plateau = _run(lambda s: max(1.0, 2.3 - 0.02 * s), epochs={"loss": flat})
    assert _kinds(plateau) == ["stalled"]


def test_a_stall_with_collapsed_updates_blames_the_schedule():
    scalars = _run(lambda s: max(1.0, 2.3 - 0.02 * s))
    for layer in ("m/d1", "m/d2"):
        scalars[tags.tag(tags.UPDATE_RATIO, f"{layer}/kernel")] = [
            (s, 1e-3 if s < 100 else 1e-10) for s in STEPS
        ]
    assert "schedule took it to ~0" in _finding(scalars, "stalled").evidence


def test_rises_of_the_loss_are_unstable_and_gradient_spikes_blame_the_rate():
    epochs = [max(0.2, 2.3 - 0.4 * i) for i in range(20)]
    epochs[7] = epochs[11] = 2.0  # the epochs ending at steps 160 and 240

    def norm(s):
        return 30.0 if s in (160, 240) else 1.0

    def steps(s):
        return max(0.2, 2.3 - 0.01 * s)

    finding = _finding(_run(steps, norm=norm, epochs={"loss": epochs}), "unstable")
    assert dict(finding.numbers)["rises"] == 2
    # start: the median of the first 8 logged losses, 2.255; low before: 0.2
    assert dict(finding.numbers)["largest_share"] == pytest.approx(1.8 / 2.055, 0.01)
    assert "gradient norm spiked with it (30.0x" in finding.evidence
    assert "Lower the learning rate" in finding.advice
    # the same rises without gradient spikes point to the data
    flat = _finding(_run(steps, epochs={"loss": epochs}), "unstable")
    assert "did not spike" in flat.evidence and "bad batches" in flat.advice
    # a bump of less than `unstable_rise` of what was learned is not a rise
    epochs[7] = epochs[11] = 0.2 + 0.09 * 2.055
    assert "unstable" not in _kinds(_run(steps, epochs={"loss": epochs}))


def test_a_rising_validation_loss_while_training_falls_is_overfitting():
    train = [1.0 / (i + 1) for i in range(20)]
    val = [1.0, 0.8, 0.7, 0.75] + [0.8 + 0.1 * i for i in range(16)]
    finding = _finding(
        _run(lambda s: 1.0 / s, epochs={"loss": train, "val_loss": val}), "overfitting"
    )
    assert dict(finding.numbers)["val_low"] == 0.7
    tracking = [v * 1.1 for v in train]
    healthy = _run(lambda s: 1.0 / s, epochs={"loss": train, "val_loss": tracking})
    assert "overfitting" not in _kinds(healthy)
    assert outcome.validation_note(healthy) is None
    assert "overfitting is not judged" in outcome.validation_note(_run(lambda s: 1 / s))


def test_the_outcome_rules_wait_for_enough_steps():
    short = {
        tag: [(s, v) for s, v in values if s < 100]
        for tag, values in _run(lambda s: 2.3, update=1e-7).items()
    }
    assert _kinds(short) == []
    assert _kinds(short) == [] and outcome.outcome_line(short).startswith(
        "loss did not fall"
    )
    text = report.format_report({"run": (short, {})})
    assert "findings: none from the gradients, but loss did not fall" in text
    assert "the gradients look healthy" not in text


@pytest.mark.parametrize(
    "loss, said",
    [
        (lambda s: 2.3 * 0.99**s, "loss fell 2.2"),
        (lambda s: 1.0 + s / 100, "loss rose: 1.0"),
        (lambda s: math.nan if s > 200 else 1.0, "loss became NaN/Inf at step 201"),
    ],
)
def test_the_report_states_the_outcome_first(loss, said):
    text = report.format_report({"run": (_run(loss), {})})
    assert text.splitlines()[0].startswith(f"== run: {said}")


def test_no_loss_is_an_unknown_outcome():
    assert outcome.outcome_line({}).startswith("no loss logged")


def test_thresholds_of_the_outcome_rules_are_checked():
    with pytest.raises(ValueError, match="fell_drop"):
        Thresholds(fell_drop=1.5)
    with pytest.raises(ValueError, match="min_outcome_steps"):
        Thresholds(min_outcome_steps=0)


def test_a_monitored_fit_that_does_not_learn_reports_it(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-8),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    seen = []
    monitor = GradientMonitor(
        str(tmp_path),
        norms_every=5,
        histograms_every=None,
        figure_secs=None,
        on_finding=lambda finding, monitor: seen.append(finding.kind),
    )
    model.fit(x, y, batch_size=16, epochs=8, callbacks=[monitor], verbose=0)
    assert seen == ["not_learning"]
    assert [f.kind for f in monitor.findings] == ["not_learning"]
    out = capsys.readouterr().out
    assert "kgrad: Warning: the loss does not fall." in out
    assert "learning rate is too small" in out
    scalars, info = report.load_run(str(tmp_path / "train"))
    assert [f.kind for f in diagnostics.diagnose(scalars, info)] == ["not_learning"]
    # the tab's timeline sees it in the findings the monitor wrote
    texts = read_texts(tmp_path / "train", tags.FINDINGS_DATA)
    found = timeline.timeline(texts, series.STATISTICS)["findings"]
    assert [f["title"] for f in found] == ["Warning: the loss does not fall."]
    assert [(f["statistic"], f["heat_map"]) for f in found] == [
        (tags.LOSS, tags.GRAD_NORM)
    ]


def test_the_json_report_states_the_outcome():
    import json

    from kgrad.analysis import report_json

    runs = {"run": (_run(lambda s: 2.3 - 1e-4 * s, update=1e-7), {})}
    data = json.loads(report_json.runs_json(runs, report_json.diagnose_runs(runs)))
    (run,) = data["runs"]
    assert run["outcome"].startswith("loss did not fall: 2.30 -> 2.26")
    assert [f["kind"] for f in run["findings"]] == ["not_learning"]
