"""Worker benchmarks: on-time dispatch, a wave of many accounts, metrics sweeps, footprint.

Every scenario builds its own throw-away SQLite workspace in a temporary directory (or
uses ``AMPLIFY_BENCH_DATABASE_URL``, e.g. a PostgreSQL database, wiped first) and a
stand-in platform in this process with a set latency per call, so nothing leaves the
machine and the numbers are reproducible. ``run_all()`` is what ``worker_all.py`` prints;
the other ``worker_*.py`` scripts here run one scenario each.

- **lateness** — 1,000 deliveries due across 60 s; seconds between each due time and the
  platform call: p50, p99, max (goal: p99 < 0.5 s).
- **wave** — 1,000 deliveries on 1,000 accounts due at once, 100 ms per platform call;
  wall time against the ideal for the pool size (ceil(n / pool) × 100 ms).
- **sweep** — metrics for 10,000 published deliveries per platform; API calls against the
  minimum, ceil(n/100) on X and ceil(n/25) on Bluesky.
- **footprint** — RSS and CPU of an idle ``amplify worker`` process with 10,000
  future deliveries queued.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import insert, text
from sqlalchemy.orm import Session, sessionmaker

from amplify import crypto
from amplify.config import ROOT, get_settings
from amplify.db import make_engine
from amplify.migrate import upgrade
from amplify.models import (
    Account,
    Base,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    PostState,
    User,
    utcnow,
)
from connectors.base import (
    MAX_SPREADERS_PER_SWEEP,
    Connector,
    ConnectorContext,
    Identity,
    Metrics,
    OutgoingPost,
    PartCallback,
    Receipt,
    SpreaderInfo,
)

WAVE_POOL = 16
WAVE_LATENCY = 0.1


# --------------------------------------------------------------------------- stand-in platform


class StandIn:
    """A platform in this process: sleeps ``latency`` per call, notes when each call came."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.calls: dict[str, float] = {}  # idempotency key → time.time() of the call
        self.metrics_calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def connector_for(self) -> Callable[[Account], Connector]:
        def build(account: Account) -> Connector:
            cls = StandInBlueskyConnector if account.platform == "bluesky" else StandInConnector
            conn = cls(
                ConnectorContext(handle=account.handle, service_url="", credentials={}), self
            )
            conn.platform_name = account.platform
            return conn

        return build


class StandInConnector:
    platform: ClassVar[str] = "standin"
    metrics_batch_size: ClassVar[int] = 100
    supports_repost: ClassVar[bool] = True

    def __init__(self, context: ConnectorContext, net: StandIn) -> None:
        self.context = context
        self.net = net
        self.platform_name = "standin"

    def validate(self, post: OutgoingPost) -> list[str]:
        return []

    def publish(self, post: OutgoingPost, on_part: PartCallback | None = None) -> list[Receipt]:
        called = time.time()
        with self.net.lock:
            self.net.calls.setdefault(post.idempotency_key, called)
        if self.net.latency:
            time.sleep(self.net.latency)
        receipts = [
            Receipt(remote_id=f"{post.idempotency_key}-{i}") for i in range(len(post.parts))
        ]
        for i, r in enumerate(receipts):
            if on_part is not None:
                on_part(i, r)
        return receipts

    def repost(self, target: Receipt, idempotency_key: str) -> Receipt:
        with self.net.lock:
            self.net.calls.setdefault(idempotency_key, time.time())
        return Receipt(remote_id=idempotency_key)

    def find_published(self, post: OutgoingPost) -> list[Receipt] | None:
        return None

    def fetch_metrics(self, targets: Sequence[Receipt]) -> list[Metrics]:
        if len(targets) > self.metrics_batch_size:
            raise ValueError("batch larger than the platform allows")
        with self.net.lock:
            name = self.platform_name
            self.net.metrics_calls[name] = self.net.metrics_calls.get(name, 0) + 1
        return [Metrics(remote_id=t.remote_id, likes=1) for t in targets]

    def fetch_spreaders(
        self, target: Receipt, limit: int = MAX_SPREADERS_PER_SWEEP
    ) -> list[SpreaderInfo]:
        return []

    def fetch_profiles(self, accounts: Sequence[Identity]) -> list[Identity]:
        return []

    def delete(self, target: Receipt) -> None:
        return None

    def whoami(self) -> Identity:
        return Identity(remote_user_id=self.context.handle, handle=self.context.handle)


class StandInBlueskyConnector(StandInConnector):
    metrics_batch_size: ClassVar[int] = 25  # app.bsky.feed.getPosts reads 25 at a time


# --------------------------------------------------------------------------- workspace


@contextmanager
def workspace() -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A migrated, empty database for one scenario."""
    given = os.environ.get("AMPLIFY_BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="amplify-bench-") as tmp:
        url = given or f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        if given:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                else:
                    for t in reversed(Base.metadata.sorted_tables):
                        conn.execute(t.delete())
        try:
            yield url, sessionmaker(engine, expire_on_commit=False)
        finally:
            engine.dispose()


def seed(
    factory: sessionmaker[Session],
    *,
    platform: str,
    accounts: int,
    deliveries: int,
    due: Callable[[int], datetime],
    status: str = DeliveryStatus.PENDING,
    published_at: datetime | None = None,
) -> list[str]:
    """Bulk-insert accounts, one post per delivery, and deliveries (round-robin over the
    accounts). Returns the deliveries' idempotency keys, in order."""
    keys = [uuid.uuid4().hex for _ in range(deliveries)]
    with factory() as s:
        author = User(email=f"bench-{uuid.uuid4().hex[:8]}@example.org", name="Bench", role="lead")
        s.add(author)
        s.flush()
        prefix = uuid.uuid4().hex[:6]
        # Sealed for real (the stand-in needs none): a worker process checks it opens.
        sealed = crypto.encrypt_json({})
        s.execute(
            insert(Account),
            [
                {
                    "platform": platform,
                    "handle": f"bench-{prefix}-{i}",
                    "service_url": "",
                    "credentials_enc": sealed,
                    "status": "ok",
                    "followers_count": 100,
                }
                for i in range(accounts)
            ],
        )
        account_ids = list(
            s.scalars(
                text("SELECT id FROM accounts WHERE handle LIKE :p ORDER BY id"),
                {"p": f"bench-{prefix}-%"},
            )
        )
        first_post = s.scalar(text("SELECT COALESCE(MAX(id), 0) FROM posts")) or 0
        s.execute(
            insert(Post),
            [
                {
                    "author_id": author.id,
                    "body": f"Benchmark story {i}: the clinic's new triage cut waits.",
                    "state": PostState.APPROVED,
                    "overrides": {},
                    "target_platforms": [],
                    "version": 1,
                }
                for i in range(deliveries)
            ],
        )
        s.execute(
            insert(Delivery),
            [
                {
                    "post_id": first_post + 1 + i,
                    "account_id": account_ids[i % accounts],
                    "kind": DeliveryKind.POST,
                    "status": status,
                    "next_attempt_at": due(i),
                    "idempotency_key": keys[i],
                    "parts": [],
                    "remote_id": f"r{i}" if status == DeliveryStatus.PUBLISHED else None,
                    "published_at": published_at,
                    "next_metrics_at": published_at,
                }
                for i in range(deliveries)
            ],
        )
        s.commit()
        if s.get_bind().dialect.name == "postgresql":
            # Fresh planner statistics, as autovacuum would gather soon after a bulk load:
            # with none, the claim query's plan degrades to a nested loop over every row.
            s.connection().exec_driver_sql("ANALYZE accounts, posts, deliveries")
            s.commit()
    return keys


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


# --------------------------------------------------------------------------- scenarios


def lateness(n: int = 1000, spread_s: float = 60.0, concurrency: int = 8) -> dict[str, Any]:
    """Deliveries due across ``spread_s`` seconds; how late each platform call came."""
    from amplify.worker import Worker

    net = StandIn(latency=0.0)
    with workspace() as (_url, factory):
        start = utcnow() + timedelta(seconds=3)
        step = spread_s / n
        due_at = [start + timedelta(seconds=i * step) for i in range(n)]
        keys = seed(factory, platform="sandbox", accounts=n, deliveries=n, due=lambda i: due_at[i])
        worker = Worker(
            concurrency=concurrency,
            factory=factory,
            connector_for=net.connector_for(),
            metrics_enabled=False,
        )
        worker.start()
        try:
            deadline = time.monotonic() + spread_s + 60
            while len(net.calls) < n and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            worker.stop()
    late = [net.calls[k] - due_at[i].timestamp() for i, k in enumerate(keys) if k in net.calls]
    return {
        "n": n,
        "published": len(late),
        "spread_s": spread_s,
        "p50_s": round(statistics.median(late), 4) if late else None,
        "p99_s": round(_percentile(late, 0.99), 4) if late else None,
        "max_s": round(max(late), 4) if late else None,
        "early": sum(1 for x in late if x < -0.001),
    }


def wave(n: int = 1000, pool: int = WAVE_POOL, latency: float = WAVE_LATENCY) -> dict[str, Any]:
    """``n`` accounts each with one delivery due now; ``latency`` per platform call."""
    from amplify.worker import Worker

    net = StandIn(latency=latency)
    with workspace() as (_url, factory):
        now = utcnow()
        seed(factory, platform="sandbox", accounts=n, deliveries=n, due=lambda i: now)
        worker = Worker(
            concurrency=pool,
            factory=factory,
            connector_for=net.connector_for(),
            metrics_enabled=False,
        )
        began = time.monotonic()
        summary = worker.run_once(metrics=False)
        wall = time.monotonic() - began
    ideal = math.ceil(n / pool) * latency
    return {
        "n": n,
        "pool": pool,
        "latency_s": latency,
        "published": summary["outcomes"].get("published", 0),
        "wall_s": round(wall, 3),
        "ideal_s": round(ideal, 3),
        "ratio": round(wall / ideal, 3),
    }


def sweep(n: int = 10_000, accounts: int = 50) -> dict[str, Any]:
    """Metrics for ``n`` published deliveries on X and ``n`` on Bluesky, in one sweep."""
    from amplify import metrics

    net = StandIn()
    out: dict[str, Any] = {"n": n}
    with workspace() as (_url, factory):
        landed = utcnow() - timedelta(hours=1)
        for platform in ("x", "bluesky"):
            seed(
                factory,
                platform=platform,
                accounts=accounts,
                deliveries=n,
                due=lambda i: landed,
                status=DeliveryStatus.PUBLISHED,
                published_at=landed,
            )
        began = time.monotonic()
        result = metrics.sweep(factory, connector_for=net.connector_for())
        wall = time.monotonic() - began
    out["x"] = {"calls": net.metrics_calls.get("x", 0), "min_calls": math.ceil(n / 100)}
    out["bluesky"] = {
        "calls": net.metrics_calls.get("bluesky", 0),
        "min_calls": math.ceil(n / 25),
    }
    out["snapshots"] = result.snapshots
    out["wall_s"] = round(wall, 3)
    return out


def footprint(n: int = 10_000, settle_s: float = 5.0, measure_s: float = 15.0) -> dict[str, Any]:
    """An idle standalone worker process with ``n`` future deliveries queued."""
    import psutil

    with workspace() as (url, factory):
        later = utcnow() + timedelta(days=1)
        seed(factory, platform="sandbox", accounts=100, deliveries=n, due=lambda i: later)
        env = dict(os.environ)
        env.update({"AMPLIFY_DATABASE_URL": url, "PYTHONPATH": str(ROOT)})
        # The seeded credentials are sealed with this process's key: the worker needs the same.
        env.setdefault("AMPLIFY_DATA_DIR", str(get_settings().data_dir))
        proc = subprocess.Popen(
            [sys.executable, "-m", "amplify.cli", "worker", "--concurrency", "4"],
            env=env,
            cwd=str(ROOT),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            ps = psutil.Process(proc.pid)
            time.sleep(settle_s)
            if proc.poll() is not None:
                raise RuntimeError("the worker process exited during the footprint benchmark")
            ps.cpu_percent(None)
            time.sleep(measure_s)
            cpu = ps.cpu_percent(None)
            rss = ps.memory_info().rss / (1024 * 1024)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "queued": n,
        "rss_mb": round(rss, 1),
        "cpu_pct": round(cpu, 2),
        "measured_s": measure_s,
    }


def run_all(quick: bool = False) -> dict[str, Any]:
    """Every scenario; ``quick`` shrinks them (a smoke run, not numbers to quote)."""
    if quick:
        return {
            "lateness": lateness(n=50, spread_s=3.0),
            "wave": wave(n=40, pool=8, latency=0.02),
            "sweep": sweep(n=300, accounts=5),
            "footprint": footprint(n=300, settle_s=2.0, measure_s=2.0),
            "quick": True,
        }
    return {
        "lateness": lateness(),
        "wave": wave(),
        "sweep": sweep(),
        "footprint": footprint(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
