"""Four worker processes drain 5,000 due deliveries at once: nothing is claimed twice,
nothing is left behind, and each account publishes its posts one at a time, in order.

Runs on SQLite (one file, WAL) and on the real PostgreSQL server. Prints the timings.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from amplify.db import session_factory
from amplify.models import Account, Delivery, DeliveryStatus, Post, PostState, User, utcnow

WORKERS = 4
ACCOUNTS = 1000
POSTS = 1000
PER_POST = 5  # post n goes to accounts n..n+4 (wrapping): 5,000 deliveries, 5 per account
BATCH = 50


def _drain(url: str, worker_id: str) -> tuple[list[int], float, float]:
    """One worker process: claim, mark complete, repeat until the queue is empty."""
    from amplify import queue
    from connectors.base import Receipt

    factory = session_factory(url)
    claimed: list[int] = []
    claiming = 0.0
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        ids = queue.claim_due(factory, worker_id, limit=BATCH, lease_seconds=600)
        claiming += time.perf_counter() - t0
        if not ids:
            with factory() as s:
                left = s.scalar(
                    select(Delivery.id).where(Delivery.status == DeliveryStatus.PENDING).limit(1)
                )
            if left is None:
                break
            time.sleep(0.005)  # the rest belongs to accounts another worker is busy with
            continue
        claimed.extend(ids)
        for delivery_id in ids:  # one transaction per receipt, as the publisher does
            with factory() as s:
                if not queue.complete(s, delivery_id, worker_id, [Receipt(f"r{delivery_id}")]):
                    raise AssertionError(f"{worker_id} lost the lease on {delivery_id}")
                s.commit()
    return claimed, time.perf_counter() - started, claiming


def _seed(url: str) -> list[int]:
    """POSTS approved posts, each due on PER_POST of the ACCOUNTS accounts; delivery ids."""
    now = utcnow()
    factory = session_factory(url)
    with factory() as s:
        author = User(email=f"{uuid.uuid4().hex[:8]}@example.org", name="Author", role="lead")
        s.add(author)
        s.flush()
        s.execute(
            insert(Account),
            [
                {"platform": "memory", "handle": f"acct{i}", "credentials_enc": "x"}
                for i in range(ACCOUNTS)
            ],
        )
        s.execute(
            insert(Post),
            [
                {"author_id": author.id, "body": f"story {i}", "state": PostState.APPROVED}
                for i in range(POSTS)
            ],
        )
        account_ids = list(s.scalars(select(Account.id).order_by(Account.id)))
        post_ids = list(s.scalars(select(Post.id).order_by(Post.id)))
        rows = [
            {
                "post_id": post_id,
                "account_id": account_id,
                "status": DeliveryStatus.PENDING,
                # Post n is due a second after post n-1.
                "next_attempt_at": now - timedelta(seconds=POSTS - n),
                "idempotency_key": uuid.uuid4().hex,
            }
            for n, post_id in enumerate(post_ids)
            for account_id in (account_ids[(n + k) % ACCOUNTS] for k in range(PER_POST))
        ]
        s.execute(insert(Delivery), rows)
        s.commit()
        # No ANALYZE on purpose: the claim must stay fast before the planner has statistics
        # (right after a bulk approval, before autovacuum has looked at the tables).
        return list(s.scalars(select(Delivery.id)))


@pytest.mark.slow
def test_it_hands_every_delivery_to_exactly_one_of_four_processes(db_url: str) -> None:
    all_ids = _seed(db_url)
    assert len(all_ids) == POSTS * PER_POST == 5000

    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ctx.Pool(WORKERS) as pool:
        results = pool.starmap(_drain, [(db_url, f"worker-{n}") for n in range(WORKERS)])
    wall = time.perf_counter() - started

    claimed = [i for ids, _, _ in results for i in ids]
    assert len(claimed) == len(set(claimed)), "a delivery was claimed twice"
    assert set(claimed) == set(all_ids), "a delivery was left behind"
    assert all(ids for ids, _, _ in results), "a worker got nothing: the claims did not spread"

    factory = session_factory(db_url)
    with factory() as s:
        rows = s.execute(
            select(
                Delivery.account_id,
                Delivery.next_attempt_at,
                Delivery.published_at,
                Delivery.status,
                Delivery.lease_owner,
                Delivery.attempts,
            )
        ).all()
        states = set(s.scalars(select(Post.state)))
    assert states == {PostState.PUBLISHED}, "a story stayed unpublished after all its deliveries"
    assert {r.status for r in rows} == {DeliveryStatus.PUBLISHED}
    assert {r.lease_owner for r in rows} == {None}
    assert {r.attempts for r in rows} == {1}
    by_account: dict[int, list[tuple]] = defaultdict(list)
    for r in rows:
        by_account[r.account_id].append((r.next_attempt_at, r.published_at))
    assert {len(items) for items in by_account.values()} == {PER_POST}
    for account_id, items in by_account.items():
        published = [p for _, p in sorted(items)]
        assert published == sorted(published), f"account {account_id} published out of order"

    busiest = max(t for _, t, _ in results)
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    print(
        f"\n[claim-concurrency] {backend}: {len(claimed)} deliveries, {WORKERS} processes, "
        f"wall {wall:.2f}s incl. spawn, slowest worker {busiest:.2f}s, "
        f"{len(claimed) / busiest:.0f} claim+complete/s; per worker: "
        + ", ".join(f"{len(ids)} in {t:.2f}s ({c:.2f}s claiming)" for ids, t, c in results)
    )
