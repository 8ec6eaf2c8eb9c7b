"""Workspace settings an admin changes from the dashboard, kept in the ``settings`` table.

Each setting is one row: ``key`` → ``{"value": ...}``. A setting never saved falls back
to the process configuration (``AMPLIFY_*``). Notification channels live in their own
table (``amplify.notify``), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy.orm import Session

from amplify.config import get_settings
from amplify.errors import ValidationFailed
from amplify.models import Setting, User
from amplify.permissions import Action, require
from amplify.workflow import audit

TIMEZONE = "timezone"
AMPLIFY_WINDOW = "amplify_window_minutes"
MAX_WINDOW_MINUTES = 7 * 24 * 60


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(name: str) -> str:
    value = (name or "").strip()
    if value not in _zones():
        raise ValidationFailed(
            [
                f"{value or 'An empty name'} is not a time zone; choose an IANA name such as "
                "America/Chicago or Europe/Berlin."
            ]
        )
    return value


def validate_amplify_window(value: Any) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationFailed(
            ["Give the amplification window as two numbers of minutes, e.g. 15 and 90."]
        ) from None
    if low < 0 or high < low or high > MAX_WINDOW_MINUTES:
        raise ValidationFailed(
            [
                f"The amplification window must run from 0 up to {MAX_WINDOW_MINUTES} minutes, "
                f"and start before it ends (got {low} to {high})."
            ]
        )
    return low, high


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    TIMEZONE: validate_timezone,
    AMPLIFY_WINDOW: lambda v: list(validate_amplify_window(v)),
}


def _defaults() -> dict[str, Any]:
    settings = get_settings()
    return {
        TIMEZONE: settings.timezone,
        AMPLIFY_WINDOW: list(settings.amplify_window_minutes),
    }


def get_setting(s: Session, key: str, default: Any = None) -> Any:
    """The saved value of ``key``; else the configured default; else ``default``."""
    row = s.get(Setting, key)
    if row is not None and "value" in (row.value or {}):
        return row.value["value"]
    return _defaults().get(key, default)


def set_setting(s: Session, actor: User, key: str, value: Any) -> Any:
    """Save one setting (admins only), validated, with an audit event; returns the value kept."""
    require(actor, Action.MANAGE_SETTINGS)
    validator = _VALIDATORS.get(key)
    if validator is not None:
        value = validator(value)
    row = s.get(Setting, key)
    before = row.value.get("value") if row is not None and row.value else None
    if row is None:
        row = Setting(key=key, value={"value": value})
        s.add(row)
    elif before == value:
        return value
    else:
        row.value = {"value": value}
    audit(s, actor, "settings.changed", "settings", None, key=key, before=before, after=value)
    s.flush()
    return value


# --------------------------------------------------------------------------- typed helpers


def get_timezone(s: Session) -> str:
    """The workspace zone name: the admin's choice, else AMPLIFY_TIMEZONE."""
    value = get_setting(s, TIMEZONE)
    try:
        return validate_timezone(str(value))
    except ValidationFailed:  # a zone removed from tzdata since it was saved
        return get_settings().timezone


def workspace_tz(s: Session) -> ZoneInfo:
    return ZoneInfo(get_timezone(s))


def set_timezone(s: Session, actor: User, name: str) -> str:
    result: str = set_setting(s, actor, TIMEZONE, name)
    return result


def get_amplify_window(s: Session) -> tuple[int, int]:
    """Reposts of a story are spread at random across this many minutes after it lands."""
    try:
        return validate_amplify_window(get_setting(s, AMPLIFY_WINDOW))
    except ValidationFailed:
        low, high = get_settings().amplify_window_minutes
        return low, high


def set_amplify_window(s: Session, actor: User, low: int, high: int) -> tuple[int, int]:
    saved = set_setting(s, actor, AMPLIFY_WINDOW, (low, high))
    return int(saved[0]), int(saved[1])


@dataclass(frozen=True)
class WorkspaceSettings:
    timezone: str
    amplify_window_minutes: tuple[int, int]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def get_workspace(s: Session) -> WorkspaceSettings:
    return WorkspaceSettings(get_timezone(s), get_amplify_window(s))
