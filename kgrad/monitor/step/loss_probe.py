"""The training loss of a logged step, read from Keras's loss tracker.

Keras's train step adds each batch's loss to `model._loss_tracker`, a
`keras.metrics.Mean` whose `total` is the sum of loss x batch size and whose
`count` is the sum of batch sizes since the epoch began. Reading both at batch
begin and at batch end and taking the difference quotient gives exactly the
loss Keras computed on the batch (up to the float32 rounding of the running
sums), at the weights the logged gradients were
taken at (before the update). With `steps_per_execution = N > 1` one call of
the train function runs N steps: the quotient is then their mean loss,
weighted by batch size. The tracker includes the regularization losses, as
Keras's own `loss` does.

The tracker is a Keras internal, read through
`kgrad.monitor.train_function.keras_hooks.loss_totals` (a custom
`train_step` that does not update the tracker logs no loss).

Tested in tests/test_loss_probe.py.

Example:

```python
probe = LossProbe()
probe.begin(model)  # in on_train_batch_begin of a logged batch
...                 # Keras runs the train step
probe.end(model)    # [(tags.LOSS, 0.693)] in on_train_batch_end
```
"""

from kgrad import checks, tags


class LossProbe:
    """Reads the loss of one logged batch from the tracker's difference.

    A failure to read the tracker warns once and logs no loss: it never
    stops training. Costs two host reads of two scalars per logged step.

    Args:
        totals: `model -> (total, count)` of the backend's loss tracker, or
            `None`: `keras_hooks.loss_totals` (TensorFlow). Defaults to `None`.
    """

    def __init__(self, totals=None):
        self._read = totals
        self._start = None
        self._warned = False

    def _totals(self, model):
        try:
            if self._read is None:
                from kgrad.monitor.train_function.keras_hooks import loss_totals

                self._read = loss_totals
            return self._read(model)
        except Exception as error:  # logging never stops training
            if not self._warned:
                self._warned = True
                checks.warn(
                    f"kgrad: the loss tracker could not be read ({error!r}); "
                    f"`{tags.LOSS}` is not logged."
                )
            return None

    def begin(self, model):
        """Remembers the tracker's totals before a logged batch."""
        self._start = self._totals(model)

    def end(self, model):
        """The batch's loss as `[(tags.LOSS, loss)]`, or `[]` if not measurable.

        Nothing is returned when `begin` was not called, the model has no
        tracker, or the tracker did not move (a custom `train_step`).
        """
        start, self._start = self._start, None
        end = self._totals(model) if start is not None else None
        if start is None or end is None:
            return []
        examples = end[1] - start[1]
        if examples <= 0:
            return []
        return [(tags.LOSS, (end[0] - start[0]) / examples)]


def epoch_scalars(logs):
    """The metrics Keras reports at an epoch end, as `(tag, value)` pairs.

    Example:

    >>> [(tags.epoch_metric(t), v) for t, v in epoch_scalars({"loss": 0.5, "n": "x"})]
    [('loss', 0.5)]
    """
    items = []
    for name, value in sorted((logs or {}).items()):
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        items.append((tags.epoch(name), number))
    return items
