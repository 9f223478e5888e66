"""The revisioned store: revisions, optimistic concurrency, history, compaction, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tugboat.localcluster.storage import Compacted, KeyExists, RevisionMismatch, Store


def _obj(name: str, value: int = 0) -> dict:
    return {"metadata": {"name": name}, "data": {"v": str(value)}}


async def test_revisions_are_global_and_monotonic(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    await store.open()
    first = await store.create("/core/configmaps/ns/a", _obj("a"))
    second = await store.create("/core/configmaps/ns/b", _obj("b"))
    third = await store.update("/core/configmaps/ns/a", _obj("a", 1), expect_rev=first.rev)
    assert (first.rev, second.rev, third.rev) == (1, 2, 3)
    assert store.get("/core/configmaps/ns/a").obj["metadata"]["resourceVersion"] == "3"
    with pytest.raises(RevisionMismatch):
        store.update("/core/configmaps/ns/a", _obj("a", 2), expect_rev=first.rev)
    with pytest.raises(KeyExists):
        store.create("/core/configmaps/ns/b", _obj("b"))
    await store.close()


async def test_concurrent_writes_group_commit_and_survive_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    await store.open()
    futures = [store.create(f"/core/configmaps/ns/c{i:03}", _obj(f"c{i}")) for i in range(200)]
    events = await asyncio.gather(*futures)
    assert [e.rev for e in events] == list(range(1, 201))
    await store.delete("/core/configmaps/ns/c000", _obj("c0"))
    await store.close()

    again = Store(tmp_path / "db")
    await again.open()
    assert again.current_rev == 201
    assert len(again.scan("/core/configmaps/")) == 199
    history = again.events_after(195, "/core/configmaps/")
    assert [e.rev for e in history] == [196, 197, 198, 199, 200, 201]
    assert history[-1].type == "DELETED" and history[-1].prev is not None
    created = await again.create("/core/configmaps/ns/new", _obj("new"))
    assert created.rev == 202
    await again.close()


async def test_list_at_old_revision_and_compaction(tmp_path: Path) -> None:
    store = Store(tmp_path / "db", retain_revisions=5, retain_seconds=0)
    await store.open()
    for i in range(3):
        await store.create(f"/core/configmaps/ns/k{i}", _obj(f"k{i}"))
    snapshot_rev = store.current_rev
    await store.update("/core/configmaps/ns/k0", _obj("k0", 9))
    await store.delete("/core/configmaps/ns/k1", _obj("k1"))
    await store.create("/core/configmaps/ns/k9", _obj("k9"))
    old = store.list_at("/core/configmaps/", snapshot_rev)
    assert [k.rsplit("/", 1)[-1] for k, _ in old] == ["k0", "k1", "k2"]
    assert old[0][1].obj["data"]["v"] == "0"
    for i in range(10):
        await store.update("/core/configmaps/ns/k2", _obj("k2", i))
    pending = store.compact()
    assert pending is not None
    await pending
    assert store.compact_rev == store.current_rev - 5
    with pytest.raises(Compacted):
        store.events_after(1, "/")
    with pytest.raises(Compacted):
        store.list_at("/core/configmaps/", snapshot_rev)
    await store.close()


async def test_subscribers_see_committed_events_in_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    await store.open()
    sub = store.subscribe("/core/configmaps/ns/")
    await asyncio.gather(*(store.create(f"/core/configmaps/ns/x{i}", _obj(str(i))) for i in range(20)))
    await store.create("/core/secrets/ns/other", _obj("other"))
    revs = [sub.queue.get_nowait().rev for _ in range(20)]
    assert revs == sorted(revs)
    assert sub.queue.empty()
    await store.close()
