"""Public attributes of the callback that say what it really does.

An argument that only takes effect when a capture is built (the histogram
bins, the tag selection) is a read-only property: assigning it raises
`AttributeError` instead of silently doing nothing. An argument that can
change between batches is a property that forwards to the object using it,
which checks the new value.

Example:

>>> class Thing:
...     def __init__(self):
...         self._bins = 30
...     bins = read_only("_bins", "Buckets per histogram.")
>>> Thing().bins
30
"""


def read_only(attribute, doc):
    """A property returning `self.<attribute>`; it cannot be assigned."""
    return property(lambda self: getattr(self, attribute), doc=doc)


def checked(attribute, check, doc):
    """A property storing `check(value)` in `self.<attribute>` on assignment."""

    def set_(self, value):
        setattr(self, attribute, check(value))

    return property(lambda self: getattr(self, attribute), set_, doc=doc)


def forwarded(owner, name, doc):
    """A property reading and setting `self.<owner>.<name>` (which checks it)."""

    def get(self):
        return getattr(getattr(self, owner), name)

    def set_(self, value):
        setattr(getattr(self, owner), name, value)

    return property(get, set_, doc=doc)
