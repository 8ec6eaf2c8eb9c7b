"""My account: change my own password, see where I am signed in, sign out everywhere."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from amplify import sessions, users
from amplify.errors import AmplifyError, ValidationFailed
from amplify.permissions import Action
from amplify.ui import state, widgets
from amplify.workflow import audit

SCOPE = "me_pw"


def _change_password(uid: int, current: str, new: str, again: str) -> int:
    if new != again:
        raise ValidationFailed(["The two new passwords are not the same; type them again."])
    with state.db() as s:
        return users.set_password(
            s,
            state.actor(s),
            uid,
            new_password=new,
            current_password=current,
            keep_session=state.session_hash(),
        )


def _password_form(uid: int) -> None:
    st.subheader("Change your password")
    with st.form("me_password"):
        current = st.text_input(
            "Current password",
            type="password",
            key=widgets.secret_key(SCOPE, "current"),
            autocomplete="current-password",
        )
        new = st.text_input(
            "New password (at least 10 characters; a few unrelated words work well)",
            type="password",
            key=widgets.secret_key(SCOPE, "new"),
            autocomplete="new-password",
        )
        again = st.text_input(
            "New password again",
            type="password",
            key=widgets.secret_key(SCOPE, "again"),
            autocomplete="new-password",
        )
        done = st.form_submit_button("Change password", type="primary")
    if not done:
        return
    try:
        ended = _change_password(uid, current, new, again)
    except AmplifyError as exc:
        # Cleared fields are new widgets: draw them now (rerun), or the browser keeps showing
        # the old ones and the next try reads empty fields ("current password is not right"
        # for every later try, the right one included).
        widgets.clear_secret_fields(SCOPE)
        widgets.flash_error(exc)
        st.rerun()
    widgets.clear_secret_fields(SCOPE)
    others = f" {ended} other browser(s) were signed out." if ended else ""
    widgets.flash(f"Your password is changed.{others}")
    st.rerun()


_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS", "macOS"),
    ("Linux", "Linux"),
)


def _browser(user_agent: str) -> str:
    """'Chrome on Linux' from a User-Agent header (enough to recognise your own devices)."""
    name = next((label for mark, label in _BROWSERS if mark in user_agent), "")
    system = next((label for mark, label in _SYSTEMS if mark in user_agent), "")
    if name and system:
        return f"{name} on {system}"
    return name or system or "unknown"


def _sessions(uid: int) -> None:
    st.subheader("Where you are signed in")
    tz = widgets.workspace_tz()
    mine = state.session_hash()
    with state.db() as s:
        rows = [
            {
                "this browser": "yes" if row.token_hash == mine else "",
                "signed in": widgets.fmt_time(row.created_at, tz),
                "last used": widgets.fmt_time(row.last_seen_at, tz),
                "from": row.address or "unknown",
                "browser": _browser(row.user_agent or ""),
            }
            for row in sessions.live_sessions(s, uid)
        ]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.caption("No saved sign-ins (single sign-on keeps its own).")
    st.caption(
        "Lost a phone or used a shared computer? Sign out everywhere, this browser included."
    )
    if st.button("Sign out everywhere", key="me_sign_out_all"):
        with state.db() as s:
            ended = sessions.revoke_all(s, uid)
            audit(s, state.actor(s), "user.signed_out_everywhere", "user", uid, sessions=ended)
        state.sign_out()
        widgets.flash("You are signed out everywhere.", "info")
        st.rerun()


def render() -> None:
    # Every role may create drafts: this is the page's "anyone signed in" check.
    user = widgets.guard(Action.CREATE_DRAFT)
    st.title("My account")
    st.markdown(
        f"**{widgets.plain(user.name)}** · {widgets.plain(user.email)} · {widgets.badge(user.role)}"
    )
    _password_form(user.id)
    st.divider()
    _sessions(user.id)


if __name__ == "__main__":
    render()
