"""Calendar: every scheduled and published post, by week or month; drag to move, click to open.

The calendar is FullCalendar (streamlit-calendar); events and the drop handler are plain
functions in amplify.calendar_events. The List view is the same data as text, for screen
readers and keyboards, and every move can also be made with the form under the calendar.
"""

from __future__ import annotations

import html
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st
from streamlit_calendar import calendar as fullcalendar

from amplify import calendar_events, queries, workflow
from amplify.analytics import post_label
from amplify.models import Post, utcnow
from amplify.permissions import Action
from amplify.ui import state, widgets

VIEWS = {"Week": "timeGridWeek", "Month": "dayGridMonth", "List": None}
GEN_KEY = "cal_gen"  # bumped after each drop so the calendar redraws from the database
CLICK_KEY = "cal_last_click"

CSS = """
.fc-event-title, .fc-event-time { white-space: normal; font-size: 0.8rem; }
.fc-daygrid-event { white-space: normal; }
.fc-daygrid-event .fc-event-main-frame { display: block; }
.fc-event.published { opacity: 0.8; }
.fc-timegrid-event .fc-event-main { padding: 1px 3px; overflow: hidden; }
.fc-timegrid-event .fc-event-title, .fc-timegrid-event .fc-event-time {
  font-size: 0.7rem; line-height: 1.15;
}
.fc-timegrid-slot { height: 1.9em; }
"""


def _range(view: str, anchor: date) -> tuple[date, date]:
    if view == "Month":
        start = anchor.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    start = anchor - timedelta(days=anchor.weekday())
    return start, start + timedelta(days=7)


def _step(view: str, anchor: date, direction: int) -> date:
    if view == "Month":
        month = anchor.replace(day=1) + timedelta(days=32 if direction > 0 else -1)
        return month.replace(day=1)
    return anchor + timedelta(days=7 * direction)


def _options(view: str, anchor: date, tz: ZoneInfo) -> dict[str, Any]:
    hour = {"hour": "2-digit", "minute": "2-digit", "hour12": False}
    return {
        "initialView": VIEWS[view],
        "initialDate": anchor.isoformat(),
        # Wall-clock times of the workspace zone are passed in; see calendar_events.
        "timeZone": "UTC",
        "now": calendar_events.wall_clock(datetime.now(tz), tz),
        "headerToolbar": {"left": "", "center": "title", "right": ""},
        "firstDay": 1,
        "editable": True,
        "eventDurationEditable": False,
        "allDaySlot": False,
        "nowIndicator": True,
        "displayEventEnd": False,
        "eventDisplay": "block",  # coloured blocks in the month grid too, not bare dots
        "slotDuration": "00:30:00",
        "scrollTime": "07:00:00",
        "contentHeight": "auto" if view == "Month" else 900,  # a week shows 07:00-22:00, scrolls
        "dayMaxEvents": 4,
        "slotLabelFormat": hour,
        "eventTimeFormat": hour,
    }


# --------------------------------------------------------------------------- actions


def _on_calendar(value: Any, tz: ZoneInfo) -> None:
    """React once to what the calendar sent: a drop reschedules, a click opens the story."""
    if not isinstance(value, dict):
        return
    kind = value.get("callback")
    if kind == "eventChange":
        with state.db() as s:
            result = calendar_events.handle_drop(s, state.actor(s), value["eventChange"], tz)
        widgets.flash(
            f"Story #{result.post_id}: {result.message}" if result.post_id else result.message,
            "success" if result.ok else "warning",
        )
        if result.post_id:
            st.session_state["cal_post"] = result.post_id
        st.session_state[GEN_KEY] = st.session_state.get(GEN_KEY, 0) + 1  # redraw from the db
        st.rerun()
    elif kind == "eventClick":
        signature = json.dumps(value, sort_keys=True, default=str)
        if st.session_state.get(CLICK_KEY) == signature:
            return  # the component repeats its last value on every run
        st.session_state[CLICK_KEY] = signature
        pid = calendar_events.event_post_id(value.get("eventClick", {}).get("event") or {})
        if pid is not None:
            st.session_state["cal_post"] = pid


def _move(post_id: int, when: datetime, *, publish_now: bool = False) -> None:
    with state.db() as s:
        workflow.reschedule(s, state.actor(s), post_id, when, publish_now=publish_now)


def _cancel(post_id: int) -> None:
    """Cancel, then tell the lead what the workflow says happened (sends left in flight,
    ones already published) — a warning when something may still appear."""
    with state.db() as s:
        result = workflow.cancel(s, state.actor(s), post_id)
    kind = "warning" if result.in_flight or result.already_published else "success"
    widgets.flash(f"Story #{post_id}: {result.message}", kind)


# --------------------------------------------------------------------------- views


def _legend(entries: list[queries.CalendarEntry]) -> None:
    chips = [
        f'<span style="display:inline-block;width:0.8em;height:0.8em;background:{colour};'
        f'border-radius:2px;margin:0 0.3em 0 0.9em"></span>{html.escape(name)}'
        for name, colour in calendar_events.legend(entries)
    ]
    st.html(f'<div style="font-size:0.85rem">Accounts: {"".join(chips)}</div>')


def _list(entries: list[queries.CalendarEntry], tz: ZoneInfo) -> None:
    """The accessible view: one line per send, grouped by day."""
    if not entries:
        st.info("Nothing scheduled or published in this period.")
        return
    day = None
    for e in entries:
        local = e.at.astimezone(tz)
        if local.date() != day:
            day = local.date()
            st.markdown(f"**{local:%A %d %B}**")
        done = "published" if e.delivery_status == "published" else e.delivery_status
        st.markdown(
            f"{local:%H:%M} · {widgets.plain(calendar_events.account_name(e.platform, e.account))}"
            f" · {widgets.plain(post_label(e.excerpt, e.post_id))} · {widgets.badge(done)}"
            f" · story #{e.post_id}"
        )


def _story(pid: int | None, tz: ZoneInfo) -> tuple[Post | None, bool]:
    """The opened story's details; returns it and whether it can still be moved."""
    if pid is None:
        return None, False
    with state.db() as s:
        post = queries.post_with_children(s, pid)
        if post is None:
            return None, False
        s.expunge_all()
    st.markdown(f"**Story #{post.id}** · {widgets.badge(post.state)}")
    st.markdown(widgets.plain(post.body))
    meta = [f"by {widgets.plain(post.author.name)}"]
    if post.campaign is not None:
        meta.append(f"campaign: {widgets.plain(post.campaign.name)}")
    if post.link:
        meta.append(f"link: {widgets.plain(post.link)}")
    st.caption(" · ".join(meta))
    for d in sorted(post.deliveries, key=lambda d: d.id):
        if d.kind != "post":
            continue
        when = d.published_at or d.next_attempt_at
        name = calendar_events.account_name(d.account.platform, d.account.handle)
        st.markdown(
            f"- {widgets.plain(name)}: {widgets.badge(d.status)} {widgets.fmt_time(when, tz)}"
        )
    return post, post.state == "approved"


def _details(entries: list[queries.CalendarEntry], movable: list[Post], tz: ZoneInfo) -> None:
    st.subheader("Open a story")
    labels: dict[int, str] = {}
    for p in movable:
        labels[p.id] = f"#{p.id} {widgets.fmt_time(p.scheduled_for, tz)} — {post_label(p.body)}"
    for e in entries:
        labels.setdefault(e.post_id, f"#{e.post_id} (published) — {post_label(e.excerpt)}")
    if not labels:
        st.caption("Nothing scheduled is waiting to go out.")
        return
    if st.session_state.get("cal_post") not in labels:
        st.session_state.pop("cal_post", None)
    pid = st.selectbox(
        "Story (or click one on the calendar)",
        options=list(labels),
        format_func=lambda i: labels[i],
        key="cal_post",
    )
    post, can_move = _story(pid, tz)
    if post is None or not can_move:
        return
    when = widgets.datetime_input(
        "New time", key=f"cal_when_{pid}", default=post.scheduled_for, tz=tz
    )
    c1, c2, c3 = st.columns(3)
    if c1.button("Reschedule", type="primary") and widgets.run_action(
        lambda: _move(pid, when), f"Story #{pid} moved to {widgets.fmt_time(when, tz)}."
    ):
        st.rerun()
    if c2.button("Publish now", help="Send it at once, on every account still waiting.") and (
        widgets.run_action(
            lambda: _move(pid, utcnow(), publish_now=True), f"Story #{pid} is being published now."
        )
    ):
        st.rerun()
    confirm = c3.checkbox("Yes, cancel it", key=f"cal_confirm_{pid}")
    if c3.button("Cancel story", disabled=not confirm) and widgets.run_action(lambda: _cancel(pid)):
        st.rerun()


def _controls(tz: ZoneInfo) -> tuple[str, date]:
    c1, c2, c3, c4, c5 = st.columns([2, 2, 1, 1, 1], vertical_alignment="bottom")
    st.session_state.setdefault("keep_cal_view", "Week")  # seeded here, not by default=
    view = c1.segmented_control("View", list(VIEWS), key="keep_cal_view", required=True)
    view = view or "Week"
    st.session_state.setdefault("keep_cal_day", datetime.now(tz).date())
    if c3.button("Previous", icon=":material/chevron_left:"):
        st.session_state["keep_cal_day"] = _step(view, st.session_state["keep_cal_day"], -1)
    if c4.button("Today"):
        st.session_state["keep_cal_day"] = datetime.now(tz).date()
    if c5.button("Next", icon=":material/chevron_right:"):
        st.session_state["keep_cal_day"] = _step(view, st.session_state["keep_cal_day"], 1)
    anchor = c2.date_input("Showing the period with", key="keep_cal_day")
    return view, anchor


def render() -> None:
    widgets.guard(Action.RESCHEDULE)
    st.title("Calendar")
    tz = widgets.workspace_tz()
    view, anchor = _controls(tz)
    start, end = _range(view, anchor)
    start_dt = datetime.combine(start, time()).replace(tzinfo=tz)
    end_dt = datetime.combine(end, time()).replace(tzinfo=tz)
    with state.db() as s:
        entries = queries.calendar_entries(s, start_dt, end_dt)
        movable = list(queries.movable_posts(s))
        s.expunge_all()
    st.caption(
        f"{start:%d %b %Y} – {end - timedelta(days=1):%d %b %Y}, times in {tz.key}. "
        "Drag a scheduled story to a new time (it moves on every account it goes to); "
        "click one to open it below. ✓ published · ⚠ failed (System lists why, with Retry)."
    )
    if VIEWS[view] is None:
        _list(entries, tz)
    else:
        value = fullcalendar(
            events=calendar_events.events(entries, tz),
            options=_options(view, anchor, tz),
            custom_css=CSS,
            callbacks=["eventClick", "eventChange"],
            key=f"cal_{view}_{start}_{st.session_state.get(GEN_KEY, 0)}",
        )
        _on_calendar(value, tz)
        if entries:
            _legend(entries)
        else:
            st.caption("Nothing scheduled or published in this period.")
    _details(entries, movable, tz)


if __name__ == "__main__":
    render()
