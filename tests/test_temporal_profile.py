"""The temporal profile read back: the finding, the report lines, the figures."""

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from kgrad.analysis import diagnostics, plots, report, temporal_profile

RNN = "m/rnn_01"
TIMESTEPS = (0, 16, 32, 49)
RUN_INFO = {
    "model": "m",
    "variables": ["m/rnn_01/cell/kernel", "m/output/kernel"],
    "recurrent_layers": [RNN],
}


def make_scalars(first_over_last, steps=range(1, 11)):
    """Profiles falling geometrically from t49 (norm 1) to t0 (`first_over_last`)."""
    scalars = {
        "grad_norm/m/rnn_01/cell/kernel": [(s, 1.0) for s in steps],
        "grad_norm/m/output/kernel": [(s, 1.0) for s in steps],
        "grad_norm/global": [(s, 1.4) for s in steps],
    }
    for t in TIMESTEPS:
        norm = first_over_last ** ((49 - t) / 49)
        scalars[f"temporal_grad/{RNN}/t{t:02d}"] = [(s, norm) for s in steps]
    scalars[f"temporal_grad/{RNN}/t_first_over_last"] = [
        (s, first_over_last) for s in steps
    ]
    return scalars


def kinds(scalars, thresholds=None):
    return [f.kind for f in diagnostics.diagnose(scalars, RUN_INFO, thresholds)]


@pytest.mark.parametrize("ratio, fires", [(1e-12, True), (9e-4, True), (1.1e-3, False)])
def test_vanishing_in_time_at_the_threshold(ratio, fires):
    assert ("vanishing_in_time" in kinds(make_scalars(ratio))) is fires


def test_vanishing_in_time_names_the_layer_and_the_numbers():
    (finding,) = diagnostics.diagnose(make_scalars(1e-12), RUN_INFO)
    assert finding.kind == "vanishing_in_time" and finding.severity == "warning"
    assert finding.layers == (RNN,)
    assert "1.0e-12" in finding.evidence and "12.0 orders" in finding.evidence
    assert "t0 1.0e-12" in finding.evidence and "t49 1.0e+00" in finding.evidence
    assert "LSTM or GRU" in finding.advice
    assert "clipping does not help" in finding.advice


def test_vanishing_in_time_judges_the_median_of_the_last_steps():
    scalars = make_scalars(1e-12)
    ratio_tag = f"temporal_grad/{RNN}/t_first_over_last"
    # A gated cell starts vanishing and recovers as it learns: no finding.
    scalars[ratio_tag] = [(s, 1e-10 if s < 5 else 0.5) for s in range(1, 11)]
    assert "vanishing_in_time" not in kinds(scalars)
    # One good step among vanishing ones does not clear it.
    scalars[ratio_tag] = [(s, 0.5 if s == 10 else 1e-9) for s in range(1, 11)]
    assert "vanishing_in_time" in kinds(scalars)


def test_vanishing_in_time_threshold_is_configurable_and_checked():
    scalars = make_scalars(1e-2)
    assert "vanishing_in_time" not in kinds(scalars)
    loose = diagnostics.Thresholds(temporal_ratio=0.05)
    assert "vanishing_in_time" in kinds(scalars, loose)
    with pytest.raises(ValueError, match="temporal_ratio"):
        diagnostics.Thresholds(temporal_ratio=2.0)


def test_profile_heat_map_and_report_lines():
    scalars = make_scalars(1e-6, steps=(1, 5, 9))
    assert temporal_profile.recurrent_layers(scalars, RUN_INFO) == [RNN]
    assert [t for t, _ in temporal_profile.profile(scalars, RNN)] == list(TIMESTEPS)
    timesteps, steps, norms = temporal_profile.heat_map(scalars, RNN)
    assert timesteps == list(TIMESTEPS) and steps == [1, 5, 9]
    np.testing.assert_allclose(
        norms[:, 0], [1e-6, 1e-6 ** (33 / 49), 1e-6 ** (17 / 49), 1]
    )
    lines = temporal_profile.report_lines(scalars, RUN_INFO)
    assert lines[0].startswith(f"through time: gradient norm at each timestep of {RNN}")
    cells = "  ".join(f"t{t} {1e-6 ** ((49 - t) / 49):.1e}" for t in TIMESTEPS)
    assert lines[1] == f"  step 1: {cells}  (first/last 1.0e-06)"
    assert lines[2].startswith("  step 9: t0 1.0e-06")


def test_report_prints_the_profile_and_the_finding():
    text = report.format_report({"rnn": (make_scalars(1e-9), RUN_INFO)})
    assert "through time: gradient norm at each timestep of m/rnn_01" in text
    assert "  step 10: t0 1.0e-09" in text
    assert "vanishing gradients through time in m/rnn_01" in text
    assert all(len(line) <= report.WIDTH for line in text.splitlines())


def test_figures_get_a_through_time_panel():
    scalars = make_scalars(1e-8)
    flow = plots.gradient_flow_figure(scalars, RUN_INFO)
    depth, time = flow.axes
    assert time.get_yscale() == "log" and time.get_title() == "Through time: rnn_01"
    line = time.lines[-1]
    assert list(line.get_xdata()) == list(TIMESTEPS)
    assert line.get_ydata()[0] == pytest.approx(1e-8)
    compare = plots.compare_figure(
        {"simple": (scalars, RUN_INFO), "gru": (make_scalars(0.5), RUN_INFO)}
    )
    assert [ln.get_label() for ln in compare.axes[1].lines] == ["simple", "gru"]
    no_rnn = {k: v for k, v in scalars.items() if not k.startswith("temporal")}
    assert len(plots.gradient_flow_figure(no_rnn, RUN_INFO).axes) == 1
    assert plots.temporal_heat_map(no_rnn, RUN_INFO) is None


def test_heat_map_figure_is_timestep_by_step():
    heat_map = plots.temporal_heat_map(make_scalars(1e-8, steps=range(1, 8)), RUN_INFO)
    assert isinstance(heat_map, Figure)
    image = heat_map.axes[0].images[0].get_array()
    assert image.shape == (len(TIMESTEPS), 7)
    assert math.isclose(image[0, 0], 1e-8) and math.isclose(image[-1, 0], 1.0)
    assert len(plots.figure_png(heat_map)) > 1000
