"""SQLAlchemy 2 typed models. Every schema change comes with an Alembic migration."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, hands back aware UTC: SQLite keeps no offsets, so normalise."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone first")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class Role(enum.StrEnum):
    VOLUNTEER = "volunteer"
    LEAD = "lead"
    ADMIN = "admin"


class PostState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


class DeliveryKind(enum.StrEnum):
    POST = "post"
    REPOST = "repost"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for next_attempt_at
    CLAIMED = "claimed"  # leased by a worker that is publishing it now
    RECONCILE = "reconcile"  # lease expired mid-publish: ask the platform before re-sending
    PUBLISHED = "published"
    FAILED = "failed"  # permanent error, or the account needs attention
    CANCELLED = "cancelled"


class AccountStatus(enum.StrEnum):
    OK = "ok"
    NEEDS_ATTENTION = "needs_attention"
    DISABLED = "disabled"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default=Role.VOLUNTEER)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    hashtags: Mapped[str] = mapped_column(String(500), default="")  # space-separated, with '#'
    utm_campaign: Mapped[str] = mapped_column(String(100), default="")
    utm_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    # Archived campaigns stay attached to their stories but are not offered for new ones.
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(Base):
    """A social account Amplify publishes from: the organisation's, or one advocate's."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("platform", "handle", "service_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    handle: Mapped[str] = mapped_column(String(200))
    service_url: Mapped[str] = mapped_column(String(300), default="")
    display_name: Mapped[str] = mapped_column(String(200), default="")
    remote_user_id: Mapped[str | None] = mapped_column(String(200))
    followers_count: Mapped[int | None] = mapped_column(Integer)
    # None: the organisation's own account; else the advocate who owns it.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    credentials_enc: Mapped[str] = mapped_column(Text)  # Fernet token of a JSON mapping
    session_enc: Mapped[str | None] = mapped_column(Text)  # Fernet token of a platform session
    status: Mapped[str] = mapped_column(String(20), default=AccountStatus.OK)
    last_error: Mapped[str | None] = mapped_column(Text)
    amplify_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    # Weekly posting slots in the workspace zone, e.g. ["mon 09:00", "wed 12:30"].
    posting_slots: Mapped[list[Any]] = mapped_column(default=list)
    # Per-connection options that are not secrets, e.g. {"x_plan": "basic"}.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User | None] = relationship()

    @property
    def label(self) -> str:
        return f"{self.platform}:{self.handle}"


class Post(Base):
    """A story and its journey from draft to published."""

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    # Per-platform text overrides: {"x": "...", "bluesky": "..."}.
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    link: Mapped[str | None] = mapped_column(String(2000))
    target_platforms: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[str] = mapped_column(String(20), default=PostState.DRAFT, index=True)
    preferred_time: Mapped[datetime | None] = mapped_column()
    scheduled_for: Mapped[datetime | None] = mapped_column(index=True)
    amplify: Mapped[bool] = mapped_column(Boolean, default=False)
    review_note: Mapped[str | None] = mapped_column(Text)
    # A lead's cap on how many posts a thread may have (None: the platform's own rules).
    thread_cap: Mapped[int | None] = mapped_column(Integer)
    # Saved by the composer while typing (not yet saved on purpose); restored after a reload.
    autosaved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column()
    published_at: Mapped[datetime | None] = mapped_column()
    # Optimistic lock: two leads acting on one story get a Conflict, not a silent overwrite.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    author: Mapped[User] = relationship()
    campaign: Mapped[Campaign | None] = relationship()
    media: Mapped[list[PostMedia]] = relationship(
        order_by="PostMedia.position", cascade="all, delete-orphan"
    )
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="post")


class PostMedia(Base):
    __tablename__ = "post_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str] = mapped_column(String(500))  # relative to the data dir
    alt_text: Mapped[str] = mapped_column(Text)
    mime_type: Mapped[str] = mapped_column(String(100), default="image/jpeg")
    # Filled when the image was checked and normalised on entry; pages and connectors use
    # these and never decode the original again.
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))


class Delivery(Base):
    """One (post, account, kind) send. Status is per delivery; siblings never fail together."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("post_id", "account_id", "kind"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_metrics_due", "next_metrics_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10), default=DeliveryKind.POST)
    # For a repost: the delivery whose remote post is being reshared.
    source_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    # The first time any worker claimed it: nothing on the platform older than this (less a
    # clock-skew allowance) can be this delivery's post when reconciling.
    first_claimed_at: Mapped[datetime | None] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    remote_id: Mapped[str | None] = mapped_column(String(300))
    remote_uri: Mapped[str | None] = mapped_column(String(500))
    remote_cid: Mapped[str | None] = mapped_column(String(200))
    remote_url: Mapped[str | None] = mapped_column(String(500))
    # The exact texts sent, frozen at the first attempt: a retry or a reconciliation after a
    # crash must send and look for the same words even if the campaign's tags changed since.
    texts: Mapped[list[Any]] = mapped_column(default=list)
    # Thread parts that have landed, in order: [{"remote_id","uri","cid","url"}, ...].
    parts: Mapped[list[Any]] = mapped_column(default=list)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(20))
    published_at: Mapped[datetime | None] = mapped_column()
    # Metrics sweep: when the next snapshot is due and how many were taken (schedule step).
    next_metrics_at: Mapped[datetime | None] = mapped_column()
    metrics_step: Mapped[int] = mapped_column(Integer, default=0)
    # Latest snapshot's counts, kept by amplify.snapshots.append so pages aggregate in SQL
    # without scanning the whole time series. The snapshots stay the source of truth.
    likes: Mapped[int] = mapped_column(Integer, default=0)
    reposts: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    quotes: Mapped[int] = mapped_column(Integer, default=0)
    impressions: Mapped[int | None] = mapped_column(Integer)
    engagement: Mapped[int] = mapped_column(Integer, default=0)
    metrics_simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Resharers the last sweep could not page through (bounded per sweep): "and N more".
    spreaders_unseen: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    post: Mapped[Post] = relationship(back_populates="deliveries")
    account: Mapped[Account] = relationship()


class MetricSnapshot(Base):
    """Append-only engagement reading of one delivery: a time series, not a counter."""

    __tablename__ = "metric_snapshots"
    __table_args__ = (Index("ix_metric_snapshots_delivery_taken", "delivery_id", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    reposts: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    quotes: Mapped[int] = mapped_column(Integer, default=0)
    impressions: Mapped[int | None] = mapped_column(Integer)
    bookmarks: Mapped[int | None] = mapped_column(Integer)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)


class EngagementDaily(Base):
    """Engagement gained per day, post and platform: a rollup of the snapshots for charts."""

    __tablename__ = "engagement_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    gain: Mapped[int] = mapped_column(Integer, default=0)


class Spreader(Base):
    """An account that reposted or quoted a delivery, with its follower count when seen."""

    __tablename__ = "spreaders"
    __table_args__ = (UniqueConstraint("delivery_id", "remote_user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(20))
    remote_user_id: Mapped[str] = mapped_column(String(200))
    handle: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    followers_count: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), default="repost")  # repost | quote
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserSession(Base):
    """A signed-in browser. The browser holds only an opaque token; this row holds its hash."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(100), default="")

    user: Mapped[User] = relationship()


class PasswordReset(Base):
    """A one-time password reset link issued by an admin (token stored only as a hash)."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class SignInFailure(Base):
    """A failed sign-in, kept for throttling (per email and per address) and for admins."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    address: Mapped[str] = mapped_column(String(100), default="", index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AuditEvent(Base):
    """Who did what, written in the same transaction as the change it records."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(50), index=True)
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    actor: Mapped[User | None] = relationship()


class WorkerHeartbeat(Base):
    """One row per worker process, so the dashboard can show who is alive and doing what."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    embedded: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_action: Mapped[str] = mapped_column(Text, default="")
    published_count: Mapped[int] = mapped_column(Integer, default=0)


class RateBudget(Base):
    """A shared rate window (per account or per platform), kept here so all workers see it."""

    __tablename__ = "rate_budgets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    used: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[datetime | None] = mapped_column()


class Setting(Base):
    """Workspace settings an admin changes from the dashboard (time zone, notifiers)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)


class NotificationChannel(Base):
    """An apprise URL (encrypted: it usually embeds a token) and the events it receives."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    url_enc: Mapped[str] = mapped_column(Text)
    # Which audiences it serves: ["leads", "admins", "authors", "advocates"]; or a user id.
    audiences: Mapped[list[Any]] = mapped_column(default=list)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SandboxRecord(Base):
    """What the practice network 'published'. Simulated: nothing leaves this machine."""

    __tablename__ = "sandbox_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(200), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="post")
    text: Mapped[str] = mapped_column(Text, default="")
    reply_to: Mapped[int | None] = mapped_column(Integer)
    repost_of: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
