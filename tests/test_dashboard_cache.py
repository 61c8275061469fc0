"""The Gradients tab's `VersionedCache` and its pause of the garbage collector."""

import gc

import pytest

from kgrad.dashboard.cache import VersionedCache
from kgrad.dashboard.collector import collector_paused


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


def test_the_collector_stays_paused_until_the_last_overlapping_build_ends():
    assert gc.isenabled()
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second build is still running
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
