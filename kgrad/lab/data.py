"""Embedded data sets, small enough for 2 CPU cores, with no download by default.

- `digits`: scikit-learn's bundled 8x8 handwritten digits (1,797 real images), as
  images (8, 8, 1) for the CNNs and ResNets, or flat (64,) for the MLPs.
- `adding`: the adding problem (Hochreiter & Schmidhuber 1997), regression.
- `temporal_order`: the temporal-order problem (same paper, task 6a), 4 classes.
- `mnist`, `cifar10`: `keras.datasets`, downloaded on first use; opt-in only.

Inputs are float32; classification labels are int32 of shape (n,); regression
targets are float32 of shape (n, 1). Every set is split with a fixed seed.
"""

import dataclasses
import functools
from typing import Optional

import numpy as np

from kgrad import checks

ADDING_MEAN_MSE = 1 / 6
"""MSE of always predicting the mean on the adding problem: Var(U1 + U2) = 2/12."""

TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y")
"""Symbols of the temporal-order problem, in the order of the one-hot channels."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split with what a model needs to know about it.

    Attributes:
        name: The name `load` knows it by.
        task: `"classification"` or `"regression"`.
        num_classes: Number of classes, or `None` for regression.
        x_train: Training inputs, float32.
        y_train: Training labels (int32, (n,)) or targets (float32, (n, 1)).
        x_test: Test inputs, float32.
        y_test: Test labels or targets.
    """

    name: str
    task: str
    num_classes: Optional[int]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self):
        """The shape of one input, e.g. `(8, 8, 1)`."""
        return tuple(self.x_train.shape[1:])

    @property
    def output_units(self):
        """Units of the model's output layer: `num_classes`, or 1 for regression."""
        return self.num_classes or 1


def digits(flat=False, test_fraction=0.2, seed=0):
    """Loads the 8x8 digits shipped with kgrad: 1,797 real images, no download.

    Args:
        flat: Return flat (64,) vectors for MLPs instead of (8, 8, 1) images.
            Defaults to `False`.
        test_fraction: Share of the images held out, stratified by class.
            Defaults to `0.2`.
        seed: Seed of the split. Defaults to `0`.

    Returns:
        A `Dataset` with pixels in [0, 1] and 10 classes.

    Raises:
        ValueError: If `test_fraction` is not in (0, 1).

    Example:
        ```python
        ds = digits()
        ds.x_train.shape  # (1437, 8, 8, 1)
        ```
    """
    checks.number_in("test_fraction", test_fraction, "(0, 1)")
    from kgrad.lab import digits_file

    images, target = digits_file.load()
    x = (images / 16.0).astype("float32")
    x = x.reshape(-1, 64) if flat else x.reshape(-1, 8, 8, 1)
    y = target.astype("int32")
    train, test = digits_file.stratified_split(y, test_fraction, seed)
    x_train, x_test, y_train, y_test = x[train], x[test], y[train], y[test]
    name = "digits_flat" if flat else "digits"
    return Dataset(name, "classification", 10, x_train, y_train, x_test, y_test)


def adding_problem(length=50, n=1000, seed=0):
    """Generates the adding problem (Hochreiter & Schmidhuber 1997).

    Each step has two channels: a value drawn uniformly from [0, 1] and a marker.
    The marker is 1 at exactly two steps, one in each half of the sequence, and 0
    elsewhere; the target is the sum of the two marked values. Always predicting
    the mean (1.0) gives an MSE of 1/6, about 0.167 (`ADDING_MEAN_MSE`).

    Args:
        length: Steps per sequence, at least 2. Defaults to `50`.
        n: Number of sequences. Defaults to `1000`.
        seed: Seed of the generator. Defaults to `0`.

    Returns:
        A tuple `(x, y)`: x float32 (n, length, 2), y float32 (n, 1).

    Raises:
        TypeError: If `length` or `n` is not an integer.
        ValueError: If `length` < 2 or `n` < 1.

    Example:

    >>> x, y = adding_problem(length=4, n=3)
    >>> x.shape, y.shape, float(x[..., 1].sum())  # two markers per sequence
    ((3, 4, 2), (3, 1), 6.0)
    """
    rng = _checked_rng(length, n, seed, min_length=2)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    first, second = _two_steps(rng, n, (0, length // 2), (length // 2, length))
    markers = np.zeros((n, length))
    markers[first] = markers[second] = 1.0
    x = np.stack([values, markers], axis=-1).astype("float32")
    y = (values * markers).sum(axis=1, keepdims=True).astype("float32")
    return x, y


def temporal_order(length=50, n=1000, seed=0):
    """Generates the temporal-order problem (Hochreiter & Schmidhuber 1997, 6a).

    Each step is a one-hot symbol (`TEMPORAL_ORDER_SYMBOLS`). All steps are random
    distractors a-d except two: one at a step in [length/10, 2*length/10) and one
    in [length/2, 6*length/10), each X or Y. The label is their order: XX=0, XY=1,
    YX=2, YY=3, so it depends on those two steps only and the model has to carry
    the first one across at least `0.3 * length` steps.

    Args:
        length, n, seed: As for `adding_problem`, but `length` must be at
            least 10.

    Returns:
        A tuple `(x, y)`: x float32 (n, length, 6), y int32 (n,) in 0-3.

    Example:

    >>> x, y = temporal_order(length=10, n=5)
    >>> x.shape, set(y.tolist()) <= {0, 1, 2, 3}
    ((5, 10, 6), True)
    """
    rng = _checked_rng(length, n, seed, min_length=10)
    symbols = rng.integers(0, 4, size=(n, length))
    first, second = _two_steps(
        rng, n, (length // 10, 2 * length // 10), (length // 2, 6 * length // 10)
    )
    is_y = rng.integers(0, 2, size=(n, 2))
    symbols[first] = 4 + is_y[:, 0]
    symbols[second] = 4 + is_y[:, 1]
    x = np.eye(len(TEMPORAL_ORDER_SYMBOLS), dtype="float32")[symbols]
    y = (2 * is_y[:, 0] + is_y[:, 1]).astype("int32")
    return x, y


def _checked_rng(length, n, seed, min_length):
    """Checks a generator's `length` and `n`; returns its random generator."""
    checks.int_at_least("length", length, min_length)
    checks.positive_int("n", n)
    return np.random.default_rng(seed)


def _two_steps(rng, n, first, second):
    """Index pairs of one random step per sequence in each `[low, high)` window."""
    rows = np.arange(n)
    return (rows, rng.integers(*first, size=n)), (rows, rng.integers(*second, size=n))


def _sequences(
    name, generate, task, num_classes, length=50, n_train=2000, n_test=500, seed=0
):
    checks.positive_int("n_train", n_train)
    checks.positive_int("n_test", n_test)
    x, y = generate(length=length, n=n_train + n_test, seed=seed)
    return Dataset(
        name, task, num_classes, x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    )


def _keras_dataset(name, n_train=None, n_test=None, seed=0):
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if value is not None:
            checks.positive_int(key, value)
    import keras

    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    rng = np.random.default_rng(seed)
    arrays = []
    for x, y, size in ((x_train, y_train, n_train), (x_test, y_test, n_test)):
        if size is not None and size < len(x):
            keep = np.sort(rng.choice(len(x), size=size, replace=False))
            x, y = x[keep], y[keep]
        x = (np.asarray(x, dtype="float32") / 255.0).reshape(len(x), *x.shape[1:3], -1)
        arrays += [x, np.asarray(y, dtype="int32").reshape(-1)]
    return Dataset(name, "classification", 10, *arrays)


_LOADERS = {
    "adding": functools.partial(
        _sequences, "adding", adding_problem, "regression", None
    ),
    "cifar10": functools.partial(_keras_dataset, "cifar10"),
    "digits": functools.partial(digits, flat=False),
    "digits_flat": functools.partial(digits, flat=True),
    "mnist": functools.partial(_keras_dataset, "mnist"),
    "temporal_order": functools.partial(
        _sequences, "temporal_order", temporal_order, "classification", 4
    ),
}


def names():
    """Returns the sorted names that `load` accepts.

    Returns:
        A tuple of names; "mnist" and "cifar10" download on first use.

    Example:
        ```python
        names()  # ('adding', 'cifar10', 'digits', ...)
        ```
    """
    return tuple(sorted(_LOADERS))


def load(name, **kwargs):
    """Loads a data set by name.

    Args:
        name: One of `names()`. "digits", "digits_flat", "adding" and
            "temporal_order" are embedded; "mnist" and "cifar10" come from
            `keras.datasets` and need the network on first use.
        **kwargs: Passed to the loader: `test_fraction`, `seed` for the digits;
            `length`, `n_train`, `n_test`, `seed` for the sequence tasks (defaults
            50, 2000, 500, 0); `n_train`, `n_test` (subsample), `seed` for the
            Keras sets.

    Returns:
        A `Dataset`.

    Raises:
        ValueError: If `name` is unknown (lists close matches) or an argument has a
            bad value.
        TypeError: If an argument is unknown or has a bad type.

    Example:
        ```python
        ds = load("adding", length=100, n_train=1000)
        ```
    """
    checks.known_name("data set", name, names())
    return _LOADERS[name](**kwargs)
