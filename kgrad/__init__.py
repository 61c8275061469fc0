"""kgrad: see the gradients of Keras 3 models in TensorBoard."""

from kgrad.callback import GradientMonitor

__all__ = ["GradientMonitor"]
__version__ = "0.1.0"
