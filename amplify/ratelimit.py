"""Shared write budgets, kept in the database (``RateBudget``) so every worker sees them.

Each platform has one or more fixed windows: per account (Bluesky 5,000 points / hour
with a create costing 3, Mastodon 300 requests / 5 min, X 100 posts / 15 min per user)
and, on X, daily caps that depend on the API plan the chapter pays for (``X_PLANS``; the
plan is a setting of the X connection, ``Account.options["x_plan"]``). A delivery whose
account is over budget is not claimed-and-slept: it goes back to ``pending`` at the
window's reset with a plain reason ("X allows 17 posts a day on your plan; the next goes
out at 14:05 UTC"), so other accounts keep publishing.

What the platform says wins over what is counted here: a 429 (``RateLimited.retry_at``)
blocks the account's budget until that reset, and the limits an answer reports
(``RateLimited.limits``, ``XConnector.limits_seen``) correct the rows through
:func:`observe` (X's own count of what is left, its own reset time).

Keys: ``<platform>:account:<id>`` (the shortest window; it also carries the platform's
blocks), ``<platform>:account:<id>:<name>`` (another window of the account, e.g. X's
``day``) and ``<platform>:app`` (every account of the developer app).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from amplify.db import is_postgres
from amplify.models import Account, Delivery, DeliveryKind, DeliveryStatus, RateBudget, utcnow
from connectors import registry
from connectors.base import LimitReading

DAY = timedelta(hours=24)
QUARTER_HOUR = timedelta(minutes=15)


@dataclass(frozen=True)
class Limit:
    """``capacity`` units per ``window``; ``scope`` is ``account`` or ``app``.

    ``capacity=None``: no number is documented; the row only carries what the platform
    reports (its blocks and counts)."""

    scope: str
    capacity: int | None
    window: timedelta
    unit_cost: int = 1  # units one platform write costs (Bluesky: a create is 3 points)
    name: str = ""  # "" for the account's main window; else a key suffix ("day")
    what: str = "posts"  # what one unit is, for people: posts, points, requests
    reported: bool = False  # the capacity is the platform's own figure, not our table's


@dataclass(frozen=True)
class XPlan:
    """Posts (``POST /2/tweets``) an X API plan allows; None: not documented."""

    label: str
    user_day: int | None
    app_day: int | None
    user_15min: int = 100


# X API plans. Source: X's rate-limit page (https://docs.x.com/x-api/fundamentals/rate-limits)
# as recorded in the project's platform notes (shared/notes/platform-facts.md, "X: plans and
# daily caps"): Free 17 posts / 24 h per user and per app; Basic 100 / 24 h per user and
# 1,667 / 24 h per app; Pro 100 / 15 min per user and 10,000 / 24 h per app. The notes are
# silent on Enterprise (limits set by contract: Pro's are used until X's headers say
# otherwise), on a 15-minute window for Free and Basic (X's general 100 per 15 minutes per
# user is used), and on pay-per-use access (not offered as a plan here). Check X's page
# before relying on a number: the headers X returns correct these anyway (``observe``).
X_PLANS: dict[str, XPlan] = {
    "free": XPlan("Free", user_day=17, app_day=17),
    "basic": XPlan("Basic", user_day=100, app_day=1_667),
    "pro": XPlan("Pro", user_day=None, app_day=10_000),
    "enterprise": XPlan("Enterprise", user_day=None, app_day=10_000),
}
#: The plan of an X connection nobody set: Pro's numbers, the largest documented, so a
#: chapter is never held back by a guess; X's own 429 and headers then show the real caps.
DEFAULT_X_PLAN = "pro"


#: Where an X connection keeps the daily caps X itself reported (``Account.options``).
X_CAPS_SEEN = "x_caps_seen"


def x_limits(plan: XPlan, seen: dict[str, object] | None = None) -> tuple[Limit, ...]:
    """An X account's windows: its plan's, with the daily caps X reported in place of the
    table's (X's headers win when they disagree)."""
    seen = seen or {}
    user_day, app_day = seen.get("day"), seen.get("app")
    return (
        Limit("account", plan.user_15min, QUARTER_HOUR),
        Limit(
            "account",
            user_day if isinstance(user_day, int) else plan.user_day,
            DAY,
            name="day",
            reported=isinstance(user_day, int),
        ),
        Limit(
            "app",
            app_day if isinstance(app_day, int) else plan.app_day,
            DAY,
            reported=isinstance(app_day, int),
        ),
    )


def _x_account_limits(options: dict[str, object] | None) -> tuple[Limit, ...]:
    seen = (options or {}).get(X_CAPS_SEEN)
    return x_limits(X_PLANS[x_plan_of(options)], seen if isinstance(seen, dict) else None)


class _DefaultLimits(Mapping[str, tuple[Limit, ...]]):
    """Each platform's write windows when its account says nothing more: X's from its
    default plan, every other platform's from its connector's ``PlatformInfo.write_budgets``.
    Platforms without budgets (the sandbox) are not in it. Read on use, so a platform added
    to the registry is budgeted without an edit here."""

    def __getitem__(self, platform: str) -> tuple[Limit, ...]:
        if platform == "x":
            return x_limits(X_PLANS[DEFAULT_X_PLAN])
        try:
            budgets = registry.info(platform).write_budgets
        except ValueError:
            raise KeyError(platform) from None
        if not budgets:
            raise KeyError(platform)
        return tuple(
            Limit(b.scope, b.count, b.window, unit_cost=b.unit_cost, what=b.what) for b in budgets
        )

    def __iter__(self) -> Iterator[str]:
        return iter([p for p in registry.platforms() if p in self])

    def __len__(self) -> int:
        return len(list(iter(self)))


LIMITS: Mapping[str, tuple[Limit, ...]] = _DefaultLimits()


def describe_x_plan(key: str) -> str:
    """One line for a plan picker: "Basic: 100 posts a day per account, 1,667 per app"."""
    plan = X_PLANS[key]
    per_user = (
        f"{plan.user_day:,} posts a day per account"
        if plan.user_day is not None
        else f"{plan.user_15min:,} posts every 15 minutes per account"
    )
    per_app = f", {plan.app_day:,} a day for the app" if plan.app_day is not None else ""
    return f"{plan.label}: {per_user}{per_app}"


def x_plan_of(options: dict[str, object] | None) -> str:
    """The plan key of an X connection's options (``DEFAULT_X_PLAN`` when not set)."""
    plan = str((options or {}).get("x_plan") or "").strip().lower()
    return plan if plan in X_PLANS else DEFAULT_X_PLAN


def limits_for(s: Session, platform: str, account_id: int) -> tuple[Limit, ...]:
    """The account's windows: its plan's on X, the platform's elsewhere."""
    if platform != "x":
        return LIMITS.get(platform, ())
    options = s.scalar(select(Account.options).where(Account.id == account_id))
    return _x_account_limits(options)


def budget_key(platform: str, limit: Limit, account_id: int) -> str:
    if limit.scope == "app":
        return f"{platform}:app"
    return account_key(platform, account_id) + (f":{limit.name}" if limit.name else "")


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
    keys = sorted(set(keys))
    _ensure_rows(s, keys, now)
    stmt = select(RateBudget).where(RateBudget.key.in_(keys)).order_by(RateBudget.key)
    if is_postgres(s):
        stmt = stmt.with_for_update()
    # populate_existing: another worker may have changed the row since this session saw it.
    rows = s.scalars(stmt.execution_options(populate_existing=True)).all()
    return {r.key: r for r in rows}


def _over(row: RateBudget, lim: Limit, units: int, now: datetime) -> datetime | None:
    """The reset to wait for if ``units`` more do not fit in ``row``'s window; else None."""
    if row.blocked_until is not None and row.blocked_until > now:
        return row.blocked_until
    reset = row.window_start + lim.window
    if lim.capacity is None or reset <= now:
        return None
    if row.used + units * lim.unit_cost > lim.capacity:
        return reset
    return None


def acquire(
    s: Session, platform: str, account_id: int, units: int = 1, *, now: datetime | None = None
) -> datetime | None:
    """Spend ``units`` writes of the account's budgets; ``None`` when spent, else the reset
    time to wait for (nothing is spent then). The caller commits."""
    limits = limits_for(s, platform, account_id)
    if not limits:
        return None
    now = now or utcnow()
    keys = [budget_key(platform, lim, account_id) for lim in limits]
    rows = _lock_rows(s, keys, now)
    wait_until: datetime | None = None
    for lim, key in zip(limits, keys, strict=True):
        row = rows[key]
        if row.window_start + lim.window <= now and not (
            row.blocked_until is not None and row.blocked_until > now
        ):
            row.window_start = now
            row.used = 0
        reset = _over(row, lim, units, now)
        if reset is not None:
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


def observe(
    s: Session,
    platform: str,
    account_id: int,
    readings: Sequence[LimitReading],
    *,
    now: datetime | None = None,
) -> None:
    """Correct the account's budgets with the limits the platform just reported: its count
    of what is left and its reset time replace ours; a used-up limit blocks until its reset
    (an app-wide one blocks every account of the platform). The caller commits."""
    now = now or utcnow()
    if platform == "x":
        _remember_x_caps(s, account_id, readings)
    limits = limits_for(s, platform, account_id)
    for reading in readings:
        if reading.action != "post":
            continue
        lim = next(
            (x for x in limits if x.scope == reading.scope and x.window == reading.window), None
        )
        if lim is None:
            lim = Limit(reading.scope, None, reading.window, name="day")
        key = budget_key(platform, lim, account_id)
        row = _lock_rows(s, [key], now)[key]
        if reading.reset_at is not None and reading.reset_at > now:
            row.window_start = reading.reset_at - lim.window
        capacity = lim.capacity if lim.capacity is not None else reading.limit
        if capacity is not None:
            # X's own count wins; with a larger real cap this goes below zero, which lets
            # exactly the posts X says are left through.
            row.used = (capacity - reading.remaining) * lim.unit_cost
        if reading.exhausted and reading.reset_at is not None and reading.reset_at > now:
            # Blocks live on the account's main row (every plan has it) or the app row.
            target = key if lim.scope == "app" else account_key(platform, account_id)
            carrier = _lock_rows(s, [target], now)[target]
            if carrier.blocked_until is None or carrier.blocked_until < reading.reset_at:
                carrier.blocked_until = reading.reset_at


def _remember_x_caps(s: Session, account_id: int, readings: Sequence[LimitReading]) -> None:
    """Keep the daily caps X reported on the connection, where they differ from what is
    known, so the budgets and the messages use X's figure from now on."""
    caps = {
        ("day" if r.scope == "account" else "app"): r.limit
        for r in readings
        if r.window == DAY and r.limit is not None
    }
    account = s.get(Account, account_id) if caps else None
    if account is None:
        return
    seen = dict((account.options or {}).get(X_CAPS_SEEN) or {})
    if all(seen.get(k) == v for k, v in caps.items()):
        return
    account.options = {**(account.options or {}), X_CAPS_SEEN: {**seen, **caps}}


def _account_plans(s: Session, platform: str) -> dict[int, tuple[Limit, ...]]:
    if platform != "x":
        return {}
    rows = s.execute(select(Account.id, Account.options).where(Account.platform == "x"))
    return {int(i): _x_account_limits(o) for i, o in rows}


def _row_limit(limits: Sequence[Limit], scope: str, name: str) -> Limit | None:
    return next((lim for lim in limits if lim.scope == scope and lim.name == name), None)


def blocked_reasons(s: Session, *, now: datetime | None = None) -> dict[int, tuple[datetime, str]]:
    """Accounts that may not write now: the time each may write again and why, in words
    for the story's page."""
    now = now or utcnow()
    out: dict[int, tuple[datetime, str, bool]] = {}
    plans: dict[str, dict[int, tuple[Limit, ...]]] = {}

    def note(account_id: int, until: datetime, reason: str, known: bool = True) -> None:
        """Keep the latest reset; at the same reset, the first known limit (the account's
        own before the app's) explains it better than a bare "asked to wait"."""
        held = out.get(account_id)
        if held is None or held[0] < until or (held[0] == until and known and not held[2]):
            out[account_id] = (until, reason, known)

    def limits_of(platform: str, account_id: int) -> tuple[Limit, ...]:
        if platform not in plans:
            plans[platform] = _account_plans(s, platform)
        return plans[platform].get(account_id, LIMITS.get(platform, ()))

    for row in s.scalars(select(RateBudget).where(RateBudget.key.like("%:account:%"))):
        platform, _, ident = row.key.split(":", 2)
        number, _, name = ident.partition(":")
        try:
            account_id = int(number)
        except ValueError:
            continue
        if row.blocked_until is not None and row.blocked_until > now:
            reason = waiting_reason(platform, None, row.blocked_until)
            note(account_id, row.blocked_until, reason, known=False)
        lim = _row_limit(limits_of(platform, account_id), "account", name)
        if lim is not None and lim.capacity is not None:
            reset = row.window_start + lim.window
            if reset > now and row.used + lim.unit_cost > lim.capacity:
                note(account_id, reset, waiting_reason(platform, lim, reset, account_id, s))
    # App-wide windows (X: its daily cap per app) hold up every account of the platform.
    for row in s.scalars(select(RateBudget).where(RateBudget.key.like("%:app"))):
        platform = row.key.split(":", 1)[0]
        ids = list(s.scalars(select(Account.id).where(Account.platform == platform)))
        for account_id in ids:
            if row.blocked_until is not None and row.blocked_until > now:
                reason = waiting_reason(platform, None, row.blocked_until)
                note(account_id, row.blocked_until, reason, known=False)
            lim = _row_limit(limits_of(platform, account_id), "app", "")
            if lim is None or lim.capacity is None:
                continue
            reset = row.window_start + lim.window
            if reset > now and row.used + lim.unit_cost > lim.capacity:
                note(account_id, reset, waiting_reason(platform, lim, reset, account_id, s))
    return {k: (until, reason) for k, (until, reason, _) in out.items()}


def blocked_accounts(s: Session, *, now: datetime | None = None) -> dict[int, datetime]:
    """Accounts that may not write now, with the time each may write again."""
    return {k: until for k, (until, _) in blocked_reasons(s, now=now).items()}


def _platform_name(platform: str) -> str:
    try:
        return registry.info(platform).label
    except ValueError:
        return platform.title()


def _per(window: timedelta) -> str:
    if window == DAY:
        return "a day"
    if window == timedelta(hours=1):
        return "an hour"
    return f"every {int(window.total_seconds() // 60)} minutes"


def waiting_reason(
    platform: str,
    limit: Limit | None,
    until: datetime,
    account_id: int | None = None,
    s: Session | None = None,
) -> str:
    """Why a delivery waits, for a volunteer: "X allows 17 posts a day on your plan; the
    next goes out at 14:05 UTC"."""
    name = _platform_name(platform)
    when = f"the next goes out at {until:%H:%M} UTC"
    if until.date() != utcnow().date():
        when = f"the next goes out on {until:%a %d %b} at {until:%H:%M} UTC"
    if limit is None or limit.capacity is None:
        return f"{name} asked Amplify to wait; {when}"
    what = "posts" if limit.unit_cost > 1 else limit.what
    amount = f"{limit.capacity // limit.unit_cost:,} {what}"
    whose = " for all your accounts together" if limit.scope == "app" else ""
    plan = ""
    if platform == "x" and limit.reported:
        plan = " on your plan"  # X's own figure: whatever the connection says the plan is
    elif platform == "x" and s is not None and account_id is not None:
        options = s.scalar(select(Account.options).where(Account.id == account_id))
        plan = f" on your plan ({X_PLANS[x_plan_of(options)].label})"
    return f"{name} allows {amount} {_per(limit.window)}{whose}{plan}; {when}"


def defer_blocked(s: Session, *, now: datetime | None = None) -> int:
    """Push due pending deliveries of over-budget accounts to their reset time, before a
    claim, so they are neither claimed nor counted as due, and say why on each. Returns
    how many moved."""
    now = now or utcnow()
    moved = 0
    for account_id, (until, reason) in blocked_reasons(s, now=now).items():
        result = s.execute(
            update(Delivery)
            .where(
                Delivery.account_id == account_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at < until,
            )
            .values(next_attempt_at=until, last_error=reason, error_kind="rate_limited")
            .execution_options(synchronize_session=False)
        )
        moved += int(getattr(result, "rowcount", 0) or 0)
    return moved


def units_for(delivery: Delivery, parts: int = 1) -> int:
    """Platform writes one delivery makes: one per thread part still to land; a repost 1."""
    if delivery.kind == DeliveryKind.REPOST:
        return 1
    landed = len(delivery.parts or [])
    return max(1, parts - landed)


def usage(s: Session, keys: Iterable[str]) -> dict[str, int]:
    rows = s.scalars(select(RateBudget).where(RateBudget.key.in_(list(keys))))
    return {r.key: r.used for r in rows}
