"""Activity: the audit log — who did what and when — filterable and paged."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from amplify import permissions, queries, signin
from amplify.models import User
from amplify.permissions import Action
from amplify.ui import state, widgets

PAGE_SIZE = 50


def _detail_text(detail: dict[str, Any] | None, tz: ZoneInfo) -> str:
    """The event's details; a time is read in the workspace zone like the "when" column
    (stored as UTC ISO text, e.g. scheduled_for=2026-12-02T00:00:00+00:00 for 18:00 CST)."""
    parts = []
    for key, value in (detail or {}).items():
        shown = value
        if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-":
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                shown = widgets.fmt_time(moment, tz)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


def _first_page() -> None:
    st.session_state["act_page"] = 1


def _sign_in_failures(user: User) -> None:
    """Admins: failed sign-ins of the last 7 days, by email and address (throttling's input)."""
    if not permissions.can(user, Action.MANAGE_USERS):
        return
    tz = widgets.workspace_tz()
    with state.db() as s:
        failures = [(f.at, f.email, f.address) for f in signin.recent_failures(s)]
    label = f"Failed sign-ins in the last 7 days: {len(failures)}"
    with st.expander(label, icon=":material/lock:", expanded=False):
        if not failures:
            st.caption("None.")
            return
        st.caption(
            f"After {signin.MAX_FAILURES} failures for one email or from one address within "
            f"{int(signin.WINDOW.total_seconds() // 60)} minutes, further tries have to wait."
        )
        frame = pd.DataFrame(
            [{"when": widgets.fmt_time(at, tz), "email": e, "from": a} for at, e, a in failures]
        )
        st.dataframe(frame, hide_index=True, width="stretch")


def render() -> None:
    user = widgets.guard(Action.VIEW_ACTIVITY)
    st.title("Activity")
    _sign_in_failures(user)
    tz = widgets.workspace_tz()
    with state.db() as s:
        actions = queries.audit_actions(s)
        actors = dict(queries.audit_actors(s))
    c1, c2, c3 = st.columns([2, 1, 2])
    chosen = c1.multiselect(
        "Actions", actions, key="act_actions", on_change=_first_page, placeholder="All actions"
    )
    actor = c2.selectbox(
        "By",
        [None, *actors],
        format_func=lambda i: "anyone" if i is None else actors[i],
        key="act_actor",
        on_change=_first_page,
    )
    today = datetime.now(tz).date()
    span = c3.date_input(
        "Between", value=(today - timedelta(days=30), today), key="act_span", on_change=_first_page
    )
    since = until = None
    if isinstance(span, tuple | list) and len(span) == 2:
        since = datetime.combine(span[0], time()).replace(tzinfo=tz)
        until = datetime.combine(span[1] + timedelta(days=1), time()).replace(tzinfo=tz)
    page = int(st.session_state.get("act_page", 1))
    with state.db() as s:
        result = queries.audit_page(
            s,
            actions=chosen,
            actor_id=actor,
            since=since,
            until=until,
            page=page,
            page_size=PAGE_SIZE,
        )
        rows = [
            {
                "when": widgets.fmt_time(e.at, tz),
                "who": e.actor.name if e.actor is not None else "system",
                "action": e.action,
                "subject": f"{e.subject_type} #{e.subject_id}" if e.subject_id else e.subject_type,
                "detail": _detail_text(e.detail, tz),
            }
            for e in result.rows
        ]
    st.caption(f"{result.total} event(s) · page {result.page} of {result.pages}")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.info("No activity matches these filters.")
    p1, p2, _ = st.columns([1, 1, 4])
    if p1.button("← Newer", disabled=result.page <= 1):
        st.session_state["act_page"] = result.page - 1
        st.rerun()
    if p2.button("Older →", disabled=result.page >= result.pages):
        st.session_state["act_page"] = result.page + 1
        st.rerun()


if __name__ == "__main__":
    render()
