"""Who is signed in, and the database session a page uses.

A browser signs in once: the sign-in screen starts a server-side session (amplify.sessions)
and the browser keeps its opaque token in the HttpOnly ``amplify_sid`` cookie, set by an HTTP
route the page sends the browser to (amplify/ui/cookie_routes.py), so a reload or a new tab
stays signed in. On every run the session row is checked again (revoked, expired, person
deactivated: signed out at once) and its 14-day expiry slides.

The seam AppTest tests seed: ``st.session_state["user_id"]`` alone (no session token) is
trusted as the signed-in person, reloaded from the database on every run so a deactivated or
demoted person loses access on their next click. Only the sign-in code writes these keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session

from amplify import sessions
from amplify.db import session_scope
from amplify.models import User
from amplify.ui import cookie_routes

log = logging.getLogger(__name__)

USER_KEY = "user_id"
TOKEN_KEY = "_amplify_sid"
COOKIE = cookie_routes.COOKIE
# Why the last session ended, for the sign-in screen ("deactivated" / "ended").
ENDED_KEY = "_session_ended"
# A cookie route the browser is sent to on the next run (after signing in or out).
NAVIGATE_KEY = "_amplify_navigate"
_routes_served = False


def cookie_routes_served(served: bool) -> None:
    """amplify/ui/server.py serves the cookie routes; a bare `streamlit run app.py` does not
    (there a sign-in lasts as long as the tab)."""
    global _routes_served
    _routes_served = served


@contextmanager
def db() -> Iterator[Session]:
    """One unit of work for a page action: commits on success, rolls back on error."""
    with session_scope() as s:
        yield s


def signed_in_id() -> int | None:
    value = st.session_state.get(USER_KEY)
    return int(value) if value is not None else None


def session_token() -> str | None:
    value = st.session_state.get(TOKEN_KEY)
    return str(value) if value else None


def session_hash() -> str | None:
    token = session_token()
    return sessions.hash_token(token) if token else None


def cookie_token() -> str | None:
    """The session token the browser sent when this page was opened (if any)."""
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # no browser context (bare runs)
        return None
    return value if isinstance(value, str) and value else None


def client_ip() -> str | None:
    """The visitor's IP address as Streamlit saw it; None for this machine."""
    try:
        value = st.context.ip_address
    except Exception:  # no browser context (bare runs)
        return None
    return value if isinstance(value, str) and value else None


def client_address() -> str:
    """The visitor's address for throttling and the sessions list ("localhost": this machine)."""
    return client_ip() or "localhost"


def client_header(name: str) -> str:
    try:
        value = st.context.headers.get(name)
    except Exception:
        return ""
    return value if isinstance(value, str) else ""


def _resume(token: str) -> User | None:
    with db() as s:
        user = sessions.resume(s, sessions.hash_token(token))
        if user is not None:
            s.expunge(user)
        return user


def _by_id(uid: int) -> User | None:
    with db() as s:
        user = s.get(User, uid)
        if user is None or not user.active:
            return None
        s.expunge(user)
        return user


def current_user() -> User | None:
    """The signed-in, active person (detached copy), or None. Checks the session every run."""
    token = session_token()
    if token is not None:
        user = _resume(token)
        if user is None or user.id != signed_in_id():
            _end_here()  # a token that no longer matches this tab signs nobody in
            return None
        return user
    uid = signed_in_id()
    if uid is not None:
        user = _by_id(uid)
        if user is None:
            st.session_state[ENDED_KEY] = "deactivated"
        return user
    cookie = cookie_token()
    if cookie is not None:
        user = _resume(cookie)
        if user is None:  # ended: harmless, and replaced at the next sign-in
            return None
        remember(user.id, cookie)
        return user
    return None


def _end_here() -> None:
    """This browser's session ended elsewhere (signed out everywhere, deactivated, reset)."""
    uid = signed_in_id()
    forget_sign_in()
    inactive = uid is not None and _by_id(uid) is None
    st.session_state[ENDED_KEY] = "deactivated" if inactive else "ended"


def forget_sign_in() -> None:
    """This tab is no longer signed in (its session row, if any, is left as it is)."""
    for key in (USER_KEY, TOKEN_KEY):
        st.session_state.pop(key, None)


def actor(s: Session) -> User:
    """The signed-in person loaded in session ``s`` (for passing to services)."""
    uid = signed_in_id()
    user = s.get(User, uid) if uid is not None else None
    if user is None:
        from amplify.errors import NotAllowed

        raise NotAllowed("Your session has ended; sign in again.")
    return user


def remember(user_id: int, token: str | None) -> None:
    """This tab is now signed in as ``user_id`` (with a session token, normally)."""
    st.session_state[USER_KEY] = user_id
    if token:
        st.session_state[TOKEN_KEY] = token
    st.session_state.pop(ENDED_KEY, None)


def signed_in_here(user_id: int, token: str) -> None:
    """A new session began in this tab (sign-in, first admin): remember it, and send the
    browser to fetch its cookie so other tabs and reloads are signed in too."""
    remember(user_id, token)
    if _routes_served:
        st.session_state[NAVIGATE_KEY] = cookie_routes.session_url(sessions.handoff(token))
    else:
        log.warning(
            "Amplify was started without amplify/ui/server.py, so a sign-in lasts only as long "
            "as its tab; start it with `make run` (streamlit run amplify/ui/server.py)."
        )


def sign_in(user: User) -> None:
    """Single sign-on: Streamlit's own identity cookie keeps this browser signed in."""
    remember(user.id, None)


def sign_out() -> None:
    """End this browser's session (the row is revoked, so the cookie is useless at once),
    forget everything this tab held, and send the browser to drop its cookie."""
    digest = session_hash()
    if digest:
        with db() as s:
            sessions.revoke(s, digest)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if _routes_served:
        st.session_state[NAVIGATE_KEY] = cookie_routes.SIGNOUT_PATH
