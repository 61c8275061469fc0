"""What one traced `optimizer.apply` captures: its variables, layers and layout.

Keras owns its train function and retraces it when it must (a compile, a
`make_train_function(force=True)`, a new input signature). Each trace calls
the wrapped `optimizer.apply` with the variables that optimizer really
updates, which may be known only then (a model built lazily in its first
trace). A `Record` is made for each distinct list of variables an optimizer is
applied to: the variables' tag names, the layers whose statistics go with them
(activation probes, recurrent layers and BatchNorm layers that hold those
variables, or sit in a sub-model that does) and the `Layout` of the packed
vector. Its number travels in the vector's `record` header field, so the host
unpacks each capture with the layout it was packed with.

Example:

```python
owners = LayerOwners(model)
record = Record(1, variables, owners, probes, recurrent, batchnorm, bins=30)
record.layout.size, record.paths
```
"""

from kgrad.monitor.step import naming
from kgrad.monitor.step.packed import statistics_layout
from kgrad.monitor.train_function import keras_hooks


class LayerOwners:
    """Which variables a layer's statistics go with.

    A layer that holds trainable variables goes with them; one that holds
    none (an `Activation` or `ReLU` layer) goes with those of the closest
    enclosing layer or model that does.

    Args:
        model: The `keras.Model` (its layers may not be built yet).
    """

    def __init__(self, model):
        self._parent = {}
        stack = [model]
        while stack:
            layer = stack.pop()
            for child in keras_hooks.child_layers(layer):
                self._parent.setdefault(id(child), layer)
                stack.append(child)

    def variable_ids(self, layer):
        """`id`s of the trainable variables `layer`'s statistics go with."""
        while layer is not None:
            found = {id(v) for v in layer.trainable_variables}
            if found:
                return found
            layer = self._parent.get(id(layer))
        return set()


class Record:
    """The capture of one optimizer applied to one list of variables.

    Args:
        number: The record's number (>= 1), packed in the `record` field.
        variables: The variables `apply` received, in its order.
        owners: The model's `LayerOwners`.
        probes: `[(layer, kind)]` of every activation probe of the model.
        recurrent: Every recurrent layer with a temporal profile.
        batchnorm: Every BatchNormalization layer of the model.
        bins: Histogram buckets.
        increments: Positions of the variables whose update is measured on
            the optimizer's increments (`kgrad.monitor.step.increments`). Defaults
            to `()`: every update is measured on a snapshot.
        per_example: Whether the layout holds per-example gradient norms
            (`kgrad.monitor.step.per_example`). Defaults to `False`.

    Attributes:
        paths: Unique tag names of the variables.
        index: `id(variable) -> row` of the statistics table.
        probes: `[(layer, kind)]` of the probes that go with the variables.
        layer_names: Tag names of those probes, in the same order.
        recurrent: The recurrent layers that go with the variables.
        batchnorm_ids: `id`s of the BatchNorm layers that go with them.
        batchnorm_paths: Paths of those seen training in a traced step.
        layout: The packed vector's `Layout`.
        snapshot_positions: Positions of the other variables, whose update
            is the difference with a copy taken before `apply`.
        snapshot_variables: Those variables.
    """

    def __init__(
        self,
        number,
        variables,
        owners,
        probes,
        recurrent,
        batchnorm,
        bins,
        increments=(),
        per_example=False,
    ):
        self.number = number
        self.variables = list(variables)
        self.increments = list(increments)
        measured = set(self.increments)
        self.snapshot_positions = [
            i for i in range(len(self.variables)) if i not in measured
        ]
        self.snapshot_variables = [self.variables[i] for i in self.snapshot_positions]
        self.paths = naming.variable_names(self.variables)
        self.index = {id(v): i for i, v in enumerate(self.variables)}
        mine = set(self.index)

        def goes_with_me(layer):
            return bool(owners.variable_ids(layer) & mine)

        self.probes = [(layer, kind) for layer, kind in probes if goes_with_me(layer)]
        self.layer_names = naming.layer_names([layer for layer, _ in self.probes])
        self.recurrent = [layer for layer in recurrent if goes_with_me(layer)]
        self.batchnorm_ids = {
            id(layer)
            for layer in batchnorm
            if goes_with_me(layer) or not layer.trainable_variables
        }
        self.batchnorm_paths = set()
        self.layout = statistics_layout(
            len(self.variables),
            bins,
            len(self.probes),
            len(self.recurrent),
            per_example,
        )

    @property
    def layer_ids(self):
        """`id`s of the probed and BatchNorm layers whose forward pass it takes."""
        return {id(layer) for layer, _ in self.probes} | self.batchnorm_ids
