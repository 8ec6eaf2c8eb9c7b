"""One-time password reset links, issued by an admin (or `amplify users reset-password`).

No mail server is needed: the link is shown once to whoever issued it, and also sent to the
person's own notification channels where they have one. The token is random, stored only as
its SHA-256 hash, valid for ``LIFETIME`` and usable once. Issuing a link signs the person out
everywhere (an admin resets a password when something is wrong); using it does so again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from amplify import events, sessions, users
from amplify.config import get_settings
from amplify.errors import ValidationFailed
from amplify.models import PasswordReset, User, utcnow
from amplify.permissions import Action, require
from amplify.workflow import audit

LIFETIME = timedelta(hours=24)
QUERY_KEY = "reset"
EXPIRED = "This password reset link has expired or was already used. Ask an admin for a new one."


def link_for(token: str) -> str:
    base = get_settings().public_url.rstrip("/")
    return f"{base}/?{QUERY_KEY}={token}"


def issue(s: Session, actor: User | None, user_id: int, *, now: datetime | None = None) -> str:
    """A new reset link for ``user_id`` (earlier unused links stop working). ``actor`` None:
    the command line, which runs with the server's own rights."""
    if actor is not None:
        require(actor, Action.MANAGE_USERS)
    now = now or utcnow()
    user = users.get_user(s, user_id)
    if not user.active:
        raise ValidationFailed([f"{user.name} is deactivated; reactivate them first."])
    s.execute(
        update(PasswordReset)
        .where(
            PasswordReset.user_id == user.id,
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
        )
        .values(expires_at=now)
    )
    token = sessions.new_token()
    s.add(
        PasswordReset(
            token_hash=sessions.hash_token(token),
            user_id=user.id,
            created_by_id=actor.id if actor is not None else None,
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    ended = sessions.revoke_all(s, user.id, now=now)
    audit(s, actor, "user.reset_link_issued", "user", user.id, sessions_ended=ended)
    s.flush()
    link = link_for(token)
    # Sent to the person's own channels once this commits (notifications subscribe).
    events.emit(s, "user.reset_link_issued", user_id=user.id, email=user.email, link=link)
    return link


def _live(s: Session, token: str, now: datetime) -> PasswordReset | None:
    if not token:
        return None
    row = s.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == sessions.hash_token(token))
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def person_for(s: Session, token: str, *, now: datetime | None = None) -> User | None:
    """Whose password a still-valid link resets (None: unknown, used or expired)."""
    row = _live(s, token, now or utcnow())
    if row is None:
        return None
    user = s.get(User, row.user_id)
    return user if user is not None and user.active else None


def complete(s: Session, token: str, new_password: str, *, now: datetime | None = None) -> User:
    """Set the new password through a link: once only, and every session of that person ends."""
    now = now or utcnow()
    # FOR UPDATE: the same link opened twice at once cannot be used twice (PostgreSQL).
    row = s.scalar(
        select(PasswordReset)
        .where(PasswordReset.token_hash == sessions.hash_token(token or ""))
        .with_for_update()
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise ValidationFailed([EXPIRED])
    user = s.get(User, row.user_id)
    if user is None or not user.active:
        raise ValidationFailed([EXPIRED])
    users.change_password(s, user, new_password)
    row.used_at = now
    ended = sessions.revoke_all(s, user.id, now=now)
    audit(s, user, "user.password_reset", "user", user.id, sessions_ended=ended)
    s.flush()
    return user
