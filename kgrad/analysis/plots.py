"""Matplotlib figures of logged gradients: gradient flow over depth.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas, never
through pyplot, so no global state or display is touched.

Example:

```python
from kgrad.analysis import plots
from kgrad.analysis import report

scalars, run_info = report.load_run("logs/exp1")
with open("flow.png", "wb") as f:
    f.write(plots.figure_png(plots.gradient_flow_figure(scalars, run_info)))
```
"""

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kgrad.analysis import layer_profile, temporal_plots, temporal_profile


def default_steps(scalars, count=5):
    """Up to `count` logged steps spread over the run, the first and last included."""
    steps = layer_profile.norm_steps(scalars)
    if len(steps) <= count:
        return steps
    targets = np.linspace(steps[0], steps[-1], count)
    picks = {min(steps, key=lambda s, t=t: abs(s - t)) for t in targets}
    return sorted(picks)


def gradient_flow_figure(scalars, run_info, steps=None, title=None):
    """Gradient norm per layer from input to output, one line per logged step.

    Args:
        scalars: `diagnostics.Scalars` of one run.
        run_info: The run's `tags.RUN_INFO` object, or `None`/`{}`.
        steps: Logged steps to draw; a handful spread over the run if `None`.
            Defaults to `None`.
        title: Figure title. Defaults to `None` (the model name).

    Returns:
        A `matplotlib.figure.Figure` (log-scale y axis); with a second panel,
        the gradient reaching each timestep, when the model has recurrent
        layers.
    """
    steps = default_steps(scalars) if steps is None else list(steps)
    temporal = temporal_profile.recurrent_layers(scalars, run_info)
    fig, ax = _figure(panels=2 if temporal else 1)
    names = []
    colors = _colors(len(steps), "viridis")
    for color, step in zip(colors, steps, strict=True):
        rows = layer_profile.layer_profile(scalars, run_info, step)
        names = names or [layer_profile.short_name(r.layer, run_info) for r in rows]
        ax.plot(_positive([r.grad_norm for r in rows]), "o-", ms=3, color=color)
        ax.lines[-1].set_label(f"step {step}")
    ax.set_xlabel("layer (input -> output)")
    _layer_ticks(ax, names)
    model = (run_info or {}).get("model")
    _finish(ax, title or f"Gradient flow{f' of {model}' if model else ''}")
    if temporal:
        lines = temporal_plots.run_lines(scalars, run_info, steps, colors)
        temporal_plots.profile_panel(
            fig.axes[1],
            lines,
            f"Through time: {layer_profile.short_name(temporal[0], run_info)}",
        )
    return fig


def compare_figure(runs, title=None):
    """Gradient norm per layer of several runs at their last logged step.

    Runs of different depth share the x axis from input (0) to output (1).

    Args:
        runs: Dict from run name to `(scalars, run_info)`.
        title: Figure title. Defaults to `None` ("Gradient flow").

    Returns:
        A `matplotlib.figure.Figure` (log-scale y axis); with a second panel,
        the gradient reaching each timestep at the last logged step, when the
        runs have recurrent layers.
    """
    colors = _colors(len(runs), "tab10")
    temporal = [  # each run's last profile (step None)
        line
        for color, (name, (scalars, run_info)) in zip(colors, runs.items(), strict=True)
        for line in temporal_plots.run_lines(scalars, run_info, [None], [color], name)
    ]
    fig, ax = _figure(panels=2 if temporal else 1)
    for color, (name, (scalars, run_info)) in zip(colors, runs.items(), strict=True):
        rows = layer_profile.layer_profile(scalars, run_info)
        depth = np.linspace(0, 1, len(rows)) if len(rows) > 1 else np.zeros(len(rows))
        step = layer_profile.norm_steps(scalars)[-1] if rows else None
        norms = _positive([r.grad_norm for r in rows])
        ax.plot(depth, norms, "o-", ms=3, color=color, label=f"{name} (step {step})")
    ax.set_xlabel("depth (0 = input layer, 1 = output layer)")
    _finish(ax, title or "Gradient flow")
    if temporal:
        temporal_plots.profile_panel(
            fig.axes[1], temporal, "Through time, at the last logged step"
        )
    return fig


def temporal_heat_map(scalars, run_info, title=None):
    """The `tags.TEMPORAL_PROFILE` image (`temporal_plots.heat_map_figure`)."""
    return temporal_plots.heat_map_figure(scalars, run_info, title=title)


def figure_png(fig):
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


MAX_LABELS = 40
"""At most this many layer names on the x axis; with more layers, every k-th."""


def _figure(panels=1):
    # Fixed margins, not `layout="constrained"`: with hundreds of layer names
    # the constrained solver gives up and prints a warning on the user's stderr.
    width = 9 + 5 * (panels - 1)
    fig = Figure(figsize=(width, 5))
    fig.subplots_adjust(
        left=0.8 / width, right=0.98, top=0.92, bottom=0.34, wspace=0.25
    )
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    return fig, axes[0]


def _layer_ticks(ax, names):
    """Layer names under their points; every k-th one when there are many."""
    every = max(1, math.ceil(len(names) / MAX_LABELS))
    positions = list(range(0, len(names), every))
    ax.set_xticks(positions)
    ax.set_xticklabels(
        [_clip(names[i]) for i in positions], rotation=60, ha="right", fontsize=7
    )
    if every > 1:
        ax.set_xlabel(
            f"layer (input -> output; {len(names)} layers, every {every}-th named)"
        )


def _clip(name, limit=28):
    return name if len(name) <= limit else "..." + name[-(limit - 3) :]


def _finish(ax, title):
    ax.set_yscale("log")
    ax.set_ylabel("gradient L2 norm (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)


def _colors(count, cmap):
    from matplotlib import colormaps

    colormap = colormaps[cmap]
    if cmap == "tab10":
        return [colormap(i % 10) for i in range(count)]
    return [colormap(x) for x in np.linspace(0.1, 0.9, max(count, 1))][:count]


def _positive(values):
    """Values for a log axis: zero, negative and non-finite become gaps."""
    return [v if math.isfinite(v) and v > 0 else math.nan for v in values]
