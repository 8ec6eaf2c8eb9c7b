"""Reach: how far the team's stories spread. KPIs, engagement over time, spread, best times.

Every number comes from amplify.analytics and amplify.metrics (one potential-reach
implementation); results are cached per workspace data version, so a new snapshot or
approval shows on the next run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from amplify import analytics, campaigns, csvsafe, metrics
from amplify.db import database_url, session_scope
from amplify.permissions import Action
from amplify.ui import charts, widgets

user = widgets.guard(Action.VIEW_REACH)
tz = widgets.workspace_tz()
GROUPS = {"platform": "Platform", "campaign": "Campaign", "post": "Story"}
SIMULATED = " (simulated)"
PEOPLE_HEADINGS = {
    "platform": "Platform",
    "handle": "Account",
    "followers_count": "Followers",
    "kind": "How",
    "via": "Through",
    "simulated": "Simulated",
}
BOARD_HEADINGS = {
    "volunteer": "Volunteer",
    "stories_published": "Stories published",
    "engagement": "Engagement",
    "advocate": "Advocate",
    "shares": "Reshares",
    "reach_added": "Reach added",
    "story": "Story",
    "accounts": "Accounts",
}


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
            "reach": spread.reach,
        }


def _csv_button(label: str, frame: pd.DataFrame, name: str) -> None:
    st.download_button(
        label,
        csvsafe.frame_to_csv(frame).encode(),  # formulas neutralised, like every export
        file_name=name,
        mime="text/csv",
        key=f"csv_{name}",
    )


def _accounts(n: int) -> str:
    return f"{n:,} account" + ("" if n == 1 else "s")


def _show_reach(reach: metrics.Reach) -> None:
    """The potential reach, broken down, and what it leaves out."""
    sim = SIMULATED if reach.simulated else ""
    c1, c2, c3 = st.columns(3)
    c1.metric(
        f"Potential reach{sim}",
        f"{reach.reach:,}" + ("+" if reach.unseen else ""),
        help=metrics.REACH_METHOD,
    )
    c2.metric(
        f"Publishers' followers{sim}",
        f"{reach.publishers_followers:,}",
        help="Followers of the accounts that posted the story.",
    )
    c3.metric(
        f"Resharers' followers{sim}",
        f"{reach.resharers_followers:,}" + ("+" if reach.unseen else ""),
        help="Followers of each account that reposted or quoted it (advocates included), "
        "each once.",
    )
    more = f", and {reach.unseen:,} more" if reach.unseen else ""
    st.markdown(
        f"**Published from** {_accounts(len(reach.publishers))}; "
        f"**reshared by** {_accounts(len(reach.resharers))}{more}."
    )
    notes = []
    if reach.unseen:
        notes.append(
            f"Partial: the platforms count {reach.unseen:,} more reshares than they list "
            f"(Amplify reads up to {metrics.MAX_SPREADERS_PER_SWEEP:,} resharers per post each "
            "time, and some accounts are hidden), so the real reach is higher."
        )
    if reach.unknown_followers:
        notes.append(
            f"{_accounts(reach.unknown_followers)} counted as 0 until their followers are read."
        )
    if reach.simulated:
        notes.append("Sandbox numbers are simulated by a model: nothing was really posted.")
    for note in notes:
        st.caption(note)


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
by = f3.radio("Group by", list(GROUPS), format_func=GROUPS.__getitem__, key="keep_reach_by")

if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick the last day of the period too.")
    st.stop()
first_day, last_day = picked
assert isinstance(first_day, date) and isinstance(last_day, date)
start = datetime.combine(first_day, time.min, tz).astimezone(UTC)
end = datetime.combine(last_day + timedelta(days=1), time.min, tz).astimezone(UTC)
data = _load(database_url(), version, start.isoformat(), end.isoformat(), campaign_id, by)
k: analytics.Kpis = data["kpis"]
sim = SIMULATED if k.simulated else ""

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
    f"Engagement{sim}",
    f"{k.engagement:,}",
    help="Likes + reposts + replies + quotes on original posts, latest reading.",
)
c[2].metric(f"Reshares{sim}", f"{k.reshares:,}", help="Reposts and quotes of the original posts.")
c[3].metric(
    f"Impressions{sim}",
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
    # On by default through session state, not value=, as it is a kept key (see config.toml).
    st.session_state.setdefault("keep_reach_cumulative", True)
    cumulative = st.toggle("Running total", key="keep_reach_cumulative")
    if by == "post":
        st.caption("The ten stories with the most engagement in the period.")
    st.altair_chart(charts.engagement_over_time(over, cumulative), width="stretch")
    _csv_button("Download engagement over time (CSV)", over, "engagement_over_time.csv")

st.subheader("Spread of a story")
top = data["top"]
if top.empty:
    st.info("Nothing published in this period yet.")
else:
    labels = {int(r.post_id): str(r.story) for r in top.itertuples()}
    post_id = st.selectbox(
        "Story", list(labels), format_func=labels.__getitem__, key="keep_reach_post"
    )
    spread = _spread(database_url(), version, int(post_id))
    reach: metrics.Reach = spread["reach"]
    _show_reach(reach)
    with st.expander("How potential reach is counted"):
        st.write(metrics.REACH_METHOD)
    people = pd.concat(
        [
            spread["publishers"].assign(role="published"),
            spread["resharers"].assign(role="reshared"),
        ],
        ignore_index=True,
    )
    if not people.empty:
        st.markdown("**Who carried it** — followers of each account, latest reading")
        st.altair_chart(charts.spread_bars(people), width="stretch")
    timeline = spread["timeline"]
    st.markdown(f"**Engagement of the original posts**{SIMULATED if reach.simulated else ''}")
    if timeline.empty:
        st.info("No readings of this story yet: the first comes 15 minutes after it lands.")
    else:
        st.altair_chart(charts.post_timeline(timeline), width="stretch")
        st.caption("Engagement = likes + reposts + replies + quotes, as each reading found them.")
    resharers = spread["resharers"]
    if not resharers.empty:
        st.dataframe(resharers.rename(columns=PEOPLE_HEADINGS), hide_index=True, width="stretch")
        _csv_button("Download who reshared (CSV)", resharers, f"post_{post_id}_resharers.csv")

st.subheader("Best posting times")
best = data["best_times"]
posts = int(best["posts"].sum()) if not best.empty else 0
enough = posts >= analytics.BEST_TIMES_MIN_POSTS
st.caption(
    f"Mean engagement of posts by the day and hour they were published ({tz.key}); "
    "grey hours had no posts."
)
if not enough:
    st.info(
        f"Not enough data yet: best times need at least {analytics.BEST_TIMES_MIN_POSTS} "
        f"posts published in the period (so far {posts})."
    )
st.altair_chart(charts.best_times_heatmap(best, enough), width="stretch")

st.subheader("Leaderboards")
lv, la = st.columns(2)
with lv:
    st.markdown(f"**Volunteers** — stories published, engagement earned{sim}")
    st.dataframe(
        data["volunteers"].rename(columns=BOARD_HEADINGS), hide_index=True, width="stretch"
    )
    _csv_button("Download (CSV)", data["volunteers"], "volunteers.csv")
with la:
    st.markdown(f"**Advocates** — reshares, reach added{sim}")
    st.dataframe(data["advocates"].rename(columns=BOARD_HEADINGS), hide_index=True, width="stretch")
    st.caption(
        "Reach added = the advocate's followers, counted as in each story's potential reach."
    )
    _csv_button("Download (CSV)", data["advocates"], "advocates.csv")

with st.expander("Top stories in this period"):
    st.dataframe(
        top.drop(columns=["post_id"]).rename(columns=BOARD_HEADINGS),
        hide_index=True,
        width="stretch",
    )
    _csv_button("Download top stories (CSV)", top, "top_posts.csv")
