"""Reach: how far the team's stories spread. KPIs, engagement over time, spread, best times.

Every number comes from amplify.analytics (SQL aggregates); results are cached per
workspace data version, so a new snapshot or approval shows on the next run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from amplify import analytics, campaigns, csvsafe
from amplify.db import database_url, session_scope
from amplify.permissions import Action
from amplify.ui import charts, widgets

user = widgets.guard(Action.VIEW_REACH)
tz = widgets.workspace_tz()


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _load(
    url: str, version: tuple[int, ...], start: str, end: str, campaign_id: int | None, by: str
) -> dict[str, Any]:
    """Everything the page shows for one filter choice (cache key: the data version)."""
    period = analytics.Period(
        datetime.fromisoformat(start), datetime.fromisoformat(end), campaign_id
    )
    with session_scope(url, readonly=True) as s:
        top = analytics.top_posts(s, period)
        post_ids = top["post_id"].head(10).tolist() if by == "post" else None
        return {
            "kpis": analytics.kpis(s, period),
            "over_time": analytics.engagement_over_time(s, period, by, post_ids),
            "best_times": analytics.best_times(s, period),
            "top": top,
            "volunteers": analytics.volunteer_leaderboard(s, period),
            "advocates": analytics.advocate_leaderboard(s, period),
        }


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _spread(url: str, version: tuple[int, ...], post_id: int) -> dict[str, Any]:
    with session_scope(url, readonly=True) as s:
        spread = analytics.spread(s, post_id)
        return {
            "timeline": analytics.post_timeline(s, post_id),
            "publishers": spread.publishers,
            "resharers": spread.resharers,
            "reach": spread.potential_reach,
        }


def _csv_button(label: str, frame: pd.DataFrame, name: str) -> None:
    st.download_button(
        label,
        csvsafe.frame_to_csv(frame).encode(),  # formulas neutralised, like every export
        file_name=name,
        mime="text/csv",
        key=f"csv_{name}",
    )


st.title("Reach")
st.caption(
    "How far each message travels: engagement over time, who reshared it, and how "
    "many people it could reach."
)

with session_scope(readonly=True) as s:
    options = {c.id: c.name for c in campaigns.list_campaigns(s)}
    version = analytics.data_version(s)

f1, f2, f3 = st.columns([2, 2, 1])
today = datetime.now(tz).date()
picked = f1.date_input(
    "Period",
    value=(today - timedelta(days=30), today),
    max_value=today,
    key="keep_reach_period",
    format="YYYY-MM-DD",
)
campaign_id = f2.selectbox(
    "Campaign",
    [None, *options],
    key="keep_reach_campaign",
    format_func=lambda c: "All campaigns" if c is None else options[c],
)
by = f3.radio("Group by", ["platform", "campaign", "post"], key="keep_reach_by")

if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick the last day of the period too.")
    st.stop()
first_day, last_day = picked
assert isinstance(first_day, date) and isinstance(last_day, date)
start = datetime.combine(first_day, time.min, tz).astimezone(UTC)
end = datetime.combine(last_day + timedelta(days=1), time.min, tz).astimezone(UTC)
data = _load(database_url(), version, start.isoformat(), end.isoformat(), campaign_id, by)
k: analytics.Kpis = data["kpis"]

if k.simulated:
    st.warning(
        "Some of these numbers come from the **sandbox practice network**: they are "
        "simulated by a model, not real engagement.",
        icon=":material/science:",
    )

c = st.columns(5)
c[0].metric(
    "Stories published",
    k.stories_published,
    help="Stories with at least one "
    "delivery published in the period (original posts, not advocate reposts).",
)
c[1].metric(
    "Engagement",
    f"{k.engagement:,}",
    help="Likes + reposts + replies + quotes on original posts, latest reading.",
)
c[2].metric("Reshares", f"{k.reshares:,}", help="Reposts and quotes of the original posts.")
c[3].metric(
    "Impressions",
    "—" if k.impressions is None else f"{k.impressions:,}",
    help="Only where the platform reports them (X, for the account's own posts).",
)
part = "—" if k.participation is None else f"{k.participation:.0%}"
c[4].metric(
    "Advocate participation",
    part,
    help=f"{k.advocates_active} of "
    f"{k.advocates_opted_in} opted-in advocates amplified at least once in the period.",
)

st.subheader("Engagement over time")
over = data["over_time"]
if over.empty:
    st.info(
        "No engagement readings in this period yet. The worker takes snapshots 15 min, "
        "1 h, 3 h, 6 h, 24 h, 3 d, 7 d and 30 d after each post is published."
    )
else:
    cumulative = st.toggle("Running total", value=True, key="keep_reach_cumulative")
    st.altair_chart(charts.engagement_over_time(over, cumulative), use_container_width=True)
    _csv_button("Download engagement over time (CSV)", over, "engagement_over_time.csv")

st.subheader("Spread of a post")
top = data["top"]
if top.empty:
    st.info("Nothing published in this period yet.")
else:
    labels = {int(r.post_id): f"#{r.post_id} — {r.story}" for r in top.itertuples()}
    post_id = st.selectbox(
        "Post", list(labels), format_func=labels.__getitem__, key="keep_reach_post"
    )
    spread = _spread(database_url(), version, int(post_id))
    left, right = st.columns([1, 2])
    left.metric("Potential reach", f"{spread['reach']:,}", help=analytics.REACH_METHOD)
    left.caption(f"**How this is counted.** {analytics.REACH_METHOD}")
    with right:
        if spread["timeline"].empty:
            st.info("No snapshots of this post yet.")
        else:
            st.altair_chart(charts.post_timeline(spread["timeline"]), use_container_width=True)
    resharers = spread["resharers"]
    st.markdown(
        f"**Published from** {len(spread['publishers'])} account(s); "
        f"**reshared by** {len(resharers)} account(s)."
    )
    if not resharers.empty:
        st.altair_chart(charts.spread_bars(resharers), use_container_width=True)
        st.dataframe(
            resharers.drop(columns=["remote_user_id"]), hide_index=True, use_container_width=True
        )
        _csv_button("Download who reshared (CSV)", resharers, f"post_{post_id}_resharers.csv")

st.subheader("Best posting times")
best = data["best_times"]
if best.empty:
    st.info("Best times appear once posts have engagement readings.")
else:
    st.caption(f"Mean engagement of posts by the hour they were published ({tz.key}).")
    st.altair_chart(charts.best_times_heatmap(best), use_container_width=True)

st.subheader("Leaderboards")
lv, la = st.columns(2)
with lv:
    st.markdown("**Volunteers** — stories published, engagement earned")
    st.dataframe(data["volunteers"], hide_index=True, use_container_width=True)
    _csv_button("Download (CSV)", data["volunteers"], "volunteers.csv")
with la:
    st.markdown("**Advocates** — shares, reach added")
    st.dataframe(data["advocates"], hide_index=True, use_container_width=True)
    st.caption("Reach added = the advocate account's followers, once per share.")
    _csv_button("Download (CSV)", data["advocates"], "advocates.csv")

with st.expander("Top posts in this period"):
    st.dataframe(top, hide_index=True, use_container_width=True)
    _csv_button("Download top posts (CSV)", top, "top_posts.csv")
