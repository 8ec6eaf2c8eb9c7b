"""Sign-in: local accounts (argon2) with server-side sessions, first-admin setup (with a setup
code when the dashboard is reachable from elsewhere), password reset links, and optional
single sign-on (OIDC).

The browser keeps its session in the ``amplify_sid`` cookie: an opaque random token (the
database stores only its hash), HttpOnly (no script on the page can read it), SameSite=Strict,
Secure over https. Streamlit cannot set cookies itself, so after a sign-in the page sends the
browser to an HTTP route that sets it (amplify/ui/cookie_routes.py, served by
amplify/ui/server.py); the token is useless once the session row is revoked, which is what
signing out, "sign out everywhere", a reset and deactivation do.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from amplify import resets, sessions, signin, users
from amplify.config import get_settings
from amplify.errors import AmplifyError
from amplify.models import User
from amplify.ui import state, widgets

_FORWARD_HEADERS = ("X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-Ip")


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


# --------------------------------------------------------------------------- the cookie


def _navigate_script(url: str) -> str:
    # The page's HTML sanitiser (DOMPurify) drops a whole script whose text has "<" before a
    # letter or digit: so no "<" in the code, and "<" escaped in the URL.
    target = json.dumps(url).replace("<", "\\u003c")
    return (
        "<script>(function(){var u=" + target + ";"
        "u+=(u.indexOf('?')===-1?'?':'&')+'next='+encodeURIComponent("
        "location.pathname+location.search);location.replace(u);})();</script>"
    )


def _navigate() -> None:
    """Send the browser to the cookie route asked for by signing in or out (if any): it sets
    or drops the HttpOnly cookie and brings the browser back to this page."""
    url = st.session_state.pop(state.NAVIGATE_KEY, None)
    if url:
        st.html(_navigate_script(str(url)), unsafe_allow_javascript=True)


# --------------------------------------------------------------------------- screens


def _narrow() -> DeltaGenerator:
    """A centred column, so the sign-in forms are not stretched across a wide screen."""
    return st.columns([1, 2, 1])[1]


def _forwarded() -> bool:
    return any(state.client_header(h) for h in _FORWARD_HEADERS)


def setup_code_needed() -> bool:
    try:
        bind = st.get_option("server.address")
    except Exception:
        bind = None
    return signin.setup_code_needed(
        bind_address=str(bind) if bind else None,
        client_address=state.client_ip(),
        forwarded=_forwarded(),
        public_url=get_settings().public_url,
    )


def _first_admin_screen() -> None:
    st.title("Welcome to Amplify")
    st.write(
        "This workspace has nobody in it yet. Create the first admin: the person who "
        "connects the team's accounts and invites everyone else."
    )
    need_code = setup_code_needed()
    if need_code:
        signin.setup_code()  # printed in the server's terminal the first time
        st.info(
            "This dashboard can be reached from other computers, so creating the first admin "
            "needs the **setup code** printed in the terminal where Amplify is running. "
            "(Or create the admin there: `amplify users add EMAIL --role admin`.)"
        )
    with st.form("first_admin"):
        name = st.text_input("Your name", key="keep_first_name", autocomplete="name")
        email = st.text_input("Email", key="keep_first_email", autocomplete="username")
        pw = st.text_input(
            "Password (at least 10 characters; a few unrelated words work well)",
            type="password",
            key="first_pw",
            autocomplete="new-password",
        )
        # The only admin mistyping their password would lock the workspace: ask twice.
        pw_again = st.text_input(
            "Password again", type="password", key="first_pw2", autocomplete="new-password"
        )
        code = (
            st.text_input("Setup code (from the terminal)", key="first_code", autocomplete="off")
            if need_code
            else ""
        )
        done = st.form_submit_button("Create admin and sign in", type="primary")
    if done and pw != pw_again:
        st.error("The two passwords are not the same; type the password twice again.")
    elif done:
        _create_first_admin(name, email, pw, code, need_code)


def _create_first_admin(name: str, email: str, pw: str, code: str, need_code: bool) -> None:
    if need_code and not signin.setup_code_matches(code):
        st.error(
            "That setup code is not right. Copy it from the terminal where Amplify is running "
            "(it looks like ABCD-1234-EF56)."
        )
        return
    try:
        with state.db() as s:
            user = users.create_user(s, None, email=email, name=name, role="admin", password=pw)
            token = sessions.start(
                s,
                user,
                user_agent=state.client_header("User-Agent"),
                address=state.client_address(),
            )
            uid = user.id
    except AmplifyError as exc:
        widgets.show_error(exc)
        return
    widgets.forget("keep_first_")
    state.signed_in_here(uid, token)
    st.rerun()


def _sign_in_screen() -> None:
    st.title("Sign in to Amplify")
    ended = st.session_state.pop(state.ENDED_KEY, None)
    if ended == "deactivated":
        st.warning("Your account was deactivated; ask an admin if this is a mistake.")
    elif ended == "ended":
        st.info("You were signed out (from another browser, or your password changed).")
    with st.form("sign_in"):
        email = st.text_input("Email", key="keep_signin_email", autocomplete="username")
        pw = st.text_input(
            "Password", type="password", key="signin_pw", autocomplete="current-password"
        )
        done = st.form_submit_button("Sign in", type="primary")
    if done:
        with state.db() as s:
            attempt = signin.sign_in(
                s,
                email,
                pw,
                address=state.client_address(),
                user_agent=state.client_header("User-Agent"),
            )
        if attempt.ok and attempt.user_id is not None:
            state.signed_in_here(attempt.user_id, attempt.token)
            st.rerun()
        elif attempt.retry_at is not None:
            st.error(attempt.message, icon=":material/timer:")
        else:
            st.error(attempt.message)
    st.caption("Forgotten your password? An admin can give you a one-time reset link.")
    if sso_configured():
        st.divider()
        st.caption("Or use your organisation's single sign-on (for people already in Amplify).")
        if st.button("Sign in with single sign-on"):
            st.login()


def _reset_screen(token: str) -> None:
    st.title("Choose a new password")
    with state.db() as s:
        person = resets.person_for(s, token)
        email = person.email if person is not None else None
    if email is None:
        st.error(resets.EXPIRED)
        if st.button("Go to sign-in"):
            st.query_params.clear()
            st.rerun()
        return
    st.markdown(f"Choose a new password for **{widgets.plain(email)}**. This link works once.")
    with st.form("reset_pw"):
        pw = st.text_input(
            "New password", type="password", key="reset_pw1", autocomplete="new-password"
        )
        again = st.text_input(
            "New password again", type="password", key="reset_pw2", autocomplete="new-password"
        )
        done = st.form_submit_button("Save new password", type="primary")
    if not done:
        return
    if pw != again:
        st.error("The two passwords are not the same; type them again.")
        return
    try:
        with state.db() as s:
            resets.complete(s, token, pw)
    except AmplifyError as exc:
        widgets.show_error(exc)
        return
    st.query_params.clear()
    state.forget_sign_in()
    widgets.flash("Your new password is saved. Sign in with it.")
    st.rerun()


def gate() -> User:
    """Return the signed-in person, or draw the sign-in screen and stop the run."""
    reset_token = st.query_params.get(resets.QUERY_KEY)
    if reset_token:
        with _narrow():
            _reset_screen(str(reset_token))
        st.stop()
    user = state.current_user()
    if user is not None:
        return user
    if state.signed_in_id() is not None:
        # Deactivated (or removed) since signing in.
        st.session_state.pop(state.USER_KEY, None)
    if sso_configured():
        sso = _sso_user()
        if sso is not None:
            state.sign_in(sso)
            return sso
    from amplify.ui import nav

    nav.remember_wanted_page()
    with state.db() as s:
        empty = not users.has_users(s)
    _navigate()
    widgets.show_flashes()
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
        _navigate()
        if st.button("Sign out", key="sign_out"):
            state.sign_out()
            if sso_configured() and getattr(st.user, "is_logged_in", False):
                st.logout()
            st.rerun()
