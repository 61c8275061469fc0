"""Answers kept while the data they were built from stays the same.

A heat map of 364 variables x 1,000 steps costs TensorBoard's data provider
about a second to read (it builds one Python object per point), so the
Gradients tab keeps each encoded answer with the version of its data (see
`series.HeatMapPlan.version`): reloading the page or polling a run that has
not moved costs one listing, and a run that gained a step is read again.

Tested by `tests/test_dashboard_cache.py`.

Example:

>>> cache = VersionedCache(size=2)
>>> cache.get("train", (1,), lambda: "built at 1")
'built at 1'
>>> cache.get("train", (1,), lambda: "not called")
'built at 1'
>>> cache.get("train", (2,), lambda: "built at 2")
'built at 2'
"""

import collections
import threading


class VersionedCache:
    """At most `size` answers, one per key, each valid for one version.

    Thread-safe (TensorBoard serves requests from several threads); two
    requests that miss the same key at once both build, and the last stored
    wins. The least recently used key is dropped first.

    Args:
        size: How many keys to keep. Defaults to `8`.

    Raises:
        ValueError: If `size` is not a positive integer.
    """

    def __init__(self, size=8):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(
                f"`size` must be a positive integer. Received: size={size!r}"
            )
        self.size = size
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, version, build):
        """The answer of `key` at `version`: the kept one, or `build()`'s.

        Args:
            key: Hashable: what was asked (run, statistic, ...).
            version: Comparable with `==`: the state of the data read.
            build: Called without arguments when no answer is kept for
                `key` at `version`; its result is kept and returned.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(key)
                return entry[1]
        answer = build()
        with self._lock:
            self._entries[key] = (version, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return answer
