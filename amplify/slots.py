"""Weekly posting slots per account ("mon 09:00" in the workspace zone) and the next open one.

A slot is taken for a set of accounts when any of them already has a story scheduled
there (pending, being sent, or published). Leads use ``next_open_slot`` to drop an
approved story into the first free slot instead of picking a time by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from amplify.accounts import get_account, require_manager
from amplify.errors import ValidationFailed
from amplify.models import Account, Delivery, DeliveryKind, DeliveryStatus, Post, User, utcnow
from amplify.workflow import audit
from amplify.workspace import workspace_tz

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SLOT = re.compile(r"^\s*([a-z]+)\.?\s+(\d{1,2})[:.h](\d{2})\s*$", re.IGNORECASE)
HORIZON_DAYS = 12 * 7
MAX_SLOTS = 7 * 24
_TAKEN = (
    DeliveryStatus.PENDING,
    DeliveryStatus.CLAIMED,
    DeliveryStatus.RECONCILE,
    DeliveryStatus.PUBLISHED,
)


def parse_slot(text: str) -> tuple[int, time]:
    """``"Mon 9:00"`` → (0, 09:00). Days: mon…sun or full names; times 24-hour HH:MM."""
    match = _SLOT.match(text or "")
    if match is None:
        raise ValidationFailed(
            [f"{text!r} is not a posting slot; write a day and a 24-hour time, like 'mon 09:00'."]
        )
    day_word, hour, minute = match.group(1).lower(), int(match.group(2)), int(match.group(3))
    if day_word in DAYS:
        day = DAYS.index(day_word)
    elif day_word in _FULL:
        day = _FULL.index(day_word)
    else:
        raise ValidationFailed(
            [f"{text!r}: {day_word!r} is not a day; use mon, tue, wed, thu, fri, sat or sun."]
        )
    if hour > 23 or minute > 59:
        raise ValidationFailed([f"{text!r}: {hour}:{minute:02d} is not a time of day."])
    return day, time(hour, minute)


def format_slot(day: int, at: time) -> str:
    return f"{DAYS[day]} {at:%H:%M}"


def validate_slots(items: Iterable[str]) -> list[str]:
    """Normalised, de-duplicated slots in week order; every bad one is reported at once."""
    parsed: set[tuple[int, time]] = set()
    problems: list[str] = []
    for item in items:
        if not (item or "").strip():
            continue
        try:
            parsed.add(parse_slot(item))
        except ValidationFailed as exc:
            problems.extend(exc.problems)
    if len(parsed) > MAX_SLOTS:
        problems.append(f"Keep to {MAX_SLOTS} slots a week at most.")
    if problems:
        raise ValidationFailed(problems)
    return [format_slot(d, t) for d, t in sorted(parsed)]


def set_slots(s: Session, actor: User, account_id: int, items: Sequence[str]) -> list[str]:
    account = get_account(s, account_id)
    require_manager(actor, account)
    slots = validate_slots(items)
    before = list(account.posting_slots or [])
    if slots != before:
        account.posting_slots = slots
        audit(s, actor, "account.slots_changed", "account", account.id, before=before, after=slots)
        s.flush()
    return slots


def _slot_set(accounts: Iterable[Account]) -> list[tuple[int, time]]:
    found: set[tuple[int, time]] = set()
    for account in accounts:
        for item in account.posting_slots or []:
            try:
                found.add(parse_slot(str(item)))
            except ValidationFailed:
                continue  # saved before validation existed: ignore rather than fail a lead
    return sorted(found)


def _minute(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def next_open_slot(
    s: Session,
    account_ids: Iterable[int],
    after: datetime | None = None,
    *,
    horizon_days: int = HORIZON_DAYS,
) -> datetime | None:
    """The first slot of any of these accounts strictly after ``after`` (default: now) at
    which none of them already has a story scheduled; None when they have no slots.

    Slots are read in the workspace zone, so "mon 09:00" stays 09:00 across DST changes.
    Raises ValidationFailed when every slot in the next ``horizon_days`` is taken.
    """
    ids = list(dict.fromkeys(account_ids))
    after = utcnow() if after is None else after
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValidationFailed(["Give the starting time with its time zone."])
    accounts = list(s.scalars(select(Account).where(Account.id.in_(ids)))) if ids else []
    weekly = _slot_set(accounts)
    if not weekly:
        return None
    end = after + timedelta(days=horizon_days + 1)
    rows = s.execute(
        select(Post.scheduled_for, Delivery.next_attempt_at, Delivery.status)
        .join(Post, Post.id == Delivery.post_id)
        .where(
            Delivery.account_id.in_(ids),
            Delivery.kind == DeliveryKind.POST,
            Delivery.status.in_([str(x) for x in _TAKEN]),
            Post.scheduled_for >= after - timedelta(minutes=1),
            Post.scheduled_for <= end,
        )
    ).all()
    taken: set[datetime] = set()
    for scheduled_for, next_attempt_at, status in rows:
        if scheduled_for is not None:
            taken.add(_minute(scheduled_for))
        if status == DeliveryStatus.PENDING and next_attempt_at is not None:
            taken.add(_minute(next_attempt_at))

    tz = workspace_tz(s)
    first_day = after.astimezone(tz).date()
    for offset in range(horizon_days + 1):
        day = first_day + timedelta(days=offset)
        for weekday, at in weekly:
            if weekday != day.weekday():
                continue
            local = datetime.combine(day, at, tzinfo=tz)
            candidate = local.astimezone(UTC)
            if candidate <= after or _minute(candidate) in taken:
                continue
            return candidate
    raise ValidationFailed(
        [
            f"Every posting slot of these accounts in the next {horizon_days // 7} weeks is "
            "taken; add slots or pick a time."
        ]
    )
