"""Synthetic kgrad runs written like the callback writes them, for the report."""

from kgrad import tags
from kgrad.monitor.log import event_writer, summaries


def write_run(log_dir, input_norm, model="m", steps=range(1, 6)):
    """A synthetic kgrad run of three Dense layers, written like the callback."""
    layers = [f"{model}/dense_1", f"{model}/dense_2", f"{model}/output"]
    info = {
        "model": model,
        "variables": [f"{layer}/{v}" for layer in layers for v in ("kernel", "bias")],
        "layers": [[layers[0], "relu"], [layers[1], "relu"]],
        "batchnorm_layers": [],
        "batch_size": 16,
    }
    writer = event_writer.RunWriter(str(log_dir / "train"))
    for step in steps:
        values = [summaries.run_info_value(info)] if step == steps[0] else []
        for layer, norm in zip(layers, [input_norm, 0.5, 1.0], strict=True):
            values += [
                summaries.scalar_value(
                    tags.tag(tags.GRAD_NORM, f"{layer}/kernel"), norm
                ),
                summaries.scalar_value(
                    tags.tag(tags.WEIGHT_NORM, f"{layer}/kernel"), 2.0
                ),
                summaries.scalar_value(
                    tags.tag(tags.UPDATE_RATIO, f"{layer}/kernel"), 1e-3
                ),
            ]
        values += [
            summaries.scalar_value(tags.GLOBAL_GRAD_NORM, 1.2),
            summaries.scalar_value(tags.GLOBAL_NONFINITE, 0.0),
            summaries.scalar_value(tags.tag(tags.DEAD_UNITS, layers[0]), 0.1),
        ]
        writer.write(step, values)
    writer.close()
    return str(log_dir)
