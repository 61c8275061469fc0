"""Steps that never go backwards within a log directory.

A logged step is the update count of the optimizer the gradient went through
(the k-th update is step k). Keras restarts that count at 0 for every new
optimizer (a `compile()` after freezing or unfreezing layers), so each
optimizer slot keeps an offset: when a slot's optimizer is replaced, its
steps continue from the last step the slot reached. The same optimizer
continues its own count across `fit` calls.

Example:

>>> class Opt:
...     def __init__(self, n): self.n = n
>>> counter = StepCounter(iterations=lambda opt: opt.n)
>>> first = Opt(0); counter.begin("optimizer", first); first.n = 10
>>> counter.end("optimizer")
>>> second = Opt(0); counter.begin("optimizer", second)
>>> counter.step("optimizer", 1)
11
"""


class StepCounter:
    """Per-slot offsets that keep steps increasing across optimizers.

    Args:
        iterations: Function from an optimizer to its update count (an int).
    """

    def __init__(self, iterations):
        self._iterations = iterations
        self._slots = {}  # name -> [optimizer, offset]
        self._reached = {}  # name -> last step the slot reached

    def begin(self, name, optimizer):
        """Starts a `fit` with `optimizer` in slot `name`."""
        slot = self._slots.get(name)
        if slot is not None and slot[0] is optimizer:
            return
        reached = self._reached.get(name, 0)
        offset = reached - self._iterations(optimizer) if name in self._reached else 0
        self._slots[name] = [optimizer, offset]

    def end(self, name):
        """Records the step slot `name` reached at the end of a `fit`."""
        optimizer, offset = self._slots[name]
        self._reached[name] = offset + self._iterations(optimizer)

    def continues(self, name, optimizer):
        """Whether `optimizer` resumes at the count slot `name` ended a `fit` at.

        True for the optimizer of a model saved and loaded again (its
        `iterations` are restored): its steps continue the slot's run.
        """
        slot = self._slots.get(name)
        return (
            slot is not None
            and name in self._reached
            and self._iterations(optimizer) == self._iterations(slot[0])
        )

    def reached(self, name):
        """The last step slot `name` reached at the end of a `fit` (0 if none)."""
        return self._reached.get(name, 0)

    def step(self, name, count):
        """The step of the `count`-th update (1-based) of slot `name`'s optimizer."""
        return int(count) + self._slots[name][1]
