"""The files of a run: its event writer, its directory, its gradient-flow figure.

Example:

```python
writer = open_writer("logs/exp1", tf.distribute.get_strategy())
```
"""

import logging
import os
import tempfile

from kgrad import tags
from kgrad.analysis import atomic, plots
from kgrad.monitor.log import event_writer, summaries

logger = logging.getLogger("kgrad")


def write_gradient_flow(writer, path, scalars, run_info, step, title):
    """Draws the gradient-flow figure (a TensorBoard image and a PNG file) and,
    for models with recurrent layers, the `tags.TEMPORAL_PROFILE` heat map.

    Runs in the worker thread at the end of `fit`.
    """
    if not writer.enabled:
        return
    figure = plots.gradient_flow_figure(scalars, run_info, title=title)
    png = plots.figure_png(figure)
    width, height = (int(v) for v in figure.canvas.get_width_height())
    value = summaries.image_value(tags.GRADIENT_FLOW, png, width, height)
    writer.write(step, [value])
    if not writer.guard(lambda: atomic.write_bytes(path, png)):
        logger.error("kgrad: %s was not written (the figure stays as it was).", path)
    heat_map = plots.temporal_heat_map(scalars, run_info, title=title)
    if heat_map is not None:
        width, height = (int(v) for v in heat_map.canvas.get_width_height())
        png = plots.figure_png(heat_map)
        value = summaries.image_value(tags.TEMPORAL_PROFILE, png, width, height)
        writer.write(step, [value])


def open_writer(log_dir, strategy):
    """The writer of `log_dir/train`; it writes only on the chief.

    Every worker of a multi-worker run captures (the all-reduce of the logged
    gradients needs all of them); only the chief checks and writes `log_dir`.
    """
    from kgrad.monitor.step import replicas  # `record` runs on TensorFlow only

    chief = replicas.is_chief(strategy)
    if chief:
        check_writable(log_dir)
    return event_writer.RunWriter(os.path.join(log_dir, "train"), enabled=chief)


def check_writable(log_dir):
    """Raises a `ValueError` naming `log_dir` when it cannot be written."""
    try:
        os.makedirs(log_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=log_dir):
            pass
    except OSError as error:
        raise ValueError(
            f"`log_dir` cannot be written ({error.strerror}). "
            f"Received: log_dir={os.fspath(log_dir)!r}"
        ) from None
