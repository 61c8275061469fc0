"""Where a resumed training run starts, so the logging grid does not shift.

A fresh monitor counts train steps from the position training resumes at,
not from 1: after `keras.callbacks.BackupAndRestore` (or `fit(initial_epoch=k)`)
the schedule's every-N grid and early steps are those of the uninterrupted
run, and the steps already trained are not logged densely again. The
position is the larger of the epochs already run times the steps per epoch
and the optimizer's update count (times its gradient accumulation), read at
the first epoch of a `fit`, after BackupAndRestore restored the model in its
`on_train_begin`.

Example:

```python
seen = trained_steps(model, epoch=2, steps_per_epoch=5)  # 10 after 2 epochs
```
"""

import keras


def trained_steps(model, epoch, steps_per_epoch):
    """Train steps already run when a `fit` starts its epoch `epoch`.

    Args:
        model: The model, after any restore.
        epoch: The first epoch of the `fit` (0-based; `initial_epoch`).
        steps_per_epoch: Steps per epoch (`params["steps"]`), or `None`.

    Returns:
        An int >= 0.
    """
    by_epochs = epoch * steps_per_epoch if steps_per_epoch else 0
    optimizer = getattr(model, "optimizer", None)
    by_updates = 0
    if optimizer is not None and getattr(optimizer, "built", False):
        accumulation = getattr(optimizer, "gradient_accumulation_steps", None) or 1
        by_updates = (
            int(keras.ops.convert_to_numpy(optimizer.iterations)) * accumulation
        )
    return max(by_epochs, by_updates)
