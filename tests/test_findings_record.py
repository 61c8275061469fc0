"""Findings as data (`kgrad.findings_record`): the timeline, the text format,
and a monitored fit's records read back by TensorBoard's reader, by
`kgrad.analysis` and by `kgrad report --json`, equal to the monitor's own."""

import json
import math

import keras
import numpy as np
import pytest

from kgrad import GradientMonitor, findings_record, tags, zoo
from kgrad.analysis import report
from kgrad.analysis.findings import Finding
from kgrad.cli import main
from tests.support.events import read_texts


def finding(kind, *layers, share=80, reference=()):
    return Finding(
        kind,
        "warning",
        layers,
        f"{share}% of them.",
        "Fix it.",
        numbers=(("share", share / 100), ("bad", math.nan)),
        reference_layers=reference,
    )


def test_a_kind_is_one_finding_while_its_layers_grow():
    timeline = findings_record.Timeline()
    appeared, cleared = timeline.update([finding("dead_units", "d1")], step=3)
    assert [f.kind for f in appeared] == ["dead_units"] and cleared == []
    grown = finding("dead_units", "d1", "d2", share=90)
    assert timeline.update([grown], step=6) == ([], [])
    assert timeline.active == [grown]
    (entry,) = timeline.records
    assert entry["id"] == "dead_units@3"
    assert (entry["first_step"], entry["last_step"], entry["cleared_step"]) == (
        3,
        6,
        None,
    )
    assert entry["layers"] == ["d1", "d2"]
    assert entry["numbers"] == {"share": 0.9, "bad": None}  # NaN is null in JSON
    assert entry["text"] == grown.message() and entry["title"] == grown.title()


def test_a_finding_that_clears_and_comes_back_is_a_new_record():
    timeline = findings_record.Timeline()
    timeline.update([finding("dead_units", "d1")], step=2)
    appeared, cleared = timeline.update([finding("vanishing", "d1")], step=4)
    assert [f.kind for f in appeared] == ["vanishing"]
    assert [f.kind for f in cleared] == ["dead_units"]
    timeline.update([finding("dead_units", "d1")], step=8)
    assert [(r["id"], r["cleared_step"]) for r in timeline.records] == [
        ("dead_units@2", 4),
        ("vanishing@4", 8),
        ("dead_units@8", None),
    ]


@pytest.mark.parametrize(
    "kind, statistic",
    [
        ("dead_units", tags.DEAD_UNITS),
        ("saturation", tags.SATURATION),
        ("vanishing_in_time", tags.TEMPORAL_GRAD),
        ("exploding", tags.GRAD_NORM),
        ("stalled", tags.LOSS),
        ("batchnorm_small_batch", None),
    ],
)
def test_each_record_names_the_statistic_it_is_about(kind, statistic):
    assert findings_record.record(finding(kind, "d"), 1, 1)["statistic"] == statistic
    chosen = Finding(kind, "warning", (), "", "", statistic=tags.UPDATE_RATIO)
    assert findings_record.record(chosen, 1, 1)["statistic"] == tags.UPDATE_RATIO


def test_text_round_trip_and_the_last_text_wins():
    timeline = findings_record.Timeline()
    texts = []
    for step, found in [(2, [finding("dead_units", "d1")]), (5, [])]:
        timeline.update(found, step)
        texts.append((step, findings_record.dumps(timeline.records, step)))
    assert findings_record.loads(texts[-1][1]) == timeline.records
    assert texts[-1][1].startswith("```json\n")  # a code block in the Text tab
    assert findings_record.records_of(reversed(texts)) == timeline.records
    # at one step, the text written last; texts that do not read are skipped
    late = findings_record.dumps([], 5)
    assert findings_record.records_of(texts + [(5, late)]) == []
    assert findings_record.records_of(texts + [(9, "not json")]) == timeline.records


@pytest.mark.parametrize(
    "text",
    ["- Warning: dead ReLU units in d1.", "[]", '{"version": 99, "findings": []}'],
)
def test_a_text_that_is_not_a_record_is_refused(text):
    with pytest.raises(ValueError):
        findings_record.loads(text)
    assert findings_record.records_of([(1, text)]) is None


@pytest.fixture(scope="module")
def vanishing_run(tmp_path_factory):
    """A deep sigmoid MLP whose input side vanishes, every step logged."""
    log_dir = tmp_path_factory.mktemp("findings")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model = zoo.build("mlp_sigmoid", depth=10, width=8, input_shape=(6,), num_classes=3)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = GradientMonitor(str(log_dir), norms_every=1, histograms_every=None)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[monitor])
    monitor.flush()
    return log_dir, monitor


def test_tensorboards_reader_and_kgrad_analysis_read_the_monitors_records(
    vanishing_run,
):
    log_dir, monitor = vanishing_run
    written = monitor._channel.timeline().records
    texts = read_texts(log_dir / "train", tags.FINDINGS_DATA)
    assert len(texts) == 3  # one per epoch-end diagnosis: last_step moved
    assert findings_record.records_of(texts) == json.loads(json.dumps(written))
    _, info = report.load_run(str(log_dir))
    assert info["recorded_findings"] == json.loads(json.dumps(written))
    vanishing = [r for r in written if r["kind"] == "vanishing"]
    assert vanishing and vanishing[0]["statistic"] in (
        tags.GRAD_NORM,
        tags.UPDATE_RATIO,
    )
    # the healthy side it compares against is a reference, never a layer
    reference = vanishing[0]["reference_layers"]
    assert reference and not set(reference) & set(vanishing[0]["layers"])
    assert reference[0] in vanishing[0]["text"]
    assert vanishing[0]["last_step"] == 12 and vanishing[0]["cleared_step"] is None


def test_report_json_gives_the_recorded_id_to_the_same_finding(vanishing_run, capsys):
    log_dir, monitor = vanishing_run
    assert main(["report", str(log_dir), "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    recorded = {r["kind"]: r for r in run["recorded_findings"]}
    for found in run["findings"]:
        if found["kind"] in recorded:
            assert found["id"] == recorded[found["kind"]]["id"]
            assert found["first_step"] == recorded[found["kind"]]["first_step"]
        assert found["last_step"] == found["step"] == 12
    assert main(["report", str(log_dir)]) == 0
    assert "while training (the monitor's record):" in capsys.readouterr().out
