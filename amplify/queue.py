"""The delivery queue: claim, record progress, complete, fail, reconcile, release.

Exactly-once rules (DESIGN.md "Publishing: exactly once"):

- ``claim_due`` takes deliveries atomically with a lease in one statement and commits the
  claim before anyone calls a platform (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: one
  ``UPDATE … WHERE id IN (SELECT …) AND status='pending' RETURNING``, under the write lock
  ``BEGIN IMMEDIATE`` takes).
- One account publishes one post at a time, in order: an account with a ``claimed`` or
  ``reconcile`` delivery gets nothing new, and per account only its earliest due delivery
  is claimable. Accounts whose status is not ``ok`` are skipped (their deliveries stay
  pending, visible on the dashboard, and go out once an admin fixes the account).
- Every write after the claim checks the lease (``lease_owner == worker_id``): a worker
  that lost its lease cannot overwrite what a reconciling worker decided.
- A lease that expired mid-publish goes to ``reconcile`` — never straight back to
  ``pending`` — so the platform is asked what landed before anything is re-sent.
- The first claim is remembered (``Delivery.first_claimed_at``, never overwritten): nothing
  the platform dated before it (less a clock-skew allowance) is taken for this delivery.

Apart from the two ``claim_*`` functions (which take a session factory and commit), every
function works in the caller's session and leaves committing to the caller.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    any_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased, sessionmaker

from amplify import ratelimit
from amplify.config import get_settings
from amplify.db import is_postgres
from amplify.models import (
    Account,
    AccountStatus,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    PostState,
    utcnow,
)
from amplify.retry import DEFAULT_POLICY, Failure, RetryPolicy, Verdict
from connectors.base import AuthError, ConnectorError, PermanentError, RateLimited, Receipt

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """How one publish or reconcile attempt ended: the one vocabulary the publisher returns,
    the worker counts and logs, and the CLI reports (compare members, never strings)."""

    PUBLISHED = "published"
    RETRY = "retry"  # transient error: pending at backoff
    RATE_LIMITED = "rate_limited"  # pending at the platform's reset time
    FAILED = "failed"  # permanent, or gave up: a lead must look
    NEEDS_ATTENTION = "needs_attention"  # auth error: the account needs an admin
    RECONCILE = "reconcile"  # reconciliation could not ask the platform yet; tries later
    REQUEUED = "requeued"  # reconciliation: nothing landed, back to pending
    RESUMED = "resumed"  # reconciliation: some thread parts landed, the rest will follow
    LEASE_LOST = "lease_lost"  # another worker owns it now; nothing was changed
    NOT_CLAIMED = "not_claimed"  # this worker does not hold the delivery
    UNCERTAIN = "uncertain"  # something landed but could not be recorded: reconcile will
    DEFERRED = "deferred"  # the account's budget is spent: pending at the window's reset
    CRASHED = "crashed"  # the attempt raised; its lease expires and reconcile decides


#: statuses in which a delivery holds its account (nothing else of that account is claimed)
BUSY = (DeliveryStatus.CLAIMED, DeliveryStatus.RECONCILE)
#: post states whose deliveries may go out (a repost follows a published post)
LIVE_POST_STATES = (PostState.APPROVED, PostState.PUBLISHED)


# --------------------------------------------------------------------------- receipts


def receipt_to_dict(receipt: Receipt) -> dict[str, str | None]:
    return {
        "remote_id": receipt.remote_id,
        "uri": receipt.uri,
        "cid": receipt.cid,
        "url": receipt.url,
    }


def receipt_from_dict(data: dict[str, Any]) -> Receipt:
    return Receipt(
        remote_id=str(data["remote_id"]),
        uri=data.get("uri"),
        cid=data.get("cid"),
        url=data.get("url"),
    )


def landed_receipts(delivery: Delivery) -> list[Receipt]:
    """The thread parts of ``delivery`` recorded as landed, in order."""
    return [receipt_from_dict(p) for p in delivery.parts or [] if p]


# --------------------------------------------------------------------------- claiming


def _eligible(now: datetime, account_ids: Sequence[int] | None) -> Select[Any]:
    """Due pending deliveries of healthy, idle accounts, ranked per account (1 = earliest)."""
    busy = aliased(Delivery)
    source = aliased(Delivery)
    rank = func.row_number().over(
        partition_by=Delivery.account_id, order_by=(Delivery.next_attempt_at, Delivery.id)
    )
    # Written so the plan stays linear even before the planner has statistics (a fresh
    # database after a bulk approval): NOT IN over small uncorrelated sets is hashed once
    # (the broken accounts, the stories not live, the busy accounts), and the repost check
    # is one primary-key probe per repost.
    query = select(
        Delivery.id.label("id"), Delivery.next_attempt_at.label("due"), rank.label("rank")
    ).where(
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.next_attempt_at <= now,
        Delivery.account_id.not_in(select(Account.id).where(Account.status != AccountStatus.OK)),
        Delivery.post_id.not_in(select(Post.id).where(Post.state.not_in(LIVE_POST_STATES))),
        Delivery.account_id.not_in(select(busy.account_id).where(busy.status.in_(BUSY))),
        # A repost waits until the post it reshares has landed.
        or_(
            Delivery.kind != DeliveryKind.REPOST,
            exists().where(
                source.id == Delivery.source_id, source.status == DeliveryStatus.PUBLISHED
            ),
        ),
    )
    if account_ids is not None:
        query = query.where(Delivery.account_id.in_(list(account_ids)))
    return query


def _among(s: Session, ids: ColumnElement[Any], *where: ColumnElement[bool]) -> ColumnElement[bool]:
    """``Delivery.id`` is one of ``ids`` (a CTE column). On PostgreSQL as ``= ANY(array)``:
    the set is computed once and matched without a join, so no missing or stale planner
    statistics can turn it into a nested loop over the whole queue."""
    if is_postgres(s):
        array = select(func.array_agg(ids)).where(*where).scalar_subquery()
        return Delivery.id == any_(cast(array, ARRAY(Integer)))
    return Delivery.id.in_(select(ids).where(*where))


def claim_due(
    factory: sessionmaker[Session],
    worker_id: str,
    *,
    limit: int,
    now: datetime | None = None,
    lease_seconds: int | None = None,
    account_ids: Sequence[int] | None = None,
) -> list[int]:
    """Lease up to ``limit`` due deliveries to ``worker_id`` and commit; ids, earliest first.

    One statement on both databases; never two deliveries of one account at once.
    """
    if limit <= 0:
        return []
    now = now or utcnow()
    lease = timedelta(seconds=lease_seconds or get_settings().lease_seconds)
    with factory() as s:
        # MATERIALIZED: rank once, never re-run per candidate row.
        ranked = _eligible(now, account_ids).cte("ranked").prefix_with("MATERIALIZED")
        picked_query = (
            select(Delivery.id)
            .where(
                _among(s, ranked.c.id, ranked.c.rank == 1),
                Delivery.status == DeliveryStatus.PENDING,
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        )
        if is_postgres(s):
            # Rows another worker is claiming right now are skipped, not waited for; a row
            # that changed under us is re-checked (status='pending') after the lock.
            picked_query = picked_query.with_for_update(of=Delivery, skip_locked=True)
        picked = picked_query.cte("picked")
        stmt = (
            update(Delivery)
            .where(_among(s, picked.c.id), Delivery.status == DeliveryStatus.PENDING)
            .values(
                status=DeliveryStatus.CLAIMED,
                lease_owner=worker_id,
                lease_expires_at=now + lease,
                attempts=Delivery.attempts + 1,
                # Set once, never moved: reconciliation ignores anything older on the
                # platform (connectors.base.not_before_for).
                first_claimed_at=func.coalesce(
                    Delivery.first_claimed_at, literal(now, Delivery.first_claimed_at.type)
                ),
            )
            .returning(Delivery.id, Delivery.next_attempt_at)
            .execution_options(synchronize_session=False)
        )
        rows = list(s.execute(stmt).all())
        s.commit()
    rows.sort(key=lambda r: (r[1], r[0]))
    return [int(r[0]) for r in rows]


def claim_reconcile(
    factory: sessionmaker[Session],
    worker_id: str,
    *,
    limit: int,
    now: datetime | None = None,
    lease_seconds: int | None = None,
) -> list[int]:
    """Lease up to ``limit`` deliveries waiting in ``reconcile`` (and commit); ids."""
    if limit <= 0:
        return []
    now = now or utcnow()
    lease = timedelta(seconds=lease_seconds or get_settings().lease_seconds)
    free = or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at <= now)
    with factory() as s:
        picked_query = (
            select(Delivery.id)
            .join(Account, Account.id == Delivery.account_id)
            .where(
                Delivery.status == DeliveryStatus.RECONCILE,
                Delivery.next_attempt_at <= now,
                free,
                Account.status == AccountStatus.OK,
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        )
        if is_postgres(s):
            picked_query = picked_query.with_for_update(of=Delivery, skip_locked=True)
        picked = picked_query.cte("picked")
        stmt = (
            update(Delivery)
            .where(
                Delivery.id.in_(select(picked.c.id)),
                Delivery.status == DeliveryStatus.RECONCILE,
                free,
            )
            .values(lease_owner=worker_id, lease_expires_at=now + lease)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
        ids = sorted(int(i) for i in s.scalars(stmt))
        s.commit()
    return ids


# --------------------------------------------------------------------------- entering and leaving


def new_delivery(**fields: Any) -> Delivery:
    """A delivery waiting to go out (pending, no attempt yet); the caller adds it."""
    return Delivery(status=DeliveryStatus.PENDING, attempts=0, **fields)


def new_delivery_row(**fields: Any) -> dict[str, Any]:
    """The same as ``new_delivery`` as a row for a bulk insert (the CSV importer)."""
    return {"status": str(DeliveryStatus.PENDING), "attempts": 0, **fields}


#: statuses a person may cancel (one being sent is left to finish; a published one stays)
CANCELLABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


def cancel(delivery: Delivery) -> None:
    """Stop a delivery that is waiting or has failed (the caller flushes and settles the story)."""
    if delivery.status not in CANCELLABLE:
        raise ValueError(f"delivery {delivery.id} is {delivery.status}; it cannot be cancelled")
    delivery.status = DeliveryStatus.CANCELLED


def rearm(delivery: Delivery, when: datetime) -> None:
    """Send a cancelled or failed delivery again at ``when`` — the same row, so the same
    idempotency key (a copy that did land is recognised, never sent twice). Its attempts
    count is kept."""
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = when
    delivery.last_error = None
    delivery.error_kind = None
    _clear_lease(delivery)


# --------------------------------------------------------------------------- holding a lease


def _leased(
    s: Session, delivery_id: int, worker_id: str, statuses: Iterable[str] = BUSY
) -> Delivery | None:
    """The delivery, locked, if ``worker_id`` still holds its lease; else None."""
    delivery = s.execute(
        select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if delivery is None or delivery.lease_owner != worker_id or delivery.status not in statuses:
        log.warning(
            "worker %s no longer holds the lease on delivery %s; leaving it alone",
            worker_id,
            delivery_id,
        )
        return None
    return delivery


def _clear_lease(delivery: Delivery) -> None:
    delivery.lease_owner = None
    delivery.lease_expires_at = None


def record_part(
    s: Session,
    delivery_id: int,
    worker_id: str,
    index: int,
    receipt: Receipt,
    *,
    now: datetime | None = None,
    lease_seconds: int | None = None,
) -> bool:
    """Record that thread part ``index`` landed (the caller commits right after) and extend
    the lease, since the worker is visibly alive. False if the lease was lost."""
    delivery = _leased(s, delivery_id, worker_id)
    if delivery is None:
        return False
    parts = list(delivery.parts or [])
    while len(parts) <= index:
        parts.append(None)
    parts[index] = receipt_to_dict(receipt)
    delivery.parts = parts  # a new list, so the JSON column is marked changed
    now = now or utcnow()
    delivery.lease_expires_at = now + timedelta(
        seconds=lease_seconds or get_settings().lease_seconds
    )
    s.flush()
    return True


def extend_lease(
    s: Session,
    delivery_id: int,
    worker_id: str,
    *,
    now: datetime | None = None,
    lease_seconds: int | None = None,
) -> bool:
    """Keep a lease alive while a slow publish is under way (the caller commits).
    False if ``worker_id`` no longer holds it."""
    now = now or utcnow()
    lease = timedelta(seconds=lease_seconds or get_settings().lease_seconds)
    result = s.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.lease_owner == worker_id,
            Delivery.status.in_(BUSY),
        )
        .values(lease_expires_at=now + lease)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).first()
    return result is not None


def lock_story(s: Session, delivery_id: int) -> Post | None:
    """Lock (and reload) the story of a delivery, or None if the delivery is gone.

    Completing a delivery locks its story first (then the delivery), so two siblings
    completing at once never both see the other still claimed (PostgreSQL, read
    committed) and leave the story "approved" for ever; taking the story first keeps the
    same lock order as the workflow's own changes (story, then its deliveries).
    """
    post_id = s.scalar(select(Delivery.post_id).where(Delivery.id == delivery_id))
    if post_id is None:
        return None
    return s.execute(
        select(Post)
        .where(Post.id == post_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def complete(
    s: Session,
    delivery_id: int,
    worker_id: str,
    receipts: Sequence[Receipt],
    *,
    now: datetime | None = None,
) -> bool:
    """Mark the delivery published with its receipts (first one = the post's remote refs),
    then let the workflow publish the story once all its deliveries have landed.

    Returns False, changing nothing, when ``worker_id`` no longer holds the lease.
    """
    if not receipts:
        raise ValueError("complete() needs the receipt of at least one published record")
    post = lock_story(s, delivery_id)
    delivery = _leased(s, delivery_id, worker_id)
    if post is None or delivery is None:
        return False
    now = now or utcnow()
    first = receipts[0]
    delivery.status = DeliveryStatus.PUBLISHED
    delivery.remote_id = first.remote_id
    delivery.remote_uri = first.uri
    delivery.remote_cid = first.cid
    delivery.remote_url = first.url
    delivery.parts = [receipt_to_dict(r) for r in receipts]
    delivery.published_at = now
    delivery.last_error = None
    delivery.error_kind = None
    schedule = get_settings().metrics_schedule_minutes
    delivery.next_metrics_at = now + timedelta(minutes=schedule[0]) if schedule else None
    delivery.metrics_step = 0
    _clear_lease(delivery)
    s.flush()

    from amplify import workflow  # lazily: workflow imports the queue's neighbours

    workflow.refresh_post_state(s, post)
    return True


def _defer_account(
    s: Session, account_id: int, until: datetime, except_id: int, reason: str
) -> None:
    """Push the account's other pending deliveries to ``until`` (the limit is per account),
    each saying why it waits."""
    s.execute(
        update(Delivery)
        .where(
            Delivery.account_id == account_id,
            Delivery.id != except_id,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.next_attempt_at < until,
        )
        .values(next_attempt_at=until, last_error=reason, error_kind=RateLimited.kind)
        .execution_options(synchronize_session=False)
    )


def failure_of(error: ConnectorError) -> Failure:
    """The retry policy's name for a connector error (a rate limit before its base class)."""
    if isinstance(error, RateLimited):
        return Failure.RATE_LIMITED
    if isinstance(error, AuthError):
        return Failure.AUTH
    if isinstance(error, PermanentError):
        return Failure.PERMANENT
    return Failure.TRANSIENT


def fail(
    s: Session,
    delivery_id: int,
    worker_id: str,
    error: ConnectorError,
    *,
    now: datetime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> DeliveryStatus | None:
    """Handle a failed attempt by its kind; returns the delivery's new status, or None if
    ``worker_id`` lost the lease (then nothing changes).

    - RateLimited: back to pending at the platform's ``retry_at`` (the attempt does not
      count toward giving up); the account's other pending deliveries wait as well, with
      the same reason; the limits the answer reported correct the shared budgets.
    - TransientError (and any other kind): pending at the policy's backoff; ``failed``
      after ``policy.max_attempts`` attempts, with the reason.
    - PermanentError: ``failed`` with the platform's reason, for the lead.
    - AuthError: ``failed``, and the account is marked ``needs_attention`` with the reason.
    """
    delivery = _leased(s, delivery_id, worker_id)
    if delivery is None:
        return None
    now = now or utcnow()
    message = str(error) or type(error).__name__
    # A reconciling worker that fails goes back to reconciling later, never to a blind
    # re-send: the platform may hold the post already.
    reconciling = delivery.status == DeliveryStatus.RECONCILE
    retry_status = DeliveryStatus.RECONCILE if reconciling else DeliveryStatus.PENDING
    if reconciling:
        message = (
            f"could not check whether it was already published: {message}; "
            "look at the account before retrying"
        )
    delivery.error_kind = error.kind
    delivery.last_error = message
    _clear_lease(delivery)

    retry_at = error.retry_at if isinstance(error, RateLimited) else None
    decision = policy.decide(failure_of(error), delivery.attempts, now, retry_at=retry_at)
    delivery.attempts = decision.attempts
    if decision.verdict == Verdict.WAIT_FOR_RESET:
        assert decision.at is not None
        delivery.status = retry_status
        delivery.next_attempt_at = decision.at
        _defer_account(s, delivery.account_id, decision.at, delivery.id, message)
        account = s.get(Account, delivery.account_id)
        if isinstance(error, RateLimited) and error.limits and account is not None:
            # The platform's own count of what is left corrects the shared budgets.
            ratelimit.observe(s, account.platform, account.id, error.limits, now=now)
    elif decision.verdict == Verdict.NEEDS_ATTENTION:
        # Reconciliation resumes once an admin fixes the account (claims skip it till then).
        delivery.status = retry_status if reconciling else DeliveryStatus.FAILED
        account = s.get(Account, delivery.account_id)
        if account is not None:
            from amplify.accounts import mark_needs_attention  # audits and tells an admin

            mark_needs_attention(s, account, str(error))
    elif decision.verdict == Verdict.GIVE_UP:
        delivery.status = DeliveryStatus.FAILED
        if decision.exhausted:
            delivery.last_error = (
                f"gave up after {delivery.attempts} attempts; last error: {message}"
            )
    else:
        assert decision.at is not None
        delivery.status = retry_status
        delivery.next_attempt_at = decision.at
    s.flush()
    return DeliveryStatus(delivery.status)


def defer_claimed(s: Session, delivery_id: int, worker_id: str, until: datetime) -> bool:
    """Give a claimed delivery back as pending at ``until`` (its account is over budget),
    with the reason in words."""
    account_id = s.scalar(select(Delivery.account_id).where(Delivery.id == delivery_id))
    reason = f"waiting for the platform's rate window to reset at {until:%H:%M:%S} UTC"
    if account_id is not None:
        found = ratelimit.blocked_reasons(s).get(account_id)
        if found is not None:
            reason = found[1]
    result = s.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == DeliveryStatus.CLAIMED,
            Delivery.lease_owner == worker_id,
        )
        .values(
            status=DeliveryStatus.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=until,
            # The claim counted an attempt, but nothing was sent: waiting for a window must
            # not use up the retries a real failure is allowed.
            attempts=Delivery.attempts - 1,
            last_error=reason,
            error_kind=RateLimited.kind,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def requeue(s: Session, delivery_id: int, worker_id: str, *, now: datetime | None = None) -> bool:
    """Reconciliation found nothing (or only some thread parts) on the platform: back to
    ``pending`` now, so a normal publish sends what did not land."""
    delivery = _leased(s, delivery_id, worker_id)
    if delivery is None:
        return False
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now or utcnow()
    _clear_lease(delivery)
    s.flush()
    return True


# --------------------------------------------------------------------------- recovery


def expire_leases(s: Session, now: datetime | None = None) -> list[int]:
    """Claimed deliveries whose lease ran out (the worker died mid-publish?) go to
    ``reconcile``, never straight back to ``pending``. Also frees expired reconcile leases."""
    now = now or utcnow()
    ids = list(
        s.scalars(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.CLAIMED, Delivery.lease_expires_at < now)
            .values(
                status=DeliveryStatus.RECONCILE,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
            )
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    s.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.RECONCILE, Delivery.lease_expires_at < now)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    if ids:
        log.warning("leases expired on deliveries %s; they will be reconciled", ids)
    return sorted(int(i) for i in ids)


def release(s: Session, worker_id: str) -> int:
    """A stopping worker gives back what it claimed but has not started (call it after the
    in-flight deliveries finished): claimed → pending, reconcile leases freed. Count."""
    released = s.execute(
        update(Delivery)
        .where(Delivery.lease_owner == worker_id, Delivery.status == DeliveryStatus.CLAIMED)
        .values(
            status=DeliveryStatus.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            # The claim counted an attempt that never happened.
            attempts=case((Delivery.attempts > 0, Delivery.attempts - 1), else_=0),
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    freed = s.execute(
        update(Delivery)
        .where(Delivery.lease_owner == worker_id, Delivery.status == DeliveryStatus.RECONCILE)
        .values(lease_owner=None, lease_expires_at=None)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(released) + len(freed)


# --------------------------------------------------------------------------- reading


def queue_counts(s: Session) -> dict[str, int]:
    """Deliveries per status, every status present (0 when none)."""
    counts = {str(status): 0 for status in DeliveryStatus}
    for status, count in s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)):
        counts[str(status)] = int(count)
    return counts


def next_due(s: Session) -> datetime | None:
    """When the earliest pending delivery of a healthy account is due (may be past)."""
    due: datetime | None = s.scalar(
        select(func.min(Delivery.next_attempt_at))
        .join(Account, Account.id == Delivery.account_id)
        .where(
            and_(
                Delivery.status == DeliveryStatus.PENDING,
                Account.status == AccountStatus.OK,
            )
        )
    )
    return due
