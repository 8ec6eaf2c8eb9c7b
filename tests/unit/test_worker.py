"""The worker: on-time dispatch, one post at a time per account, budgets, recovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from factories import make_account, make_delivery, make_post, make_user
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from amplify import embedded, ratelimit
from amplify.db import session_factory
from amplify.models import (
    Account,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Role,
    WorkerHeartbeat,
    utcnow,
)
from amplify.worker import Worker
from connectors.base import Connector, ConnectorContext, PermanentError, RateLimited
from tests import memory_connector as memory


@pytest.fixture(autouse=True)
def _fresh_network() -> Iterator[None]:
    memory.reset()
    yield
    memory.reset()


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker[Session]:
    return session_factory(sqlite_url)


def as_memory(account: Account) -> Connector:
    """Every platform's account publishes to the in-memory network."""
    return memory.MemoryConnector(
        ConnectorContext(handle=account.handle, service_url="", credentials={})
    )


def account(s: Session, **fields: object) -> Account:
    """A practice-network account (publishing to the in-memory network in these tests)."""
    values: dict[str, object] = {"platform": "sandbox"}
    values.update(fields)
    return make_account(s, **values)  # type: ignore[arg-type]


def due(s: Session, **fields: object) -> Delivery:
    if "account" not in fields:
        fields["account"] = account(s)
    return make_delivery(s, **fields)  # type: ignore[arg-type]


def statuses(factory: sessionmaker[Session]) -> dict[int, str]:
    with factory() as s:
        return {d.id: d.status for d in s.scalars(select(Delivery))}


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_it_publishes_everything_due_once_and_leaves_the_future_alone(
    factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    with factory() as s:
        ready = [due(s, next_attempt_at=now - timedelta(seconds=5)) for _ in range(12)]
        later = due(s, next_attempt_at=now + timedelta(hours=1))
        s.commit()

    summary = Worker(concurrency=4, connector_for=as_memory).run_once(metrics=False)

    assert summary["claimed"] == 12
    assert summary["outcomes"] == {"published": 12}
    state = statuses(factory)
    assert all(state[d.id] == DeliveryStatus.PUBLISHED for d in ready)
    assert state[later.id] == DeliveryStatus.PENDING
    assert memory.NETWORK.call_count("publish") == 12
    assert len(memory.NETWORK.published()) == 12


def test_it_publishes_one_accounts_posts_one_at_a_time_in_order(
    factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    with factory() as s:
        acct = account(s, handle="chapter")
        for i in range(6):
            make_delivery(
                s,
                account=acct,
                post=make_post(s, body=f"story {i}"),
                next_attempt_at=now - timedelta(seconds=60 - i),
            )
        s.commit()

    Worker(concurrency=4, connector_for=as_memory).run_once(metrics=False)

    assert [r.text.split()[:2] for r in memory.NETWORK.published("chapter")] == [
        ["story", str(i)] for i in range(6)
    ]


def test_it_keeps_publishing_other_accounts_while_one_waits_for_its_rate_reset(
    factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    reset = now + timedelta(minutes=10)
    with factory() as s:
        slow = make_account(s, platform="x", handle="slow")
        fast = make_account(s, platform="x", handle="fast")
        slow_ds = [make_delivery(s, account=slow, next_attempt_at=now) for _ in range(3)]
        fast_ds = [make_delivery(s, account=fast, next_attempt_at=now) for _ in range(3)]
        s.commit()
    memory.NETWORK.fail_next(RateLimited("slow down", retry_at=reset), handle="slow")

    Worker(concurrency=2, connector_for=as_memory).run_once(metrics=False)

    state = statuses(factory)
    assert all(state[d.id] == DeliveryStatus.PUBLISHED for d in fast_ds)
    assert all(state[d.id] == DeliveryStatus.PENDING for d in slow_ds)
    # One call hit the 429; nothing more was sent before the reset.
    assert memory.NETWORK.call_count("publish", "slow") == 1
    with factory() as s:
        assert ratelimit.blocked_accounts(s).get(slow.id) == reset
        assert all(
            s.get(Delivery, d.id).next_attempt_at >= reset  # type: ignore[union-attr]
            for d in slow_ds
        )


def test_it_defers_an_over_budget_account_to_the_window_reset_without_calling(
    factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    with factory() as s:
        acct = make_account(s, platform="x", handle="busy")
        ds = [make_delivery(s, account=acct, next_attempt_at=now) for _ in range(3)]
        # 99 of 100 posts already spent in this 15-minute window.
        assert ratelimit.acquire(s, "x", acct.id, units=99, now=now) is None
        s.commit()

    Worker(concurrency=2, connector_for=as_memory).run_once(metrics=False)

    assert memory.NETWORK.call_count("publish", "busy") == 1
    state = statuses(factory)
    assert sorted(state[d.id] for d in ds) == ["pending", "pending", "published"]
    with factory() as s:
        waiting = [s.get(Delivery, d.id) for d in ds]
        resets = {d.next_attempt_at for d in waiting if d and d.status == "pending"}
        assert resets == {now + timedelta(minutes=15)}


def test_it_stops_a_permanent_error_at_once_with_the_reason(
    factory: sessionmaker[Session],
) -> None:
    with factory() as s:
        d = due(s)
        s.commit()
    memory.NETWORK.fail_next(PermanentError("the text is too long; shorten it to 280"))
    summary = Worker(concurrency=1, connector_for=as_memory).run_once(metrics=False)
    assert summary["outcomes"] == {"failed": 1}
    with factory() as s:
        row = s.get(Delivery, d.id)
        assert row is not None
        assert row.status == DeliveryStatus.FAILED
        assert row.last_error == "the text is too long; shorten it to 280"
    assert memory.NETWORK.call_count("publish") == 1


def test_it_starts_an_amplification_wave_when_an_original_lands(
    factory: sessionmaker[Session],
) -> None:
    with factory() as s:
        org = account(s, handle="org")
        post = make_post(s, amplify=True)
        original = make_delivery(s, post=post, account=org)
        for _ in range(3):
            owner = make_user(s, role=Role.VOLUNTEER)
            account(s, owner_id=owner.id, amplify_opt_in=True)
        s.commit()

    Worker(concurrency=2, connector_for=as_memory).run_once(metrics=False)

    with factory() as s:
        reposts = s.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.REPOST)).all()
        assert len(reposts) == 3
        assert {r.source_id for r in reposts} == {original.id}
        assert all(r.status == DeliveryStatus.PENDING for r in reposts)


def test_it_reconciles_an_expired_lease_without_sending_twice(
    factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    with factory() as s:
        acct = account(s, handle="crashy")
        d = make_delivery(
            s,
            account=acct,
            status=DeliveryStatus.CLAIMED,
            lease_owner="dead-worker",
            lease_expires_at=now - timedelta(seconds=1),
            next_attempt_at=now - timedelta(minutes=1),
        )
        s.commit()
    # The dead worker's publish had landed before it died.
    as_memory_account = memory.MemoryConnector(
        ConnectorContext(handle="crashy", service_url="", credentials={})
    )
    from amplify.publisher import outgoing_for

    with factory() as s:
        row = s.get(Delivery, d.id)
        assert row is not None
        as_memory_account.publish(outgoing_for(row))

    summary = Worker(concurrency=2, connector_for=as_memory).run_once(metrics=False)

    assert summary["reconciled"] == 1
    assert statuses(factory)[d.id] == DeliveryStatus.PUBLISHED
    assert len(memory.NETWORK.published("crashy")) == 1
    assert memory.NETWORK.call_count("publish", "crashy") == 1  # only the dead worker's


def test_it_dispatches_on_time_when_running_and_at_once_when_woken(
    factory: sessionmaker[Session],
) -> None:
    worker = Worker(concurrency=2, connector_for=as_memory, idle_seconds=30, metrics_enabled=False)
    with factory() as s:
        soon = due(s, next_attempt_at=utcnow() + timedelta(seconds=1.5))
        s.commit()
    worker.start()
    try:
        # First dispatch ran at start and scheduled itself for the due time, not 30 s later.
        assert wait_for(lambda: statuses(factory)[soon.id] == "published", timeout=5)
        with factory() as s:
            row = s.get(Delivery, soon.id)
            assert row is not None and row.published_at is not None
            assert (row.published_at - row.next_attempt_at).total_seconds() < 1.0

        # Let the dispatch that followed that publish finish: the worker is now idle for 30 s.
        assert wait_for(lambda: worker.idle, timeout=5)
        time.sleep(0.5)
        assert worker.idle
        with factory() as s:
            fresh = due(s, next_attempt_at=utcnow())
            s.commit()
        time.sleep(0.3)
        assert statuses(factory)[fresh.id] == "pending"  # idle for 30 s: not picked up yet
        worker.wake()
        assert wait_for(lambda: statuses(factory)[fresh.id] == "published", timeout=3)
    finally:
        worker.stop()


def test_it_finishes_in_flight_publishes_and_gives_back_queued_claims_on_stop(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    entered = threading.Event()
    original = memory.MemoryConnector.publish

    def slow_publish(self: memory.MemoryConnector, post: object, on_part: object = None) -> object:
        entered.set()
        gate.wait(5)
        return original(self, post, on_part)  # type: ignore[arg-type]

    monkeypatch.setattr(memory.MemoryConnector, "publish", slow_publish)
    with factory() as s:
        d = due(s, next_attempt_at=utcnow() - timedelta(seconds=2))
        queued = due(s)  # another account: claimed too, waiting behind the busy thread
        s.commit()
    worker = Worker(concurrency=1, prefetch=1, connector_for=as_memory, metrics_enabled=False)
    worker.start()
    assert entered.wait(5)
    assert wait_for(lambda: statuses(factory)[queued.id] == DeliveryStatus.CLAIMED, timeout=5)
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    time.sleep(0.2)
    assert stopper.is_alive()  # waiting for the in-flight publish
    gate.set()
    stopper.join(10)
    assert statuses(factory)[d.id] == DeliveryStatus.PUBLISHED
    assert statuses(factory)[queued.id] == DeliveryStatus.PENDING  # never started: given back
    with factory() as s:
        beat = s.get(WorkerHeartbeat, worker.worker_id)
        assert beat is not None
        assert beat.last_action.startswith("stopped (released 1")
        assert beat.published_count == 1
        assert s.scalars(select(Delivery).where(Delivery.lease_owner.is_not(None))).all() == []


def test_it_gives_back_claims_it_had_not_started_when_stopping(
    factory: sessionmaker[Session],
) -> None:
    from amplify import queue

    worker = Worker(concurrency=1, worker_id="w-stop", connector_for=as_memory)
    with factory() as s:
        d = due(s)
        s.commit()
    assert queue.claim_due(factory, "w-stop", limit=1) == [d.id]
    worker.stop()
    assert statuses(factory)[d.id] == DeliveryStatus.PENDING


def test_it_writes_a_heartbeat_saying_what_it_did_last(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        due(s)
        s.commit()
    worker = Worker(worker_id="w-beat", concurrency=1, connector_for=as_memory)
    worker.run_once(metrics=False)
    with factory() as s:
        beat = s.get(WorkerHeartbeat, "w-beat")
        assert beat is not None
        assert beat.published_count == 1
        assert "1 claimed" in beat.last_action


def test_it_forgets_workers_silent_for_days_but_keeps_recent_ones(
    factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    with factory() as s:
        for name, seen in [
            ("gone", now - timedelta(days=3)),
            ("napping", now - timedelta(hours=5)),
        ]:
            s.add(WorkerHeartbeat(worker_id=name, hostname="h", pid=1, last_seen_at=seen))
        s.commit()
    Worker(worker_id="w-now", factory=factory).heartbeat()
    with factory() as s:
        assert set(s.scalars(select(WorkerHeartbeat.worker_id))) == {"napping", "w-now"}


def test_it_runs_exactly_one_embedded_worker_per_process(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amplify.config import reset_settings

    embedded.wake()  # no embedded worker: nothing happens, nothing breaks
    assert embedded.ensure_started() is None  # the test settings turn it off
    monkeypatch.setenv("AMPLIFY_EMBEDDED_WORKER", "true")
    reset_settings()
    try:
        results: list[object] = []
        threads = [
            threading.Thread(target=lambda: results.append(embedded.ensure_started()))
            for _ in range(5)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first = results[0]
        assert first is not None
        assert all(r is first for r in results)
        assert embedded.current() is first
        embedded.wake()
    finally:
        embedded.stop()
    assert embedded.current() is None
