"""Matplotlib panels of the temporal gradient profile of recurrent layers.

`profile_panel` draws, on a given axis, the gradient norm reaching each
timestep (log scale) at a few logged steps; `heat_map_figure` is the image
TensorBoard shows as `tags.TEMPORAL_PROFILE` (timestep x logged step).
Built with `matplotlib.figure.Figure`, never pyplot.

Example:

```python
from kgrad.analysis import report, temporal_plots

scalars, run_info = report.load_run("logs/rnn")
figure = temporal_plots.heat_map_figure(scalars, run_info)  # None without RNNs
```
"""

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from kgrad.analysis import temporal_profile

MAX_LAYERS = 4
"""At most this many recurrent layers are drawn (the first ones, input side)."""


def profile_panel(ax, lines, title):
    """Draws `(label, [(timestep, norm)], color)` lines: norm per timestep.

    Args:
        ax: A matplotlib axis.
        lines: The profiles to draw.
        title: The panel's title.
    """
    for label, points, color in lines:
        positive = [(t, v) for t, v in points if math.isfinite(v) and v > 0]
        if positive:
            t, v = zip(*positive, strict=True)
            ax.plot(t, v, "o-", ms=2, color=color, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("timestep (0 = first processed)")
    ax.set_ylabel("gradient norm at the input (log)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)


def run_lines(scalars, run_info, steps, colors, label=None):
    """Profile lines of a run's first recurrent layer at `steps` (for the panel)."""
    layers = temporal_profile.recurrent_layers(scalars, run_info)
    if not layers:
        return []
    layer = layers[0]
    return [
        (
            label or f"step {step}",
            temporal_profile.profile(scalars, layer, step),
            color,
        )
        for step, color in zip(steps, colors, strict=True)
    ]


def heat_map_figure(scalars, run_info, title=None):
    """Timestep x logged step heat map per recurrent layer, or `None` if none.

    Args:
        scalars: `diagnostics.Scalars` of one run.
        run_info: The run's `tags.RUN_INFO` object, or `None`/`{}`.
        title: Figure title. Defaults to `None` (the model name).

    Returns:
        A `matplotlib.figure.Figure` (log colour scale), or `None`.
    """
    layers = temporal_profile.recurrent_layers(scalars, run_info)[:MAX_LAYERS]
    if not layers:
        return None
    fig = Figure(figsize=(4.5 * len(layers) + 1, 4), layout="constrained")
    FigureCanvasAgg(fig)
    for index, layer in enumerate(layers):
        ax = fig.add_subplot(1, len(layers), index + 1)
        timesteps, steps, norms = temporal_profile.heat_map(scalars, layer)
        finite = norms[np.isfinite(norms) & (norms > 0)]
        if finite.size == 0:
            continue
        image = ax.imshow(
            np.where(norms > 0, norms, np.nan),
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            norm=LogNorm(vmin=finite.min(), vmax=finite.max()),
            cmap="viridis",
        )
        _ticks(ax.set_yticks, ax.set_yticklabels, timesteps)
        _ticks(ax.set_xticks, ax.set_xticklabels, steps)
        ax.set_xlabel("logged training step")
        ax.set_ylabel("timestep (0 = first processed)")
        ax.set_title(layer, fontsize=9)
        fig.colorbar(image, ax=ax, label="gradient norm at the input")
    model = (run_info or {}).get("model")
    fig.suptitle(
        title or f"Gradient reaching each timestep{f' of {model}' if model else ''}"
    )
    return fig


def _ticks(set_positions, set_labels, values, count=6):
    positions = temporal_profile.picks(list(range(len(values))), count)
    set_positions(positions)
    set_labels([str(values[i]) for i in positions], fontsize=7)
