"""`tf.cond` whose branches stay functions, so a skipped branch costs one call.

Inside `tf.function`, TensorFlow lowers a `tf.cond` to Switch/Merge ops
inlined into the caller's graph: every op of the branch not taken is still
visited on each step (as a dead tensor), and the branches are optimized with
the whole train step at its first call. kgrad's statistics are skipped on
most steps, so its conds keep their `If` op instead, which calls the branch
taken and nothing else: what TensorFlow itself does inside XLA and for its
single-threaded executor. This costs less on the steps that are not logged and
on the first step (benchmarks/perf/RESULTS.md).

It sets TensorFlow's module-level switch
`control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE` while the cond is
built; if a TensorFlow release drops it, the cond is lowered as usual (the
same results, a little slower).

Example:

>>> import tensorflow as tf
>>> @tf.function
... def halve_if(flag, x):
...     return cond(flag, lambda: x / 2, lambda: x)
>>> halve_if(tf.constant(True), tf.constant(4.0)).numpy()
np.float32(2.0)
"""

import tensorflow as tf

try:
    from tensorflow.python.ops import control_flow_util_v2 as _lowering
except ImportError:  # pragma: no cover - a TensorFlow without the module
    _lowering = None

_SWITCH = "_DISABLE_LOWER_USING_SWITCH_MERGE"


def cond(predicate, true_fn, false_fn):
    """`tf.cond(predicate, true_fn, false_fn)`, its branches kept as functions.

    Conds built inside the branches are kept as functions too.
    """
    if _lowering is None or not hasattr(_lowering, _SWITCH):
        return tf.cond(predicate, true_fn, false_fn)
    before = getattr(_lowering, _SWITCH)
    setattr(_lowering, _SWITCH, True)
    try:
        return tf.cond(predicate, true_fn, false_fn)
    finally:
        setattr(_lowering, _SWITCH, before)
