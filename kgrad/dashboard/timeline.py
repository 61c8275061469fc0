"""Findings on the time axis: when each appeared and when it cleared.

kgrad writes the `tags.FINDINGS` text each time the diagnosis changes: the
active findings as a markdown list, one `Finding.message()` per item, or
"No gradient problem found.". A finding is known by its first sentence
(severity, title and layers); its numbers may change while it stays active.

Example:

>>> texts = [(4, "- Warning: dead ReLU units in d1. 80% dead. Use LeakyReLU."),
...          (9, "No gradient problem found.")]
>>> [(f["title"], f["first_step"], f["cleared_step"]) for f in timeline(texts, [])]
[('Warning: dead ReLU units in d1.', 4, 9)]
"""

import re

from kgrad import tags

_ITEM = re.compile(r"^- ", re.MULTILINE)
_HEAD = re.compile(r"^((?:Error|Warning): .*?\.)(?:\s|$)", re.DOTALL)


def timeline(texts, layer_names):
    """Intervals of the findings in a run's `tags.FINDINGS` texts.

    Args:
        texts: `[(step, markdown)]`, as written, in step order.
        layer_names: Layer names the page shows; those a finding's text names
            are listed in its `layers`.

    Returns:
        A list of `{"title", "severity", "text", "first_step", "cleared_step",
        "layers"}` in order of appearance: `text` is the last message seen,
        `cleared_step` the first step whose text no longer has it (`None`
        while active).
    """
    active, done = {}, []
    for step, markdown in sorted(texts, key=lambda pair: pair[0]):
        seen = {}
        for message in _messages(markdown):
            head = _HEAD.match(message)
            seen[head.group(1) if head else message] = message
        for title in [t for t in active if t not in seen]:
            done.append(dict(active.pop(title), cleared_step=step))
        for title, message in seen.items():
            entry = active.setdefault(
                title,
                {
                    "title": title,
                    "severity": title.split(":", 1)[0].lower(),
                    "first_step": step,
                    "cleared_step": None,
                },
            )
            entry["text"] = message
            entry["layers"] = named_layers(message, layer_names)
    found = done + list(active.values())
    return sorted(found, key=lambda f: (f["first_step"], f["title"]))


def named_layers(text, layer_names):
    """The names among `layer_names` that `text` mentions as whole names."""
    return [
        name
        for name in layer_names
        if re.search(rf"(?<![\w/]){re.escape(name)}(?![\w/])", text)
    ]


def _messages(markdown):
    """The messages of one findings text (none for "No gradient problem")."""
    if not _ITEM.search(markdown):
        return []
    items = _ITEM.split(markdown)
    return [" ".join(item.split()) for item in items if item.strip()]


_STATISTIC_OF_TITLE = (
    ("through time", tags.TEMPORAL_GRAD),
    ("dead ReLU", tags.DEAD_UNITS),
    ("saturated", tags.SATURATION),
)


def statistic_of(title):
    """The heat map a finding is about (`tags.GRAD_NORM` unless its title says)."""
    for words, statistic in _STATISTIC_OF_TITLE:
        if words in title:
            return statistic
    return tags.GRAD_NORM
