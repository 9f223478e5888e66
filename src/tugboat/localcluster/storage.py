"""Durable, revisioned object storage for the local cluster's API server (kine's model on SQLite).

Every write gets the next value of one global revision, which is the object's ``resourceVersion``; the
revision log is what makes optimistic concurrency, watch resumption, ``410 Expired`` and consistent
paginated lists possible. The design follows research/deps.md §4.3:

* SQLite in WAL mode, written by **one** writer thread. Writes queued while a transaction is running are
  committed together in the next one (group commit), so many concurrent clients cost few fsyncs.
* A write is acknowledged only after its transaction committed; a ``kill -9`` of the process at any
  moment loses no acknowledged write (WAL with ``synchronous=NORMAL`` survives process crashes).
* The current state lives in memory as well (dicts that are never mutated once stored, plus their JSON
  bytes), so reads, lists and watch fan-out never touch the disk.
* Watch events are published after commit, in revision order, to in-memory subscriber queues.
* History is kept for at least the last ``retain_revisions`` revisions *and* ``retain_seconds`` seconds
  (capped at ``max_history`` events to bound memory), then compacted; older revisions are "expired".

All public methods must be called from the event loop thread that called :meth:`Store.open`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tugboat.util.tasks import cancel_and_wait

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

_TYPE_CODES = {ADDED: 0, MODIFIED: 1, DELETED: 2}
_TYPE_NAMES = {code: name for name, code in _TYPE_CODES.items()}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,
    ts REAL NOT NULL,
    value BLOB NOT NULL,
    prev_value BLOB
);
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    rev INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""


class StorageError(Exception):
    """Base of the storage layer's errors."""


class KeyExists(StorageError):
    """A create found a live object under the key."""


class KeyNotFound(StorageError):
    """An update or delete found no live object under the key."""


class RevisionMismatch(StorageError):
    """An update or delete expected another revision of the object (optimistic concurrency)."""


class Compacted(StorageError):
    """The requested revision is older than the retained history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class StoreClosed(StorageError):
    """The store was closed, or a commit failed and the write was not made."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored version of an object. ``obj`` is shared and must never be mutated."""

    rev: int
    obj: dict[str, Any]
    raw: bytes

    def copy(self) -> dict[str, Any]:
        """A private, mutable deep copy of the object."""
        result: dict[str, Any] = orjson.loads(self.raw)
        return result


@dataclass(frozen=True, slots=True)
class Event:
    """A committed change. For DELETED, ``entry`` is the object's last state at the delete revision."""

    type: str
    key: str
    entry: Entry
    prev: Entry | None
    ts: float

    @property
    def rev(self) -> int:
        return self.entry.rev


@dataclass(slots=True)
class _Pending:
    type: str
    key: str
    entry: Entry
    prev: Entry | None
    future: asyncio.Future[Event]


@dataclass(eq=False)
class Subscription:
    """A live feed of committed events under a key prefix (see :meth:`Store.subscribe`)."""

    prefix: str
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    max_backlog: int = 50_000
    overflowed: bool = False

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.max_backlog:
            # A consumer this far behind is dropped, as kube-apiserver drops slow watchers; it re-watches.
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


def _encode(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)


def _decode(raw: bytes) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(raw)
    return result


def _set_rv(obj: dict[str, Any], rev: int) -> None:
    obj.setdefault("metadata", {})["resourceVersion"] = str(rev)


class Store:
    """The revisioned key-value store. Keys are ``/<group>/<resource>/<namespace>/<name>`` strings."""

    def __init__(
        self,
        path: Path,
        *,
        retain_revisions: int = 1000,
        retain_seconds: float = 300.0,
        max_history: int = 200_000,
        compact_interval: float = 30.0,
    ) -> None:
        self.path = path
        self.retain_revisions = retain_revisions
        self.retain_seconds = retain_seconds
        self.max_history = max_history
        self.compact_interval = compact_interval
        self._conn: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tugboat-store")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._objects: dict[str, Entry] = {}
        self._by_prefix: dict[str, dict[str, Entry]] = {}
        self._pending_latest: dict[str, Entry | None] = {}
        self._pending_count: dict[str, int] = {}
        self._queue: list[_Pending] = []
        self._flushing = False
        self._history: list[Event] = []
        self._history_revs: list[int] = []
        self._subscribers: set[Subscription] = set()
        self._compact_task: asyncio.Task[None] | None = None
        self._closed = False
        self.current_rev = 0
        self._next_rev = 1
        self.compact_rev = 0

    # ----------------------------------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(self._executor, self._open_db)
        self._compact_task = asyncio.create_task(self._compact_forever(), name="tugboat-store-compact")

    def _open_db(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(_SCHEMA)
        self._conn = conn
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        self.current_rev = int(meta.get("current_rev", 0))
        self.compact_rev = int(meta.get("compact_rev", 0))
        for key, rev, raw in conn.execute("SELECT key, rev, value FROM objects"):
            self._index(key, Entry(rev, _decode(raw), raw))
        rows = conn.execute(
            "SELECT rev, key, type, ts, value, prev_value FROM log WHERE rev > ? ORDER BY rev",
            (self.compact_rev,),
        )
        for rev, key, code, ts, raw, prev_raw in rows:
            prev = None
            if prev_raw is not None:
                prev_obj = _decode(prev_raw)
                prev_rv = int(prev_obj.get("metadata", {}).get("resourceVersion") or 0)
                prev = Entry(prev_rv, prev_obj, prev_raw)
            self._append_history(Event(_TYPE_NAMES[code], key, Entry(rev, _decode(raw), raw), prev, ts))
        self._next_rev = self.current_rev + 1

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._compact_task is not None:
            await cancel_and_wait([self._compact_task])
        while self._queue or self._flushing:
            await asyncio.sleep(0.005)
        for sub in list(self._subscribers):
            sub.queue.put_nowait(None)
        self._subscribers.clear()
        if self._conn is not None and self._loop is not None:
            await self._loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

    # -------------------------------------------------------------------------------------------- reads

    def get(self, key: str) -> Entry | None:
        """The committed state of ``key``."""
        return self._objects.get(key)

    def latest(self, key: str) -> Entry | None:
        """The newest state of ``key``, including writes queued but not yet committed.

        Writers base their changes on this, so that queued writes to one key apply in order.
        """
        if key in self._pending_latest:
            return self._pending_latest[key]
        return self._objects.get(key)

    def scan(self, prefix: str) -> list[tuple[str, Entry]]:
        """Committed objects whose key starts with ``prefix``, sorted by key."""
        bucket_prefix, rest = self._bucket_of(prefix)
        bucket = self._by_prefix.get(bucket_prefix, {})
        if rest:
            items = [(k, e) for k, e in bucket.items() if k.startswith(prefix)]
        else:
            items = list(bucket.items())
        items.sort(key=lambda item: item[0])
        return items

    def keys_with_prefix(self, prefix: str) -> Iterator[str]:
        """Keys of every committed object (all resources) under a prefix; unsorted."""
        for bucket_prefix, bucket in self._by_prefix.items():
            if bucket_prefix.startswith(prefix) or prefix.startswith(bucket_prefix):
                for key in bucket:
                    if key.startswith(prefix):
                        yield key

    def list_at(self, prefix: str, rev: int) -> list[tuple[str, Entry]]:
        """Objects under ``prefix`` as they were at revision ``rev`` (for paginated lists)."""
        if rev >= self.current_rev:
            return self.scan(prefix)
        if rev < self.compact_rev:
            raise Compacted(rev, self.compact_rev)
        state = {k: e for k, e in self.scan(prefix)}
        start = bisect.bisect_right(self._history_revs, rev)
        for event in reversed(self._history[start:]):
            if not event.key.startswith(prefix):
                continue
            if event.prev is None:
                state.pop(event.key, None)
            else:
                state[event.key] = event.prev
        return sorted(state.items(), key=lambda item: item[0])

    def events_after(self, rev: int, prefix: str) -> list[Event]:
        """Committed events with a revision above ``rev`` under ``prefix``, in order."""
        if rev < self.compact_rev:
            raise Compacted(rev, self.compact_rev)
        start = bisect.bisect_right(self._history_revs, rev)
        return [e for e in self._history[start:] if e.key.startswith(prefix)]

    # ------------------------------------------------------------------------------------------- writes

    def create(self, key: str, obj: dict[str, Any]) -> asyncio.Future[Event]:
        """Queue the creation of ``key``; ``obj`` becomes the store's and gets its resourceVersion."""
        if self.latest(key) is not None:
            raise KeyExists(key)
        return self._enqueue(ADDED, key, obj, None)

    def update(
        self, key: str, obj: dict[str, Any], *, expect_rev: int | None = None
    ) -> asyncio.Future[Event]:
        """Queue a new version of ``key``; with ``expect_rev``, only if that is the latest revision."""
        prev = self._check(key, expect_rev)
        return self._enqueue(MODIFIED, key, obj, prev)

    def delete(
        self, key: str, obj: dict[str, Any], *, expect_rev: int | None = None
    ) -> asyncio.Future[Event]:
        """Queue the deletion of ``key``; ``obj`` is the final state the DELETED event carries."""
        prev = self._check(key, expect_rev)
        return self._enqueue(DELETED, key, obj, prev)

    def _check(self, key: str, expect_rev: int | None) -> Entry:
        current = self.latest(key)
        if current is None:
            raise KeyNotFound(key)
        if expect_rev is not None and current.rev != expect_rev:
            raise RevisionMismatch(key)
        return current

    def _enqueue(self, kind: str, key: str, obj: dict[str, Any], prev: Entry | None) -> asyncio.Future[Event]:
        if self._closed or self._loop is None:
            raise StoreClosed("the store is closed")
        rev = self._next_rev
        self._next_rev += 1
        _set_rv(obj, rev)
        entry = Entry(rev, obj, _encode(obj))
        future: asyncio.Future[Event] = self._loop.create_future()
        self._queue.append(_Pending(kind, key, entry, prev, future))
        self._pending_latest[key] = None if kind == DELETED else entry
        self._pending_count[key] = self._pending_count.get(key, 0) + 1
        if not self._flushing:
            self._flushing = True
            self._loop.create_task(self._flush())
        return future

    async def _flush(self) -> None:
        assert self._loop is not None
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                now = time.time()
                try:
                    await self._loop.run_in_executor(self._executor, self._write_batch, batch, now)
                except Exception as exc:
                    self._fail_all(batch, exc)
                    continue
                self._apply_batch(batch, now)
        finally:
            self._flushing = False

    def _write_batch(self, batch: list[_Pending], now: float) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            log_rows = []
            for p in batch:
                prev_raw = p.prev.raw if p.prev is not None else None
                log_rows.append((p.entry.rev, p.key, _TYPE_CODES[p.type], now, p.entry.raw, prev_raw))
                if p.type == DELETED:
                    conn.execute("DELETE FROM objects WHERE key = ?", (p.key,))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO objects (key, rev, value) VALUES (?, ?, ?)",
                        (p.key, p.entry.rev, p.entry.raw),
                    )
            conn.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?)", log_rows)
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('current_rev', ?)", (batch[-1].entry.rev,)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _fail_all(self, batch: list[_Pending], exc: BaseException) -> None:
        # Later queued writes were computed on top of the failed ones: fail them as well.
        failed, self._queue = batch + self._queue, []
        self._pending_latest.clear()
        self._pending_count.clear()
        for p in failed:
            if not p.future.done():
                p.future.set_exception(StoreClosed(f"commit failed: {exc}"))

    def _apply_batch(self, batch: list[_Pending], now: float) -> None:
        for p in batch:
            if p.type == DELETED:
                self._unindex(p.key)
            else:
                self._index(p.key, p.entry)
            self._pending_count[p.key] -= 1
            if not self._pending_count[p.key]:
                del self._pending_count[p.key]
                self._pending_latest.pop(p.key, None)
            self.current_rev = p.entry.rev
            event = Event(p.type, p.key, p.entry, p.prev, now)
            self._append_history(event)
            for sub in self._subscribers:
                if p.key.startswith(sub.prefix):
                    sub.offer(event)
        for p in batch:
            if not p.future.done():
                p.future.set_result(Event(p.type, p.key, p.entry, p.prev, now))

    # ------------------------------------------------------------------------------------------- watch

    def subscribe(self, prefix: str) -> Subscription:
        """Receive every event committed from now on under ``prefix`` (``None`` marks the end)."""
        sub = Subscription(prefix)
        self._subscribers.add(sub)
        return sub

    def end_subscriptions(self) -> None:
        """End every live subscription (watch streams finish cleanly), e.g. before a shutdown."""
        for sub in list(self._subscribers):
            sub.queue.put_nowait(None)
        self._subscribers.clear()

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    # ---------------------------------------------------------------------------------------- internals

    @staticmethod
    def _bucket_of(key: str) -> tuple[str, str]:
        # "/group/resource/" is the bucket; what follows is the namespace and name.
        parts = key.split("/", 3)
        if len(parts) < 4:
            return key, ""
        return f"/{parts[1]}/{parts[2]}/", parts[3]

    def _index(self, key: str, entry: Entry) -> None:
        self._objects[key] = entry
        bucket, _ = self._bucket_of(key)
        self._by_prefix.setdefault(bucket, {})[key] = entry

    def _unindex(self, key: str) -> None:
        self._objects.pop(key, None)
        bucket, _ = self._bucket_of(key)
        members = self._by_prefix.get(bucket)
        if members is not None:
            members.pop(key, None)

    def _append_history(self, event: Event) -> None:
        self._history.append(event)
        self._history_revs.append(event.rev)

    def _compaction_target(self, now: float) -> int:
        """The highest revision that may be forgotten now."""
        by_count = self.current_rev - self.retain_revisions
        cut = bisect.bisect_left(self._history_revs, by_count + 1)
        # Keep everything younger than retain_seconds, too.
        idx = 0
        while idx < cut and now - self._history[idx].ts > self.retain_seconds:
            idx += 1
        overflow = len(self._history) - self.max_history
        idx = max(idx, overflow)
        if idx <= 0:
            return self.compact_rev
        return max(self.compact_rev, self._history_revs[idx - 1])

    def compact(self, now: float | None = None) -> asyncio.Future[None] | None:
        """Forget history up to the compaction target; returns the pending disk work, if any."""
        target = self._compaction_target(time.time() if now is None else now)
        if target <= self.compact_rev or self._loop is None:
            return None
        cut = bisect.bisect_right(self._history_revs, target)
        del self._history[:cut]
        del self._history_revs[:cut]
        self.compact_rev = target
        return self._loop.run_in_executor(self._executor, self._compact_db, target)

    def _compact_db(self, target: int) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM log WHERE rev <= ?", (target,))
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('compact_rev', ?)", (target,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def _compact_forever(self) -> None:
        while True:
            await asyncio.sleep(self.compact_interval)
            pending = self.compact()
            if pending is not None:
                with contextlib.suppress(Exception):
                    await pending
