"""The layout of the packed statistics vector, the same on every backend.

The capture of a logged step packs its statistics into one vector, so that
the host reads everything with a single transfer: float64 on TensorFlow
(`kgrad.monitor.step.packed`), float32 on JAX (`kgrad.monitor.step.jax_capture`).
`Layout` says where each field lies; `HEADER` lists the scalar fields. This
module needs neither TensorFlow nor JAX: the step logger and the tag scheme
read captures through it.

Tested in tests/test_stats.py and tests/jax/test_jax_capture.py.

Example:

>>> import numpy as np
>>> layout = statistics_layout(n=2, bins=3)
>>> {"grad_sq", "has_grad"} <= set(layout.unpack(np.zeros(layout.size)))
True
"""

import numpy as np


class Layout:
    """Fixed layout of the packed statistics vector.

    Args:
        fields: List of `(name, shape)`.

    Example:

    >>> layout = Layout([("a", (2,)), ("b", (2, 3))])
    >>> layout.size
    8
    >>> layout.unpack(np.arange(8.0))["b"].shape
    (2, 3)
    """

    def __init__(self, fields):
        self.fields = [(name, tuple(shape)) for name, shape in fields]
        self.size = sum(int(np.prod(shape)) for _, shape in self.fields)

    def pack(self, values):
        """Concatenates a dict of TensorFlow tensors into one float64 vector."""
        import tensorflow as tf  # the TensorFlow capture's; JAX packs its own

        parts = [
            tf.reshape(tf.cast(values[name], tf.float64), [int(np.prod(shape))])
            for name, shape in self.fields
        ]
        return tf.concat(parts, 0)

    def unpack(self, vector):
        """Splits a packed numpy vector into a dict of arrays."""
        out, start = {}, 0
        for name, shape in self.fields:
            size = int(np.prod(shape))
            out[name] = np.asarray(vector[start : start + size]).reshape(shape)
            start += size
        return out


HEADER = (
    "capture_count",
    "record",
    "step",
    "skipped",
    "applied",
    "loss_scale",
    "batch_size",
)
"""The scalar fields of every capture, in the order they are packed:

- `capture_count`: the arming the capture answers (see
  `kgrad.monitor.step.traced`); the host reads a capture when it changed.
- `record`: the number of the `kgrad.monitor.step.packed.Record` whose layout
  packed the vector (0 for `record_statistics`).
- `step`: the optimizer's update count at the step, plus one.
- `skipped`: 1.0 when a loss-scale optimizer skips the step.
- `applied`: 0.0 when the optimizer only accumulates the gradient (with
  `gradient_accumulation_steps`, all batches but the one that updates).
- `loss_scale`: the factor the gradients were divided by (1.0 without one).
- `batch_size`: the batch the first layer kgrad wraps saw in the step, per
  replica (NaN when no wrapped layer ran).
"""


TEMPORAL_POINTS = 16
"""Timesteps kept per recurrent layer in the temporal profile (`sampled_timesteps`)."""


def sampled_timesteps(length, points=TEMPORAL_POINTS):
    """The timesteps a temporal profile of `length` steps keeps, first to last.

    Example:

    >>> sampled_timesteps(50, 4)
    [0, 16, 32, 49]
    """
    count = min(length, points)
    return [j * (length - 1) // max(count - 1, 1) for j in range(count)]


def statistics_layout(n, bins, m=0, r=0, per_example=False):
    """The layout for `n` variables, `m` probed and `r` recurrent layers.

    With `per_example`, two more fields per variable (see
    `kgrad.monitor.step.per_example`): `per_example_sq`, the sum over the batch of
    the squared per-example gradient norms (NaN without a rule), and
    `per_example_count`, the examples they were taken over.
    """
    extra = [("per_example_sq", (n,)), ("per_example_count", (n,))]
    return Layout(
        [(name, ()) for name in HEADER]
        + [
            ("has_grad", (n,)),
            ("grad_sq", (n,)),
            ("nonfinite", (n,)),
            ("weight_sq", (n,)),
            ("update_sq", (n,)),
            ("hist_min", (n,)),
            ("hist_max", (n,)),
            ("hist_counts", (n, bins)),
            ("activations", (m, 2)),
            ("temporal", (r, TEMPORAL_POINTS)),
            ("temporal_length", (r,)),
        ]
        + (extra if per_example else [])
    )
