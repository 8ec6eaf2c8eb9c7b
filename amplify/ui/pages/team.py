"""Team & settings (admin): people and roles, posting slots, time zone, notifications."""

from __future__ import annotations

from functools import partial
from zoneinfo import available_timezones

import pandas as pd
import streamlit as st

from amplify import notify_channels, queries, resets, users
from amplify.errors import AmplifyError
from amplify.models import Role
from amplify.permissions import Action
from amplify.ui import state, widgets

ROLES = [r.value for r in Role]


def _fresh(prefix: str) -> str:
    """The key prefix of a form's fields in its current generation. Forgetting a widget's key
    does not empty it (the browser sends its value back with the next click), so once a
    form has done its job, ``_next`` moves it to new keys: new widgets, drawn empty."""
    gen = st.session_state.get(f"{prefix}gen", 0)
    return f"{prefix}{gen}_" if gen else prefix


def _next(prefix: str) -> None:
    widgets.forget(prefix)
    st.session_state[f"{prefix}gen"] = st.session_state.get(f"{prefix}gen", 0) + 1


# --------------------------------------------------------------------------- people


def _people() -> None:
    st.subheader("People")
    with state.db() as s:
        people = list(users.list_users(s))
        s.expunge_all()
    me = state.signed_in_id()
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": u.name,
                    "email": u.email,
                    "role": u.role,
                    "active": "yes" if u.active else "no",
                }
                for u in people
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    labels = {u.id: f"{u.name} <{u.email}>" for u in people}
    with st.expander("Change someone's role or access"):
        uid = st.selectbox(
            "Person", options=list(labels), format_func=lambda i: labels[i], key="tm_person"
        )
        person = next(u for u in people if u.id == uid)
        c1, c2 = st.columns(2)
        role = c1.selectbox("Role", ROLES, index=ROLES.index(person.role), key=f"tm_role_{uid}")
        if c1.button("Change role", key="tm_set_role") and widgets.run_action(
            lambda: _set_role(uid, role), f"{widgets.plain(person.name)} is now {role}."
        ):
            st.rerun()
        verb = "Deactivate" if person.active else "Reactivate"
        if uid == me and person.active:
            c2.caption("You cannot deactivate yourself here.")
        elif c2.button(verb, key="tm_active") and widgets.run_action(
            lambda: _set_active(uid, not person.active), f"{verb}d {widgets.plain(person.name)}."
        ):
            st.rerun()
        _reset_link(uid, person.name, person.active)
    with st.expander("Add a person"):
        new = _fresh("keep_tm_new_")
        name = st.text_input("Name", key=f"{new}name")
        email = st.text_input("Email", key=f"{new}email")
        role = st.selectbox("Role", ROLES, key=f"{new}role")
        pw = st.text_input(
            "First password (they can change it)",
            type="password",
            key=widgets.secret_key("tm_new", "pw"),
            autocomplete="new-password",
        )
        if st.button("Add person", type="primary") and widgets.run_action(
            lambda: _add(name, email, role, pw), f"Added {widgets.plain(name)} as {role}."
        ):
            widgets.clear_secret_fields("tm_new")
            _next("keep_tm_new_")
            st.rerun()


def _origin(url: str | None) -> str:
    """scheme://host[:port] of an address ("" when there is none)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _reset_link(uid: int, name: str, active: bool) -> None:
    """A one-time password reset link, shown here once (and sent to their own channel)."""
    shown = st.session_state.pop("tm_reset_link", None)
    if shown is not None and shown[0] == uid:
        st.success(
            f"Give this link to {widgets.plain(name)} (it works once, for 24 hours; they "
            "are signed out everywhere until they use it). It is not shown again:"
        )
        st.code(shown[1], language=None)
        opened = _origin(st.context.url)
        if opened and opened != _origin(shown[1]):
            st.warning(
                f"This link starts with {_origin(shown[1])} (the AMPLIFY_PUBLIC_URL setting), "
                f"but you opened Amplify at {opened}. If that is the address your team uses, "
                f"change the link's start to {opened} before sending it, and set "
                "AMPLIFY_PUBLIC_URL so the next links are right."
            )
    if not active:
        return
    if st.button("Make a password reset link", key="tm_reset"):
        try:
            with state.db() as s:
                link = resets.issue(s, state.actor(s), uid)
        except AmplifyError as exc:
            widgets.show_error(exc)
            return
        st.session_state["tm_reset_link"] = (uid, link)
        st.rerun()


def _add(name: str, email: str, role: str, pw: str) -> None:
    with state.db() as s:
        users.create_user(s, state.actor(s), email=email, name=name, role=role, password=pw)


def _set_role(uid: int, role: str) -> None:
    with state.db() as s:
        users.set_role(s, state.actor(s), uid, role)


def _set_active(uid: int, active: bool) -> None:
    with state.db() as s:
        users.set_active(s, state.actor(s), uid, active)


# --------------------------------------------------------------------------- workspace


def _timezone() -> None:
    st.subheader("Time zone")
    current = widgets.workspace_tz().key
    zones = sorted(available_timezones())
    zone = st.selectbox(
        "Workspace time zone (all times are shown in it)",
        zones,
        index=zones.index(current) if current in zones else 0,
        key="tm_tz",
    )
    if st.button("Save time zone") and widgets.run_action(
        lambda: _set_tz(zone), f"Times are now shown in {zone}."
    ):
        st.rerun()


def _set_tz(zone: str) -> None:
    from amplify import workspace

    with state.db() as s:
        workspace.set_timezone(s, state.actor(s), zone)


def _slots() -> None:
    st.subheader("Posting slots")
    st.caption(
        "Weekly times each account usually posts, e.g. `mon 09:00, wed 12:30`. Leads can "
        "schedule a story into the next open slot."
    )
    with state.db() as s:
        accts = list(queries.accounts(s))
        s.expunge_all()
    if not accts:
        st.caption("Connect an account first (Accounts page).")
        return
    labels = {a.id: widgets.account_label(a.platform, a.handle) for a in accts}
    aid = st.selectbox("Account", list(labels), format_func=lambda i: labels[i], key="tm_slot_acc")
    acct = next(a for a in accts if a.id == aid)
    text = st.text_input("Slots", value=", ".join(acct.posting_slots or []), key=f"tm_slots_{aid}")
    if st.button("Save slots") and widgets.run_action(
        lambda: _set_slots(aid, text), f"Saved posting slots for {widgets.plain(labels[aid])}."
    ):
        st.rerun()


def _set_slots(account_id: int, text: str) -> None:
    from amplify import slots

    items = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    with state.db() as s:
        slots.set_slots(s, state.actor(s), account_id, items)


# --------------------------------------------------------------------------- notifications


def _channels() -> None:
    st.subheader("Notifications")
    st.caption(
        "Apprise URLs (email, Signal, Slack, ntfy, Matrix…). They usually hold a token, so "
        "they are stored encrypted and shown masked."
    )
    with state.db() as s:
        rows = [
            (c.id, notify_channels.describe(c), c.active) for c in notify_channels.list_channels(s)
        ]
    for cid, text, active in rows:
        c1, c2 = st.columns([4, 1])
        icon = ":material/notifications:" if active else ":material/notifications_off:"
        c1.markdown(f"{icon} {widgets.plain(text)}")
        if c2.button("Remove", key=f"tm_ch_rm_{cid}") and widgets.run_action(
            partial(_remove_channel, cid), "Channel removed."
        ):
            st.rerun()
    with st.expander("Add a channel"):
        new = _fresh("keep_tm_ch_")
        label = st.text_input("Name", key=f"{new}label")
        url = st.text_input("Apprise URL", type="password", key=widgets.secret_key("tm_ch", "url"))
        st.session_state.setdefault(f"{new}who", ["leads"])
        who = st.multiselect("Who it is for", list(notify_channels.AUDIENCES), key=f"{new}who")
        if st.button("Add channel") and widgets.run_action(
            lambda: _add_channel(label, url, who), f"Channel {widgets.plain(label)} added."
        ):
            widgets.clear_secret_fields("tm_ch")
            _next("keep_tm_ch_")
            st.rerun()


def _add_channel(label: str, url: str, who: list[str]) -> None:
    with state.db() as s:
        notify_channels.add_channel(s, state.actor(s), label=label, url=url, audiences=who)


def _remove_channel(cid: int) -> None:
    with state.db() as s:
        notify_channels.remove_channel(s, state.actor(s), cid)


def render() -> None:
    widgets.guard(Action.MANAGE_USERS)
    st.title("Team & settings")
    tabs = st.tabs(["People", "Posting slots & time zone", "Notifications"])
    with tabs[0]:
        _people()
    with tabs[1]:
        _timezone()
        _slots()
    with tabs[2]:
        _channels()
    st.page_link(
        "amplify/ui/pages/campaigns.py",
        label="Campaigns have their own page: add, edit and archive them there",
        icon=":material/flag:",
    )


if __name__ == "__main__":
    render()
