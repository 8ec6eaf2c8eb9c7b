"""Two workers against one PostgreSQL database never claim the same delivery twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from amplify.db import make_engine
from amplify.models import Account, Delivery, DeliveryStatus, WorkerHeartbeat, utcnow
from amplify.worker import Worker
from benchmarks.harness import seed
from connectors.base import Connector, ConnectorContext
from tests import memory_connector as memory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _fresh_network() -> Iterator[None]:
    memory.reset()
    yield
    memory.reset()


def as_memory(account: Account) -> Connector:
    return memory.MemoryConnector(
        ConnectorContext(handle=account.handle, service_url="", credentials={})
    )


def test_it_never_claims_a_delivery_twice_across_10000_with_two_workers(pg_url: str) -> None:
    # Each worker has its own engine and connection pool, as two processes would.
    engines = [make_engine(pg_url) for _ in range(2)]
    factories = [sessionmaker(e, expire_on_commit=False) for e in engines]
    now = utcnow()
    keys = seed(
        factories[0], platform="sandbox", accounts=2000, deliveries=10_000, due=lambda i: now
    )

    workers = [
        Worker(
            worker_id=f"pg-{n}",
            concurrency=8,
            factory=f,
            connector_for=as_memory,
            metrics_enabled=False,
        )
        for n, f in enumerate(factories)
    ]
    summaries: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def run(worker: Worker) -> None:
        try:
            summaries[worker.worker_id] = worker.run_once(metrics=False, timeout=500)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(550)
    assert not errors, errors
    try:
        calls = Counter(c.key for c in memory.NETWORK.calls if c.method == "publish")
        assert len(calls) == 10_000
        assert set(calls) == set(keys)
        assert max(calls.values()) == 1  # no delivery was sent by both workers
        assert sum(s["claimed"] for s in summaries.values()) == 10_000
        assert all(s["claimed"] > 0 for s in summaries.values())  # both took part

        with factories[0]() as s:
            statuses: dict[str, int] = dict(
                s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()  # type: ignore[arg-type]
            )
            assert statuses == {DeliveryStatus.PUBLISHED: 10_000}
            assert s.scalar(select(func.max(Delivery.attempts))) == 1
            beats = {b.worker_id: b.published_count for b in s.scalars(select(WorkerHeartbeat))}
            assert sum(beats.values()) == 10_000
    finally:
        for e in engines:
            e.dispose()
