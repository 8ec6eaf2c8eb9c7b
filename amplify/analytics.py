"""Read-side aggregates for the Reach page: SQL does the heavy lifting, pandas the shaping.

Engagement = likes + reposts + replies + quotes, read from each delivery's latest snapshot
(snapshots are cumulative counts, so the latest one is the current total). "Engagement over
time" sums each delivery's *gain* between consecutive snapshots, so a post counted on day 1
is not counted again on day 2.

Nothing here imports streamlit; pages cache these results keyed on ``data_version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from amplify import metrics
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
REACH_METHOD = metrics.REACH_METHOD  # one wording, beside one implementation

#: Fewer posts than this in the period and the best-times grid says "not enough data yet":
#: a mean over one or two posts per hour is noise, not a best time.
BEST_TIMES_MIN_POSTS = 5
LABEL_CHARS = 48


def _local(value: datetime | str | None, tz: ZoneInfo) -> datetime | None:
    """A stored UTC time (SQLite aggregates may hand back text) in the workspace zone."""
    if value is None:
        return None
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(tz)


def post_label(body: str, post_id: int | None = None) -> str:
    """A story named by its first words (``LABEL_CHARS`` at most, cut at a word)."""
    words = " ".join((body or "").split())
    if len(words) > LABEL_CHARS:
        cut = words[: LABEL_CHARS - 1].rsplit(" ", 1)[0] or words[: LABEL_CHARS - 1]
        words = cut.rstrip(" ,.;:—-") + "…"
    if not words:
        return f"Story {post_id}" if post_id is not None else "Untitled story"
    return words


def post_labels(
    rows: list[tuple[int, str]], published: dict[int, datetime | None] | None = None
) -> dict[int, str]:
    """Labels for several stories, unique among them: a repeated opening gets its
    publishing day (and time if need be), then its number as a last resort."""
    bodies = dict(rows)
    labels = {pid: post_label(body, pid) for pid, body in rows}
    when = published or {}
    for fmt in ("%d %b", "%d %b %H:%M"):
        counts: dict[str, int] = {}
        for label in labels.values():
            counts[label] = counts.get(label, 0) + 1
        for pid, label in list(labels.items()):
            at = when.get(pid)
            if counts[label] > 1 and at is not None:
                labels[pid] = f"{post_label(bodies[pid], pid)} ({at.strftime(fmt)})"
    counts = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {
        pid: (f"{lab} (story {pid})" if counts[lab] > 1 else lab) for pid, lab in labels.items()
    }


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
            # Simulated from the first moment: a sandbox post is, before any reading too.
            func.max(
                case(
                    (or_(Delivery.metrics_simulated, Account.platform == metrics.SANDBOX), 1),
                    else_=0,
                )
            ),
        )
        .join(Post, Post.id == Delivery.post_id)
        .join(Account, Account.id == Delivery.account_id)
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
    if by == "post":  # stories by their first words, never by a bare id
        ids = [int(i) for i in frame["series"].unique()]
        bodies = s.execute(
            select(Post.id, Post.body, Post.published_at).where(Post.id.in_(ids))
        ).all()
        labels = post_labels(
            [(pid, body) for pid, body, _ in bodies],
            {pid: _local(at, tz) for pid, _, at in bodies},
        )
        frame["series"] = frame["series"].map(lambda i: labels.get(int(i), f"Story {i}"))
    frame["series"] = frame["series"].astype(str)
    frame["total"] = frame.groupby("series")["engagement"].cumsum()
    return frame


def post_timeline(s: Session, post_id: int) -> pd.DataFrame:
    """Every snapshot of one story's original posts (one line per publishing account): how
    its engagement grew. Times are workspace wall-clock times, as the charts show them."""
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
        .where(Delivery.post_id == post_id, Delivery.kind == DeliveryKind.POST)
        .order_by(MetricSnapshot.taken_at)
    )
    frame = pd.DataFrame(s.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))
    if not frame.empty:
        taken = pd.to_datetime(frame["taken_at"], utc=True).dt.tz_convert(workspace_tz(s))
        frame["taken_at"] = taken.dt.tz_localize(None)
    return frame


PEOPLE_COLUMNS = ["platform", "handle", "followers_count", "kind", "via", "simulated"]


@dataclass(frozen=True)
class Spread:
    post_id: int
    publishers: pd.DataFrame  # PEOPLE_COLUMNS: the accounts that posted the story
    resharers: pd.DataFrame  # PEOPLE_COLUMNS: each account that reposted or quoted it, once
    reach: metrics.Reach
    method: str = REACH_METHOD

    @property
    def potential_reach(self) -> int:
        return self.reach.reach


def _people(accounts: tuple[metrics.ReachAccount, ...]) -> pd.DataFrame:
    rows = [
        (
            a.platform,
            a.handle,
            a.followers,
            a.kind,
            "Amplify (advocate)" if a.via_amplify else ("advocate" if a.owner_id else "—"),
            a.simulated,
        )
        for a in accounts
    ]
    frame = pd.DataFrame(rows, columns=PEOPLE_COLUMNS)
    frame["followers_count"] = frame["followers_count"].astype("Int64")
    return frame


def spread(s: Session, post_id: int) -> Spread:
    """Who carried one post, and its potential reach (``amplify.metrics.reaches``)."""
    reach = metrics.potential_reach(s, post_id)
    return Spread(post_id, _people(reach.publishers), _people(reach.resharers), reach)


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


def _posts_in(s: Session, period: Period) -> list[int]:
    """Stories with an original post published in the period."""
    stmt = (
        select(Delivery.post_id)
        .join(Post, Post.id == Delivery.post_id)
        .where(_originals(period))
        .distinct()
    )
    return list(s.scalars(stmt))


def advocate_leaderboard(s: Session, period: Period, limit: int = 20) -> pd.DataFrame:
    """Stories each advocate reshared (through Amplify or with their own click) and the
    reach that added: their followers, counted as in each story's potential reach."""
    shares: dict[int, int] = {}
    added: dict[int, int] = {}
    for reach in metrics.reaches(s, _posts_in(s, period)).values():
        for a in reach.resharers:
            if a.owner_id is not None:
                shares[a.owner_id] = shares.get(a.owner_id, 0) + 1
                added[a.owner_id] = added.get(a.owner_id, 0) + (a.followers or 0)
    names = dict(s.execute(select(User.id, User.name).where(User.id.in_(list(shares)))).all())
    rows = sorted(
        ((names.get(uid, f"Advocate {uid}"), shares[uid], added[uid]) for uid in shares),
        key=lambda r: (-r[1], -r[2], r[0]),
    )[:limit]
    return pd.DataFrame(rows, columns=["advocate", "shares", "reach_added"])


def top_posts(s: Session, period: Period, limit: int = 50) -> pd.DataFrame:
    """Posts in the period by engagement, for choosing one to look at closely."""
    engagement = func.coalesce(func.sum(Delivery.engagement), 0).label("engagement")
    stmt = (
        select(
            Post.id,
            func.substr(Post.body, 1, 200),
            engagement,
            func.count(Delivery.id),
            func.min(Delivery.published_at),
        )
        .join(Delivery, Delivery.post_id == Post.id)
        .where(_originals(period))
        .group_by(Post.id)
        .order_by(engagement.desc(), Post.id.desc())
        .limit(limit)
    )
    rows = s.execute(stmt).all()
    tz = workspace_tz(s)
    landed = {r[0]: _local(r[4], tz) for r in rows}
    labels = post_labels([(r[0], r[1]) for r in rows], landed)
    return pd.DataFrame(
        [(r[0], labels[r[0]], r[2], r[3]) for r in rows],
        columns=["post_id", "story", "engagement", "accounts"],
    )
