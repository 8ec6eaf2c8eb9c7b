"""Sign-in: local accounts (argon2), first-admin setup, optional single sign-on (OIDC)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from amplify import users
from amplify.errors import AmplifyError
from amplify.models import User
from amplify.ui import state, widgets


def sso_configured() -> bool:
    """True when .streamlit/secrets.toml has an [auth] section for st.login."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def _sso_user() -> User | None:
    """The active Amplify person whose verified SSO email matches, if any."""
    info: Any = st.user
    if not getattr(info, "is_logged_in", False):
        return None
    email = info.get("email")
    verified = info.get("email_verified")
    if not email or verified is not True:
        st.error(
            "Your identity provider did not give a verified email address; "
            "sign in with your Amplify password instead."
        )
        return None
    with state.db() as s:
        user = users.get_by_email(s, str(email))
        if user is None or not user.active:
            st.error(
                f"{widgets.plain(email)} is not an active person in this Amplify workspace; "
                "ask an admin to add you, then sign in again."
            )
            return None
        s.expunge(user)
        return user


def _narrow() -> DeltaGenerator:
    """A centred column, so the sign-in forms are not stretched across a wide screen."""
    return st.columns([1, 2, 1])[1]


def _first_admin_screen() -> None:
    st.title("Welcome to Amplify")
    st.write(
        "This workspace has nobody in it yet. Create the first admin: the person who "
        "connects the team's accounts and invites everyone else."
    )
    with st.form("first_admin"):
        name = st.text_input("Your name", key="keep_first_name")
        email = st.text_input("Email", key="keep_first_email")
        pw = st.text_input("Password (at least 10 characters)", type="password", key="first_pw")
        done = st.form_submit_button("Create admin and sign in", type="primary")
    if done:
        try:
            with state.db() as s:
                user = users.create_user(s, None, email=email, name=name, role="admin", password=pw)
                s.flush()
                uid = user.id
        except AmplifyError as exc:
            widgets.show_error(exc)
            return
        widgets.forget("keep_first_")
        st.session_state[state.USER_KEY] = uid
        st.rerun()


def _sign_in_screen() -> None:
    st.title("Sign in to Amplify")
    with st.form("sign_in"):
        email = st.text_input("Email", key="keep_signin_email")
        pw = st.text_input("Password", type="password", key="signin_pw")
        done = st.form_submit_button("Sign in", type="primary")
    if done:
        with state.db() as s:
            user = users.authenticate(s, email, pw)
            uid = user.id if user is not None else None
        if uid is None:
            st.error("That email and password do not match an active person; check both.")
        else:
            st.session_state[state.USER_KEY] = uid
            st.rerun()
    if sso_configured():
        st.divider()
        st.caption("Or use your organisation's single sign-on (for people already in Amplify).")
        if st.button("Sign in with single sign-on"):
            st.login()


def gate() -> User:
    """Return the signed-in person, or draw the sign-in screen and stop the run."""
    user = state.current_user()
    if user is not None:
        return user
    if state.signed_in_id() is not None:
        # Deactivated (or removed) since signing in.
        del st.session_state[state.USER_KEY]
        st.warning("Your account was deactivated; ask an admin if this is a mistake.")
    if sso_configured():
        sso = _sso_user()
        if sso is not None:
            state.sign_in(sso)
            return sso
    from amplify.ui import nav

    nav.remember_wanted_page()
    with state.db() as s:
        empty = not users.has_users(s)
    with _narrow():
        if empty:
            _first_admin_screen()
        else:
            _sign_in_screen()
    st.stop()
    raise AssertionError("unreachable")


def sidebar(user: User) -> None:
    with st.sidebar:
        st.markdown(f"**{widgets.plain(user.name)}**  \n{widgets.badge(user.role)}")
        if st.button("Sign out", key="sign_out"):
            state.sign_out()
            if sso_configured() and getattr(st.user, "is_logged_in", False):
                st.logout()
            st.rerun()
