"""Shared write budgets kept in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import make_account, make_delivery, make_user
from sqlalchemy.orm import Session

from amplify import queue, ratelimit
from amplify.models import DeliveryStatus, RateBudget, utcnow
from connectors.base import LimitReading


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
    assert not queue.defer_claimed(session, d.id, "someone-else", reset)
    assert queue.defer_claimed(session, d.id, "w1", reset)
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


# --------------------------------------------------------------------------- X plans


def x_on(session: Session, plan: str | None) -> int:
    options = {"x_plan": plan} if plan else {}
    return make_account(session, platform="x", options=options).id


@pytest.mark.parametrize(
    ("plan", "per_user", "per_app"),
    [("free", 17, 17), ("basic", 100, 1_667), ("pro", None, 10_000), (None, None, 10_000)],
)
def test_it_takes_each_x_plans_documented_daily_caps(
    session: Session, plan: str | None, per_user: int | None, per_app: int
) -> None:
    limits = ratelimit.limits_for(session, "x", x_on(session, plan))
    by_key = {(lim.scope, lim.window): lim.capacity for lim in limits}
    assert by_key["account", timedelta(hours=24)] == per_user
    assert by_key["app", timedelta(hours=24)] == per_app
    assert by_key["account", timedelta(minutes=15)] == 100


def test_it_holds_a_free_plan_account_after_17_posts_a_day_and_says_why(
    session: Session,
) -> None:
    acct = x_on(session, "free")
    now = utcnow()
    for minute in range(17):
        assert ratelimit.acquire(session, "x", acct, now=now + timedelta(minutes=minute)) is None
    later = now + timedelta(hours=1)
    assert ratelimit.acquire(session, "x", acct, now=later) == now + timedelta(hours=24)
    until, reason = ratelimit.blocked_reasons(session, now=later)[acct]
    assert until == now + timedelta(hours=24)
    assert reason.startswith("X allows 17 posts a day on your plan (Free); the next goes out")
    assert f"{until:%H:%M} UTC" in reason


def test_it_lets_xs_own_count_correct_the_daily_budget(session: Session) -> None:
    acct = x_on(session, "basic")
    now = utcnow()
    reset = now + timedelta(hours=5)
    # X says 3 of today's posts are left (we had counted none): 3 go, the fourth waits.
    reading = LimitReading("account", timedelta(hours=24), remaining=3, limit=100, reset_at=reset)
    ratelimit.observe(session, "x", acct, [reading], now=now)
    for _ in range(3):
        assert ratelimit.acquire(session, "x", acct, now=now) is None
    assert ratelimit.acquire(session, "x", acct, now=now) == reset


def test_it_takes_xs_figure_when_it_disagrees_with_the_plan(session: Session) -> None:
    acct = x_on(session, "basic")  # the table says 100 a day
    now = utcnow()
    reset = now + timedelta(hours=3)
    reading = LimitReading("account", timedelta(hours=24), remaining=0, limit=17, reset_at=reset)
    ratelimit.observe(session, "x", acct, [reading], now=now)
    assert ratelimit.acquire(session, "x", acct, now=now) == reset
    daily = {(lim.scope, lim.window): lim for lim in ratelimit.limits_for(session, "x", acct)}
    assert daily["account", timedelta(hours=24)].capacity == 17
    _, reason = ratelimit.blocked_reasons(session, now=now)[acct]
    assert reason.startswith("X allows 17 posts a day on your plan;"), reason


def test_it_holds_every_x_account_when_x_says_the_apps_day_is_used_up(session: Session) -> None:
    one, other = x_on(session, "basic"), x_on(session, "basic")
    now = utcnow()
    reset = now + timedelta(hours=7)
    reading = LimitReading("app", timedelta(hours=24), remaining=0, limit=1_667, reset_at=reset)
    ratelimit.observe(session, "x", one, [reading], now=now)
    assert ratelimit.acquire(session, "x", other, now=now) == reset
    reasons = ratelimit.blocked_reasons(session, now=now)
    assert {one, other} <= set(reasons)
    assert "1,667 posts a day for all your accounts together" in reasons[other][1]


def test_it_ignores_read_limits_when_correcting_the_post_budget(session: Session) -> None:
    acct = x_on(session, None)
    now = utcnow()
    reading = LimitReading(
        "account",
        timedelta(minutes=15),
        remaining=0,
        limit=900,
        reset_at=now + timedelta(minutes=9),
        action="read",
    )
    ratelimit.observe(session, "x", acct, [reading], now=now)
    assert ratelimit.acquire(session, "x", acct, now=now) is None


def test_an_admin_sets_the_x_plan_and_the_budget_follows_it(session: Session) -> None:
    from amplify import accounts
    from amplify.errors import ValidationFailed
    from amplify.models import Role

    admin = make_user(session, role=Role.ADMIN)
    acct = x_on(session, None)
    accounts.set_x_plan(session, admin, acct, "Free")
    daily = {(lim.scope, lim.window): lim for lim in ratelimit.limits_for(session, "x", acct)}
    assert daily["account", timedelta(hours=24)].capacity == 17
    with pytest.raises(ValidationFailed, match="not an X API plan"):
        accounts.set_x_plan(session, admin, acct, "platinum")
    mastodon = make_account(session, platform="mastodon").id
    with pytest.raises(ValidationFailed, match="X connections only"):
        accounts.set_x_plan(session, admin, mastodon, "basic")
