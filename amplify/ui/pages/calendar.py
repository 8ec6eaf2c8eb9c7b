"""Calendar: scheduled and published posts per account, by week or month; move or cancel."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st

from amplify import queries, workflow
from amplify.models import Post
from amplify.permissions import Action
from amplify.ui import state, widgets


def _range(view: str, anchor: date) -> tuple[date, date]:
    if view == "Week":
        start = anchor - timedelta(days=anchor.weekday())
        return start, start + timedelta(days=7)
    start = anchor.replace(day=1)
    nxt = (start + timedelta(days=32)).replace(day=1)
    return start, nxt


def _frame(entries: list[queries.CalendarEntry], tz: ZoneInfo) -> pd.DataFrame:
    rows = []
    for e in entries:
        local = e.at.astimezone(tz)
        rows.append(
            {
                "day": local.date().isoformat(),
                "time": local.strftime("%H:%M"),
                "account": widgets.account_label(e.platform, e.account),
                "story": f"#{e.post_id} {e.excerpt}",
                "status": "published" if e.delivery_status == "published" else e.delivery_status,
                "hour": local.hour + local.minute / 60,
            }
        )
    return pd.DataFrame(rows)


def _grid(df: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Accounts down the side, days across the top; each cell lists the times and stories."""
    days = [(start + timedelta(days=i)) for i in range((end - start).days)]
    cols = [d.strftime("%a %d %b") for d in days]
    table = pd.DataFrame("", index=sorted(df["account"].unique()), columns=cols)
    for _, row in df.iterrows():
        col = date.fromisoformat(row["day"]).strftime("%a %d %b")
        mark = "✓" if row["status"] == "published" else "◷"
        cell = table.at[row["account"], col]
        table.at[row["account"], col] = (cell + "\n" if cell else "") + (
            f"{mark} {row['time']} {row['story']}"
        )
    return table


def _move(post_id: int, when: datetime) -> None:
    with state.db() as s:
        workflow.reschedule(s, state.actor(s), post_id, when)


def _cancel(post_id: int) -> None:
    """Cancel, then tell the lead what the workflow says happened (sends left in flight,
    ones already published) — a warning when something may still appear."""
    with state.db() as s:
        result = workflow.cancel(s, state.actor(s), post_id)
    kind = "warning" if result.in_flight or result.already_published else "success"
    widgets.flash(f"Story #{post_id}: {result.message}", kind)


def _controls(movable: list[Post], tz: ZoneInfo) -> None:
    st.subheader("Reschedule or cancel")
    if not movable:
        st.caption("Nothing scheduled is waiting to go out.")
        return
    labels = {
        p.id: f"#{p.id} {widgets.fmt_time(p.scheduled_for, tz)} — {p.body[:50]}" for p in movable
    }
    pid = st.selectbox(
        "Story", options=list(labels), format_func=lambda i: labels[i], key="cal_post"
    )
    post = next(p for p in movable if p.id == pid)
    when = widgets.datetime_input(
        "New time", key=f"cal_when_{pid}", default=post.scheduled_for, tz=tz
    )
    c1, c2 = st.columns(2)
    if c1.button("Reschedule", type="primary") and widgets.run_action(
        lambda: _move(pid, when), f"Story #{pid} moved to {widgets.fmt_time(when, tz)}."
    ):
        st.rerun()
    confirm = c2.checkbox("Yes, cancel it", key=f"cal_confirm_{pid}")
    if c2.button("Cancel story", disabled=not confirm) and widgets.run_action(lambda: _cancel(pid)):
        st.rerun()


def render() -> None:
    widgets.guard(Action.RESCHEDULE)
    st.title("Calendar")
    tz = widgets.workspace_tz()
    c1, c2 = st.columns([1, 2])
    view = c1.radio("View", ["Week", "Month"], horizontal=True, key="cal_view")
    anchor = c2.date_input("Showing the period with", value=datetime.now(tz).date(), key="cal_day")
    start, end = _range(view, anchor)
    start_dt = datetime.combine(start, time()).replace(tzinfo=tz)
    end_dt = datetime.combine(end, time()).replace(tzinfo=tz)
    with state.db() as s:
        entries = queries.calendar_entries(s, start_dt, end_dt)
        movable = list(queries.movable_posts(s))
        s.expunge_all()
    st.caption(
        f"{start:%d %b %Y} – {end - timedelta(days=1):%d %b %Y}, times in {tz.key}. "
        "◷ scheduled · ✓ published"
    )
    if not entries:
        st.info("Nothing scheduled or published in this period.")
    else:
        df = _frame(entries, tz)
        st.dataframe(_grid(df, start, end), width="stretch")
        chart = (
            alt.Chart(df)
            .mark_circle(size=140)
            .encode(
                x=alt.X(
                    "day:O",
                    title=None,
                    scale=alt.Scale(
                        domain=[
                            (start + timedelta(days=i)).isoformat()
                            for i in range((end - start).days)
                        ]
                    ),
                ),
                y=alt.Y("hour:Q", title=f"hour ({tz.key})", scale=alt.Scale(domain=[0, 24])),
                color=alt.Color("account:N"),
                shape=alt.Shape("status:N"),
                tooltip=["day", "time", "account", "story", "status"],
            )
            .properties(height=260)
        )
        st.altair_chart(chart, width="stretch")
    _controls(movable, tz)


if __name__ == "__main__":
    render()
