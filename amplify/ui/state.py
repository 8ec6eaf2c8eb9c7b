"""Who is signed in, and the database session a page uses.

The sign-in seam (also what AppTest tests seed): ``st.session_state["user_id"]`` holds the
id of the signed-in person. Nothing else is trusted: every run reloads that person from the
database, so a deactivated or demoted person loses access on their next click.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session

from amplify.db import session_scope
from amplify.models import User

USER_KEY = "user_id"


@contextmanager
def db() -> Iterator[Session]:
    """One unit of work for a page action: commits on success, rolls back on error."""
    with session_scope() as s:
        yield s


def signed_in_id() -> int | None:
    value = st.session_state.get(USER_KEY)
    return int(value) if value is not None else None


def current_user() -> User | None:
    """The signed-in, active person (detached copy), or None."""
    uid = signed_in_id()
    if uid is None:
        return None
    with db() as s:
        user = s.get(User, uid)
        if user is None or not user.active:
            return None
        s.expunge(user)
        return user


def actor(s: Session) -> User:
    """The signed-in person loaded in session ``s`` (for passing to services)."""
    uid = signed_in_id()
    user = s.get(User, uid) if uid is not None else None
    if user is None:
        from amplify.errors import NotAllowed

        raise NotAllowed("Your session has ended; sign in again.")
    return user


def sign_in(user: User) -> None:
    st.session_state[USER_KEY] = user.id


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
