"""Shared write budgets, kept in the database (``RateBudget``) so every worker sees them.

Each platform has one or more fixed windows: per account (X 100 posts / 15 min per user,
Bluesky 5,000 points / hour with a create costing 3, Mastodon 300 requests / 5 min) and,
for X, per app (10,000 posts / 24 h). A delivery whose account is over budget is not
claimed-and-slept: it goes back to ``pending`` at the window's reset, so other accounts
keep publishing. A platform's own 429 (``RateLimited.retry_at``) blocks the account's
budget until that reset so no worker calls the platform before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from amplify.db import is_postgres
from amplify.models import Account, Delivery, DeliveryKind, DeliveryStatus, RateBudget, utcnow


@dataclass(frozen=True)
class Limit:
    """``capacity`` units per ``window``; ``scope`` is ``account`` or ``app``."""

    scope: str
    capacity: int
    window: timedelta
    unit_cost: int = 1  # units one platform write costs (Bluesky: a create is 3 points)


LIMITS: dict[str, tuple[Limit, ...]] = {
    "x": (
        Limit("account", 100, timedelta(minutes=15)),
        Limit("app", 10_000, timedelta(hours=24)),
    ),
    "bluesky": (Limit("account", 5_000, timedelta(hours=1), unit_cost=3),),
    "mastodon": (Limit("account", 300, timedelta(minutes=5)),),
}


def budget_key(platform: str, limit: Limit, account_id: int) -> str:
    if limit.scope == "app":
        return f"{platform}:app"
    return f"{platform}:account:{account_id}"


def account_key(platform: str, account_id: int) -> str:
    return f"{platform}:account:{account_id}"


def _ensure_rows(s: Session, keys: Sequence[str], now: datetime) -> None:
    rows = [{"key": k, "window_start": now, "used": 0} for k in keys]
    if not rows:
        return
    if is_postgres(s):
        s.execute(pg_insert(RateBudget).values(rows).on_conflict_do_nothing(index_elements=["key"]))
    else:
        s.execute(
            sqlite_insert(RateBudget).values(rows).on_conflict_do_nothing(index_elements=["key"])
        )


def _lock_rows(s: Session, keys: Sequence[str], now: datetime) -> dict[str, RateBudget]:
    _ensure_rows(s, keys, now)
    stmt = select(RateBudget).where(RateBudget.key.in_(keys)).order_by(RateBudget.key)
    if is_postgres(s):
        stmt = stmt.with_for_update()
    # populate_existing: another worker may have changed the row since this session saw it.
    rows = s.scalars(stmt.execution_options(populate_existing=True)).all()
    return {r.key: r for r in rows}


def acquire(
    s: Session, platform: str, account_id: int, units: int = 1, *, now: datetime | None = None
) -> datetime | None:
    """Spend ``units`` writes of the account's budgets; ``None`` when spent, else the reset
    time to wait for (nothing is spent then). The caller commits."""
    limits = LIMITS.get(platform, ())
    if not limits:
        return None
    now = now or utcnow()
    keys = [budget_key(platform, lim, account_id) for lim in limits]
    rows = _lock_rows(s, keys, now)
    wait_until: datetime | None = None
    for lim, key in zip(limits, keys, strict=True):
        row = rows[key]
        if row.blocked_until is not None and row.blocked_until > now:
            wait_until = max(wait_until or row.blocked_until, row.blocked_until)
            continue
        if row.window_start + lim.window <= now:
            row.window_start = now
            row.used = 0
        if row.used + units * lim.unit_cost > lim.capacity:
            reset = row.window_start + lim.window
            wait_until = max(wait_until or reset, reset)
    if wait_until is not None:
        return wait_until
    for lim, key in zip(limits, keys, strict=True):
        rows[key].used += units * lim.unit_cost
    return None


def block(
    s: Session, platform: str, account_id: int, until: datetime, *, now: datetime | None = None
) -> None:
    """The platform said 429 until ``until``: no worker calls it for this account before."""
    key = account_key(platform, account_id)
    row = _lock_rows(s, [key], now or utcnow())[key]
    if row.blocked_until is None or row.blocked_until < until:
        row.blocked_until = until


def blocked_accounts(s: Session, *, now: datetime | None = None) -> dict[int, datetime]:
    """Accounts that may not write now, with the time each may write again."""
    now = now or utcnow()
    out: dict[int, datetime] = {}
    for row in s.scalars(select(RateBudget).where(RateBudget.key.like("%:account:%"))):
        platform, _, ident = row.key.split(":", 2)
        try:
            account_id = int(ident)
        except ValueError:
            continue
        until: datetime | None = None
        if row.blocked_until is not None and row.blocked_until > now:
            until = row.blocked_until
        limits = [lim for lim in LIMITS.get(platform, ()) if lim.scope == "account"]
        for lim in limits:
            reset = row.window_start + lim.window
            if reset > now and row.used + lim.unit_cost > lim.capacity:
                until = max(until or reset, reset)
        if until is not None:
            out[account_id] = until
    # App-wide windows (X: 10,000 a day) hold up every account of the platform.
    for row in s.scalars(select(RateBudget).where(RateBudget.key.like("%:app"))):
        platform = row.key.split(":", 1)[0]
        for lim in LIMITS.get(platform, ()):
            reset = row.window_start + lim.window
            if lim.scope == "app" and reset > now and row.used + lim.unit_cost > lim.capacity:
                ids = s.scalars(select(Account.id).where(Account.platform == platform))
                for account_id in ids:
                    out[account_id] = max(out.get(account_id, reset), reset)
    return out


def defer_blocked(s: Session, *, now: datetime | None = None) -> int:
    """Push due pending deliveries of over-budget accounts to their reset time, before a
    claim, so they are neither claimed nor counted as due. Returns how many moved."""
    now = now or utcnow()
    moved = 0
    for account_id, until in blocked_accounts(s, now=now).items():
        result = s.execute(
            update(Delivery)
            .where(
                Delivery.account_id == account_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at < until,
            )
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
        moved += int(getattr(result, "rowcount", 0) or 0)
    return moved


def defer_claimed(s: Session, delivery_id: int, worker_id: str, until: datetime) -> bool:
    """Give a claimed delivery back as pending at ``until`` (its account is over budget)."""
    result = s.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == DeliveryStatus.CLAIMED,
            Delivery.lease_owner == worker_id,
        )
        .values(
            status=DeliveryStatus.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=until,
            # The claim counted an attempt, but nothing was sent: waiting for a window must
            # not use up the retries a real failure is allowed.
            attempts=Delivery.attempts - 1,
            last_error=f"waiting for the platform's rate window to reset at {until:%H:%M:%S} UTC",
            error_kind="rate_limited",
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def units_for(delivery: Delivery, parts: int = 1) -> int:
    """Platform writes one delivery makes: one per thread part still to land; a repost 1."""
    if delivery.kind == DeliveryKind.REPOST:
        return 1
    landed = len(delivery.parts or [])
    return max(1, parts - landed)


def usage(s: Session, keys: Iterable[str]) -> dict[str, int]:
    rows = s.scalars(select(RateBudget).where(RateBudget.key.in_(list(keys))))
    return {r.key: r.used for r in rows}
