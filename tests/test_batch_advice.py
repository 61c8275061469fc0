"""The batch-size advice (kgrad.analysis.batch_advice), on synthetic scalars,
and how the findings channel prints it (only with verbose=2)."""

import pytest

from kgrad import tags
from kgrad.analysis import batch_advice, diagnostics


def _scalars(b_simple, batch, steps=5):
    return {
        tags.GLOBAL_B_SIMPLE: [(s, b_simple) for s in range(1, steps + 1)],
        tags.NOISE_BATCH: [(s, batch) for s in range(1, steps + 1)],
    }


@pytest.mark.parametrize(
    "b_simple, batch, says",
    [
        (1500.0, 32.0, "would train in proportionally fewer steps"),
        (100.0, 1024.0, "spend compute for little"),
        (100.0, 32.0, None),  # within 4x
        (100.0, 400.0, None),
    ],
)
def test_advice_when_batch_and_noise_scale_are_far_apart(b_simple, batch, says):
    found = batch_advice.batch_size(_scalars(b_simple, batch))
    if says is None:
        assert found == []
        return
    (finding,) = found
    assert (finding.kind, finding.severity) == ("batch_size", "advice")
    assert says in finding.advice
    assert dict(finding.numbers) == {"b_simple": b_simple, "batch": batch}


def test_no_advice_before_a_full_window():
    assert batch_advice.batch_size(_scalars(1500.0, 32.0, steps=4)) == []


def test_diagnose_puts_advice_after_warnings():
    scalars = _scalars(1500.0, 32.0)
    kinds = [f.kind for f in diagnostics.diagnose(scalars, {})]
    assert kinds[-1] == "batch_size"


@pytest.mark.parametrize("verbose, printed", [(0, 0), (1, 0), (2, 1)])
def test_advice_is_printed_with_verbose_2_only(verbose, printed, capsys):
    from kgrad.monitor.drive.findings_channel import FindingsChannel

    channel = FindingsChannel(verbose=verbose, on_finding=None)
    (finding,) = batch_advice.batch_size(_scalars(1500.0, 32.0))
    channel.update([finding], monitor=None)
    assert capsys.readouterr().out.count("Advice: batch size") == printed
    assert [f.kind for f in channel.log.current] == ["batch_size"]
