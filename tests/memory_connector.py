"""An in-memory platform for tests: records every call, honours idempotency keys, and can
be told to fail. A test helper, not part of the product: tests/conftest.py registers it as
platform ``"memory"`` for each test (``connectors.registry.register``), never offered to users.

All connectors share one module-level ``NETWORK`` (a connector is rebuilt for every
delivery, the network outlives it); call ``memory.reset()`` between tests. Nothing here
is persisted or leaves the process.

    from tests import memory_connector as memory
    memory.reset()
    memory.NETWORK.fail_next(RateLimited("slow down", retry_at=t), times=2, method="publish")
    memory.NETWORK.interrupt_after(1, TransientError("timeout"))   # a thread dies mid-way
    memory.NETWORK.published("alice")                             # records that landed
    memory.NETWORK.call_count("publish")                          # every attempt, even failed
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from connectors.base import (
    MAX_SPREADERS_PER_SWEEP,
    ConnectorContext,
    ConnectorError,
    Identity,
    Metrics,
    OutgoingPost,
    PartCallback,
    PermanentError,
    Receipt,
    SpreaderInfo,
)

PLATFORM = "memory"
MAX_CHARS = 500


@dataclass
class MemoryRecord:
    id: int
    handle: str
    key: str
    kind: str  # post | repost
    text: str = ""
    reply_to: int | None = None
    repost_of: str | None = None
    media: tuple[str, ...] = ()
    link: str | None = None
    deleted: bool = False

    @property
    def receipt(self) -> Receipt:
        return Receipt(
            remote_id=str(self.id),
            uri=f"memory://{self.handle}/{self.id}",
            cid=f"cid{self.id}",
            url=f"https://memory.invalid/{self.handle}/{self.id}",
        )


@dataclass
class _Failure:
    error: ConnectorError
    remaining: int
    method: str | None
    handle: str | None


@dataclass
class _Interrupt:
    after_parts: int
    error: ConnectorError
    handle: str | None


@dataclass
class Call:
    handle: str
    method: str
    key: str | None = None


@dataclass
class MemoryNetwork:
    """The shared state of the fake platform. Thread-safe."""

    records: list[MemoryRecord] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    metrics: dict[str, Metrics] = field(default_factory=dict)
    spreaders: dict[str, list[SpreaderInfo]] = field(default_factory=dict)
    followers: dict[str, int] = field(default_factory=dict)
    _by_key: dict[tuple[str, str], MemoryRecord] = field(default_factory=dict)
    _failures: list[_Failure] = field(default_factory=list)
    _interrupts: list[_Interrupt] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------------ set-up by tests

    def reset(self) -> None:
        with self._lock:
            self.records.clear()
            self.calls.clear()
            self.metrics.clear()
            self.spreaders.clear()
            self.followers.clear()
            self._by_key.clear()
            self._failures.clear()
            self._interrupts.clear()
            self._ids = itertools.count(1)

    def fail_next(
        self,
        error: ConnectorError,
        times: int = 1,
        *,
        method: str | None = None,
        handle: str | None = None,
    ) -> None:
        """Raise ``error`` from the next ``times`` calls (of ``method``/by ``handle`` if given)."""
        with self._lock:
            self._failures.append(_Failure(error, times, method, handle))

    def interrupt_after(
        self, parts: int, error: ConnectorError, *, handle: str | None = None
    ) -> None:
        """Make the next publish raise ``error`` once ``parts`` parts of it have landed."""
        with self._lock:
            self._interrupts.append(_Interrupt(parts, error, handle))

    def set_metrics(self, remote_id: str, **counts: int) -> None:
        with self._lock:
            self.metrics[remote_id] = Metrics(remote_id=remote_id, **counts)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ inspection

    def published(
        self, handle: str | None = None, *, kind: str | None = None
    ) -> list[MemoryRecord]:
        """Live records (of ``handle``/``kind`` if given), oldest first."""
        with self._lock:
            return [
                r
                for r in self.records
                if not r.deleted
                and (handle is None or r.handle == handle)
                and (kind is None or r.kind == kind)
            ]

    def call_count(self, method: str, handle: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for c in self.calls
                if c.method == method and (handle is None or c.handle == handle)
            )

    # ------------------------------------------------------------------ used by connectors

    def _enter(self, handle: str, method: str, key: str | None = None) -> None:
        """Log the call, then raise the first queued failure that matches it."""
        with self._lock:
            self.calls.append(Call(handle, method, key))
            for failure in self._failures:
                if failure.method not in (None, method) or failure.handle not in (None, handle):
                    continue
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                raise failure.error

    def _take_interrupt(self, handle: str) -> _Interrupt | None:
        with self._lock:
            for interrupt in self._interrupts:
                if interrupt.handle in (None, handle):
                    self._interrupts.remove(interrupt)
                    return interrupt
            return None

    def _record(self, handle: str, key: str, **fields: object) -> MemoryRecord:
        """The record with ``key`` for ``handle``, created if it does not exist yet."""
        with self._lock:
            found = self._by_key.get((handle, key))
            if found is not None:
                return found
            record = MemoryRecord(id=next(self._ids), handle=handle, key=key, **fields)  # type: ignore[arg-type]
            self.records.append(record)
            self._by_key[(handle, key)] = record
            return record

    def _lookup(self, handle: str, key: str) -> MemoryRecord | None:
        with self._lock:
            return self._by_key.get((handle, key))

    def _get(self, remote_id: str) -> MemoryRecord | None:
        with self._lock:
            return next((r for r in self.records if str(r.id) == remote_id), None)


NETWORK = MemoryNetwork()


def reset() -> None:
    """Forget everything (call between tests)."""
    NETWORK.reset()


def _part_key(key: str, index: int) -> str:
    return key if index == 0 else f"{key}#{index}"


class MemoryConnector:
    """One account on the in-memory network."""

    platform: ClassVar[str] = PLATFORM
    metrics_batch_size: ClassVar[int] = 100
    supports_repost: ClassVar[bool] = True

    def __init__(self, context: ConnectorContext, *, network: MemoryNetwork | None = None) -> None:
        self.context = context
        self.handle = context.handle
        self.network = network or NETWORK

    def validate(self, post: OutgoingPost) -> list[str]:
        problems: list[str] = []
        if not post.parts or not any(p.strip() for p in post.parts):
            problems.append("the story is empty; write some text")
        for index, part in enumerate(post.parts):
            if len(part) > MAX_CHARS:
                problems.append(
                    f"part {index + 1} is {len(part)} characters; shorten it to {MAX_CHARS}"
                )
        for media in post.media:
            if not media.alt_text.strip():
                problems.append(f"the image {media.path} has no alt text; describe it")
        return problems

    def publish(self, post: OutgoingPost, on_part: PartCallback | None = None) -> list[Receipt]:
        self.network._enter(self.handle, "publish", post.idempotency_key)
        problems = self.validate(post)
        if problems:
            raise PermanentError("; ".join(problems))
        interrupt = self.network._take_interrupt(self.handle)
        receipts = list(post.landed)
        for landed_now, index in enumerate(range(len(receipts), len(post.parts))):
            if interrupt is not None and landed_now >= interrupt.after_parts:
                raise interrupt.error
            reply_to = int(receipts[-1].remote_id) if receipts else None
            record = self.network._record(
                self.handle,
                _part_key(post.idempotency_key, index),
                kind="post",
                text=post.parts[index],
                reply_to=reply_to,
                media=tuple(m.path for m in post.media) if index == 0 else (),
                link=post.link if index == 0 else None,
            )
            receipts.append(record.receipt)
            if on_part is not None:
                on_part(index, record.receipt)
        return receipts

    def repost(self, target: Receipt, idempotency_key: str) -> Receipt:
        self.network._enter(self.handle, "repost", idempotency_key)
        original = self.network._get(target.remote_id)
        if original is None or original.deleted:
            raise PermanentError(f"post {target.remote_id} does not exist; nothing to reshare")
        record = self.network._record(
            self.handle, idempotency_key, kind="repost", repost_of=target.remote_id
        )
        return record.receipt

    def find_published(self, post: OutgoingPost) -> list[Receipt] | None:
        """The parts recorded under this delivery's own key. The contract's time bound
        (``post.not_before``) holds by construction: no other delivery has that key."""
        self.network._enter(self.handle, "find_published", post.idempotency_key)
        receipts: list[Receipt] = []
        for index in range(len(post.parts)):
            record = self.network._lookup(self.handle, _part_key(post.idempotency_key, index))
            if record is None:
                break
            receipts.append(record.receipt)
        return receipts or None

    def fetch_metrics(self, targets: Sequence[Receipt]) -> list[Metrics]:
        self.network._enter(self.handle, "fetch_metrics")
        if len(targets) > self.metrics_batch_size:
            raise PermanentError(
                f"asked for {len(targets)} records at once; the limit is {self.metrics_batch_size}"
            )
        return [
            self.network.metrics.get(t.remote_id, Metrics(remote_id=t.remote_id)) for t in targets
        ]

    def fetch_spreaders(
        self, target: Receipt, limit: int = MAX_SPREADERS_PER_SWEEP
    ) -> list[SpreaderInfo]:
        self.network._enter(self.handle, "fetch_spreaders")
        return list(self.network.spreaders.get(target.remote_id, []))[:limit]

    def fetch_profiles(self, accounts: Sequence[Identity]) -> list[Identity]:
        """Follower counts from ``network.followers`` (by handle, or by ``memory:<handle>``
        ids), else the newest listing of that account among the spreaders."""
        self.network._enter(self.handle, "fetch_profiles")
        listed = {i.remote_user_id: i for infos in self.network.spreaders.values() for i in infos}
        out: list[Identity] = []
        for a in accounts:
            handle = a.handle or a.remote_user_id.removeprefix("memory:")
            count = self.network.followers.get(handle)
            if count is None and a.remote_user_id in listed:
                count = listed[a.remote_user_id].followers_count
            if count is not None:
                out.append(Identity(a.remote_user_id, a.handle, followers_count=count))
        return out

    def delete(self, target: Receipt) -> None:
        self.network._enter(self.handle, "delete")
        record = self.network._get(target.remote_id)
        if record is not None:
            record.deleted = True

    def whoami(self) -> Identity:
        self.network._enter(self.handle, "whoami")
        return Identity(
            remote_user_id=f"memory:{self.handle}",
            handle=self.handle,
            display_name=self.handle,
            followers_count=self.network.followers.get(self.handle, 100),
        )
