"""Altair chart builders for the Reach page (pure functions of DataFrames)."""

from __future__ import annotations

import altair as alt
import pandas as pd

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def engagement_over_time(frame: pd.DataFrame, cumulative: bool = True) -> alt.Chart:
    field = "total" if cumulative else "engagement"
    title = "Engagement to date" if cumulative else "Engagement gained that day"
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="Day"),
            y=alt.Y(f"{field}:Q", title=title),
            color=alt.Color("series:N", title=""),
            tooltip=["day:T", "series:N", "engagement:Q", "total:Q"],
        )
        .properties(height=300)
    )


def post_timeline(frame: pd.DataFrame) -> alt.Chart:
    frame = frame.assign(
        account=frame["platform"] + ":" + frame["handle"] + " (" + frame["kind"] + ")"
    )
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("taken_at:T", title="Snapshot taken"),
            y=alt.Y("engagement:Q", title="Engagement (likes + reposts + replies + quotes)"),
            color=alt.Color("account:N", title=""),
            tooltip=["taken_at:T", "account:N", "likes:Q", "reposts:Q", "replies:Q", "quotes:Q"],
        )
        .properties(height=280)
    )


def best_times_heatmap(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="Hour published (workspace time)"),
            y=alt.Y("weekday:O", sort=WEEKDAYS, title=""),
            color=alt.Color(
                "engagement:Q", title="Mean engagement", scale=alt.Scale(scheme="blues")
            ),
            tooltip=["weekday:O", "hour:O", alt.Tooltip("engagement:Q", format=".1f"), "posts:Q"],
        )
        .properties(height=220)
    )


def spread_bars(resharers: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(resharers.fillna({"followers_count": 0}))
        .mark_bar()
        .encode(
            x=alt.X("followers_count:Q", title="Followers (as last seen)"),
            y=alt.Y("handle:N", sort="-x", title=""),
            color=alt.Color("kind:N", title=""),
            tooltip=["handle:N", "platform:N", "kind:N", "followers_count:Q"],
        )
        .properties(height=alt.Step(18))
    )
