"""Event files read back with TensorBoard's own reader.

Example:

    events = read_events("logs/exp1/train")  # {tag: [(step, numpy value)]}
    texts = read_texts("logs/exp1/train", tags.FINDINGS_DATA)  # [(step, str)]
"""

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util  # not TensorFlow's: the JAX suite uses it


def read_events(run_dir):
    """Reads a run directory with TensorBoard's own reader.

    Returns:
        Dict from tag to a list of `(step, numpy value)`, in step order.
    """
    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return {
        tag: [
            (e.step, tensor_util.make_ndarray(e.tensor_proto))
            for e in accumulator.Tensors(tag)
        ]
        for tag in accumulator.Tags()["tensors"]
    }


def read_texts(run_dir, tag):
    """`[(step, text)]` of the text summary `tag` of a run directory."""
    return [(step, value.item().decode()) for step, value in read_events(run_dir)[tag]]
