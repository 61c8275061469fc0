"""Optimizers whose `build` assigns values, on every supported Keras.

`CopiesWeightsInBuild` copies each weight into a slot in `build`, as Keras
3.15's `ScheduleFreeAdamW` copies them into its momentum: an eager build and
the build a plain `fit` makes inside a trace that never runs leave different
slot values, so kgrad must not build it early. It exists on Keras 3.13 too,
which has no `ScheduleFreeAdamW`; `assigning_builds()` lists both where both
exist.

Example:

>>> import keras
>>> optimizer = CopiesWeightsInBuild(0.1)
>>> optimizer.build([keras.Variable([2.0])])
>>> float(optimizer.variables[-1][0])
2.0
"""

import keras
from keras import ops


class CopiesWeightsInBuild(keras.optimizers.SGD):
    """SGD pulled back toward the weights it was built on (a copy made in `build`)."""

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._starts = []
        for variable in variables:
            start = self.add_variable_from_reference(variable, name="start")
            self.assign(start, ops.copy(variable))
            self._starts.append(start)

    def update_step(self, gradient, variable, learning_rate):
        start = self._starts[self._get_variable_index(variable)]
        lr = ops.cast(learning_rate, variable.dtype)
        pull = ops.multiply(0.5, ops.subtract(variable, start))
        self.assign_sub(variable, ops.multiply(lr, ops.add(gradient, pull)))


def assigning_builds():
    """`[(name, make)]` of optimizers whose `build` assigns values, this Keras's."""
    found = [("CopiesWeightsInBuild", lambda: CopiesWeightsInBuild(0.1))]
    if hasattr(keras.optimizers, "ScheduleFreeAdamW"):  # not in Keras 3.13
        found.append(("ScheduleFreeAdamW", keras.optimizers.ScheduleFreeAdamW))
    return found
