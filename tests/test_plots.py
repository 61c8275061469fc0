"""kgrad.analysis.plots: gradient-flow figures from synthetic Scalars."""

import io
import math
import warnings

import matplotlib.image
from matplotlib.figure import Figure

from kgrad.analysis import plots

LAYERS = ["m/d1", "m/d2", "m/d3", "m/out"]
RUN_INFO = {"model": "m", "variables": [f"{layer}/kernel" for layer in LAYERS]}


def make_scalars(norms, steps=range(1, 11)):
    scalars = {
        f"grad_norm/{layer}/kernel": [(s, norm) for s in steps]
        for layer, norm in zip(LAYERS, norms, strict=True)
    }
    scalars["grad_norm/global"] = [(s, 1.0) for s in steps]
    return scalars


def test_gradient_flow_figure_spreads_a_handful_of_steps():
    scalars = make_scalars([1e-6, 1e-4, 1e-2, 1.0], steps=range(1, 101))
    fig = plots.gradient_flow_figure(scalars, RUN_INFO)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.lines] == [
        "step 1",
        "step 26",
        "step 50",
        "step 75",
        "step 100",
    ]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["d1", "d2", "d3", "out"]
    ys = ax.lines[0].get_ydata()
    assert ys[0] < ys[-1] * 1e-5
    assert ax.get_title() == "Gradient flow of m"


def test_gradient_flow_figure_with_chosen_steps_and_bad_values():
    scalars = make_scalars([0.0, 1e-4, 1e-2, 1.0], steps=range(1, 4))
    scalars["grad_norm/m/d2/kernel"][1] = (2, math.nan)
    fig = plots.gradient_flow_figure(scalars, RUN_INFO, steps=[2], title="t")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["step 2"]
    ys = ax.lines[0].get_ydata()
    assert math.isnan(ys[0]) and math.isnan(ys[1])  # gaps on the log axis
    assert ax.get_title() == "t"
    assert plots.figure_png(fig).startswith(b"\x89PNG")


def test_compare_figure_overlays_runs_of_different_depth():
    deep = make_scalars([1e-6, 1e-4, 1e-2, 1.0])
    shallow = {k: v for k, v in deep.items() if "/d2/" not in k and "/d3/" not in k}
    fig = plots.compare_figure({"deep": (deep, RUN_INFO), "shallow": (shallow, {})})
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == [
        "deep (step 10)",
        "shallow (step 10)",
    ]
    assert list(ax.lines[1].get_xdata()) == [0.0, 1.0]
    assert ax.get_yscale() == "log"


def test_figure_png_reads_back():
    fig = plots.gradient_flow_figure(make_scalars([1e-3, 1e-2, 0.1, 1.0]), RUN_INFO)
    data = plots.figure_png(fig)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert image.shape[:2] == (500, 900)


def test_hundreds_of_layers_stay_readable_and_quiet():
    # Long nested names, as in NASNetMobile: the constrained layout of the
    # previous figure collapsed and warned on these.
    layers = [f"net/{'reduction_cell_' * 10}{i:03d}/kernel" for i in range(300)]
    scalars = {
        f"grad_norm/{path}": [(1, 1e-3 * (i + 1)), (9, 1e-2 * (i + 1))]
        for i, path in enumerate(layers)
    }
    scalars["grad_norm/global"] = [(1, 1.0), (9, 2.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.gradient_flow_figure(scalars, {"model": "net", "variables": layers})
        png = plots.figure_png(fig)
    assert png.startswith(b"\x89PNG")
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) <= plots.MAX_LABELS
    assert labels[0].endswith("_000") and labels[1].endswith("_008")
    assert max(len(label) for label in labels) <= 28
    assert len(ax.lines[0].get_xdata()) == 300  # every layer is still drawn
