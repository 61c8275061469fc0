"""What the forward pass of a train step shows: activations, BatchNorm, batch size.

While a monitor is installed, around each call of Keras's train function,
the `call` of each probed layer (ReLU, sigmoid
and tanh layers, see `step.activation_kinds`) and of each
BatchNormalization layer is wrapped on the instance (never its `activation`
or anything `get_config` and saving read). The wrapper returns the layer's
output unchanged and remembers, for the graph being traced (or for the eager
step), the outputs of probed layers, which BatchNormalization layers ran in
training mode, and the batch size they saw. `optimizer.apply` then takes what
the forward passes of its own train step left (`take`).

Records are kept per graph and per thread: Keras traces its train, test and
predict functions into different graphs, and `MirroredStrategy` traces each
replica in its own thread, so a validation pass never mixes into a train
step and each replica summarises its own share of the batch.

Tested in tests/test_callback.py and tests/test_optimizers.py.

Example:

```python
probes = ForwardProbes(model)
for layer, name, wrapper in probes.wrappers():  # the layers' `call`
    patch(layer, name, wrapper)
# ... inside the traced train step, in optimizer.apply:
seen = probes.take({id(layer)})  # what the forward pass left for `layer`
```
"""

import threading
import weakref

import keras
import tensorflow as tf

from kgrad.monitor.step import activation_kinds
from kgrad.monitor.train_function import keras_hooks


class ForwardSeen:
    """What the forward passes of one step left for `optimizer.apply`.

    Attributes:
        outputs: Dict `id(layer) -> [output, ...]` of the probed layers that ran.
        batchnorm: Dict `id(layer) -> layer` of the BatchNormalization layers that
            ran in training mode.
        batch_size: The leading dimension of the first input a wrapped layer
            saw (a scalar tensor), or `None`.
    """

    def __init__(self):
        self.outputs = {}
        self.batchnorm = {}
        self.batch_size = None


class ForwardProbes:
    """Wraps the `call` of probed and BatchNormalization layers of `model`.

    Args:
        model: A `keras.Model` (its layers may not be built yet).
    """

    def __init__(self, model):
        self.probes = probed_layers(model)
        self.batchnorm_layers = [
            layer
            for layer in keras_hooks.all_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        self._seen = weakref.WeakKeyDictionary()  # graph -> {thread: ForwardSeen}
        self._eager = {}  # thread -> ForwardSeen of the eager step

    def wrappers(self):
        """`[(layer, "call", wrapper)]` to patch on each layer's instance."""
        out = [
            (layer, "call", self._wrap(layer.call, layer, probed=True))
            for layer, _ in self.probes
        ]
        out += [
            (layer, "call", self._wrap(layer.call, layer, probed=False))
            for layer in self.batchnorm_layers
        ]
        return out

    def take(self, layer_ids):
        """What this step's forward passes left for the layers `layer_ids`.

        The outputs and BatchNorm layers returned are forgotten, the others
        are kept for the next `optimizer.apply` of the step (each optimizer of
        a GAN takes its own network's layers).

        Args:
            layer_ids: Set of `id(layer)` of the layers the caller trains.

        Returns:
            A `ForwardSeen` with the outputs and BatchNorm layers of those
            layers only, and the step's batch size.
        """
        seen = self._bucket().get(threading.get_ident()) or ForwardSeen()
        mine = ForwardSeen()
        mine.batch_size = seen.batch_size
        for key in [k for k in seen.outputs if k in layer_ids]:
            mine.outputs[key] = seen.outputs.pop(key)
        for key in [k for k in seen.batchnorm if k in layer_ids]:
            mine.batchnorm[key] = seen.batchnorm.pop(key)
        return mine

    def forget_eager(self):
        """Drops what earlier eager steps left unclaimed."""
        self._eager.clear()

    def _bucket(self):
        if tf.executing_eagerly():
            return self._eager
        graph = tf.compat.v1.get_default_graph()
        bucket = self._seen.get(graph)
        if bucket is None:
            bucket = self._seen[graph] = {}
        return bucket

    def _wrap(self, call, layer, probed):
        probes = self

        def call_and_remember(*args, **kwargs):
            outputs = call(*args, **kwargs)
            probes._remember(layer, probed, args, kwargs, outputs)
            return outputs

        call_and_remember.__name__ = getattr(call, "__name__", "call")
        return call_and_remember

    def _remember(self, layer, probed, args, kwargs, outputs):
        seen = self._bucket().setdefault(threading.get_ident(), ForwardSeen())
        inputs = args[0] if args else kwargs.get("inputs")
        if seen.batch_size is None and inputs is not None:
            first = tf.nest.flatten(inputs)[0]
            seen.batch_size = tf.shape(first)[0]
        if probed:
            seen.outputs.setdefault(id(layer), []).append(outputs)
        training = kwargs.get("training", args[1] if len(args) > 1 else None)
        if not probed and layer.trainable and training not in (None, False):
            seen.batchnorm[id(layer)] = layer


def probed_layers(model):
    """Layers of `model` (nested ones included) whose activations are probed."""
    return activation_kinds.probed(keras_hooks.all_layers(model))
