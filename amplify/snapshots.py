"""Appending engagement snapshots: the one way readings enter the database.

A snapshot row is appended (never updated); the delivery's latest counts and the daily
rollup move with it in the same transaction, so the dashboard aggregates small tables
instead of the whole time series.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from amplify.models import Delivery, DeliveryKind, EngagementDaily, MetricSnapshot, utcnow
from amplify.workspace import workspace_tz
from connectors.base import Metrics


def engagement_of(m: Metrics) -> int:
    return m.likes + m.reposts + m.replies + m.quotes


def append(
    s: Session, delivery: Delivery, m: Metrics, taken_at: datetime | None = None
) -> MetricSnapshot:
    taken_at = taken_at or utcnow()
    snap = MetricSnapshot(
        delivery_id=delivery.id,
        taken_at=taken_at,
        likes=m.likes,
        reposts=m.reposts,
        replies=m.replies,
        quotes=m.quotes,
        impressions=m.impressions,
        bookmarks=m.bookmarks,
        simulated=m.simulated,
    )
    s.add(snap)
    total = engagement_of(m)
    # Counts can drop (unlikes, deletions): the gain is then negative, so sums stay exact.
    gain = total - (delivery.engagement or 0)
    delivery.likes, delivery.reposts = m.likes, m.reposts
    delivery.replies, delivery.quotes = m.replies, m.quotes
    delivery.impressions = m.impressions
    delivery.engagement = total
    delivery.metrics_simulated = m.simulated
    if gain and delivery.kind == DeliveryKind.POST:
        _add_gain(s, delivery, taken_at, gain)
    return snap


def _add_gain(s: Session, delivery: Delivery, taken_at: datetime, gain: int) -> None:
    """Upsert so that two workers sweeping the same post on the same day both count."""
    day = taken_at.astimezone(workspace_tz(s)).date()
    values = {
        "day": day,
        "post_id": delivery.post_id,
        "platform": delivery.account.platform,
        "gain": gain,
    }
    dialect = s.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(EngagementDaily).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "post_id", "platform"],
        set_={"gain": EngagementDaily.gain + stmt.excluded.gain},
    )
    s.execute(stmt)


def latest(s: Session, delivery_id: int) -> MetricSnapshot | None:
    return s.scalars(
        select(MetricSnapshot)
        .where(MetricSnapshot.delivery_id == delivery_id)
        .order_by(MetricSnapshot.id.desc())
        .limit(1)
    ).first()
