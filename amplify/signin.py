"""Signing in with a password: throttling, failures kept for admins, and the setup code.

Throttle: after ``MAX_FAILURES`` failed tries for one email, or from one address, within
``WINDOW``, further tries are refused without looking at the password (so a right password
is refused too, and the answer does not reveal whether it was right) until the oldest of
those failures leaves the window.

Setup code: when the dashboard can be reached from another machine, creating the first admin
needs a one-time code printed in the terminal where the dashboard runs (as Jupyter does).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from amplify import sessions, users
from amplify.models import SignInFailure, User, UserSession, utcnow
from amplify.workflow import audit

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
# Failures older than this are forgotten (the audit log keeps its own record).
KEEP_FAILURES = timedelta(days=90)
NO_MATCH = "That email and password do not match an active person; check both."


@dataclass(frozen=True)
class Attempt:
    """What a sign-in try came to. ``token`` is for the browser's cookie, shown once."""

    user_id: int | None = None
    token: str = ""
    message: str = ""
    retry_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.user_id is not None


def _email_key(email: str) -> str:
    return " ".join((email or "").split()).lower()[:320]


def _last_success(s: Session, email: str) -> datetime | None:
    return s.scalar(
        select(func.max(UserSession.created_at))
        .join(User, User.id == UserSession.user_id)
        .where(User.email == email)
    )


def _retry_at(
    s: Session, column: InstrumentedAttribute[str], value: str, since: datetime
) -> datetime | None:
    recent = s.scalars(
        select(SignInFailure.at)
        .where(column == value, SignInFailure.at > since)
        .order_by(SignInFailure.at.desc())
        .limit(MAX_FAILURES)
    ).all()
    return recent[-1] + WINDOW if len(recent) >= MAX_FAILURES else None


def throttled_until(
    s: Session, email: str, address: str, *, now: datetime | None = None
) -> datetime | None:
    """When tries for this email / from this address may resume, or None if they may now.
    A successful sign-in clears the email's count (not the address's)."""
    now = now or utcnow()
    key = _email_key(email)
    since = now - WINDOW
    last_ok = _last_success(s, key) if key else None
    waits = [
        _retry_at(s, SignInFailure.email, key, max(since, last_ok) if last_ok else since)
        if key
        else None,
        _retry_at(s, SignInFailure.address, address, since) if address else None,
    ]
    due = [w for w in waits if w is not None and w > now]
    return max(due) if due else None


def _throttle_message(retry_at: datetime, now: datetime, tz_name: str) -> str:
    from zoneinfo import ZoneInfo

    minutes = max(1, int((retry_at - now).total_seconds() + 59) // 60)
    clock = retry_at.astimezone(ZoneInfo(tz_name)).strftime("%H:%M %Z")
    return (
        f"Too many sign-in attempts for this email or from this network. For safety, "
        f"wait {minutes} minute{'s' if minutes != 1 else ''} and try again at {clock}. "
        "Forgotten your password? Ask an admin for a reset link."
    )


def record_failure(
    s: Session, email: str, address: str, *, now: datetime | None = None, reason: str = "password"
) -> None:
    now = now or utcnow()
    key = _email_key(email)
    s.add(SignInFailure(email=key, address=(address or "")[:100], at=now))
    user = users.get_by_email(s, key)
    audit(
        s,
        None,
        "user.sign_in_failed",
        "user",
        user.id if user is not None else None,
        email=key,
        address=address,
        reason=reason,
    )
    s.execute(delete(SignInFailure).where(SignInFailure.at < now - KEEP_FAILURES))
    s.flush()


def sign_in(
    s: Session,
    email: str,
    password: str,
    *,
    address: str = "",
    user_agent: str = "",
    now: datetime | None = None,
) -> Attempt:
    """Check a password and start a session. Never raises for a wrong password: the failure
    must be committed (so the caller commits in every case)."""
    from amplify import workspace

    now = now or utcnow()
    retry_at = throttled_until(s, email, address, now=now)
    if retry_at is not None:
        audit(
            s,
            None,
            "user.sign_in_throttled",
            "user",
            None,
            email=_email_key(email),
            address=address,
        )
        tz_name = workspace.get_timezone(s)
        return Attempt(message=_throttle_message(retry_at, now, tz_name), retry_at=retry_at)
    user = users.authenticate(s, email, password)
    if user is None:
        record_failure(s, email, address, now=now)
        return Attempt(message=NO_MATCH)
    token = sessions.start(s, user, user_agent=user_agent, address=address, now=now)
    audit(s, user, "user.signed_in", "user", user.id, address=address)
    return Attempt(user_id=user.id, token=token)


def recent_failures(
    s: Session, *, since: datetime | None = None, limit: int = 200
) -> Sequence[SignInFailure]:
    """Failed sign-ins, newest first (admins see them on Activity)."""
    since = since or utcnow() - timedelta(days=7)
    return s.scalars(
        select(SignInFailure)
        .where(SignInFailure.at >= since)
        .order_by(SignInFailure.at.desc(), SignInFailure.id.desc())
        .limit(limit)
    ).all()


# --------------------------------------------------------------------------- setup code

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_code_lock = threading.Lock()
_code: str | None = None


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for anything else, empty included
    (an empty bind address means every interface)."""
    name = (host or "").strip().strip("[]").lower()
    if not name:
        return False
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def setup_code_needed(
    *, bind_address: str | None, client_address: str | None, forwarded: bool, public_url: str
) -> bool:
    """Whether creating the first admin needs the setup code: unless the server listens on
    loopback only, the visitor is on this machine, no proxy forwarded the request, and the
    public URL is a loopback one, someone else could be the one asking."""
    local_client = client_address is None or is_loopback(client_address)
    public_host = urlsplit(public_url or "").hostname
    return not (
        is_loopback(bind_address) and local_client and not forwarded and is_loopback(public_host)
    )


def _announce(code: str) -> None:
    print(
        "\n  Amplify setup code (needed to create the first admin from another machine):\n"
        f"      {code}\n",
        file=sys.stdout,
        flush=True,
    )


def setup_code(announce: Callable[[str], None] = _announce) -> str:
    """This process's setup code: made (and printed in the terminal) the first time it is
    needed. Kept only in memory, so a restart prints a new one."""
    global _code
    with _code_lock:
        if _code is None:
            raw = secrets.token_hex(6).upper()
            _code = "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))
            announce(_code)
        return _code


def setup_code_matches(given: str) -> bool:
    expected = setup_code()
    cleaned = "".join((given or "").split()).upper().replace("-", "")
    return hmac.compare_digest(cleaned.encode(), expected.replace("-", "").encode())


def forget_setup_code() -> None:
    """Tests: start over as a fresh process would."""
    global _code
    with _code_lock:
        _code = None
