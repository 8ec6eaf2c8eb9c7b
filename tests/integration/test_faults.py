"""Faults: workers killed mid-publish, flaky networks, 429s and refusals.

Everything here talks to the local X stand-in (tests/fakes/x_server.py), which counts the
posts it creates, so "exactly once" is checked where it matters: on the platform.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from factories import make_account, make_delivery, make_post
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from amplify import queue, ratelimit
from amplify.db import session_factory
from amplify.models import (
    Account,
    AccountStatus,
    Delivery,
    DeliveryStatus,
    WorkerHeartbeat,
    utcnow,
)
from amplify.retry import RetryPolicy
from amplify.worker import Worker
from tests.fakes.x_server import XFakeServer, remote_stats

ROOT = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(base_seconds=0.2, factor=2, cap_seconds=1.0, max_attempts=10, jitter=0.1)


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return queue.queue_counts(s)


def x_account(s: Session, server_url: str, token: str) -> Account:
    """An X account on the stand-in; its handle does not contain its (secret) token."""
    return make_account(
        s,
        platform="x",
        handle=f"chapter_{abs(hash(token)) % 10**8}",
        service_url=server_url,
        credentials={"bearer": token},
    )


def x_deliveries(s: Session, account: Account, n: int, tag: str) -> list[Delivery]:
    now = utcnow()
    return [
        make_delivery(
            s,
            post=make_post(s, body=f"Story {tag}-{i}: our clinic's volunteers cut waits."),
            account=account,
            next_attempt_at=now,
        )
        for i in range(n)
    ]


# --------------------------------------------------------------------------- in-process


@pytest.fixture
def x_server() -> Iterator[XFakeServer]:
    with XFakeServer(hang_seconds=1.0) as server:
        yield server


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker[Session]:
    return session_factory(sqlite_url)


def test_it_lands_everything_once_through_5xx_hangs_resets_and_lost_answers(
    factory: sessionmaker[Session], x_server: XFakeServer
) -> None:
    with factory() as s:
        a = x_account(s, x_server.url, "tok-a")
        b = x_account(s, x_server.url, "tok-b")
        x_deliveries(s, a, 5, "a")
        x_deliveries(s, b, 5, "b")
        s.commit()
    tweets = "POST /2/tweets"
    x_server.inject("server_error", endpoint=tweets, count=2, status=503)
    x_server.inject("hang", endpoint=tweets)
    x_server.inject("reset", endpoint=tweets)
    x_server.inject("server_error", endpoint=tweets, status=502, after=True)  # landed, answer lost
    x_server.inject("reset", endpoint=tweets, after=True)

    worker = Worker(concurrency=2, factory=factory, policy=FAST, metrics_enabled=False)
    worker.start()
    try:
        assert wait_until(lambda: counts(factory)["published"] == 10, timeout=90), counts(factory)
    finally:
        worker.stop()

    stats = x_server.stats()
    assert stats["faults_pending"] == 0  # every fault was met
    assert stats["posts"] == 10
    assert stats["posts_created"] == 10  # nothing was created twice
    with factory() as s:
        ids = s.scalars(select(Delivery.remote_id)).all()
        assert len(set(ids)) == 10
        assert {p["id"] for p in x_server.posts} == set(ids)


def test_it_makes_no_call_before_the_reset_time_of_a_429(
    factory: sessionmaker[Session], x_server: XFakeServer
) -> None:
    with factory() as s:
        slow = x_account(s, x_server.url, "tok-slow")
        x_deliveries(s, slow, 3, "slow")
        s.commit()
    x_server.inject("rate_limit", endpoint="POST /2/tweets", reset_in=3)

    worker = Worker(concurrency=2, factory=factory, policy=FAST, metrics_enabled=False)

    def told_to_wait() -> datetime | None:
        with factory() as s:
            return s.scalar(
                select(func.max(Delivery.next_attempt_at)).where(
                    Delivery.error_kind == "rate_limited"
                )
            )

    def tweet_calls() -> int:
        return int(x_server.stats()["calls"].get("POST /2/tweets", 0))

    worker.start()
    try:
        assert wait_until(lambda: told_to_wait() is not None, 20)
        reset = told_to_wait()  # the x-rate-limit-reset the platform sent
        assert reset is not None
        while utcnow() < reset - timedelta(seconds=0.05):
            assert tweet_calls() == 1, "called before reset"
            time.sleep(0.05)
        assert wait_until(lambda: tweet_calls() >= 2, timeout=10)
        assert utcnow() >= reset
        assert wait_until(lambda: counts(factory)["published"] == 3, timeout=30)
    finally:
        worker.stop()
    assert x_server.stats()["posts_created"] == 3


def test_it_sends_nothing_more_before_xs_24_hour_reset_after_a_daily_cap_429(
    factory: sessionmaker[Session], x_server: XFakeServer
) -> None:
    with factory() as s:
        chapter = x_account(s, x_server.url, "tok-daily")
        x_deliveries(s, chapter, 3, "daily")
        s.commit()
    # The 15-minute window would reset in a minute; the day's cap only in 20 hours.
    x_server.inject(
        "rate_limit", endpoint="POST /2/tweets", reset_in=60, daily="user", daily_reset_in=72000
    )
    worker = Worker(concurrency=2, factory=factory, policy=FAST, metrics_enabled=False)
    for _ in range(3):  # nothing is due again before the day's reset
        worker.run_once(metrics=False)

    assert x_server.stats()["calls"].get("POST /2/tweets", 0) == 1
    day_reset = utcnow() + timedelta(hours=20)
    with factory() as s:
        for delivery in s.scalars(select(Delivery).where(Delivery.account_id == chapter.id)):
            assert delivery.status == DeliveryStatus.PENDING
            assert abs((delivery.next_attempt_at - day_reset).total_seconds()) < 30
            assert delivery.last_error is not None
            assert "X allows 17 posts a day" in delivery.last_error, delivery.last_error
            assert "the next goes out" in delivery.last_error
        assert ratelimit.blocked_accounts(s)[chapter.id] >= day_reset - timedelta(seconds=30)


def test_it_holds_the_next_post_back_once_x_says_the_days_posts_are_used_up(
    factory: sessionmaker[Session],
) -> None:
    """X counts 2 posts a day here and says so on each answer: the third is not sent at
    all, and the story says why, with X's figure (not the Basic plan's 100)."""
    with XFakeServer(user_day_limit=2) as server, factory() as s:
        chapter = x_account(s, server.url, "tok-basic")
        chapter.options = {"x_plan": "basic"}
        x_deliveries(s, chapter, 3, "basic")
        s.commit()
        worker = Worker(concurrency=1, factory=factory, policy=FAST, metrics_enabled=False)
        for _ in range(3):
            worker.run_once(metrics=False)
        assert server.stats()["calls"].get("POST /2/tweets", 0) == 2
    with factory() as s:
        waiting = s.scalars(
            select(Delivery).where(
                Delivery.account_id == chapter.id, Delivery.status == DeliveryStatus.PENDING
            )
        ).all()
        assert len(waiting) == 1
        assert waiting[0].next_attempt_at > utcnow() + timedelta(hours=23)
        reason = waiting[0].last_error
        assert reason is not None and "X allows 2 posts a day on your plan;" in reason, reason


def test_it_stops_at_once_with_a_readable_reason_on_permanent_refusals(
    factory: sessionmaker[Session], x_server: XFakeServer
) -> None:
    with factory() as s:
        revoked = x_account(s, x_server.url, "tok-revoked")
        (refused,) = x_deliveries(s, revoked, 1, "revoked")
        s.commit()
    x_server.revoke("tok-revoked")

    summary = Worker(concurrency=2, factory=factory, policy=FAST).run_once(metrics=False)

    assert summary["outcomes"] == {"needs_attention": 1}
    with factory() as s:
        d = s.get(Delivery, refused.id)
        acct = s.get(Account, revoked.id)
        assert d is not None and acct is not None
        assert d.status == DeliveryStatus.FAILED
        assert d.attempts == 1
        assert acct.status == AccountStatus.NEEDS_ATTENTION
        for message in (d.last_error or "", acct.last_error or ""):
            assert message and "tok-revoked" not in message
            assert "reconnect" in message.lower() or "credentials" in message.lower(), message
    assert x_server.stats()["calls"].get("POST /2/tweets", 0) == 1


def test_it_finishes_the_post_in_flight_and_gives_back_its_claims_on_sigterm(
    sqlite_url: str, tmp_path: Path
) -> None:
    factory = session_factory(sqlite_url)
    with XFakeServer(latency=1.0) as server:
        with factory() as s:
            acct = x_account(s, server.url, "tok-term")
            x_deliveries(s, acct, 3, "term")
            s.commit()
        env = dict(os.environ)
        env.update({"AMPLIFY_DATABASE_URL": sqlite_url, "PYTHONPATH": str(ROOT)})
        log = tmp_path / "worker.log"
        worker = _spawn_worker(env, log, "w-term")
        try:
            assert wait_until(partial(_holds_claim, factory, "w-term"), timeout=60, every=0.02)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0, log.read_text()[-2000:]
        finally:
            if worker.poll() is None:
                worker.kill()
        assert server.stats()["posts_created"] >= 1
        published = server.stats()["posts_created"]
    c = counts(factory)
    # What was being sent landed and was recorded; nothing is left leased to the dead worker.
    assert c["published"] == published
    assert c["claimed"] == c["reconcile"] == 0
    assert c["pending"] == 3 - published
    with factory() as s:
        assert s.scalar(select(func.count()).where(Delivery.lease_owner.is_not(None))) == 0
        beat = s.get(WorkerHeartbeat, "w-term")
        assert beat is not None and beat.last_action.startswith("stopped")


# --------------------------------------------------------------------------- kill -9


def _spawn_worker(env: dict[str, str], log: Path, worker_id: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "amplify.cli",
                "worker",
                "--concurrency",
                "4",
                "--no-metrics",
                "--worker-id",
                worker_id,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _claim_holder(factory: sessionmaker[Session], names: list[str], timeout: float) -> int | None:
    """Index of a worker in ``names`` holding a claim right now (waits up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index, name in enumerate(names):
            if _holds_claim(factory, name):
                return index
        time.sleep(0.02)
    return None


def _holds_claim(factory: sessionmaker[Session], worker_id: str) -> bool:
    with factory() as s:
        return bool(
            s.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.lease_owner == worker_id,
                    Delivery.status == DeliveryStatus.CLAIMED,
                )
            )
        )


def _kill_and_restart(
    factory: sessionmaker[Session],
    workers: list[subprocess.Popen[bytes]],
    names: list[str],
    env: dict[str, str],
    log: Path,
    *,
    rng: random.Random,
    max_kills: int,
    stop_at: int,
    deadline: float,
    hold_timeout: float,
    grace: float,
    prefix: str,
    pause: tuple[float, float] | None = None,
) -> tuple[int, int]:
    """kill -9 workers (preferably one caught holding a claim, i.e. mid-publish) and start a
    fresh one in each one's place, until ``max_kills`` or ``stop_at`` published.
    Returns (kills, kills made while the victim held a claim)."""
    kills = mid_publish = 0
    while kills < max_kills and time.monotonic() < deadline:
        if pause is not None:
            time.sleep(rng.uniform(*pause))
        if counts(factory)["published"] >= stop_at:
            break
        holder = _claim_holder(factory, names, timeout=hold_timeout)
        victim = holder if holder is not None else rng.randrange(len(workers))
        if holder is not None:
            time.sleep(rng.uniform(0.0, grace))
            mid_publish += 1
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(10)
        names[victim] = f"{prefix}{victim}-{kills + 1}"
        workers[victim] = _spawn_worker(env, log, names[victim])
        kills += 1
    return kills, mid_publish


@pytest.mark.postgres
@pytest.mark.slow
def test_it_publishes_500_deliveries_exactly_once_while_workers_are_killed(
    pg_url: str, tmp_path: Path
) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.x_server",
            "--port",
            "0",
            "--latency",
            "0.02",
            "--post-limit",
            "1000",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        factory = session_factory(pg_url)
        with factory() as s:
            for n in range(25):
                acct = x_account(s, url, f"tok-{n}")
                x_deliveries(s, acct, 20, f"{n}")
            s.commit()

        env = dict(os.environ)
        env.update(
            {"AMPLIFY_DATABASE_URL": pg_url, "AMPLIFY_LEASE_SECONDS": "3", "PYTHONPATH": str(ROOT)}
        )
        log = tmp_path / "workers.log"
        names = ["w0-0", "w1-0"]
        workers = [_spawn_worker(env, log, name) for name in names]
        rng = random.Random(20261124)
        deadline = time.monotonic() + 420
        # Chaos: eight times, kill -9 a random worker at a random moment (preferably while it
        # holds a claim, i.e. mid-publish), then start a fresh one in its place.
        kills, mid_publish = _kill_and_restart(
            factory,
            workers,
            names,
            env,
            log,
            rng=rng,
            max_kills=8,
            stop_at=490,
            deadline=deadline,
            hold_timeout=10,
            grace=0.05,
            prefix="w",
            pause=(0.2, 1.5),
        )
        assert kills >= 3, "the workers finished before the chaos could start; add work"
        assert mid_publish >= 3, "no worker was killed while holding a claim"

        def settled() -> bool:
            c = counts(factory)
            return c["published"] == 500 or c["failed"] > 0

        assert wait_until(settled, timeout=max(10.0, deadline - time.monotonic()), every=0.5), (
            counts(factory),
            log.read_text()[-3000:],
        )
        final = counts(factory)
        assert final["published"] == 500, final
        assert final["pending"] == final["claimed"] == final["reconcile"] == 0
        assert final["failed"] == 0
        stats = remote_stats(url)
        assert stats["posts"] == 500
        assert stats["posts_created"] == 500  # nothing was sent twice
        with factory() as s:
            distinct = s.scalar(select(func.count(func.distinct(Delivery.remote_id))))
            assert distinct == 500
        # The dead workers' leases did expire and were reconciled through the platform.
        assert "leases expired on deliveries" in log.read_text()
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        server.terminate()
        server.wait(10)


@pytest.mark.postgres
@pytest.mark.atproto
@pytest.mark.slow
def test_it_publishes_to_bluesky_exactly_once_while_workers_are_killed(
    pg_url: str, tmp_path: Path, atproto_network: Any
) -> None:
    people = [atproto_network.create_account(f"chapter{n}") for n in range(3)]
    factory = session_factory(pg_url)
    with factory() as s:
        for n, person in enumerate(people):
            acct = make_account(
                s,
                platform="bluesky",
                handle=person.handle,
                service_url=atproto_network.pds_url,
                credentials={"app_password": person.app_password},
            )
            x_deliveries(s, acct, 10, f"bsky{n}")
        s.commit()

    env = dict(os.environ)
    env.update(
        {"AMPLIFY_DATABASE_URL": pg_url, "AMPLIFY_LEASE_SECONDS": "3", "PYTHONPATH": str(ROOT)}
    )
    log = tmp_path / "workers.log"
    names = ["b0-0", "b1-0"]
    workers = [_spawn_worker(env, log, name) for name in names]
    try:
        rng = random.Random(7)
        deadline = time.monotonic() + 300
        _, mid_publish = _kill_and_restart(
            factory,
            workers,
            names,
            env,
            log,
            rng=rng,
            max_kills=4,
            stop_at=27,
            deadline=deadline,
            hold_timeout=15,
            grace=0.1,
            prefix="b",
        )
        assert mid_publish >= 1, (
            "no worker was killed while holding a claim",
            counts(factory),
            log.read_text()[-3000:],
        )

        def settled() -> bool:
            c = counts(factory)
            return c["published"] == 30 or c["failed"] > 0

        assert wait_until(settled, timeout=max(10.0, deadline - time.monotonic()), every=0.5), (
            counts(factory),
            log.read_text()[-3000:],
        )
        final = counts(factory)
        assert final["published"] == 30, (final, log.read_text()[-3000:])
        for person in people:
            posts = atproto_network.list_records(person.did, "app.bsky.feed.post")
            assert len(posts) == 10, person.handle  # nothing was created twice
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
