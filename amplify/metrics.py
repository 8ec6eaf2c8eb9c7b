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
every account that reshared it, each account counted once, at its latest reading (the
sweep re-reads the follower counts of every account it reports on, publishers included).
It is an upper bound on the people who could have seen it, and it is never added up
across stories (the same people follow several accounts and see several stories).
``reaches`` is the only implementation: the Reach page, ``amplify report reach`` and the
leaderboards all read it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

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
from connectors import registry
from connectors.base import (
    MAX_SPREADERS_PER_SWEEP,
    AuthError,
    Connector,
    ConnectorError,
    Identity,
    Metrics,
    Receipt,
    SpreaderInfo,
)

log = logging.getLogger(__name__)

ConnectorFor = Callable[[Account], Connector]

# Shown beside every potential-reach number (page, CLI report).
REACH_METHOD = (
    "Potential reach = followers of the accounts that published the post + followers of each "
    "account that reshared it (reposts and quotes, whether through Amplify or by hand), each "
    "account counted once, at its latest follower reading. It is an upper bound on the people "
    "who could have seen the post, not a count of views, and it is never added up across "
    "posts (the same people follow many accounts). When a platform counts more reshares than "
    "it lists (past the per-sweep maximum, or accounts it hides), the rest show as "
    '"and N more" and the number is partial. Sandbox numbers are simulated.'
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
    followers_refreshed: int = 0  # our accounts whose follower count was re-read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


@dataclass
class _Group:
    """The due deliveries of one platform and server, and the accounts the sweep reports
    on there (publishers, advocates' reshares, known resharers) whose followers it re-reads."""

    platform: str
    service_url: str
    items: list[_Due]
    readers: list[Account]
    accounts: list[Identity] = field(default_factory=list)


def sweep(
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    force_all: bool = False,
    connector_for: ConnectorFor | None = None,
) -> SweepResult:
    """Take every due snapshot (every published delivery with ``force_all``) in the fewest
    calls, list new resharers, and re-read the follower counts of every account the sweep
    reports on. Each batch is written in its own short transaction, so a failure part-way
    keeps what was read, and nothing is held open during a platform call."""
    now = now or utcnow()
    build = connector_for or _default_connector_for
    result = SweepResult()
    plan: list[_Group] = []
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
            group = _Group(platform, service_url, items, readers)
            group.accounts = _reported_accounts(s, group, deliveries)
            plan.append(group)
        # Keep the accounts as read (a rollback would expire them), then end the read
        # before any platform call.
        s.expunge_all()
        s.rollback()
    for group in plan:
        _sweep_group(factory, group, build, now, result)
    return result


def _reported_accounts(s: Session, group: _Group, deliveries: list[Delivery]) -> list[Identity]:
    """Everyone this group's stories are reported with: our accounts on this server that
    published or reshared them, and the resharers already known. Ids are this server's."""
    post_ids = {d.post_id for d in deliveries}
    involved = select(Delivery.account_id).where(
        Delivery.post_id.in_(post_ids), Delivery.status == DeliveryStatus.PUBLISHED
    )
    # A subquery, not DISTINCT over accounts: PostgreSQL cannot compare their JSON columns.
    ours = s.scalars(
        select(Account).where(
            Account.id.in_(involved),
            Account.platform == group.platform,
            Account.service_url == group.service_url,
        )
    )
    out: dict[str, Identity] = {}
    for a in ours:
        key = a.remote_user_id or normalised_handle(a.platform, a.handle, a.service_url)
        out.setdefault(key, Identity(remote_user_id=a.remote_user_id or "", handle=a.handle))
    known = s.execute(
        select(Spreader.remote_user_id, Spreader.handle)
        .where(Spreader.delivery_id.in_([d.id for d in deliveries]))
        .distinct()
    )
    for remote_id, handle in known:
        out.setdefault(remote_id, Identity(remote_user_id=remote_id, handle=handle))
    return list(out.values())


def _count_call(result: SweepResult, platform: str) -> None:
    result.calls += 1
    result.calls_by_platform[platform] = result.calls_by_platform.get(platform, 0) + 1


def _sweep_group(
    factory: sessionmaker[Session],
    group: _Group,
    build: ConnectorFor,
    now: datetime,
    result: SweepResult,
) -> None:
    platform, readers = group.platform, group.readers
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
    fresh: set[str] = set()  # resharers read with their followers during this sweep
    size = max(1, connector.metrics_batch_size)
    for start in range(0, len(group.items), size):
        batch = group.items[start : start + size]
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
        spread = _read_spreaders(connector, batch, by_id, result)
        fresh.update(info.remote_user_id for infos in spread.values() for info in infos)
        with factory() as s:
            _store(s, batch, by_id, spread, now, result)
            s.commit()
    _refresh_followers(factory, connector, group, fresh, now, result)


def _read_spreaders(
    connector: Connector,
    batch: Sequence[_Due],
    readings: dict[str, Metrics],
    result: SweepResult,
) -> dict[int, list[SpreaderInfo]]:
    """Resharers of the deliveries whose reshares grew, up to the per-sweep maximum each."""
    spread: dict[int, list[SpreaderInfo]] = {}
    for item in batch:
        m = readings.get(item.receipt.remote_id)
        if m is not None and m.reposts + m.quotes > item.shared:
            result.spreader_calls += 1
            try:
                spread[item.id] = connector.fetch_spreaders(
                    item.receipt, limit=MAX_SPREADERS_PER_SWEEP
                )
            except ConnectorError as exc:
                result.errors.append(f"spreaders of delivery {item.id}: {exc}")
    return spread


def _refresh_followers(
    factory: sessionmaker[Session],
    connector: Connector,
    group: _Group,
    fresh: set[str],
    now: datetime,
    result: SweepResult,
) -> None:
    """Re-read the follower counts of the accounts this group reports on (not those just
    read with the resharers), so potential reach counts the latest reading, not the first."""
    wanted = [a for a in group.accounts if not a.remote_user_id or a.remote_user_id not in fresh]
    if not wanted:
        return
    try:
        profiles = connector.fetch_profiles(wanted)
    except ConnectorError as exc:
        result.errors.append(f"{group.platform}: follower counts not refreshed: {exc}")
        return
    with factory() as s:
        result.followers_refreshed += _store_profiles(s, group, profiles, now)
        s.commit()


def _store_profiles(s: Session, group: _Group, profiles: Sequence[Identity], now: datetime) -> int:
    """Write fresh follower counts to our accounts and to the resharer rows of this server."""
    counts = {p.remote_user_id: p.followers_count for p in profiles if p.remote_user_id}
    if counts:
        for sp in s.scalars(
            select(Spreader).where(
                Spreader.delivery_id.in_([i.id for i in group.items]),
                Spreader.remote_user_id.in_(list(counts)),
            )
        ):
            if counts[sp.remote_user_id] is not None:
                sp.followers_count, sp.seen_at = counts[sp.remote_user_id], now
    readings = [(p.remote_user_id, p.handle, p.followers_count) for p in profiles]
    return _copy_to_our_accounts(s, group.platform, group.service_url, readings)


def _copy_to_our_accounts(
    s: Session,
    platform: str,
    service_url: str,
    readings: Sequence[tuple[str | None, str, int | None]],
) -> int:
    """A fresh follower reading of one of our accounts, seen through this server, lands on
    its Account row too (matched like potential reach matches: id, else handle)."""
    wanted = {
        key: count
        for remote_id, handle, count in readings
        if count is not None
        for key in _keys(platform, handle, remote_id, service_url)
    }
    if not wanted:
        return 0
    changed = 0
    for a in s.scalars(select(Account).where(Account.platform == platform)):
        for key in _keys(a.platform, a.handle, a.remote_user_id, a.service_url):
            if key in wanted:
                a.followers_count = wanted[key]
                changed += 1
                break
    return changed


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
    # Resharers' follower counts, copied to our accounts once for the batch (one server).
    resharers: list[tuple[str | None, str, int | None]] = []
    server: tuple[str, str] | None = None
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
            infos = spread[item.id]
            result.spreaders += upsert_spreaders(s, d, infos, now)
            # The platform's own count says how many it did not list (past the maximum, or
            # hidden): "and N more", so the reach is shown as partial, not silently low.
            listed = len({(i.remote_user_id, i.kind) for i in infos})
            d.spreaders_unseen = max(0, m.reposts + m.quotes - listed)
            resharers += [(i.remote_user_id, i.handle, i.followers_count) for i in infos]
            server = server or (d.account.platform, d.account.service_url)
    if server is not None:
        _copy_to_our_accounts(s, *server, resharers)


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


@dataclass(frozen=True)
class ReachAccount:
    """One account that carried a story: counted once, with its latest follower reading."""

    platform: str
    handle: str
    followers: int | None  # None: never read (counted as 0, and said so)
    role: str  # "publisher" (posted the story) | "resharer" (reposted or quoted it)
    kind: str  # post | repost | quote
    remote_user_id: str | None = None
    owner_id: int | None = None  # the advocate, when the account is one of ours
    via_amplify: bool = False  # reshared by Amplify for an opted-in advocate

    @property
    def simulated(self) -> bool:
        return self.platform == SANDBOX


@dataclass(frozen=True)
class Reach:
    """Potential reach of one story, broken down. The one implementation every page,
    report, leaderboard and notification uses (see ``REACH_METHOD``)."""

    post_id: int
    publishers: tuple[ReachAccount, ...]
    resharers: tuple[ReachAccount, ...]
    unseen: int = 0  # resharers the platforms count but did not list: "and N more"
    method: str = REACH_METHOD

    @property
    def publishers_followers(self) -> int:
        return sum(a.followers or 0 for a in self.publishers)

    @property
    def resharers_followers(self) -> int:
        return sum(a.followers or 0 for a in self.resharers)

    @property
    def reach(self) -> int:
        return self.publishers_followers + self.resharers_followers

    @property
    def unknown_followers(self) -> int:
        return sum(1 for a in (*self.publishers, *self.resharers) if a.followers is None)

    @property
    def partial(self) -> bool:
        """Some resharers could not be listed (or their followers read): an undercount."""
        return self.unseen > 0 or self.unknown_followers > 0

    @property
    def simulated(self) -> bool:
        """Any part of it comes from the sandbox's modelled numbers."""
        return any(a.simulated for a in (*self.publishers, *self.resharers))


SANDBOX = "sandbox"


def _federated(platform: str) -> bool:
    """Whether handles and ids on ``platform`` belong to one server (Mastodon), as its
    connector describes it."""
    try:
        return registry.info(platform).server_in_handle
    except ValueError:
        return False


def normalised_handle(platform: str, handle: str, service_url: str = "") -> str:
    """The handle as one account has it everywhere: lower case, no leading @; on Mastodon
    with the instance's domain (``ann`` on mastodon.social is ``ann@mastodon.social``)."""
    value = (handle or "").strip().lstrip("@").lower()
    if "@" not in value and _federated(platform):
        host = urlsplit(service_url).hostname or ""
        if host:
            value = f"{value}@{host.lower()}"
    return value


def _id_key(platform: str, remote_id: str | None, service_url: str) -> tuple[str, ...] | None:
    """Remote ids are the same account's only on the same platform (and, on Mastodon,
    where ids are per server, the same server)."""
    if not remote_id:
        return None
    scope = (urlsplit(service_url).hostname or "").lower() if _federated(platform) else ""
    return ("id", platform, scope, remote_id)


@dataclass
class _Entry:
    """A sighting of an account on one story, before identical accounts are merged."""

    platform: str
    handle: str
    keys: list[tuple[str, ...]]
    role: str
    kind: str
    account: Account | None = None  # ours
    followers: int | None = None
    seen_at: datetime | None = None
    remote_user_id: str | None = None
    via_amplify: bool = False


def _keys(
    platform: str, handle: str, remote_id: str | None, service_url: str
) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = [
        ("handle", platform, normalised_handle(platform, handle, service_url))
    ]
    id_key = _id_key(platform, remote_id, service_url)
    if id_key:
        keys.append(id_key)
    return keys


def _merge(entries: list[_Entry]) -> list[list[_Entry]]:
    """Group sightings of the same account: the same platform and remote id, or the same
    normalised handle (an untested account has no id; Mastodon ids differ per server)."""
    parent = list(range(len(entries)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, ...], int] = {}
    for i, entry in enumerate(entries):
        for key in entry.keys:
            if key in owner:
                a, b = root(owner[key]), root(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[key] = i
    groups: dict[int, list[_Entry]] = defaultdict(list)
    for i, entry in enumerate(entries):
        groups[root(i)].append(entry)
    return [groups[k] for k in sorted(groups)]


def _latest_followers(group: list[_Entry]) -> int | None:
    """Our own account's count (test and sweep keep it current, and the sweep copies every
    newer reading of it there); else the newest reading seen among resharers."""
    for e in group:
        if e.account is not None and e.account.followers_count is not None:
            return e.account.followers_count
    seen = [e for e in group if e.followers is not None]
    if not seen:
        return None
    return max(seen, key=lambda e: e.seen_at or datetime.min.replace(tzinfo=UTC)).followers


def _reach_of(post_id: int, entries: list[_Entry], unseen: int) -> Reach:
    publishers: list[ReachAccount] = []
    resharers: list[ReachAccount] = []
    for group in _merge(entries):
        publisher = next((e for e in group if e.role == "publisher"), None)
        first = publisher or next((e for e in group if e.account is not None), group[0])
        ours = next((e.account for e in group if e.account is not None), None)
        kinds = sorted({e.kind for e in group}, key=["post", "repost", "quote"].index)
        item = ReachAccount(
            platform=first.platform,
            handle=ours.handle if ours is not None else first.handle,
            followers=_latest_followers(group),
            role="publisher" if publisher else "resharer",
            kind=kinds[0],
            remote_user_id=next((e.remote_user_id for e in group if e.remote_user_id), None),
            owner_id=ours.owner_id if ours is not None else None,
            via_amplify=any(e.via_amplify for e in group),
        )
        (publishers if publisher else resharers).append(item)
    order = lambda a: (-(a.followers or 0), a.platform, a.handle.lower())  # noqa: E731
    return Reach(
        post_id=post_id,
        publishers=tuple(sorted(publishers, key=order)),
        resharers=tuple(sorted(resharers, key=order)),
        unseen=unseen,
    )


def reaches(s: Session, post_ids: Sequence[int]) -> dict[int, Reach]:
    """Potential reach of each story (one ``Reach`` per post id that has a published
    delivery), in three queries whatever the number of stories."""
    ids = list(dict.fromkeys(post_ids))
    if not ids:
        return {}
    published = list(
        s.scalars(
            select(Delivery)
            .options(selectinload(Delivery.account))
            .where(Delivery.post_id.in_(ids), Delivery.status == DeliveryStatus.PUBLISHED)
            .order_by(Delivery.id)
        )
    )
    by_delivery = {d.id: d for d in published}
    spreaders = (
        list(
            s.scalars(
                select(Spreader)
                .where(Spreader.delivery_id.in_(list(by_delivery)))
                .order_by(Spreader.id)
            )
        )
        if by_delivery
        else []
    )
    ours = _our_accounts(s, {d.account.platform for d in published})
    entries: dict[int, list[_Entry]] = defaultdict(list)
    unseen: dict[int, int] = defaultdict(int)
    for d in published:
        a = d.account
        publisher = d.kind == DeliveryKind.POST
        entries[d.post_id].append(
            _Entry(
                platform=a.platform,
                handle=a.handle,
                keys=_keys(a.platform, a.handle, a.remote_user_id, a.service_url),
                role="publisher" if publisher else "resharer",
                kind="post" if publisher else "repost",
                account=a,
                remote_user_id=a.remote_user_id,
                via_amplify=not publisher,
            )
        )
        unseen[d.post_id] += int(d.spreaders_unseen or 0)
    for sp in spreaders:
        d = by_delivery[sp.delivery_id]
        server = d.account.service_url
        keys = _keys(sp.platform, sp.handle, sp.remote_user_id, server)
        entries[d.post_id].append(
            _Entry(
                platform=sp.platform,
                handle=sp.handle,
                keys=keys,
                role="resharer",
                kind=sp.kind,
                account=next((ours[k] for k in keys if k in ours), None),
                followers=sp.followers_count,
                seen_at=sp.seen_at,
                remote_user_id=sp.remote_user_id,
            )
        )
    return {pid: _reach_of(pid, entries[pid], unseen[pid]) for pid in ids if pid in entries}


def _our_accounts(s: Session, platforms: set[str]) -> dict[tuple[str, ...], Account]:
    """Our connected accounts by identity key, to recognise an advocate among resharers."""
    if not platforms:
        return {}
    out: dict[tuple[str, ...], Account] = {}
    for a in s.scalars(select(Account).where(Account.platform.in_(platforms))):
        for key in _keys(a.platform, a.handle, a.remote_user_id, a.service_url):
            out.setdefault(key, a)
    return out


def potential_reach(s: Session, post_id: int) -> Reach:
    """Followers of the accounts that published the story + of each account that reshared
    it, each account once, at its latest reading."""
    return reaches(s, [post_id]).get(post_id) or Reach(post_id, (), ())


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
    all_reach = reaches(s, post_ids)
    rows: list[dict[str, Any]] = []
    for post_id in post_ids:
        post = s.get(Post, post_id)
        reach = all_reach.get(post_id)
        if post is None or reach is None:
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
                "simulated": bool(snap.simulated) if snap else d.account.platform == SANDBOX,
            }
            if snap and d.kind == DeliveryKind.POST:
                for k in totals:
                    totals[k] += int(getattr(snap, k))
            delivery_rows.append(row)
        rows.append(
            {
                "post_id": post.id,
                "story": " ".join(post.body.split())[:120],
                "campaign": post.campaign.name if post.campaign else None,
                "published_at": post.published_at.isoformat() if post.published_at else None,
                "deliveries": len(delivery_rows),
                **totals,
                "publishers": len(reach.publishers),
                "resharers": len(reach.resharers),
                "resharers_unseen": reach.unseen,
                "publishers_followers": reach.publishers_followers,
                "resharers_followers": reach.resharers_followers,
                "potential_reach": reach.reach,
                "partial": reach.partial,
                "simulated": reach.simulated,
                "unknown_followers": reach.unknown_followers,
                "reach_method": reach.method,
                "delivery_details": delivery_rows,
                "resharer_details": [
                    {
                        "platform": a.platform,
                        "handle": a.handle,
                        "kind": a.kind,
                        "followers_count": a.followers,
                    }
                    for a in reach.resharers
                ],
            }
        )
    return rows
