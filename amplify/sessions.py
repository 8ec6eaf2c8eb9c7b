"""Signed-in browsers: server-side session rows behind an opaque random token.

The browser keeps only the token (a cookie); the database keeps only its SHA-256 hash, so a
copy of the database cannot be replayed as a cookie. A session lasts 14 days from the last
time it was used (sliding), and ends at once when it is revoked: signing out, "sign out
everywhere", a password change or reset, or the person being deactivated.

The token reaches the browser's HttpOnly cookie through a handoff: the sign-in page sends the
browser to a route with ``handoff(token)`` (sealed with a key of its own, valid for
``HANDOFF_TTL``), and the route sets the cookie once ``claim_handoff`` accepts it. A handoff
works only while its session is unused, so a copy (history, a log) cannot be replayed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from amplify import crypto
from amplify.models import User, UserSession, utcnow

LIFETIME = timedelta(days=14)
# Sliding expiry writes at most this often per session (not on every click).
TOUCH_EVERY = timedelta(minutes=5)
# Expired or revoked rows are kept this long (the person's own page lists recent ones).
KEEP_ENDED = timedelta(days=30)
# A handoff is used within a second by the page that asked for it; a minute allows a slow link.
HANDOFF_TTL = timedelta(seconds=60)
_HANDOFF_PURPOSE = "amplify session handoff"


def new_token() -> str:
    """256 random bits, URL-safe: what the browser's cookie holds."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    s: Session, user: User, *, user_agent: str = "", address: str = "", now: datetime | None = None
) -> str:
    """A new session for ``user``; returns the token (shown to the browser once, never stored)."""
    now = now or utcnow()
    token = new_token()
    s.add(
        UserSession(
            token_hash=hash_token(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + LIFETIME,
            user_agent=(user_agent or "")[:300],
            address=(address or "")[:100],
        )
    )
    _purge(s, user.id, now)
    s.flush()
    return token


def resume(s: Session, token_hash: str, *, now: datetime | None = None) -> User | None:
    """The active person behind a live session (sliding its expiry), else None."""
    if not token_hash:
        return None
    now = now or utcnow()
    row = s.scalar(select(UserSession).where(UserSession.token_hash == token_hash))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = s.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        row.expires_at = now + LIFETIME
        s.flush()
    return user


def revoke(s: Session, token_hash: str, *, now: datetime | None = None) -> bool:
    """End one session (signing out). False when there was no live session to end."""
    result = s.execute(
        update(UserSession)
        .where(UserSession.token_hash == token_hash, UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


def revoke_all(
    s: Session, user_id: int, *, keep: str | None = None, now: datetime | None = None
) -> int:
    """End every live session of a person except ``keep`` (a token hash); how many ended."""
    stmt = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if keep:
        stmt = stmt.where(UserSession.token_hash != keep)
    result = s.execute(stmt.values(revoked_at=now or utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def live_sessions(
    s: Session, user_id: int, *, now: datetime | None = None
) -> Sequence[UserSession]:
    """A person's signed-in browsers, most recently used first."""
    now = now or utcnow()
    return s.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
        )
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    ).all()


def handoff(token: str, *, now: datetime | None = None) -> str:
    """The value a browser trades, once and within ``HANDOFF_TTL``, for the cookie holding
    ``token`` (the token itself never goes into a URL)."""
    fernet = crypto.derived_fernet(_HANDOFF_PURPOSE)
    when = int((now or utcnow()).timestamp())
    return fernet.encrypt_at_time(token.encode(), when).decode()


def claim_handoff(s: Session, value: str, *, now: datetime | None = None) -> str | None:
    """The session token behind a fresh handoff whose session is live and still unused
    (it is marked used here); None for anything else: expired, replayed, forged, revoked."""
    now = now or utcnow()
    fernet = crypto.derived_fernet(_HANDOFF_PURPOSE)
    try:
        token = fernet.decrypt_at_time(
            (value or "").encode(), int(HANDOFF_TTL.total_seconds()), int(now.timestamp())
        ).decode()
    except (InvalidToken, UnicodeDecodeError):
        return None
    # Used = seen after it began; the one UPDATE makes two racing claims yield one winner.
    result = s.execute(
        update(UserSession)
        .where(
            UserSession.token_hash == hash_token(token),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
            UserSession.last_seen_at == UserSession.created_at,
            UserSession.created_at < now,
        )
        .values(last_seen_at=now)
    )
    return token if getattr(result, "rowcount", 0) == 1 else None


def _purge(s: Session, user_id: int, now: datetime) -> None:
    """Forget a person's sessions that ended long ago (keeps the table small)."""
    cutoff = now - KEEP_ENDED
    s.execute(
        delete(UserSession).where(
            UserSession.user_id == user_id,
            (UserSession.expires_at < cutoff) | (UserSession.revoked_at < cutoff),
        )
    )
