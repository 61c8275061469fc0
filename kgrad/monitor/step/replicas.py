"""Sums per-replica tensors under `tf.distribute`, and who writes the logs.

Under a distribution strategy the gradients handed to `optimizer.apply` are
one replica's share: the capture sums them as the optimizer will, outside any
`tf.cond` (no cross-replica sync inside control flow). Only the chief of a
multi-worker run writes event files.

Example:

>>> all_reduce([tf.constant(1.0)])  # no strategy: unchanged
[<tf.Tensor: shape=(), dtype=float32, numpy=1.0>]
"""

import tensorflow as tf

UNSUPPORTED_STRATEGIES = (
    tf.distribute.experimental.ParameterServerStrategy,
    tf.distribute.TPUStrategy,
)


def all_reduce_present(grads):
    """`all_reduce` of the gradients that are not `None`."""
    present = [g for g in grads if g is not None]
    reduced = iter(all_reduce(present))
    return [None if g is None else next(reduced) for g in grads]


def all_reduce(tensors, mean=False):
    """Sums (or averages) per-replica tensors under a distribution strategy.

    Outside a multi-replica context the tensors are returned unchanged.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1 or not tensors:
        return tensors
    op = tf.distribute.ReduceOp.MEAN if mean else tf.distribute.ReduceOp.SUM
    return context.all_reduce(op, tensors)


def is_chief(strategy):
    """Whether this process writes summaries (the chief of a multi-worker run)."""
    return getattr(strategy.extended, "should_save_summary", True)
