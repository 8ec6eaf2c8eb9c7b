"""Altair chart builders for the Reach page (pure functions of DataFrames).

Every chart reads as people expect: time axes as dates, count axes as whole numbers (never
".491"), stories named by their first words, legends and axis labels never cut, every bar
labelled, and series in a meaningful order (largest first), not sorted as text.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
HOURS = list(range(24))
ChartLike = alt.Chart | alt.LayerChart | alt.FacetChart
BAR_STEP = 24  # pixels per bar: room for every label
LEGEND_ROW = 30  # pixels per legend entry, as Streamlit draws them
ROLE_COLOURS = alt.Scale(domain=["published", "reshared"], range=["#1f5f99", "#7fb3e0"])


def _counts() -> alt.Axis:
    """A count axis: whole numbers only (never ".491")."""
    return alt.Axis(format=",d", tickMinStep=1)


def _legend(title: str = "") -> alt.Legend:
    # labelLimit=0: never cut a story's name in the legend.
    return alt.Legend(title=title or None, orient="bottom", columns=1, labelLimit=0)


def _with_legend(plot_height: int, entries: int, titled: bool = False) -> int:
    """Chart height that keeps the plot ``plot_height`` tall under a bottom legend of
    ``entries`` rows (Streamlit fits legend and plot into the height together)."""
    return plot_height + LEGEND_ROW * entries + (LEGEND_ROW if titled else 0) + 40


def _order(frame: pd.DataFrame, series: str, value: str) -> list[str]:
    """Series from largest to smallest (the legend and colours follow this order)."""
    totals = frame.groupby(series)[value].max().sort_values(ascending=False)
    return [str(s) for s in totals.index]


def engagement_over_time(frame: pd.DataFrame, cumulative: bool = True) -> alt.Chart:
    field = "total" if cumulative else "engagement"
    title = "Engagement to date" if cumulative else "Engagement gained that day"
    order = _order(frame, "series", "total")
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="Day", axis=alt.Axis(format="%d %b", labelAngle=0)),
            y=alt.Y(f"{field}:Q", title=title, axis=_counts()),
            color=alt.Color("series:N", sort=order, legend=_legend()),
            tooltip=[
                alt.Tooltip("day:T", title="Day", format="%a %d %b %Y"),
                alt.Tooltip("series:N", title=""),
                alt.Tooltip("engagement:Q", title="Gained that day", format=",d"),
                alt.Tooltip("total:Q", title="To date", format=",d"),
            ],
        )
        .properties(height=_with_legend(260, len(order)))
    )


def post_timeline(frame: pd.DataFrame) -> alt.Chart:
    """Engagement of one story on each account that published it, snapshot by snapshot."""
    frame = frame.assign(account=frame["platform"] + ": " + frame["handle"])
    order = _order(frame, "account", "engagement")
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "taken_at:T",
                title="Reading taken",
                axis=alt.Axis(format="%d %b %H:%M", labelAngle=0, tickCount=6),
            ),
            y=alt.Y("engagement:Q", title="Engagement", axis=_counts()),
            color=alt.Color("account:N", sort=order, legend=_legend("Published from")),
            tooltip=[
                alt.Tooltip("taken_at:T", title="Taken", format="%a %d %b %H:%M"),
                alt.Tooltip("account:N", title="Account"),
                alt.Tooltip("likes:Q", format=",d"),
                alt.Tooltip("reposts:Q", format=",d"),
                alt.Tooltip("replies:Q", format=",d"),
                alt.Tooltip("quotes:Q", format=",d"),
            ],
        )
        .properties(height=_with_legend(220, len(order), titled=True))
    )


def best_times_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """The full week: 7 days × 24 hours, with the readings where there are any."""
    grid = pd.MultiIndex.from_product([WEEKDAYS, HOURS], names=["weekday", "hour"]).to_frame(
        index=False
    )
    if frame.empty:
        return grid.assign(engagement=float("nan"), posts=0)
    merged = grid.merge(frame[["weekday", "hour", "engagement", "posts"]], how="left")
    merged["posts"] = merged["posts"].fillna(0).astype(int)
    return merged


def best_times_heatmap(frame: pd.DataFrame, enough: bool = True) -> ChartLike:
    """Mean engagement by weekday and hour, always the whole 7 × 24 week; empty hours (and
    every hour while there is not enough data) are grey."""
    grid = best_times_grid(frame)
    hour_axis = alt.Axis(
        labelAngle=0,
        labelOverlap=False,
        labelExpr="datum.value < 10 ? '0' + datum.value : '' + datum.value",
    )
    base = alt.Chart(grid).encode(
        x=alt.X("hour:O", title="Hour published (workspace time)", sort=HOURS, axis=hour_axis),
        y=alt.Y("weekday:O", sort=WEEKDAYS, title=None, axis=alt.Axis(labelOverlap=False)),
        tooltip=[
            alt.Tooltip("weekday:O", title="Day"),
            alt.Tooltip("hour:O", title="Hour"),
            alt.Tooltip("posts:Q", title="Posts", format=",d"),
            alt.Tooltip("engagement:Q", title="Mean engagement", format=",.1~f"),
        ],
    )
    empty = base.mark_rect(color="#eef0f3", stroke="white").transform_filter(
        "!isValid(datum.engagement)"
    )
    filled = (
        base.mark_rect(stroke="white")
        .encode(
            color=alt.Color(
                "engagement:Q",
                title="Mean engagement",
                scale=alt.Scale(scheme="blues", zero=True),
                legend=alt.Legend(format=",.1~f", orient="bottom"),
            )
        )
        .transform_filter("isValid(datum.engagement)")
    )
    size = {"height": alt.Step(26), "width": alt.Step(30)}
    if not enough or grid["engagement"].isna().all():
        # Nothing to colour: the empty week, without a legend that would read "NaN".
        return base.mark_rect(color="#eef0f3", stroke="white").properties(**size)
    return alt.layer(empty, filled).properties(**size)


def spread_bars(people: pd.DataFrame) -> ChartLike:
    """Followers of each account that carried the story, largest first, every bar labelled.

    ``people``: handle, platform, followers_count, role (published | reshared), kind."""
    frame = people.assign(
        followers=people["followers_count"].fillna(0).astype(int),
        who=people["platform"] + ": " + people["handle"],
        shown=people["followers_count"].map(lambda v: "not read yet" if pd.isna(v) else f"{v:,}"),
    ).sort_values(["followers", "who"], ascending=[False, True])
    order = frame["who"].tolist()
    y = alt.Y("who:N", sort=order, title=None, axis=alt.Axis(labelLimit=0, labelOverlap=False))
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "followers:Q",
                title="Followers (latest reading)",
                axis=_counts(),
                # Room right of the longest bar for its label.
                scale=alt.Scale(domainMax=max(1, int(frame["followers"].max() * 1.15))),
            ),
            y=y,
            color=alt.Color("role:N", scale=ROLE_COLOURS, legend=_legend()),
            tooltip=[
                alt.Tooltip("who:N", title="Account"),
                alt.Tooltip("role:N", title="Role"),
                alt.Tooltip("kind:N", title="How"),
                alt.Tooltip("shown:N", title="Followers"),
            ],
        )
    )
    labels = bars.mark_text(align="left", dx=4, color="#333").encode(
        text="shown:N", color=alt.value("#333")
    )
    return alt.layer(bars, labels).properties(height=alt.Step(BAR_STEP))
