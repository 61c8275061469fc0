"""Device-to-host reads that a logged step adds, counted during `fit`.

Used by `benchmarks/perf/overhead.py` (column `host reads/logged step`): every
`.numpy()` of an eager tensor is one read.

Example:

    with count_host_reads() as counter:
        model.fit(x, y, epochs=1, verbose=0)
    print(counter[0])
"""

import contextlib


@contextlib.contextmanager
def count_host_reads():
    """Counts device-to-host reads of eager tensors (`.numpy()`, `np.asarray`)."""
    from tensorflow.python.framework import ops

    original = ops._EagerTensorBase._numpy
    counter = [0]

    def counting(self):
        counter[0] += 1
        return original(self)

    ops._EagerTensorBase._numpy = counting
    try:
        yield counter
    finally:
        ops._EagerTensorBase._numpy = original


def host_reads_per_logged_step(bench, steps):
    """Extra host reads per step of a fit with `b` (every step logged).

    `bench` is an `overhead.Bench`; its `fit(config, steps)` runs one fit.

    The slope between fits of `steps` and `2 * steps` steps, minus the same
    slope for plain fits, so that once-per-fit reads do not count.
    """
    if "b" not in bench.callbacks:
        return float("nan")
    slopes = {}
    for config in ("plain", "b"):
        counts = []
        for n in (steps, 2 * steps):
            with count_host_reads() as counter:
                bench.fit(config, n)
            counts.append(counter[0])
        slopes[config] = (counts[1] - counts[0]) / steps
    return slopes["b"] - slopes["plain"]
