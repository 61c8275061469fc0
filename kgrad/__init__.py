"""kgrad: see the gradients of Keras 3 models in TensorBoard.

`GradientMonitor` is imported on first use, so that `kgrad report` and the
other commands that only read event files start without TensorFlow.
"""

__all__ = ["GradientMonitor"]
__version__ = "0.1.0"


def __getattr__(name):
    if name == "GradientMonitor":
        from kgrad.callback import GradientMonitor

        return GradientMonitor
    raise AttributeError(f"module 'kgrad' has no attribute {name!r}")
