"""Shared write budgets kept in the database."""

from __future__ import annotations

from datetime import timedelta

from factories import make_account, make_delivery
from sqlalchemy.orm import Session

from amplify import ratelimit
from amplify.models import DeliveryStatus, RateBudget, utcnow


def test_it_lets_an_x_account_post_100_times_per_15_minutes_then_says_when_to_come_back(
    session: Session,
) -> None:
    acct = make_account(session, platform="x")
    now = utcnow()
    for _ in range(100):
        assert ratelimit.acquire(session, "x", acct.id, now=now) is None
    wait_until = ratelimit.acquire(session, "x", acct.id, now=now + timedelta(minutes=1))
    assert wait_until == now + timedelta(minutes=15)
    # A new window opens at the reset.
    assert ratelimit.acquire(session, "x", acct.id, now=now + timedelta(minutes=15)) is None


def test_it_charges_three_points_per_bluesky_create(session: Session) -> None:
    acct = make_account(session, platform="bluesky")
    now = utcnow()
    assert ratelimit.acquire(session, "bluesky", acct.id, units=2, now=now) is None
    row = session.get(RateBudget, ratelimit.account_key("bluesky", acct.id))
    assert row is not None and row.used == 6
    # 5,000 points: 1,664 more creates fit (6 + 4,992 = 4,998), the next does not.
    assert ratelimit.acquire(session, "bluesky", acct.id, units=1664, now=now) is None
    assert ratelimit.acquire(session, "bluesky", acct.id, now=now) == now + timedelta(hours=1)


def test_it_keeps_one_accounts_budget_apart_from_anothers(session: Session) -> None:
    a = make_account(session, platform="mastodon")
    b = make_account(session, platform="mastodon")
    now = utcnow()
    assert ratelimit.acquire(session, "mastodon", a.id, units=300, now=now) is None
    assert ratelimit.acquire(session, "mastodon", a.id, now=now) is not None
    assert ratelimit.acquire(session, "mastodon", b.id, now=now) is None


def test_it_does_not_spend_anything_when_the_budget_refuses(session: Session) -> None:
    acct = make_account(session, platform="x")
    now = utcnow()
    assert ratelimit.acquire(session, "x", acct.id, units=99, now=now) is None
    assert ratelimit.acquire(session, "x", acct.id, units=2, now=now) is not None
    assert ratelimit.usage(session, [ratelimit.account_key("x", acct.id)]) == {
        ratelimit.account_key("x", acct.id): 99
    }


def test_it_blocks_an_account_until_the_platforms_reset_after_a_429(session: Session) -> None:
    acct = make_account(session, platform="x")
    now = utcnow()
    reset = now + timedelta(minutes=7)
    ratelimit.block(session, "x", acct.id, reset, now=now)
    assert ratelimit.acquire(session, "x", acct.id, now=now + timedelta(minutes=6)) == reset
    assert ratelimit.blocked_accounts(session, now=now) == {acct.id: reset}
    assert ratelimit.acquire(session, "x", acct.id, now=reset) is None


def test_it_pushes_due_deliveries_of_a_blocked_account_to_the_reset_and_leaves_others(
    session: Session,
) -> None:
    blocked = make_account(session, platform="x")
    free = make_account(session, platform="x")
    now = utcnow()
    reset = now + timedelta(minutes=5)
    waiting = make_delivery(session, account=blocked, next_attempt_at=now)
    other = make_delivery(session, account=free, next_attempt_at=now)
    ratelimit.block(session, "x", blocked.id, reset, now=now)
    assert ratelimit.defer_blocked(session, now=now) == 1
    session.expire_all()
    assert waiting.next_attempt_at == reset
    assert waiting.status == DeliveryStatus.PENDING
    assert other.next_attempt_at <= now


def test_it_gives_a_claimed_delivery_back_as_pending_at_the_reset(session: Session) -> None:
    now = utcnow()
    d = make_delivery(
        session,
        status=DeliveryStatus.CLAIMED,
        lease_owner="w1",
        lease_expires_at=now + timedelta(minutes=2),
        next_attempt_at=now,
        attempts=3,  # the claim counted the third; nothing was sent
    )
    reset = now + timedelta(minutes=15)
    assert not ratelimit.defer_claimed(session, d.id, "someone-else", reset)
    assert ratelimit.defer_claimed(session, d.id, "w1", reset)
    session.expire_all()
    assert (d.status, d.lease_owner, d.next_attempt_at) == ("pending", None, reset)
    assert d.last_error is not None and "rate window" in d.last_error
    assert d.attempts == 2  # waiting for a window does not use up a retry


def test_it_does_not_limit_platforms_without_known_budgets(session: Session) -> None:
    acct = make_account(session, platform="memory")
    assert ratelimit.acquire(session, "memory", acct.id, units=10_000) is None


def test_it_holds_every_x_account_when_the_apps_daily_10000_posts_are_spent(
    session: Session,
) -> None:
    accounts = [make_account(session, platform="x") for _ in range(3)]
    now = utcnow()
    # 100 accounts' worth of windows spread over the day, all counted against one app.
    for hour in range(100):
        at = now + timedelta(minutes=14 * hour)
        assert ratelimit.acquire(session, "x", accounts[hour % 2].id, units=100, now=at) is None
    later = now + timedelta(minutes=14 * 100)
    assert ratelimit.acquire(session, "x", accounts[2].id, now=later) == now + timedelta(hours=24)
    assert set(ratelimit.blocked_accounts(session, now=later)) == {a.id for a in accounts}
