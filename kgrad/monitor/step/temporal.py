"""The temporal gradient profile of recurrent layers, taken in the train step.

For each recurrent layer (`keras.layers.RNN` and its subclasses SimpleRNN,
LSTM, GRU, ConvLSTM, and each direction of a `Bidirectional`), the profile is
the L2 norm of the loss gradient with respect to the layer's input at each
timestep, over the whole batch: `sqrt(sum over batch and features of
(dL/dx[:, t])^2)`. Vanishing through time shows as a profile that falls by
orders of magnitude from the last timestep to the first (Bengio et al. 1994,
Pascanu et al. 2013).

How: while a monitor is installed (around each train step), the layer's
`call` is wrapped so that its input goes through an identity whose custom gradient
keeps the incoming gradient (no op of its own). Backpropagation runs before
`optimizer.apply`, where the capture takes the kept gradients into the branch of
logged steps that holds the other gradient statistics (`sampled`): a step that
is not logged adds no op and no cond for the profile.

The identity also takes the layer's first trainable weight (its gradient gets
exact zeros added), so backpropagation reaches it even when the layer reads
the data directly. Its cost on every step is that gradient with respect to the
layer's input, which TensorFlow computes inside its backward loop (for a layer
reading the data directly, a small matmul per timestep; none for a layer whose
input needs its gradient anyway).

Edge cases:

- `POINTS` timesteps are kept, evenly spaced from first to last
  (`kgrad.monitor.step.packed.sampled_timesteps`); all of them when the sequence
  is not longer. The length may vary from batch to batch (`None` in the
  input shape): each logged step records its own.
- `go_backwards=True` (the backward half of a `Bidirectional`): the profile
  is stored in processing order, so timestep 0 is the first step the layer
  processed (the last of the sequence).
- Masking / padding: refused for the layer (one warning, no profile): padded
  timesteps get a zero gradient by design, which would read as vanishing.
- `return_sequences=True`: taken as is; each timestep then also receives the
  gradient of its own output, so the profile shows what reaches each step from
  every later layer and loss term.
- Under `tf.distribute` the sums of squares are all-reduced like the other
  statistics (each replica keeps its own, by thread: `MirroredStrategy`
  traces each replica in its own thread); under mixed precision the norms
  are divided by the loss scale.

Tested in tests/test_temporal.py.

Example:

```python
probe = TemporalProbe(model)
[layer.name for layer in probe.layers]  # ['rnn_01']
```
"""

import threading

import keras
import numpy as np
import tensorflow as tf

from kgrad import checks
from kgrad.monitor.step.layout import TEMPORAL_POINTS as POINTS
from kgrad.monitor.step.naming import layer_name
from kgrad.monitor.train_function import keras_hooks


def recurrent_layers(model):
    """The recurrent layers of `model` whose temporal profile can be taken."""
    return [
        layer
        for layer in keras_hooks.all_layers(model)
        if isinstance(layer, keras.layers.RNN)
    ]


class TemporalProbe:
    """Takes the temporal gradient profile of a model's recurrent layers.

    Args:
        model: A `keras.Model`.

    Example:

    ```python
    probe = TemporalProbe(model)
    wrappers = probe.wrappers()  # patched around each train step
    sums, lengths = sampled(probe.take(probe.layers))  # in optimizer.apply
    ```
    """

    def __init__(self, model):
        self.layers = recurrent_layers(model)
        self._kept = {}
        self._refused = set()

    def wrappers(self):
        """`[(layer, "call", wrapper)]` to patch on each recurrent layer."""
        out = []
        for layer in self.layers:
            attribute = keras_hooks.recurrent_call_of(layer)
            out.append((layer, attribute, self._wrap(getattr(layer, attribute), layer)))
        return out

    def _wrap(self, call, layer):
        probe = self

        def call_with_profile(sequences, *args, **kwargs):
            masked = len(args) > 1 and args[1] is not None
            if masked or kwargs.get("mask") is not None:
                probe._refuse(layer)
                return call(sequences, *args, **kwargs)
            anchors = [tf.convert_to_tensor(w) for w in layer.trainable_weights[:1]]
            if not anchors:
                return call(sequences, *args, **kwargs)
            traced = _profiled_identity(
                sequences, anchors[0], lambda gradient: probe._keep(layer, gradient)
            )
            return call(traced, *args, **kwargs)

        call_with_profile.__name__ = getattr(call, "__name__", "call")
        return call_with_profile

    def _keep(self, layer, gradient):
        self._kept[_key(layer)] = _Kept(gradient, layer.go_backwards)

    def _refuse(self, layer):
        if id(layer) in self._refused:
            return
        self._refused.add(id(layer))
        checks.warn(
            f"kgrad: no temporal gradient profile for {layer_name(layer)}: it "
            "receives a mask (Masking layer or `mask_zero=True`); padded timesteps "
            "get a zero gradient by design, which would read as vanishing."
        )

    def take(self, layers):
        """This step's input gradients of `layers` (`None` if absent).

        Called in the traced `optimizer.apply`, after backpropagation, outside
        any branch (the gradients live in the step's graph); `sampled` turns
        them into the packed rows inside the capture's armed branch.

        Args:
            layers: The recurrent layers whose profile goes with the optimizer.
        """
        return [self._kept.pop(_key(layer), None) for layer in layers]


def sampled(taken):
    """`([r, POINTS] sums of squares, [r] lengths)` of what `take` returned.

    Called inside the capture's branch of logged steps. NaN rows and length 0
    where no profile was taken. Under `tf.distribute` the caller all-reduces
    the sums outside its branch, then takes `norms`.
    """
    rows, lengths = [], []
    for kept in taken:
        if kept is None:
            rows.append(tf.fill([POINTS], tf.constant(np.nan, tf.float64)))
            lengths.append(tf.constant(0.0, tf.float64))
            continue
        row, length = _sample(kept.sums())
        rows.append(row)
        lengths.append(length)
    if not rows:
        return tf.zeros([0, POINTS], tf.float64), tf.zeros([0], tf.float64)
    return tf.stack(rows), tf.stack(lengths)


def norms(sums, scale):
    """Per-timestep gradient norms from summed squares, unscaled by `scale`."""
    return tf.sqrt(sums) / tf.cast(scale, tf.float64)


def _key(layer):
    """The layer, in this graph and replica (`MirroredStrategy` runs each in its
    thread); a validation pass or another trace never meets this step's sums."""
    graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
    return id(layer), threading.get_ident(), id(graph)


class _Kept:
    """A layer's input gradient of this step, in the order of the sequence."""

    def __init__(self, gradient, backwards):
        self.gradient = gradient
        self.backwards = backwards

    def sums(self):
        """`[T]` float64 sums of squares per timestep, in processing order."""
        square = tf.square(tf.cast(self.gradient, tf.float64))
        axes = [0, *range(2, len(self.gradient.shape))]
        sums = tf.reduce_sum(square, axis=axes)
        return tf.reverse(sums, [0]) if self.backwards else sums


def _profiled_identity(sequences, anchor, keep):
    """`sequences` unchanged; its gradient goes to `keep`, as it is."""

    @tf.custom_gradient
    def identity(x, weight):
        def grad(upstream):
            keep(upstream)
            return upstream, tf.zeros_like(weight)

        return tf.identity(x), grad

    return identity(sequences, anchor)


def _sample(sums):
    """`POINTS` evenly spaced entries of `sums` (NaN-padded) and its length.

    Same timesteps as `kgrad.monitor.step.packed.sampled_timesteps`.
    """
    length = tf.shape(sums)[0]
    count = tf.minimum(length, POINTS)
    j = tf.range(POINTS)
    index = tf.minimum(j * (length - 1) // tf.maximum(count - 1, 1), length - 1)
    padded = tf.concat([sums, tf.constant([np.nan], tf.float64)], 0)
    picked = tf.gather(padded, tf.maximum(index, 0))
    nan = tf.fill([POINTS], tf.constant(np.nan, tf.float64))
    return tf.where(j < count, picked, nan), tf.cast(length, tf.float64)
