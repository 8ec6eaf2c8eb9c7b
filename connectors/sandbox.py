"""Sandbox: a local practice network for demos and training. Nothing is really posted.

Everything this connector "publishes" is a row in the ``sandbox_records`` table of the
workspace database; nothing leaves the machine. It behaves like a real platform where the
rest of Amplify can tell: idempotency keys (the same key gives back the same record, never
a duplicate), threads (each part replies to the one before), reposts, deletes,
``find_published`` after a crash, and engagement numbers that grow over time.

Engagement model (``simulated=True`` on every reading)
------------------------------------------------------
The numbers are a deterministic function of the record id and the record's age, so a
dashboard shows curves that rise and level off the way real posts do, and two readings at
the same age always agree. For record ``r`` of age ``t`` hours::

    seed      = first 8 bytes of sha256("amplify-sandbox:<r>"), as an integer
    u1..u6    = six numbers in [0, 1) drawn from random.Random(seed)
    a         = 5 + 195 * u1**2        # eventual likes: 5..200, most posts modest
    tau       = 1 + 11 * u2            # hours to reach ~63 % of that
    likes     = floor(a * (1 - exp(-t / tau)))
    reposts   = floor(likes * (0.10 + 0.25 * u3))
    replies   = floor(likes * (0.02 + 0.10 * u4))
    quotes    = floor(reposts * 0.2 * u5)
    impressions = likes * (20 + 40 * u6) rounded down;  bookmarks = floor(likes * 0.05)

Spreaders: the first ``reposts + quotes`` (at most 50) accounts of a per-record shuffle of
a pool of 200 simulated accounts, ``advocate-NNN.sandbox``. Each pool account has a fixed
follower count ``floor(30 * exp(4 * v))`` (30..1,600, a long tail) with ``v`` drawn from
``random.Random(sha256("amplify-sandbox-user:<n>"))``. Because the pool is shared, the same
people reshare several posts, as on a real network.

Error injection, so the dashboard and tests can show an account in trouble: a handle that
starts with ``fail-auth`` raises AuthError from whoami/publish/repost; ``fail-perm`` raises
PermanentError; ``fail-rate`` raises RateLimited (retry in 60 s); ``fail-transient`` raises
TransientError.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from amplify.db import database_url, session_scope
from amplify.models import SandboxRecord, utcnow
from connectors.base import (
    MAX_SPREADERS_PER_SWEEP,
    AuthError,
    ConnectorContext,
    Identity,
    Metrics,
    OutgoingPost,
    PartCallback,
    PermanentError,
    PlatformInfo,
    RateLimited,
    Receipt,
    SpreaderInfo,
    TransientError,
)

PLATFORM = "sandbox"
DISPLAY_NAME = "Sandbox (practice network — nothing is really posted)"
MAX_CHARS = 500
POOL_SIZE = 200
MAX_SPREADERS = 50
POOL_ID_PREFIX = "sandbox-user-"


# --------------------------------------------------------------------------- the model


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def model_metrics(record_id: int, age_hours: float) -> dict[str, int]:
    """The documented engagement model: counts for record ``record_id`` at ``age_hours``."""
    rng = random.Random(_seed(f"amplify-sandbox:{record_id}"))
    u1, u2, u3, u4, u5, u6 = (rng.random() for _ in range(6))
    t = max(age_hours, 0.0)
    a = 5 + 195 * u1**2
    tau = 1 + 11 * u2
    likes = math.floor(a * (1 - math.exp(-t / tau)))
    reposts = math.floor(likes * (0.10 + 0.25 * u3))
    return {
        "likes": likes,
        "reposts": reposts,
        "replies": math.floor(likes * (0.02 + 0.10 * u4)),
        "quotes": math.floor(reposts * 0.2 * u5),
        "impressions": math.floor(likes * (20 + 40 * u6)),
        "bookmarks": math.floor(likes * 0.05),
    }


def pool_account(n: int) -> SpreaderInfo:
    """Simulated account number ``n`` of the shared pool, with its fixed follower count."""
    v = random.Random(_seed(f"amplify-sandbox-user:{n}")).random()
    return SpreaderInfo(
        remote_user_id=f"{POOL_ID_PREFIX}{n:03d}",
        handle=f"advocate-{n:03d}.sandbox",
        display_name=f"Practice advocate {n:03d} (simulated)",
        followers_count=math.floor(30 * math.exp(4 * v)),
    )


def model_spreaders(record_id: int, count: int) -> list[SpreaderInfo]:
    """The first ``count`` (at most 50) accounts of this record's shuffle of the pool."""
    order = list(range(POOL_SIZE))
    random.Random(_seed(f"amplify-sandbox-spread:{record_id}")).shuffle(order)
    return [pool_account(n) for n in order[: max(0, min(count, MAX_SPREADERS))]]


def handle_followers(handle: str) -> int:
    """The simulated follower count of a sandbox account (stable per handle)."""
    v = random.Random(_seed(f"amplify-sandbox-handle:{handle}")).random()
    return math.floor(100 * math.exp(3 * v))


# --------------------------------------------------------------------------- reads

_read_lock = threading.Lock()
_read_engines: dict[str, Engine] = {}


def _busy_timeout(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


@contextmanager
def read_scope(url: str | None = None) -> Iterator[Session]:
    """A session for reads that never waits for the SQLite write lock.

    The workspace engine starts every SQLite transaction with BEGIN IMMEDIATE. A caller
    such as the metrics sweep may hold such a transaction while it asks this connector
    for numbers; a second BEGIN IMMEDIATE from here would wait for that very caller. Reads
    therefore go through a plain engine (pysqlite opens no transaction for a SELECT; WAL
    lets it read beside a writer). PostgreSQL needs nothing special.
    """
    url = url or database_url()
    if not url.startswith("sqlite"):
        with session_scope(url) as s:
            yield s
        return
    with _read_lock:
        engine = _read_engines.get(url)
        if engine is None:
            # NullPool: nothing kept open between reads (cheap for SQLite, no leaked files).
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                poolclass=NullPool,
            )
            event.listen(engine, "connect", _busy_timeout)
            _read_engines[url] = engine
    with Session(engine, expire_on_commit=False) as s:
        yield s


# --------------------------------------------------------------------------- connector


class SandboxConnector:
    """One practice account. Each write is its own short transaction on the workspace DB."""

    platform: ClassVar[str] = PLATFORM
    display_name: ClassVar[str] = DISPLAY_NAME
    metrics_batch_size: ClassVar[int] = 100
    supports_repost: ClassVar[bool] = True
    max_chars: ClassVar[int] = MAX_CHARS

    def __init__(
        self,
        context: ConnectorContext,
        *,
        database_url: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.context = context
        self.handle = context.handle
        self._url = database_url
        self._clock = clock

    # ------------------------------------------------------------------ helpers

    def _check_handle(self) -> None:
        handle = self.handle.lower()
        if handle.startswith("fail-auth"):
            raise AuthError(
                f"the practice account {self.handle} refused the sign-in (simulated: handles "
                "starting with 'fail-auth' always do); reconnect it with another handle"
            )
        if handle.startswith("fail-perm"):
            raise PermanentError(
                f"the practice network refused posts from {self.handle} (simulated: handles "
                "starting with 'fail-perm' always are)"
            )
        if handle.startswith("fail-rate"):
            raise RateLimited(
                f"the practice network asked {self.handle} to slow down (simulated)",
                retry_at=self._clock() + timedelta(seconds=60),
            )
        if handle.startswith("fail-transient"):
            raise TransientError(f"the practice network hiccuped for {self.handle} (simulated)")

    def _receipt(self, record: SandboxRecord) -> Receipt:
        return Receipt(remote_id=str(record.id), uri=f"sandbox://{record.handle}/{record.id}")

    @staticmethod
    def _part_key(key: str, index: int) -> str:
        return key if index == 0 else f"{key}#{index}"

    def _by_key(self, s: Session, key: str) -> SandboxRecord | None:
        return s.scalar(select(SandboxRecord).where(SandboxRecord.idempotency_key == key))

    def _record(self, key: str, **fields: object) -> SandboxRecord:
        """The record with ``key``, created with ``fields`` if it does not exist yet."""
        try:
            with session_scope(self._url) as s:
                found = self._by_key(s, key)
                if found is not None:
                    return found
                record = SandboxRecord(
                    handle=self.handle, idempotency_key=key, created_at=self._clock(), **fields
                )
                s.add(record)
                s.flush()
                return record
        except IntegrityError:
            # Another process created the same key between our read and our insert.
            with session_scope(self._url) as s:
                found = self._by_key(s, key)
                if found is None:  # pragma: no cover - the unique key makes this impossible
                    raise TransientError("the practice network lost a record; try again") from None
                return found

    @staticmethod
    def _record_id(target: Receipt) -> int:
        try:
            return int(target.remote_id)
        except ValueError:
            raise PermanentError(
                f"{target.remote_id!r} is not a practice-network record id"
            ) from None

    # ------------------------------------------------------------------ contract

    def text_limit(self) -> int | None:
        return None  # the practice network has one limit

    def validate(self, post: OutgoingPost) -> list[str]:
        problems: list[str] = []
        if not post.parts or not any(p.strip() for p in post.parts):
            problems.append("the story is empty; write some text")
        for index, part in enumerate(post.parts):
            if len(part) > MAX_CHARS:
                where = f"part {index + 1}" if len(post.parts) > 1 else "the text"
                problems.append(
                    f"{where} is {len(part)} characters; the practice network allows "
                    f"{MAX_CHARS}, shorten it by {len(part) - MAX_CHARS}"
                )
        for media in post.media:
            if not media.alt_text.strip():
                problems.append(
                    f"the image {media.path.rsplit('/', 1)[-1]} has no alt text; describe it "
                    "for people using screen readers"
                )
        if len(post.media) > 4:
            problems.append(f"{len(post.media)} images attached; at most 4 are allowed")
        return problems

    def publish(self, post: OutgoingPost, on_part: PartCallback | None = None) -> list[Receipt]:
        self._check_handle()
        problems = self.validate(post)
        if problems:
            raise PermanentError("; ".join(problems))
        receipts = list(post.landed)
        for index in range(len(receipts), len(post.parts)):
            reply_to = self._record_id(receipts[-1]) if receipts else None
            record = self._record(
                self._part_key(post.idempotency_key, index),
                kind="post",
                text=post.parts[index],
                reply_to=reply_to,
            )
            receipt = self._receipt(record)
            receipts.append(receipt)
            if on_part is not None:
                on_part(index, receipt)
        return receipts

    def repost(self, target: Receipt, idempotency_key: str) -> Receipt:
        self._check_handle()
        target_id = self._record_id(target)
        with session_scope(self._url) as s:
            original = s.get(SandboxRecord, target_id)
            if original is None or original.deleted:
                raise PermanentError(
                    f"practice post {target_id} does not exist (deleted?); nothing to reshare"
                )
        record = self._record(idempotency_key, kind="repost", repost_of=target_id)
        return self._receipt(record)

    def find_published(self, post: OutgoingPost) -> list[Receipt] | None:
        """The parts recorded under this delivery's own key. The contract's time bound
        (``post.not_before``) holds by construction: no other delivery has that key."""
        receipts: list[Receipt] = []
        with read_scope(self._url) as s:
            for index in range(len(post.parts)):
                record = self._by_key(s, self._part_key(post.idempotency_key, index))
                if record is None:
                    break
                receipts.append(self._receipt(record))
        return receipts or None

    def fetch_metrics(self, targets: Sequence[Receipt]) -> list[Metrics]:
        if len(targets) > self.metrics_batch_size:
            raise PermanentError(
                f"asked for {len(targets)} records at once; the limit is {self.metrics_batch_size}"
            )
        now = self._clock()
        ids = [self._record_id(t) for t in targets]
        with read_scope(self._url) as s:
            records = {
                r.id: r for r in s.scalars(select(SandboxRecord).where(SandboxRecord.id.in_(ids)))
            }
        out: list[Metrics] = []
        for target, record_id in zip(targets, ids, strict=True):
            record = records.get(record_id)
            if record is None or record.deleted:
                out.append(Metrics(remote_id=target.remote_id, simulated=True))
                continue
            age = (now - record.created_at).total_seconds() / 3600
            counts = model_metrics(record_id, age)
            out.append(Metrics(remote_id=target.remote_id, simulated=True, **counts))
        return out

    def fetch_spreaders(
        self, target: Receipt, limit: int = MAX_SPREADERS_PER_SWEEP
    ) -> list[SpreaderInfo]:
        (metrics,) = self.fetch_metrics([target])
        count = min(metrics.reposts + metrics.quotes, limit)
        return model_spreaders(self._record_id(target), count)

    def fetch_profiles(self, accounts: Sequence[Identity]) -> list[Identity]:
        """Simulated follower counts: the pool's fixed ones, or a handle's stable one."""
        self._check_handle()
        out: list[Identity] = []
        for a in accounts:
            if a.remote_user_id.startswith(POOL_ID_PREFIX):
                n = a.remote_user_id.removeprefix(POOL_ID_PREFIX)
                if n.isdigit():
                    pooled = pool_account(int(n))
                    out.append(
                        Identity(
                            pooled.remote_user_id,
                            pooled.handle,
                            pooled.display_name,
                            pooled.followers_count,
                        )
                    )
                continue
            out.append(
                Identity(a.remote_user_id, a.handle, followers_count=handle_followers(a.handle))
            )
        return out

    def delete(self, target: Receipt) -> None:
        self._check_handle()
        with session_scope(self._url) as s:
            record = s.get(SandboxRecord, self._record_id(target))
            if record is not None:
                record.deleted = True

    def whoami(self) -> Identity:
        self._check_handle()
        return Identity(
            remote_user_id=f"sandbox:{self.handle}",
            handle=self.handle,
            display_name=f"{self.handle} — {DISPLAY_NAME}",
            followers_count=handle_followers(self.handle),
        )

    # ------------------------------------------------------------------ inspection

    def records(self) -> list[SandboxRecord]:
        """Everything this account has on the practice network, oldest first (for pages)."""
        with read_scope(self._url) as s:
            return list(
                s.scalars(
                    select(SandboxRecord)
                    .where(SandboxRecord.handle == self.handle)
                    .order_by(SandboxRecord.id)
                )
            )


INFO = PlatformInfo(
    name=PLATFORM,
    label="Sandbox (practice)",
    description=DISPLAY_NAME,
    steps=(
        "The **sandbox is a practice network**: nothing posted there leaves this machine. "
        "Use it to try Amplify out or to train volunteers. Pick any handle "
        "(e.g. `team.sandbox`). Handles starting with `fail-auth` simulate a refused sign-in."
    ),
    how_to="The practice network needs no credentials.",
    handle_label="Practice handle",
    https_only=False,
    practice=True,
)
