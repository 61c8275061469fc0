"""Which variables get tags, and whether per variable or per layer.

`include` and `exclude` are shell-style patterns (`fnmatch.fnmatchcase`:
`*` matches any characters, `/` included; case-sensitive) matched against
each variable's `path` (e.g. `"dense_1/kernel"`), and against the path of
each layer whose activations are probed (e.g. `"conv1/relu"`). A variable is
tagged when it matches some `include` pattern (all do when `include` is
`None`) and no `exclude` pattern. The global tags (`tags.GLOBAL`) always
cover every variable.

With `per_layer=True` the selected variables of a layer (the variable path
without its last component) are written as one "variable" named
`<layer>/(all)`: its gradient norm is the square root of the sum of its
variables' squared norms (likewise the weight norm, update norm and NaN/Inf
count), and its histogram covers all their entries, from the smallest to the
largest. The per-variable histograms are merged on the host: the count and the
range are exact; within the range, each variable's bucket is spread evenly
over the merged buckets it overlaps, so the shape is exact to one bucket.

Tested in tests/test_tag_filter.py.

Example:

>>> selection = TagFilter(["m/d1/kernel", "m/d1/bias", "m/d2/kernel"], exclude="*bias")
>>> selection.paths
['m/d1/kernel', 'm/d2/kernel']
>>> TagFilter(["m/d1/kernel", "m/d1/bias"], per_layer=True).paths
['m/d1/(all)']
"""

import fnmatch

import numpy as np

from kgrad import tags

_SUMMED = ("grad_sq", "nonfinite", "weight_sq", "update_sq")


def check_patterns(name, value):
    """Checks `include`/`exclude`: `None`, a string or a list of strings.

    Returns:
        A tuple of patterns (`None` stays `None`).
    """
    if value is None:
        return None
    patterns = (value,) if isinstance(value, str) else value
    if not isinstance(patterns, (list, tuple)) or not all(
        isinstance(p, str) for p in patterns
    ):
        raise TypeError(
            f"`{name}` must be None, a pattern string or a list of pattern "
            f"strings. Received: {name}={value!r}"
        )
    return tuple(patterns)


class TagFilter:
    """Selects (and optionally groups per layer) the variables that get tags.

    Args:
        paths: `variable.path` of every tracked variable, in model order.
        include: Patterns to keep, or `None` for all. Defaults to `None`.
        exclude: Patterns to drop, or `None`. Defaults to `None`.
        per_layer: One set of tags per layer instead of per variable.
            Defaults to `False`.
    """

    def __init__(self, paths, include=None, exclude=None, per_layer=False):
        self.include = check_patterns("include", include)
        self.exclude = check_patterns("exclude", exclude)
        self.per_layer = bool(per_layer)
        kept = [i for i, path in enumerate(paths) if self.keeps(path)]
        groups = {}
        for i in kept:
            name = (
                tags.whole_layer(tags.layer_of(paths[i]))
                if self.per_layer
                else paths[i]
            )
            groups.setdefault(name, []).append(i)
        self.paths = list(groups)
        self._groups = list(groups.values())
        self._identity = not self.per_layer and kept == list(range(len(paths)))

    def keeps(self, path):
        """Whether `path` (a variable's or a probed layer's) gets tags."""
        if self.include is not None and not _matches(path, self.include):
            return False
        return self.exclude is None or not _matches(path, self.exclude)

    def select(self, captured):
        """`captured` with one row per written name, and the global sums.

        Args:
            captured: Dict of numpy arrays (`GradientCapture.read`).

        Returns:
            A dict of the same fields, rows in the order of `self.paths`, plus
            `global_grad_sq` and `global_nonfinite` over every variable.
        """
        present = captured["has_grad"] > 0
        out = dict(captured)
        out["global_grad_sq"] = float(captured["grad_sq"][present].sum())
        out["global_nonfinite"] = float(captured["nonfinite"][present].sum())
        if self._identity:
            return out
        groups = [[i for i in group if present[i]] for group in self._groups]
        out["has_grad"] = np.array([float(bool(g)) for g in groups])
        for field in _SUMMED:
            out[field] = np.array([captured[field][g].sum() for g in groups])
        bins = captured["hist_counts"].shape[1]
        merged = [_merge(captured, g, bins) for g in groups]
        out["hist_min"] = np.array([low for low, _, _ in merged])
        out["hist_max"] = np.array([high for _, high, _ in merged])
        out["hist_counts"] = np.array([counts for _, _, counts in merged]).reshape(
            len(groups), bins
        )
        return out

    def select_layers(self, captured, layers):
        """The probed `(layer path, kind)` kept; drops the others' rows in place.

        Args:
            captured: The dict `select` returned (its `activations` is cut).
            layers: `(layer path, kind)` of each probed layer.
        """
        keep = [i for i, (path, _) in enumerate(layers) if self.keeps(str(path))]
        captured["activations"] = captured["activations"][keep]
        return [layers[i] for i in keep]


def merge_histograms(lows, highs, counts):
    """One histogram over `[min(lows), max(highs)]` from several.

    Each source bucket's count is spread evenly over the merged buckets it
    overlaps; a source whose low equals its high is a point mass. The total
    count and the range are exact.

    Example:

    >>> merge_histograms([0.0, 2.0], [2.0, 4.0], [[1, 1], [1, 1]])
    (0.0, 4.0, array([2., 2.]))
    """
    counts = np.asarray(counts, np.float64)
    bins = counts.shape[1]
    low, high = float(min(lows)), float(max(highs))
    merged = np.zeros(bins)
    if high <= low:
        merged[-1] = counts.sum()
        return low, high, merged
    edges = np.linspace(low, high, bins + 1)
    for source_low, source_high, source in zip(lows, highs, counts, strict=True):
        if source_high <= source_low:
            index = np.searchsorted(edges, source_high, side="right") - 1
            merged[min(max(index, 0), bins - 1)] += source.sum()
            continue
        source_edges = np.linspace(source_low, source_high, bins + 1)
        cumulative = np.concatenate([[0.0], np.cumsum(source)])
        merged += np.diff(np.interp(edges, source_edges, cumulative))
    return low, high, merged


def _merge(captured, group, bins):
    used = [i for i in group if captured["hist_counts"][i].sum() > 0]
    if not used:
        return 0.0, 0.0, np.zeros(bins)
    return merge_histograms(
        captured["hist_min"][used],
        captured["hist_max"][used],
        captured["hist_counts"][used],
    )


def _matches(path, patterns):
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)
