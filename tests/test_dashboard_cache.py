"""The Gradients tab's `VersionedCache`: kept per version, least used dropped."""

import pytest

from kgrad.dashboard.cache import VersionedCache


def test_an_answer_is_kept_for_its_version_and_rebuilt_for_a_new_one():
    cache = VersionedCache(size=2)
    built = []

    def build(name):
        built.append(name)
        return name

    assert cache.get("a", (1,), lambda: build("a1")) == "a1"
    assert cache.get("a", (1,), lambda: build("again")) == "a1"
    assert cache.get("a", (2,), lambda: build("a2")) == "a2"
    assert built == ["a1", "a2"]


def test_the_least_recently_used_key_is_dropped_first():
    cache = VersionedCache(size=2)
    cache.get("a", 0, lambda: "a")
    cache.get("b", 0, lambda: "b")
    cache.get("a", 0, lambda: "not built")  # "a" is now the latest used
    cache.get("c", 0, lambda: "c")  # drops "b"
    assert cache.get("a", 0, lambda: "rebuilt a") == "a"
    assert cache.get("b", 0, lambda: "rebuilt b") == "rebuilt b"


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "8"])
def test_a_bad_size_is_named_with_the_value_received(size):
    with pytest.raises(ValueError, match=f"Received: size={size!r}"):
        VersionedCache(size=size)
