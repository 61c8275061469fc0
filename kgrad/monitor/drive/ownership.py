"""One monitor's capture per model at a time, and none left behind.

Two `GradientMonitor`s in one `fit` would wrap the same optimizer twice and
unwrap it in the wrong order; the second one is refused, naming both
`log_dir`s. A capture left installed by a `fit` that an exception stopped
(outside the train step, e.g. in another callback) is removed by the next
monitor that trains the model. Two monitors are in the same `fit` when they
hold the same `params` dict: Keras's `CallbackList` hands one dict to all.

Example:

```python
take_over(model, monitor)  # in on_train_begin: raises if another monitor is on
release(model)  # in on_train_end
```
"""

import os
import weakref

_OWNERS = weakref.WeakKeyDictionary()  # model -> (monitor, params of its fit)


def take_over(model, monitor):
    """Makes `monitor` the one capturing `model`'s gradients in this `fit`.

    Raises:
        ValueError: If another monitor captures in the same `fit`.
    """
    owner = _OWNERS.get(model)
    if owner is not None and owner[0] is not monitor:
        other, params = owner
        if other._capture is not None:
            other._capture.uninstall()
        if params is monitor.params:
            _OWNERS.pop(model, None)
            raise ValueError(
                "Only one GradientMonitor per `fit`: this one logs to "
                f"log_dir={os.fspath(monitor.log_dir)!r}, another to "
                f"log_dir={os.fspath(other.log_dir)!r}. Pass one monitor."
            )
    _OWNERS[model] = (monitor, monitor.params)


def release(model):
    """Forgets the monitor of `model` (its capture is uninstalled)."""
    _OWNERS.pop(model, None)
