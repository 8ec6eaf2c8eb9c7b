"""Read-side aggregates for the Reach page: SQL does the heavy lifting, pandas the shaping.

Engagement = likes + reposts + replies + quotes, read from each delivery's latest snapshot
(snapshots are cumulative counts, so the latest one is the current total). "Engagement over
time" sums each delivery's *gain* between consecutive snapshots, so a post counted on day 1
is not counted again on day 2.

Nothing here imports streamlit; pages cache these results keyed on ``data_version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from amplify.models import (
    Account,
    AuditEvent,
    Campaign,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    EngagementDaily,
    MetricSnapshot,
    Post,
    Spreader,
    User,
)
from amplify.workspace import workspace_tz

ENGAGEMENT = (
    MetricSnapshot.likes + MetricSnapshot.reposts + MetricSnapshot.replies + MetricSnapshot.quotes
)
REACH_METHOD = (
    "Potential reach = followers of the accounts that published the post + followers of each "
    "account that reshared it, each account counted once, follower counts as last seen. "
    "It is an upper bound on people who could have seen it, not a count of views, and it is "
    "never added up across posts (the same people follow many accounts)."
)


@dataclass(frozen=True)
class Period:
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive
    campaign_id: int | None = None


@dataclass(frozen=True)
class Kpis:
    stories_published: int
    deliveries_published: int
    engagement: int
    reshares: int
    impressions: int | None
    simulated: bool  # any of it from the sandbox's modelled numbers
    advocates_opted_in: int
    advocates_active: int

    @property
    def participation(self) -> float | None:
        if not self.advocates_opted_in:
            return None
        return self.advocates_active / self.advocates_opted_in


def data_version(s: Session) -> tuple[int, int, int]:
    """Changes whenever anything the Reach page shows changes: the pages' cache key."""
    snap = s.scalar(select(func.max(MetricSnapshot.id))) or 0
    audit = s.scalar(select(func.max(AuditEvent.id))) or 0
    spread = s.scalar(select(func.max(Spreader.id))) or 0
    return snap, audit, spread


def _published_in(period: Period) -> Any:
    cond = and_(
        Delivery.status == DeliveryStatus.PUBLISHED,
        Delivery.published_at >= period.start,
        Delivery.published_at < period.end,
    )
    if period.campaign_id is not None:
        cond = and_(cond, Post.campaign_id == period.campaign_id)
    return cond


def _originals(period: Period) -> Any:
    return and_(_published_in(period), Delivery.kind == DeliveryKind.POST)


def kpis(s: Session, period: Period) -> Kpis:
    row = s.execute(
        select(
            func.count(func.distinct(Delivery.post_id)),
            func.count(Delivery.id),
            func.coalesce(func.sum(Delivery.engagement), 0),
            func.coalesce(func.sum(Delivery.reposts + Delivery.quotes), 0),
            func.sum(Delivery.impressions),
            func.max(case((Delivery.metrics_simulated, 1), else_=0)),
        )
        .join(Post, Post.id == Delivery.post_id)
        .where(_originals(period))
    ).one()
    opted_in = s.scalar(
        select(func.count(func.distinct(Account.owner_id))).where(
            Account.owner_id.is_not(None), Account.amplify_opt_in.is_(True)
        )
    )
    active = s.scalar(
        select(func.count(func.distinct(Account.owner_id)))
        .select_from(Delivery)
        .join(Account, Account.id == Delivery.account_id)
        .join(Post, Post.id == Delivery.post_id)
        .where(_published_in(period), Delivery.kind == DeliveryKind.REPOST)
    )
    return Kpis(
        stories_published=int(row[0]),
        deliveries_published=int(row[1]),
        engagement=int(row[2]),
        reshares=int(row[3]),
        impressions=None if row[4] is None else int(row[4]),
        simulated=bool(row[5]),
        advocates_opted_in=int(opted_in or 0),
        advocates_active=int(active or 0),
    )


def engagement_over_time(
    s: Session, period: Period, by: str = "platform", post_ids: list[int] | None = None
) -> pd.DataFrame:
    """Daily engagement gained per ``by`` (platform | campaign | post), with a running total.

    Reads the daily rollup kept by ``amplify.snapshots``; days are workspace-zone days.
    """
    keys: dict[str, Any] = {
        "platform": EngagementDaily.platform,
        "campaign": func.coalesce(Campaign.name, "(no campaign)"),
        "post": EngagementDaily.post_id,
    }
    if by not in keys:
        raise ValueError(f"cannot group engagement by {by!r}; use one of {sorted(keys)}")
    tz = workspace_tz(s)
    key = keys[by].label("series")
    stmt = (
        select(EngagementDaily.day, key, func.sum(EngagementDaily.gain))
        .join(Post, Post.id == EngagementDaily.post_id)
        .outerjoin(Campaign, Campaign.id == Post.campaign_id)
        .where(
            EngagementDaily.day >= period.start.astimezone(tz).date(),
            EngagementDaily.day <= period.end.astimezone(tz).date(),
        )
        .group_by(EngagementDaily.day, key)
        .order_by(EngagementDaily.day)
    )
    if period.campaign_id is not None:
        stmt = stmt.where(Post.campaign_id == period.campaign_id)
    if post_ids is not None:
        stmt = stmt.where(EngagementDaily.post_id.in_(post_ids))
    frame = pd.DataFrame(s.execute(stmt).all(), columns=["day", "series", "engagement"])
    if frame.empty:
        return frame.assign(total=pd.Series(dtype="int64"))
    frame["day"] = pd.to_datetime(frame["day"])
    frame["series"] = frame["series"].astype(str)
    frame["total"] = frame.groupby("series")["engagement"].cumsum()
    return frame


def post_timeline(s: Session, post_id: int) -> pd.DataFrame:
    """Every snapshot of one post's deliveries: how its engagement grew, per account."""
    stmt = (
        select(
            MetricSnapshot.taken_at,
            Account.platform,
            Account.handle,
            Delivery.kind,
            ENGAGEMENT.label("engagement"),
            MetricSnapshot.likes,
            MetricSnapshot.reposts,
            MetricSnapshot.replies,
            MetricSnapshot.quotes,
            MetricSnapshot.simulated,
        )
        .join(Delivery, Delivery.id == MetricSnapshot.delivery_id)
        .join(Account, Account.id == Delivery.account_id)
        .where(Delivery.post_id == post_id)
        .order_by(MetricSnapshot.taken_at)
    )
    return pd.DataFrame(s.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))


@dataclass(frozen=True)
class Spread:
    post_id: int
    publishers: pd.DataFrame  # platform, handle, followers_count, kind
    resharers: pd.DataFrame  # platform, handle, followers_count, kind (repost|quote)
    potential_reach: int
    method: str = REACH_METHOD


def spread(s: Session, post_id: int) -> Spread:
    """Who carried one post, and its potential reach (each account counted once)."""
    pub_stmt = (
        select(
            Account.platform,
            Account.handle,
            Account.remote_user_id,
            Account.followers_count,
            Delivery.kind,
            Delivery.remote_url,
        )
        .join(Delivery, Delivery.account_id == Account.id)
        .where(Delivery.post_id == post_id, Delivery.status == DeliveryStatus.PUBLISHED)
    )
    publishers = pd.DataFrame(
        s.execute(pub_stmt).all(), columns=list(pub_stmt.selected_columns.keys())
    )
    sp_stmt = (
        select(
            Spreader.platform,
            Spreader.handle,
            Spreader.remote_user_id,
            Spreader.followers_count,
            Spreader.kind,
        )
        .join(Delivery, Delivery.id == Spreader.delivery_id)
        .where(Delivery.post_id == post_id)
    )
    resharers = pd.DataFrame(
        s.execute(sp_stmt).all(), columns=list(sp_stmt.selected_columns.keys())
    )
    reach = potential_reach(publishers, resharers)
    return Spread(post_id, publishers, resharers, reach)


def potential_reach(publishers: pd.DataFrame, resharers: pd.DataFrame) -> int:
    """Sum of follower counts over the distinct accounts that published or reshared.

    An account is identified by (platform, remote user id or handle); an advocate account
    that both reposted through Amplify and shows up as a spreader counts once.
    """
    people: dict[tuple[str, str], int] = {}
    for frame in (publishers, resharers):
        for row in frame.itertuples(index=False):
            ident = (str(row.platform), str(row.remote_user_id or row.handle))
            followers = int(row.followers_count) if pd.notna(row.followers_count) else 0
            people[ident] = max(people.get(ident, 0), followers)
    return sum(people.values())


def _hour_bucket(s: Session) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(Delivery.published_at, "YYYY-MM-DD HH24:00:00")
    return func.strftime("%Y-%m-%d %H:00:00", Delivery.published_at)


def best_times(s: Session, period: Period) -> pd.DataFrame:
    """Mean engagement of original posts by weekday × hour published, in the workspace zone.

    SQL groups by UTC hour (at most 24 rows a day); each bucket is then placed in the
    workspace zone in Python, which gets daylight-saving changes right.
    """
    bucket = _hour_bucket(s).label("bucket")
    stmt = (
        select(bucket, func.sum(Delivery.engagement), func.count(Delivery.id))
        .join(Post, Post.id == Delivery.post_id)
        .where(_originals(period))
        .group_by(bucket)
    )
    rows = s.execute(stmt).all()
    if not rows:
        return pd.DataFrame(columns=["weekday", "hour", "engagement", "posts"])
    tz = workspace_tz(s)
    frame = pd.DataFrame(rows, columns=["bucket", "total", "posts"])
    local = pd.to_datetime(frame["bucket"]).dt.tz_localize("UTC").dt.tz_convert(tz)
    frame = frame.assign(weekday=local.dt.day_name().str[:3], hour=local.dt.hour)
    grouped = frame.groupby(["weekday", "hour"])[["total", "posts"]].sum().reset_index()
    grouped["engagement"] = grouped["total"] / grouped["posts"]
    return grouped.drop(columns="total")


def volunteer_leaderboard(s: Session, period: Period, limit: int = 20) -> pd.DataFrame:
    """Stories published and engagement earned per volunteer (author)."""
    engagement = func.coalesce(func.sum(Delivery.engagement), 0).label("engagement")
    stmt = (
        select(User.name, func.count(func.distinct(Post.id)), engagement)
        .join(Post, Post.author_id == User.id)
        .join(Delivery, Delivery.post_id == Post.id)
        .where(_originals(period))
        .group_by(User.id, User.name)
        .order_by(engagement.desc())
        .limit(limit)
    )
    return pd.DataFrame(
        s.execute(stmt).all(), columns=["volunteer", "stories_published", "engagement"]
    )


def advocate_leaderboard(s: Session, period: Period, limit: int = 20) -> pd.DataFrame:
    """Shares per advocate and the reach each share added (their followers, once per share)."""
    shares = func.count(Delivery.id).label("shares")
    stmt = (
        select(User.name, shares, func.coalesce(func.sum(Account.followers_count), 0))
        .join(Account, Account.owner_id == User.id)
        .join(Delivery, Delivery.account_id == Account.id)
        .join(Post, Post.id == Delivery.post_id)
        .where(_published_in(period), Delivery.kind == DeliveryKind.REPOST)
        .group_by(User.id, User.name)
        .order_by(shares.desc())
        .limit(limit)
    )
    return pd.DataFrame(s.execute(stmt).all(), columns=["advocate", "shares", "reach_added"])


def top_posts(s: Session, period: Period, limit: int = 50) -> pd.DataFrame:
    """Posts in the period by engagement, for choosing one to look at closely."""
    engagement = func.coalesce(func.sum(Delivery.engagement), 0).label("engagement")
    stmt = (
        select(Post.id, func.substr(Post.body, 1, 80), engagement, func.count(Delivery.id))
        .join(Delivery, Delivery.post_id == Post.id)
        .where(_originals(period))
        .group_by(Post.id)
        .order_by(engagement.desc())
        .limit(limit)
    )
    return pd.DataFrame(
        s.execute(stmt).all(), columns=["post_id", "story", "engagement", "accounts"]
    )
