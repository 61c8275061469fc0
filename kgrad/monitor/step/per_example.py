"""Per-example gradient norms, taken inside the train step's own backward pass.

With `GradientMonitor(noise_scale=True)`, while a monitor is installed (around
each call of Keras's train function), the `call` of every layer with a rule
(`kgrad.monitor.step.per_example_rules`) is wrapped on the instance. The wrapper
keeps the layer's input `a`, and puts an identity with a custom gradient on
the output of the layer's affine part (inside its `activation`, which is
swapped on the instance for the duration of that one call, then put back) or
on its output (Embedding, LayerNorm, BatchNorm). When backpropagation reaches
that identity, its gradient `g` is handed on unchanged, and the rule turns `a`
and `g` into the sum over the batch of the squared per-example gradient norms
of each weight, on logged steps only, in one of two places:

- grouped (most layers): `a` and `g` are kept until `optimizer.apply`, and
  the rules of all grouped layers run inside the branch that already packs
  the logged step's statistics (`kgrad.monitor.step.traced`): a step that is
  not logged runs only the identities, no extra cond. A layer is grouped when
  its `a` and `g` hold at most `GROUPED_VALUES` values per example (64 KB in
  float32), which bounds what is held past backpropagation;
- on its own (larger layers, or shapes unknown at trace time): inside a cond
  on the capture's armed flag, right where `g` appears, so no tensor is kept
  past its use in backpropagation; a step that is not logged runs the
  identity and a cond that returns zeros (beside such a layer's own work, the
  cond's fixed cost is small).

The loss Keras differentiates is a mean over the batch (and over replicas
under `tf.distribute`), so `g` holds each example's contribution to the mean
gradient: the sums are multiplied by `N^2` (`N` = the global batch, each
replica's batch times the replicas), which makes each term the squared norm of
a per-example gradient `g_i` whose mean over the batch is the batch gradient.
Under mixed precision the host divides by the loss scale squared.

A layer called more than once in a step (shared weights, a GAN's
discriminator on real and fake), or whose call runs inside a loop or a cond
of its own (an RNN's cell), gives no sums that step; the host names it as not
covered, as it names layers without a rule.

Tested in tests/test_per_example.py and tests/test_noise_scale.py.

Example:

```python
probe = PerExampleProbe(model, armed=lambda: tf.constant(True))
wrappers = probe.chain(wrappers)  # around each train step, with the others
sums, counts = packed_per_example(probe.take(variables), variables)  # logged branch
```
"""

import threading

import numpy as np
import tensorflow as tf

from kgrad import checks
from kgrad.monitor.step import backend_tensorflow as backend
from kgrad.monitor.step import naming
from kgrad.monitor.step.per_example_rules import rule_of
from kgrad.monitor.train_function import keras_hooks


def own_trainable(layer):
    """The trainable variables `layer` holds itself, not through sub-layers."""
    below = {
        id(v)
        for child in keras_hooks.child_layers(layer)
        for v in child.trainable_variables
    }
    return [v for v in layer.trainable_variables if id(v) not in below]


class PerExampleProbe:
    """Takes per-example gradient norms of a model's covered layers.

    Args:
        model: A `keras.Model` (its layers may not be built yet).
        armed: Callable returning the capture's armed flag (a bool tensor),
            called in the traced step.

    Attributes:
        layers: `[(layer, rule)]` of the layers with a rule.
        uncovered: `{layer name: reason}` of layers with trainable weights of
            their own and no rule (known when the model is built).
    """

    def __init__(self, model, armed):
        self.armed = armed
        self.layers = []
        self.uncovered = {}
        for layer in [*keras_hooks.all_layers(model), model]:
            rule = rule_of(layer)
            if rule.norms is not None:
                self.layers.append((layer, rule))
            elif own_trainable(layer):
                self.uncovered[naming.layer_name(layer, model.name)] = rule.reason
        self._kept = {}  # key -> {id(variable): (sum, count)}, or None if repeated
        self._calls = {}  # key -> calls of the layer in this step

    def variable_ids(self, rule_name):
        """`id`s of the weights of the layers that take the rule `rule_name`."""
        return {
            id(v)
            for layer, rule in self.layers
            if rule.name == rule_name
            for v in layer.trainable_variables
        }

    def chain(self, wrappers):
        """`wrappers` with the covered layers' `call` wrapped too.

        A layer whose `call` another probe already wraps gets its wrapper
        wrapped, so both run.
        """
        out = list(wrappers)
        where = {(id(obj), name): i for i, (obj, name, _) in enumerate(out)}
        for layer, rule in self.layers:
            i = where.get((id(layer), "call"))
            inner = out[i][2] if i is not None else layer.call
            wrapped = (layer, "call", self._wrap(inner, layer, rule))
            if i is None:
                out.append(wrapped)
            else:
                out[i] = wrapped
        return out

    def _wrap(self, call, layer, rule):
        probe = self

        def call_with_norms(*args, **kwargs):
            inputs = args[0] if args else kwargs.get("inputs")
            training = kwargs.get("training", args[1] if len(args) > 1 else None)
            masked = kwargs.get("mask") is not None
            key = _key(layer)
            probe._calls[key] = probe._calls.get(key, 0) + 1
            if masked or inputs is None or not tf.is_tensor(inputs):
                probe._kept[key] = None
                return call(*args, **kwargs)
            armed = probe.armed()

            def keep(z):
                return _kept_identity(
                    z,
                    lambda g: probe._on_gradient(
                        layer, rule, inputs, g, armed, training
                    ),
                )

            activation = getattr(layer, "activation", None)
            if not rule.affine or activation is None:
                return keep(call(*args, **kwargs))
            restore = []
            keras_hooks.patch(
                layer, "activation", lambda z: activation(keep(z)), restore
            )
            try:
                return call(*args, **kwargs)
            finally:
                restore.pop()()

        call_with_norms.__name__ = getattr(call, "__name__", "call")
        return call_with_norms

    def _on_gradient(self, layer, rule, a, g, armed, training):
        key = _key(layer)
        if self._calls.get(key, 0) != 1 or key in self._kept:
            self._kept[key] = None  # called or differentiated more than once
            return
        ids = [id(v) for v in own_trainable(layer)]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        zero = tf.constant(0.0, tf.float64)

        def norms():
            count = tf.cast(tf.shape(g)[0], tf.float64)
            factor = tf.square(count * replicas)
            found = rule.norms(layer, a, g, training=training)
            sums = [
                tf.reduce_sum(tf.cast(found[i], tf.float64)) * factor
                if i in found
                else tf.constant(np.nan, tf.float64)
                for i in ids
            ]
            return sums, count

        def by_variable(sums, count):
            return {i: (s, count) for i, s in zip(ids, sums, strict=True)}

        if grouped(a, g):
            self._kept[key] = lambda: by_variable(*norms())
            return
        sums, count = backend.cond(armed, norms, lambda: ([zero for _ in ids], zero))
        self._kept[key] = lambda: by_variable(sums, count)

    def take(self, variables):
        """What this step left for `variables`: a list for `packed_per_example`.

        Called in the traced `optimizer.apply`, after backpropagation, outside
        any branch; the grouped layers' rules run only when the list is packed
        (in the logged step's branch). What it returns is forgotten; layers of
        other variables (another optimizer's) are kept for their own `apply`.
        """
        mine = {id(v) for v in variables}
        found = []
        for layer, _ in self.layers:
            if not mine & {id(v) for v in layer.trainable_variables}:
                continue
            key = _key(layer)
            self._calls.pop(key, None)
            values = self._kept.pop(key, None)
            if values is not None:
                found.append(values)
        return found


GROUPED_VALUES = 1 << 14


def grouped(a, g):
    """Whether a layer's norms wait for the logged step's branch in `apply`.

    True when `a` and `g` hold at most `GROUPED_VALUES` values per example,
    known at trace time.
    """
    shapes = [a.shape[1:], g.shape[1:]]
    if not all(shape.is_fully_defined() for shape in shapes):
        return False
    return sum(shape.num_elements() for shape in shapes) <= GROUPED_VALUES


def per_example_probe(model, enabled, armed):
    """A `PerExampleProbe` of `model` when `enabled`, else `None`.

    Refused (`None`, with a warning) under XLA. The identities alone train
    bit for bit there; but XLA compiles the whole step, logged branch
    included, as one program, and the rules' reads of each layer's input and
    output gradient change how it fuses backpropagation: on the model of
    `tests/test_unchanged.py` (Embedding, attention, Conv1D, GRU, BatchNorm)
    the embeddings ended 1e-9 apart, also with the reads behind an XLA
    optimization barrier; the Dense rule's reads alone did it, and the Conv1D
    rule's, not those of Embedding, EinsumDense, LayerNorm or BatchNorm
    (checked 2026-12-08, TensorFlow 2.21).
    """
    if not enabled:
        return None
    if getattr(model, "jit_compile", False) is True:
        checks.warn(
            "kgrad: noise_scale is off for this model: it is compiled with "
            "XLA (`jit_compile=True`), where reading each layer's gradient "
            "for the per-example norms changes how XLA fuses backpropagation, "
            "and the last bits of the weights. "
            "Compile with `jit_compile=False` to log the noise scale."
        )
        return None
    return PerExampleProbe(model, armed)


def taken_per_example(probe, armed, variables, replicated):
    """`None`, or this step's per-example values of `variables` (in `apply`).

    One replica: the `take` list, packed later in the branch that assigns
    the statistics. Several: `([n] sums, [n] counts)` summed over the
    replicas, outside any branch.
    """
    if probe is None:
        return None
    taken = probe.take(variables)
    if not replicated:
        return taken
    n = len(variables)
    sums, counts = backend.cond(
        armed,
        lambda: packed_per_example(taken, variables),
        lambda: (tf.zeros([n], tf.float64), tf.zeros([n], tf.float64)),
    )
    return tuple(backend.all_reduce([sums, counts]))


def packed_per_example(taken, variables):
    """float64 `([n] sums, [n] counts)`: NaN where no rule gave a value.

    `taken` is what `PerExampleProbe.take` returned; packing runs the grouped
    layers' rules, so it belongs in the branch of a logged step.
    """
    found = {}
    for values in taken:
        found.update(values())
    nan = tf.constant(np.nan, tf.float64)
    sums = [found.get(id(v), (nan, nan))[0] for v in variables]
    counts = [found.get(id(v), (nan, nan))[1] for v in variables]
    if not sums:
        return tf.zeros([0], tf.float64), tf.zeros([0], tf.float64)
    return tf.stack(sums), tf.stack(counts)


def _key(layer):
    """The layer in this graph and thread (each replica traces in its thread)."""
    graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
    return id(layer), threading.get_ident(), id(graph)


def _kept_identity(x, on_gradient):
    """`x` unchanged; its gradient is handed to `on_gradient`, then passed on."""

    @tf.custom_gradient
    def identity(x):
        def grad(upstream):
            on_gradient(upstream)
            return upstream

        return tf.identity(x), grad

    return identity(x)
