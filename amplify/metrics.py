"""Engagement over time and how far a story spread.

Snapshots follow a decay schedule (``settings.metrics_schedule_minutes`` after a delivery
landed: 15 min, 1 h, 3 h, …, 30 d): ``Delivery.next_metrics_at`` says when the next one
is due and ``metrics_step`` how many were taken. A sweep reads every due delivery in as
few API calls as the platforms allow: deliveries are grouped per platform (and per
server, for Bluesky and Mastodon instances), read through one healthy account of that
group, ``metrics_batch_size`` records per call (X 100, Bluesky 25). Each reading is
appended as a ``MetricSnapshot`` (never overwritten). When a delivery's reshares grew, its
resharers are fetched and upserted as ``Spreader`` rows with their follower counts.

Potential reach of a story = followers of the accounts that published it + followers of
every account that reshared it, each account counted once, as last seen. It is an upper
bound on the people who could have seen it, and it is never added up across stories
(the same people follow several accounts and see several stories).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from amplify import snapshots
from amplify.config import get_settings
from amplify.models import (
    Account,
    AccountStatus,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    MetricSnapshot,
    Post,
    Spreader,
    utcnow,
)
from connectors.base import AuthError, Connector, ConnectorError, Metrics, Receipt, SpreaderInfo

log = logging.getLogger(__name__)

ConnectorFor = Callable[[Account], Connector]

# The same words as amplify.analytics.REACH_METHOD (the dashboard's), kept here so the
# worker and CLI need not import pandas.
REACH_METHOD = (
    "Potential reach = followers of the accounts that published the post + followers of each "
    "account that reshared it, each account counted once, follower counts as last seen. "
    "It is an upper bound on people who could have seen it, not a count of views, and it is "
    "never added up across posts (the same people follow many accounts)."
)


@dataclass
class SweepResult:
    calls: int = 0  # metrics API calls
    snapshots: int = 0
    spreader_calls: int = 0
    spreaders: int = 0
    deliveries: int = 0  # deliveries that were due
    missing: int = 0  # due, but the platform no longer has the record
    errors: list[str] = field(default_factory=list)
    calls_by_platform: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReachResult:
    reach: int
    publishers: int  # accounts that published the story
    spreaders: int  # distinct accounts that reshared it
    method: str
    unknown_followers: int = 0  # accounts counted as 0 because their count was never seen


# --------------------------------------------------------------------------- schedule


def schedule() -> list[timedelta]:
    return [timedelta(minutes=m) for m in sorted(get_settings().metrics_schedule_minutes)]


def first_metrics_at(published_at: datetime) -> datetime | None:
    """When the first snapshot of a delivery that landed at ``published_at`` is due."""
    steps = schedule()
    return published_at + steps[0] if steps else None


def advance(delivery: Delivery, now: datetime) -> None:
    """Move a delivery to its next snapshot time after one was taken at ``now``; points of
    the schedule already past (the worker was down) are skipped, not caught up on."""
    steps = schedule()
    base = delivery.published_at or now
    step = delivery.metrics_step + 1
    while step < len(steps) and base + steps[step] <= now:
        step += 1
    delivery.metrics_step = step
    delivery.next_metrics_at = base + steps[step] if step < len(steps) else None


# --------------------------------------------------------------------------- sweep


def _default_connector_for(account: Account) -> Connector:
    from amplify.accounts import connector_for

    return connector_for(account)


def _receipt(d: Delivery) -> Receipt:
    assert d.remote_id is not None
    return Receipt(remote_id=d.remote_id, uri=d.remote_uri, cid=d.remote_cid, url=d.remote_url)


def _chunks(items: Sequence[Delivery], size: int) -> list[Sequence[Delivery]]:
    size = max(1, size)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _due(s: Session, now: datetime, force_all: bool) -> list[Delivery]:
    stmt = (
        select(Delivery)
        .join(Account, Delivery.account_id == Account.id)
        .where(
            Delivery.status == DeliveryStatus.PUBLISHED,
            Delivery.kind == DeliveryKind.POST,
            Delivery.remote_id.is_not(None),
        )
        .order_by(Account.platform, Account.service_url, Delivery.id)
    )
    if not force_all:
        stmt = stmt.where(Delivery.next_metrics_at.is_not(None), Delivery.next_metrics_at <= now)
    return list(s.scalars(stmt))


def _readers(s: Session, platform: str, service_url: str, own: list[Account]) -> list[Account]:
    """Accounts able to read this group's records: the group's own healthy accounts first,
    then any other healthy account on the same platform and server."""
    seen: set[int] = set()
    out: list[Account] = []
    others = s.scalars(
        select(Account)
        .where(
            Account.platform == platform,
            Account.service_url == service_url,
            Account.status == AccountStatus.OK,
        )
        .order_by(Account.id)
    )
    for a in [*own, *others]:
        if a.id not in seen and a.status == AccountStatus.OK:
            seen.add(a.id)
            out.append(a)
    return out


@dataclass(frozen=True)
class _Due:
    """What a sweep needs of one delivery, read up front so no transaction stays open
    while a platform is being called (on SQLite that would stall every publish)."""

    id: int
    receipt: Receipt
    shared: int  # reposts + quotes at the last reading


def sweep(
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    force_all: bool = False,
    connector_for: ConnectorFor | None = None,
) -> SweepResult:
    """Take every due snapshot (every published delivery with ``force_all``) in the fewest
    calls. Each batch is written in its own short transaction, so a failure part-way keeps
    what was read, and nothing is held open during a platform call."""
    now = now or utcnow()
    build = connector_for or _default_connector_for
    result = SweepResult()
    plan: list[tuple[str, list[_Due], list[Account]]] = []
    with factory() as s:
        due = _due(s, now, force_all)
        result.deliveries = len(due)
        groups: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
        for d in due:
            groups[(d.account.platform, d.account.service_url)].append(d)
        for (platform, service_url), deliveries in groups.items():
            own = list({d.account_id: d.account for d in deliveries}.values())
            readers = _readers(s, platform, service_url, own)
            if not readers:
                result.errors.append(
                    f"{platform}: no healthy account can read metrics; reconnect one under Accounts"
                )
                continue
            items = [
                _Due(d.id, _receipt(d), int(d.reposts or 0) + int(d.quotes or 0))
                for d in deliveries
            ]
            plan.append((platform, items, readers))
        # Keep the accounts as read (a rollback would expire them), then end the read
        # before any platform call.
        s.expunge_all()
        s.rollback()
    for platform, items, readers in plan:
        _sweep_group(factory, platform, items, readers, build, now, result)
    return result


def _count_call(result: SweepResult, platform: str) -> None:
    result.calls += 1
    result.calls_by_platform[platform] = result.calls_by_platform.get(platform, 0) + 1


def _sweep_group(
    factory: sessionmaker[Session],
    platform: str,
    items: list[_Due],
    readers: list[Account],
    build: ConnectorFor,
    now: datetime,
    result: SweepResult,
) -> None:
    reader_index = 0
    connector: Connector | None = None

    def next_connector() -> Connector | None:
        nonlocal reader_index
        while reader_index < len(readers):
            try:
                return build(readers[reader_index])
            except Exception as exc:
                result.errors.append(f"{readers[reader_index].label}: {exc}")
                reader_index += 1
        return None

    connector = next_connector()
    if connector is None:
        return
    size = max(1, connector.metrics_batch_size)
    for start in range(0, len(items), size):
        batch = items[start : start + size]
        receipts = [item.receipt for item in batch]
        readings: list[Metrics] | None = None
        while readings is None and connector is not None:
            try:
                _count_call(result, platform)
                readings = connector.fetch_metrics(receipts)
            except AuthError as exc:
                # This reader lost its access: the next healthy account reads instead.
                result.errors.append(f"{readers[reader_index].label}: {exc}")
                reader_index += 1
                connector = next_connector()
            except ConnectorError as exc:
                result.errors.append(f"{platform}: {exc}")
                break  # these stay due and are read at the next sweep
        if connector is None:
            return
        if readings is None:
            continue
        by_id = {m.remote_id: m for m in readings}
        spread: dict[int, list[SpreaderInfo]] = {}
        for item in batch:
            m = by_id.get(item.receipt.remote_id)
            if m is not None and m.reposts + m.quotes > item.shared:
                result.spreader_calls += 1
                try:
                    spread[item.id] = connector.fetch_spreaders(item.receipt)
                except ConnectorError as exc:
                    result.errors.append(f"spreaders of delivery {item.id}: {exc}")
        with factory() as s:
            _store(s, batch, by_id, spread, now, result)
            s.commit()


def _latest(s: Session, delivery_ids: Sequence[int]) -> dict[int, MetricSnapshot]:
    """The newest snapshot of each delivery."""
    if not delivery_ids:
        return {}
    newest = (
        select(MetricSnapshot.delivery_id, func.max(MetricSnapshot.id).label("mid"))
        .where(MetricSnapshot.delivery_id.in_(list(delivery_ids)))
        .group_by(MetricSnapshot.delivery_id)
        .subquery()
    )
    rows = s.scalars(select(MetricSnapshot).join(newest, MetricSnapshot.id == newest.c.mid))
    return {r.delivery_id: r for r in rows}


def _store(
    s: Session,
    batch: Sequence[_Due],
    readings: dict[str, Metrics],
    spread: dict[int, list[SpreaderInfo]],
    now: datetime,
    result: SweepResult,
) -> None:
    rows = {
        d.id: d for d in s.scalars(select(Delivery).where(Delivery.id.in_([i.id for i in batch])))
    }
    for item in batch:
        d = rows.get(item.id)
        if d is None:
            continue  # deleted meanwhile
        m = readings.get(item.receipt.remote_id)
        if m is None:
            result.missing += 1
            advance(d, now)
            continue
        # snapshots.append keeps the delivery's latest counts and the daily rollup in step.
        snapshots.append(s, d, m, taken_at=now)
        result.snapshots += 1
        advance(d, now)
        if item.id in spread:
            result.spreaders += upsert_spreaders(s, d, spread[item.id], now)


def upsert_spreaders(
    s: Session, delivery: Delivery, infos: Sequence[SpreaderInfo], now: datetime
) -> int:
    """Insert new resharers, refresh known ones' follower counts. Returns how many were new."""
    existing = {
        (sp.remote_user_id, sp.kind): sp
        for sp in s.scalars(select(Spreader).where(Spreader.delivery_id == delivery.id))
    }
    new = 0
    for info in infos:
        row = existing.get((info.remote_user_id, info.kind))
        if row is None:
            row = Spreader(
                delivery_id=delivery.id,
                platform=delivery.account.platform,
                remote_user_id=info.remote_user_id,
                handle=info.handle,
                display_name=info.display_name,
                followers_count=info.followers_count,
                kind=info.kind,
                seen_at=now,
            )
            s.add(row)
            existing[(info.remote_user_id, info.kind)] = row
            new += 1
        else:
            row.handle = info.handle
            row.display_name = info.display_name or row.display_name
            if info.followers_count is not None:
                row.followers_count = info.followers_count
            row.seen_at = now
    return new


# --------------------------------------------------------------------------- reach


def potential_reach(s: Session, post_id: int) -> ReachResult:
    """Followers of the publishing accounts + of each resharer, each account once."""
    published = list(
        s.scalars(
            select(Delivery).where(
                Delivery.post_id == post_id, Delivery.status == DeliveryStatus.PUBLISHED
            )
        )
    )
    counted: dict[tuple[str, str], int | None] = {}
    publishers: set[tuple[str, str]] = set()
    unknown = 0
    for d in published:
        if d.kind != DeliveryKind.POST:
            continue
        key = _account_key(d.account)
        publishers.add(key)
        counted[key] = d.account.followers_count
    resharers: set[tuple[str, str]] = set()
    # Advocates' reposts made through Amplify count as reshares even before a sweep sees them.
    for d in published:
        if d.kind == DeliveryKind.REPOST:
            key = _account_key(d.account)
            if key not in publishers:
                resharers.add(key)
                if counted.get(key) is None:
                    counted[key] = d.account.followers_count
    ids = [d.id for d in published]
    if ids:
        for sp in s.scalars(select(Spreader).where(Spreader.delivery_id.in_(ids))):
            key = (sp.platform, sp.remote_user_id)
            alt = (sp.platform, sp.handle.lower())
            if key in publishers or alt in publishers:
                continue
            if alt in resharers:
                key = alt
            resharers.add(key)
            seen = counted.get(key)
            if sp.followers_count is not None and (seen is None or sp.followers_count > seen):
                counted[key] = sp.followers_count
            elif key not in counted:
                counted[key] = None
    reach = 0
    for value in counted.values():
        if value is None:
            unknown += 1
        else:
            reach += value
    return ReachResult(
        reach=reach,
        publishers=len(publishers),
        spreaders=len(resharers),
        method=REACH_METHOD,
        unknown_followers=unknown,
    )


def _account_key(account: Account) -> tuple[str, str]:
    if account.remote_user_id:
        return (account.platform, account.remote_user_id)
    return (account.platform, account.handle.lower())


# --------------------------------------------------------------------------- report


def reach_report(s: Session) -> list[dict[str, Any]]:
    """One row per story with at least one published delivery: its deliveries with their
    latest counts, its resharers with follower counts, and its potential reach."""
    post_ids = list(
        s.scalars(
            select(Delivery.post_id)
            .where(Delivery.status == DeliveryStatus.PUBLISHED)
            .distinct()
            .order_by(Delivery.post_id)
        )
    )
    rows: list[dict[str, Any]] = []
    for post_id in post_ids:
        post = s.get(Post, post_id)
        if post is None:
            continue
        deliveries = [d for d in post.deliveries if d.status == DeliveryStatus.PUBLISHED]
        latest = _latest(s, [d.id for d in deliveries])
        delivery_rows = []
        totals = {"likes": 0, "reposts": 0, "replies": 0, "quotes": 0}
        for d in sorted(deliveries, key=lambda x: x.id):
            snap = latest.get(d.id)
            row: dict[str, Any] = {
                "delivery_id": d.id,
                "platform": d.account.platform,
                "account": d.account.handle,
                "kind": d.kind,
                "url": d.remote_url,
                "published_at": d.published_at.isoformat() if d.published_at else None,
                "likes": snap.likes if snap else None,
                "reposts": snap.reposts if snap else None,
                "replies": snap.replies if snap else None,
                "quotes": snap.quotes if snap else None,
                "impressions": snap.impressions if snap else None,
                "measured_at": snap.taken_at.isoformat() if snap else None,
                "simulated": bool(snap.simulated) if snap else False,
            }
            if snap:
                for k in totals:
                    totals[k] += int(getattr(snap, k))
            delivery_rows.append(row)
        spreaders = list(
            s.scalars(
                select(Spreader)
                .where(Spreader.delivery_id.in_([d.id for d in deliveries]))
                .order_by(Spreader.followers_count.desc(), Spreader.handle)
            )
        )
        reach = potential_reach(s, post_id)
        rows.append(
            {
                "post_id": post.id,
                "story": " ".join(post.body.split())[:120],
                "campaign": post.campaign.name if post.campaign else None,
                "published_at": post.published_at.isoformat() if post.published_at else None,
                "deliveries": len(delivery_rows),
                **totals,
                "resharers": reach.spreaders,
                "potential_reach": reach.reach,
                "unknown_followers": reach.unknown_followers,
                "reach_method": reach.method,
                "delivery_details": delivery_rows,
                "resharer_details": [
                    {
                        "platform": sp.platform,
                        "handle": sp.handle,
                        "kind": sp.kind,
                        "followers_count": sp.followers_count,
                    }
                    for sp in spreaders
                ],
            }
        )
    return rows
