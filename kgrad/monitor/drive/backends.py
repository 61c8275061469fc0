"""The backend seam: what `GradientMonitor` builds on TensorFlow and on JAX.

The callback, the schedule, the step logger, the tags and the findings are the
same on both backends; what differs is how the statistics leave Keras's train
step (the capture), what follows Keras's train function through a `fit` (the
watch), where the loss tracker is read, and who writes under a distribution
strategy. Each backend's side imports only its own framework, so that Keras on
JAX needs no TensorFlow. Other backends are refused by name.

Tested in tests/test_never_silent.py (the refusal) and tests/jax/ (the JAX side).

Example:

```python
side = backends.for_backend()  # TensorFlowSide or JaxSide
capture = side.capture(model, bins=30, optimizers=None, noise_scale=False)
watch = side.watch(model, capture, abandon)
```
"""

import warnings

import keras

SUPPORTED = ("tensorflow", "jax")


def require_supported():
    """Raises `ValueError` naming the backend unless it is supported."""
    name = keras.backend.backend()
    if name not in SUPPORTED:
        raise ValueError(
            "GradientMonitor captures gradients with the TensorFlow and JAX "
            "backends (set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before "
            f"importing keras). Received: Keras backend {name!r}"
        )


def for_backend():
    """The side of the current Keras backend."""
    require_supported()
    if keras.backend.backend() == "jax":
        return JaxSide()
    return TensorFlowSide()


class TensorFlowSide:
    """The TensorFlow capture, its train-function watch and strategies."""

    name = "tensorflow"

    def check_model(self, model):
        """Refuses the distribution strategies kgrad does not support."""
        from kgrad.monitor.step.host import check_strategy

        check_strategy(model.distribute_strategy)

    def is_chief(self, model):
        from kgrad.monitor.train_function import keras_hooks

        return keras_hooks.is_chief(model.distribute_strategy)

    def capture(self, model, bins, optimizers, noise_scale):
        from kgrad.monitor.step.host import GradientCapture

        return GradientCapture(
            model, bins=bins, optimizers=optimizers, noise_scale=noise_scale
        )

    def watch(self, model, capture, abandon):
        from kgrad.monitor.train_function.function_watch import TrainFunctionWatch

        return TrainFunctionWatch(model, capture, abandon)

    def loss_totals(self, model):
        from kgrad.monitor.train_function import keras_hooks

        return keras_hooks.loss_totals(model)


class JaxSide:
    """The JAX capture (`kgrad.monitor.step.jax_capture`) and its watch."""

    name = "jax"

    def check_model(self, model):
        """Nothing to refuse: what the capture cannot see is said in `begin`."""

    def is_chief(self, model):
        return True

    def capture(self, model, bins, optimizers, noise_scale):
        from kgrad.monitor.step.jax_capture import JaxCapture

        if noise_scale:
            warnings.warn(
                "kgrad: `noise_scale` needs the TensorFlow backend; on JAX it is "
                "not logged (the per-example norms are made in the backward pass, "
                "and nothing made there leaves Keras's `jax.value_and_grad` but "
                "the trainable variables' gradients).",
                stacklevel=4,
            )
        if optimizers is not None and list(optimizers) != [model.optimizer]:
            warnings.warn(
                "kgrad: on JAX only `model.optimizer` is monitored (Keras's JAX "
                "`fit` passes only its state through the train step); the "
                "`optimizers` argument is ignored.",
                stacklevel=4,
            )
        return JaxCapture(model, bins=bins)

    def watch(self, model, capture, abandon):
        return JaxWatch(model, capture)

    def loss_totals(self, model):
        from kgrad.monitor.train_function import jax_hooks

        return jax_hooks.loss_totals(model)


class JaxWatch:
    """Installs the JAX capture for a `fit` and says what it cannot see.

    Keras's JAX function needs no retrace rules of kgrad's: the capture's
    variables change the state Keras passes its jitted step, which JAX traces
    anew by itself, once.

    Args:
        model: The model being fit.
        capture: Its `kgrad.monitor.step.jax_capture.JaxCapture`.
    """

    blind = False

    def __init__(self, model, capture):
        self._model = model
        self._capture = capture

    def begin(self):
        from kgrad.monitor.step.jax_capture import unsupported

        reason = unsupported(self._model)
        if reason:
            warnings.warn(f"kgrad: {reason}.", stacklevel=4)
        self._capture.install()

    def before_call(self):
        """Nothing: the capture's guard follows a function Keras makes anew."""

    def histograms_ready(self):
        """Always: the JAX step holds the histogram code behind its flag."""
        return True

    def end(self):
        self._capture.uninstall()
