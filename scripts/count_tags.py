"""Counts the tags GradientMonitor writes for keras.applications DenseNet121.

Builds DenseNet121 (weights=None, 32x32x3 inputs, 10 classes: no download),
fits it for one step with norms and histograms due, once per tag mode, and
counts the tags the event files hold, read back with TensorBoard's reader.

    python scripts/count_tags.py [LOG_ROOT]
"""

import collections
import sys
import tempfile

import keras
import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from kgrad import GradientMonitor

MODES = {
    "per variable (default)": {},
    "per_layer=True": {"per_layer": True},
    'exclude=["*gamma", "*beta"]': {"exclude": ["*gamma", "*beta"]},
    'per_layer=True, include="conv5*"': {"per_layer": True, "include": "conv5*"},
}


def count_tags(run_dir):
    """`{plugin: number of tags}` of a run directory, by TensorBoard's reader."""
    accumulator = event_accumulator.EventAccumulator(
        run_dir, size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    counts = collections.Counter()
    for tag in accumulator.Tags()["tensors"]:
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        counts[plugin] += 1
    return counts


def main(root):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=2)
    for i, (mode, kwargs) in enumerate(MODES.items()):
        keras.utils.set_random_seed(0)
        model = keras.applications.DenseNet121(
            weights=None, input_shape=(32, 32, 3), classes=10
        )
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        log_dir = f"{root}/mode{i}"
        monitor = GradientMonitor(
            log_dir, norms_every=1, histograms_every=1, figure_secs=None, **kwargs
        )
        model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[monitor])
        counts = count_tags(f"{log_dir}/train")
        print(
            f"{mode}: {sum(counts.values())} tags ({counts['scalars']} scalars, "
            f"{counts['histograms']} histograms, {counts['text']} text, "
            f"{counts['custom_scalars']} layout); "
            f"{len(model.trainable_variables)} trainable variables"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
