"""A bounded record of the scalars a run wrote, for diagnosing it in memory.

The callback diagnoses at each epoch end from what it has logged, in the
`kgrad.analysis.diagnostics.Scalars` format. To keep memory flat over long runs, each
tag keeps its first `head` values (the explosion and outcome rules compare
against the start) and its last `keep` values (the other rules use the latest
logged steps).

Example:

>>> history = ScalarHistory(keep=2)
>>> for step in (1, 2, 3):
...     history.add(step, [("loss", float(step))])
>>> history.scalars()["loss"]
[(1, 1.0), (2, 2.0), (3, 3.0)]
"""

import collections


class ScalarHistory:
    """Per-tag first `head` values plus the last `keep` values.

    Args:
        keep: How many of the latest values to keep per tag. Defaults to `50`.
        head: How many of the first values to keep per tag. Defaults to `8`.
    """

    def __init__(self, keep=50, head=8):
        self.keep = keep
        self.head = head
        self._first = collections.defaultdict(list)
        self._recent = collections.defaultdict(lambda: collections.deque(maxlen=keep))

    def add(self, step, items):
        """Adds `(tag, value)` pairs logged at `step`."""
        for tag, value in items:
            first = self._first[tag]
            if len(first) < self.head:
                first.append((step, value))
            self._recent[tag].append((step, value))

    def scalars(self):
        """The record as `{tag: [(step, value), ...]}`, sorted by step."""
        out = {}
        for tag, recent in self._recent.items():
            after = recent[0][0] if recent else None
            head = [p for p in self._first[tag] if after is None or p[0] < after]
            out[tag] = head + list(recent)
        return out
