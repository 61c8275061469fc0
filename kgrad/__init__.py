"""kgrad: see the gradients of Keras 3 models in TensorBoard.

The package has three parts, one folder each:

- `kgrad.monitor`: runs during training and touches Keras and TensorFlow (the
  `GradientMonitor` callback, the in-step capture, the event writer).
- `kgrad.analysis`: reads event files back, diagnoses, tabulates and plots;
  it never imports TensorFlow, so `kgrad report` starts in a blink.
- `kgrad.lab`: the model zoo, the small data sets and the experiments behind
  `kgrad demo`.

`GradientMonitor`, `zoo` and `data` are imported on first use, so that the
commands that only read event files start without TensorFlow.

Example:

```python
from kgrad import GradientMonitor, data, zoo

model = zoo.build("mlp_sigmoid")
```
"""

import importlib

__all__ = ["GradientMonitor", "data", "zoo"]
__version__ = "0.1.0"

_LAZY = {
    "GradientMonitor": ("kgrad.monitor.drive.callback", "GradientMonitor"),
    "data": ("kgrad.lab.data", None),
    "zoo": ("kgrad.lab.zoo", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'kgrad' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value
