"""WriteTracker: a cached copy older than our own last write is recognised; opaque versions never hold
anything back."""

from __future__ import annotations

from tugboat.kube import writes


def obj(uid: str, rv: str) -> dict[str, object]:
    return {"metadata": {"uid": uid, "resourceVersion": rv}}


def test_older_cache_is_stale_until_it_catches_up() -> None:
    tracker = writes.WriteTracker()
    assert not tracker.stale(obj("a", "5"))
    tracker.wrote(obj("a", "10"))
    assert tracker.stale(obj("a", "9"))
    assert not tracker.stale(obj("a", "10")) and not tracker.stale(obj("a", "11"))
    assert not tracker.stale(obj("b", "1"))  # another object
    tracker.forget(obj("a", "0"))
    assert not tracker.stale(obj("a", "9"))


def test_opaque_resource_versions_are_never_stale() -> None:
    tracker = writes.WriteTracker()
    tracker.wrote(obj("a", "Zm9v"))
    assert not tracker.stale(obj("a", "YmFy"))
