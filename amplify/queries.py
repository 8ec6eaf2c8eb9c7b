"""Read-side queries for the dashboard pages (listings, calendar, activity, system).

Plain SQLAlchemy; no streamlit and no business rules. Writes go through the services.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from amplify.models import (
    Account,
    AuditEvent,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    PostState,
    User,
    WorkerHeartbeat,
    utcnow,
)

# --------------------------------------------------------------------------- settings


def workspace_timezone(s: Session) -> str | None:
    """The zone an admin chose for the workspace (else AMPLIFY_TIMEZONE's)."""
    from amplify import workspace

    return workspace.get_timezone(s) or None


# --------------------------------------------------------------------------- stories


def _with_children() -> tuple[object, ...]:
    return (
        selectinload(Post.media),
        selectinload(Post.deliveries).selectinload(Delivery.account),
        selectinload(Post.campaign),
        selectinload(Post.author),
    )


def posts_by_author(s: Session, user_id: int) -> Sequence[Post]:
    """Everything this person wrote, newest change first."""
    stmt = (
        select(Post)
        .where(Post.author_id == user_id)
        .options(*_with_children())  # type: ignore[arg-type]
        .order_by(Post.updated_at.desc(), Post.id.desc())
    )
    return s.scalars(stmt).all()


def review_queue(s: Session) -> Sequence[Post]:
    """Submitted stories, the one waiting longest first."""
    stmt = (
        select(Post)
        .where(Post.state == PostState.SUBMITTED)
        .options(*_with_children())  # type: ignore[arg-type]
        .order_by(func.coalesce(Post.submitted_at, Post.created_at), Post.id)
    )
    return s.scalars(stmt).all()


def post_with_children(s: Session, post_id: int) -> Post | None:
    stmt = select(Post).where(Post.id == post_id).options(*_with_children())  # type: ignore[arg-type]
    return s.scalar(stmt)


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class CalendarEntry:
    post_id: int
    delivery_id: int
    account_id: int
    account: str
    platform: str
    at: datetime  # when it publishes (scheduled) or published
    post_state: str
    delivery_status: str
    excerpt: str
    url: str | None


def calendar_entries(s: Session, start: datetime, end: datetime) -> list[CalendarEntry]:
    """Posts (not reposts) of approved/published stories landing in [start, end)."""
    when = func.coalesce(Delivery.published_at, Delivery.next_attempt_at)
    stmt = (
        select(Delivery, Post, Account)
        .join(Post, Delivery.post_id == Post.id)
        .join(Account, Delivery.account_id == Account.id)
        .where(
            Delivery.kind == DeliveryKind.POST,
            Post.state.in_([PostState.APPROVED, PostState.PUBLISHED]),
            when >= start,
            when < end,
        )
        .order_by(when, Delivery.id)
    )
    entries = []
    for delivery, post, account in s.execute(stmt).all():
        at = delivery.published_at or delivery.next_attempt_at
        entries.append(
            CalendarEntry(
                post_id=post.id,
                delivery_id=delivery.id,
                account_id=account.id,
                account=account.handle,
                platform=account.platform,
                at=at,
                post_state=post.state,
                delivery_status=delivery.status,
                excerpt=post.body[:60] + ("…" if len(post.body) > 60 else ""),
                url=delivery.remote_url,
            )
        )
    return entries


def movable_posts(s: Session) -> Sequence[Post]:
    """Approved stories not yet fully published (can be rescheduled or cancelled)."""
    stmt = (
        select(Post).where(Post.state == PostState.APPROVED).order_by(Post.scheduled_for, Post.id)
    )
    return s.scalars(stmt).all()


# --------------------------------------------------------------------------- accounts


def accounts(s: Session, *, platform: str | None = None) -> Sequence[Account]:
    stmt = (
        select(Account)
        .options(selectinload(Account.owner))
        .order_by(Account.platform, Account.handle)
    )
    if platform:
        stmt = stmt.where(Account.platform == platform)
    return s.scalars(stmt).all()


def publishing_accounts(s: Session) -> Sequence[Account]:
    """The organisation's accounts a lead can publish a story from."""
    stmt = (
        select(Account)
        .where(Account.owner_id.is_(None), Account.status != "disabled")
        .order_by(Account.platform, Account.handle)
    )
    return s.scalars(stmt).all()


def connected_platforms(s: Session) -> list[str]:
    """Platforms the organisation can publish to now (an account that is not disabled)."""
    stmt = (
        select(Account.platform)
        .where(Account.owner_id.is_(None), Account.status != "disabled")
        .distinct()
        .order_by(Account.platform)
    )
    return list(s.scalars(stmt))


def opted_in_accounts(s: Session, user_id: int | None = None) -> Sequence[Account]:
    """Advocates' accounts that take part in amplification (of one person if given)."""
    stmt = (
        select(Account)
        .options(selectinload(Account.owner))
        .where(Account.amplify_opt_in.is_(True))
        .order_by(Account.platform, Account.handle)
    )
    if user_id is not None:
        stmt = stmt.where(Account.owner_id == user_id)
    return s.scalars(stmt).all()


# --------------------------------------------------------------------------- activity


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditEvent]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def audit_actions(s: Session) -> list[str]:
    return list(s.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def audit_actors(s: Session) -> list[tuple[int, str]]:
    stmt = (
        select(User.id, User.name)
        .where(User.id.in_(select(AuditEvent.actor_id).distinct()))
        .order_by(User.name)
    )
    return [(uid, name) for uid, name in s.execute(stmt).all()]


def audit_page(
    s: Session,
    *,
    actions: Sequence[str] = (),
    actor_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: int = 1,
    page_size: int = 50,
) -> AuditPage:
    """One page of the audit log, newest first, filtered by action, actor and time."""
    conds: list[ColumnElement[bool]] = []
    if actions:
        conds.append(AuditEvent.action.in_(list(actions)))
    if actor_id is not None:
        conds.append(AuditEvent.actor_id == actor_id)
    if since is not None:
        conds.append(AuditEvent.at >= since)
    if until is not None:
        conds.append(AuditEvent.at < until)
    total = s.scalar(select(func.count()).select_from(AuditEvent).where(*conds)) or 0
    page = max(1, page)
    stmt = (
        select(AuditEvent)
        .options(selectinload(AuditEvent.actor))
        .where(*conds)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return AuditPage(list(s.scalars(stmt)), int(total), page, page_size)


# --------------------------------------------------------------------------- system


@dataclass(frozen=True)
class WorkerRow:
    worker_id: str
    hostname: str
    pid: int
    embedded: bool
    last_seen_at: datetime
    last_action: str
    published_count: int
    alive: bool


def workers(s: Session, *, alive_within: timedelta = timedelta(seconds=30)) -> list[WorkerRow]:
    now = utcnow()
    rows = s.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen_at.desc()))
    return [
        WorkerRow(
            worker_id=h.worker_id,
            hostname=h.hostname,
            pid=h.pid,
            embedded=h.embedded,
            last_seen_at=h.last_seen_at,
            last_action=h.last_action,
            published_count=h.published_count,
            alive=now - h.last_seen_at <= alive_within,
        )
        for h in rows
    ]


def failed_deliveries(s: Session, *, limit: int = 200) -> Sequence[Delivery]:
    stmt = (
        select(Delivery)
        .options(selectinload(Delivery.account), selectinload(Delivery.post))
        .where(Delivery.status == DeliveryStatus.FAILED)
        .order_by(Delivery.next_attempt_at.desc(), Delivery.id.desc())
        .limit(limit)
    )
    return s.scalars(stmt).all()


def published_links(s: Session, post_id: int) -> list[tuple[str, str, str | None]]:
    """(platform, handle, url) of each published post delivery of a story."""
    stmt = (
        select(Account.platform, Account.handle, Delivery.remote_url, Delivery.remote_uri)
        .join(Account, Delivery.account_id == Account.id)
        .where(
            Delivery.post_id == post_id,
            Delivery.kind == DeliveryKind.POST,
            Delivery.status == DeliveryStatus.PUBLISHED,
        )
        .order_by(Delivery.id)
    )
    return [(p, h, url or uri) for p, h, url, uri in s.execute(stmt).all()]
