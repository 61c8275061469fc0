"""The 8x8 digits shipped with kgrad (`datasets/digits.npz`), and a split.

The file is scikit-learn's copy of the UCI optical digits (source and licence
in `datasets/README.md`), so the lab needs no scikit-learn.

Example:

>>> images, target = load()
>>> images.shape, target.shape
((1797, 8, 8), (1797,))
"""

import math
import os

import numpy as np

PATH = os.path.join(os.path.dirname(__file__), "datasets", "digits.npz")


def load():
    """`(images, target)`: uint8 pixels 0..16 `[1797, 8, 8]` and classes 0..9."""
    with np.load(PATH) as arrays:
        return arrays["images"], arrays["target"]


def stratified_split(y, test_fraction, seed):
    """Train and test indices, each class split in the same proportion.

    The test set has `ceil(test_fraction * len(y))` examples, shared among
    the classes by largest remainder; each class is shuffled with `seed`.

    Example:

    >>> train, test = stratified_split(np.array([0, 0, 1, 1]), 0.5, seed=0)
    >>> sorted(np.array([0, 0, 1, 1])[test].tolist())
    [0, 1]
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    n_test = math.ceil(test_fraction * len(y))
    exact = counts * n_test / len(y)
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n_test - take.sum()]:
        take[i] += 1
    train, test = [], []
    for label, k in zip(classes, take, strict=True):
        members = rng.permutation(np.flatnonzero(y == label))
        test.append(members[:k])
        train.append(members[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
