"""The TensorFlow side of the capture, behind a small interface (the backend seam).

The capture needs four things from the backend that trains, and takes them
from this module only:

- `cond(predicate, true_fn, false_fn)`: a branch that runs on logged steps
  only, its skipped side costing one call (`tf.cond` kept as functions, see
  `kgrad.monitor.train_function.keras_hooks.conds_kept_as_functions`);
- `state_variable(...)`: a variable kept between steps, written in the
  traced step and read on the host (the channel's packed vector, the arming
  flag), one per replica set (`ON_READ`, first replica);
- `all_reduce(tensors, mean)`, `all_reduce_present(grads)`: the sum (mean)
  across replicas, outside any cond;
- `replica_count(model)`, `in_current_graph(tensors)`.

Everything else stays backend-free: `kgrad.monitor.step.layout` (the
layout, `Layout.unpack` on numpy), what `GradientCapture.read` hands the step
logger (`(channel, record, dict of numpy arrays)`) and the whole
`kgrad.monitor.log` room. The JAX capture (`kgrad.monitor.step.jax_capture`)
has its own parts (`jax.lax.cond`, variables lent to the optimizer);
`kgrad.monitor.drive.backends` picks the capture; see docs/ARCHITECTURE.md.
Tested in tests/test_backend_tensorflow.py (both sides of the seam), and
through tests/test_callback.py and tests/test_distribute.py.

Example:

>>> all_reduce([tf.constant(1.0)])  # no strategy: unchanged
[<tf.Tensor: shape=(), dtype=float32, numpy=1.0>]
"""

import tensorflow as tf

from kgrad.monitor.train_function import keras_hooks


def cond(predicate, true_fn, false_fn):
    """`tf.cond(predicate, true_fn, false_fn)`, its branches kept as functions.

    Inside `tf.function` TensorFlow lowers a `tf.cond` to Switch/Merge ops
    inlined into the caller's graph, so every op of the branch not taken is
    still visited each step; kept as functions, the `If` op calls the branch
    taken and nothing else (what TensorFlow does inside XLA). Conds built
    inside the branches are kept as functions too.

    Example:

    >>> @tf.function
    ... def halve_if(flag, x):
    ...     return cond(flag, lambda: x / 2, lambda: x)
    >>> halve_if(tf.constant(True), tf.constant(4.0)).numpy()
    np.float32(2.0)
    """
    with keras_hooks.conds_kept_as_functions():
        return tf.cond(predicate, true_fn, false_fn)


def state_variable(initial, name, shape=None):
    """A non-trainable variable written in the traced step, read on the host.

    Args:
        initial: Its initial value (a tensor).
        name: Its name.
        shape: Its shape, `None` for the shape of `initial`. Defaults to `None`.
    """
    return tf.Variable(
        initial,
        shape=shape,
        trainable=False,
        name=name,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


def vector_variable(name):
    """A float64 `state_variable` of a length set later (`assign`)."""
    return state_variable(tf.zeros([0], tf.float64), name, tf.TensorShape([None]))


def replica_count(model):
    """The replicas `model` trains on (1 without a distribution strategy)."""
    return model.distribute_strategy.num_replicas_in_sync


def all_reduce_present(grads):
    """`all_reduce` of the gradients that are not `None`."""
    present = [g for g in grads if g is not None]
    reduced = iter(all_reduce(present))
    return [None if g is None else next(reduced) for g in grads]


def all_reduce(tensors, mean=False):
    """Sums (or averages) per-replica tensors under a distribution strategy.

    Outside a multi-replica context the tensors are returned unchanged. Never
    inside a `cond` (no cross-replica sync inside control flow).
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1 or not tensors:
        return tensors
    op = tf.distribute.ReduceOp.MEAN if mean else tf.distribute.ReduceOp.SUM
    return context.all_reduce(op, tensors)


def in_current_graph(tensors):
    """Whether `tensors` (`None`s allowed) belong to the graph being traced."""
    graph = tf.compat.v1.get_default_graph()
    return tensors is not None and all(
        t is None or getattr(t, "graph", graph) is graph for t in tensors
    )
