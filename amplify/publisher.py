"""The exactly-once publishing path for one claimed delivery.

``publish_one``: the claim is already committed (``queue.claim_due``) → the connector
publishes, each thread part committed as it lands (``queue.record_part``) → the receipt is
committed right after (``queue.complete``), or the error is filed (``queue.fail``).

Nothing here holds a database transaction while a platform is being called (on SQLite
that would hold the write lock for the whole network round trip).

If a part may have landed without being recorded (the database failed mid-thread, or
``complete`` could not be written), the delivery is left alone: its lease runs out, it
goes to ``reconcile``, and ``reconcile_one`` asks the platform what landed before
anything is sent again. Nothing is ever blindly re-sent.

Post-publish hooks: the worker calls ``amplification.on_published`` after each landed
delivery (it is not repeated here, so an amplification wave is started once); this module
emits ``story.published`` (once the story is out everywhere) and ``delivery.failed``
(amplify.events; notifications subscribe). ``account.needs_attention`` comes from accounts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from amplify import events, queue, ratelimit
from amplify.config import get_settings
from amplify.errors import ConfigError
from amplify.models import Account, Delivery, DeliveryKind, DeliveryStatus, PostState
from amplify.queue import Outcome
from amplify.retry import DEFAULT_POLICY, RetryPolicy
from connectors.base import (
    AuthError,
    Connector,
    ConnectorError,
    LimitReading,
    Media,
    OutgoingPost,
    PermanentError,
    RateLimited,
    Receipt,
    TransientError,
    not_before_for,
)

log = logging.getLogger(__name__)


ConnectorFactory = Callable[[Account], Connector]


class LeaseLost(Exception):
    """Raised from ``on_part`` to stop a thread when this worker no longer holds the lease."""


# --------------------------------------------------------------------------- building


def _render(delivery: Delivery, limit: int | None) -> list[str]:
    from amplify import textrules

    post = delivery.post
    platform = delivery.account.platform
    override = (post.overrides or {}).get(platform)
    return textrules.render(
        platform,
        post.body,
        link=post.link,
        override=override if isinstance(override, str) else None,
        limit=limit,
        **textrules.campaign_inputs(post.campaign),
    )


def outgoing_for(delivery: Delivery, *, limit: int | None = None) -> OutgoingPost:
    """What to send for ``delivery``: the platform's text (override, link with UTM, campaign
    hashtags, split into a thread if long), media with alt text, parts already landed.
    ``limit``: the account's own text limit where the platform varies (Mastodon instances)."""
    from amplify import textrules

    post = delivery.post
    platform = delivery.account.platform
    campaign = textrules.campaign_inputs(post.campaign)
    if delivery.texts:
        parts = [str(t) for t in delivery.texts]
    else:
        parts = _render(delivery, limit)
        delivery.texts = parts  # frozen: the caller commits it before calling the platform
    link = post.link.strip() if post.link and post.link.strip() else None
    if link and campaign["utm"]:
        link = textrules.add_utm(link, platform, campaign["campaign_slug"])
    data_dir = Path(get_settings().data_dir)
    media = tuple(
        Media(path=str(data_dir / m.path), alt_text=m.alt_text, mime_type=m.mime_type)
        for m in post.media
    )
    return OutgoingPost(
        parts=tuple(parts),
        idempotency_key=delivery.idempotency_key,
        media=media,
        link=link,
        landed=tuple(queue.landed_receipts(delivery)),
        not_before=not_before_for(delivery.first_claimed_at),
    )


def _text_limit(connector: Connector) -> int | None:
    """A connector may know its account's own limit (a Mastodon instance's); None: default."""
    known = getattr(connector, "text_limit", None)
    return known() if callable(known) else None


def _limits_seen(connector: Connector) -> list[LimitReading]:
    """The limits a connector saw on its last write (X reports its daily caps), if any."""
    seen = getattr(connector, "limits_seen", None)
    return [r for r in seen if isinstance(r, LimitReading)] if isinstance(seen, list) else []


def _default_connector_for(account: Account) -> Connector:
    from amplify.accounts import connector_for

    return connector_for(account)


def _source_receipt(s: Session, delivery: Delivery) -> Receipt:
    source = s.get(Delivery, delivery.source_id) if delivery.source_id else None
    if source is None or source.status != DeliveryStatus.PUBLISHED or not source.remote_id:
        raise PermanentError(
            "the post to reshare has not been published (or was removed); "
            "publish the original first, then retry this repost"
        )
    return Receipt(
        remote_id=source.remote_id,
        uri=source.remote_uri,
        cid=source.remote_cid,
        url=source.remote_url,
    )


def _unexpected(exc: BaseException, doing: str) -> TransientError:
    """An error no connector should raise, reduced to its type name (messages may hold
    secrets: a URL with a token, a request body)."""
    log.error("unexpected %s while %s; treated as transient", type(exc).__name__, doing)
    return TransientError(
        f"unexpected {type(exc).__name__} while {doing}; it will be retried "
        "(if this repeats, check the worker log)"
    )


@contextmanager
def _preparing(doing: str) -> Iterator[None]:
    """Everything that can go wrong before the platform call, as a ConnectorError to file."""
    try:
        yield
    except ConnectorError:
        raise
    except ConfigError as exc:
        # The stored credentials cannot be used (e.g. the secret key changed): the message
        # is written for people and holds no secret; the account needs an admin.
        raise AuthError(str(exc)) from None
    except Exception as exc:
        raise _unexpected(exc, doing) from None


# --------------------------------------------------------------------------- filing results


def _file_failure(
    factory: sessionmaker[Session],
    delivery_id: int,
    worker_id: str,
    error: ConnectorError,
    policy: RetryPolicy,
) -> Outcome:
    with factory() as s:
        status = queue.fail(s, delivery_id, worker_id, error, policy=policy)
        if status is None:
            s.rollback()
            return Outcome.LEASE_LOST
        delivery = s.get(Delivery, delivery_id)
        # (An auth error's admin notice comes from accounts.mark_needs_attention.)
        if (
            status == DeliveryStatus.FAILED
            and delivery is not None
            and not isinstance(error, AuthError)
        ):
            events.emit(
                s,
                "delivery.failed",
                delivery_id=delivery.id,
                post_id=delivery.post_id,
                reason=delivery.last_error,
            )
        s.commit()
    # DEBUG: the worker writes the one INFO line per publish (with the account).
    log.debug("delivery %s: %s (%s)", delivery_id, status, error.kind)
    if isinstance(error, AuthError):
        return Outcome.NEEDS_ATTENTION
    if status == DeliveryStatus.FAILED:
        return Outcome.FAILED
    if status == DeliveryStatus.RECONCILE:
        return Outcome.RECONCILE
    if isinstance(error, RateLimited):
        return Outcome.RATE_LIMITED
    return Outcome.RETRY


def _file_success(
    factory: sessionmaker[Session],
    delivery_id: int,
    worker_id: str,
    receipts: list[Receipt],
    limits: Sequence[LimitReading] = (),
) -> Outcome:
    """Commit the receipts; on a database error leave the delivery for reconciliation.
    ``limits``: what the platform reported about its limits with the answer (X's daily
    caps), so the shared budgets follow the platform's own count."""
    try:
        with factory() as s:
            # Read the story's state under its lock, so only the delivery that really
            # publishes it sends the "published" notice.
            post = queue.lock_story(s, delivery_id)
            was = post.state if post is not None else None
            if post is None or not queue.complete(s, delivery_id, worker_id, receipts):
                s.rollback()
                return Outcome.LEASE_LOST
            if was != PostState.PUBLISHED and post.state == PostState.PUBLISHED:
                events.emit(s, "story.published", post_id=post.id)
            delivery = s.get(Delivery, delivery_id) if limits else None
            if delivery is not None:
                ratelimit.observe(s, delivery.account.platform, delivery.account_id, limits)
            s.commit()
    except Exception as exc:
        log.error(
            "delivery %s landed but its receipt could not be saved (%s); "
            "it will be reconciled when its lease runs out",
            delivery_id,
            type(exc).__name__,
        )
        return Outcome.UNCERTAIN
    log.debug("delivery %s published", delivery_id)
    return Outcome.PUBLISHED


# --------------------------------------------------------------------------- publishing


class _LeaseKeeper:
    """Extends the lease every third of its length while the platform call runs, so only
    a worker that died or hung ever loses a lease (and only then is a delivery reconciled)."""

    def __init__(self, factory: sessionmaker[Session], delivery_id: int, worker_id: str) -> None:
        self.factory = factory
        self.delivery_id = delivery_id
        self.worker_id = worker_id
        self.every = max(get_settings().lease_seconds / 3, 0.1)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{delivery_id}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with self.factory() as s:
                    kept = queue.extend_lease(s, self.delivery_id, self.worker_id)
                    s.commit()
            except Exception as exc:
                log.warning(
                    "could not extend the lease on delivery %s (%s); will try again",
                    self.delivery_id,
                    type(exc).__name__,
                )
                continue
            if not kept:
                self.lost = True
                return


@dataclass
class _Progress:
    lease_lost: bool = False
    unrecorded: bool = False  # a part landed and could not be written down


def publish_one(
    factory: sessionmaker[Session],
    delivery_id: int,
    worker_id: str,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    connector_for: ConnectorFactory | None = None,
) -> Outcome:
    """Publish one delivery this worker has claimed; the outcome (an ``Outcome`` value)."""
    build = connector_for or _default_connector_for
    with factory() as s:
        delivery = s.get(Delivery, delivery_id)
        if (
            delivery is None
            or delivery.status != DeliveryStatus.CLAIMED
            or delivery.lease_owner != worker_id
        ):
            return Outcome.NOT_CLAIMED
        is_repost = delivery.kind == DeliveryKind.REPOST
        key = delivery.idempotency_key
        target: Receipt | None = None
        outgoing: OutgoingPost | None = None
        try:
            with _preparing("preparing the post"):
                connector = build(delivery.account)
                if is_repost:
                    target = _source_receipt(s, delivery)
                else:
                    outgoing = outgoing_for(delivery, limit=_text_limit(connector))
        except ConnectorError as exc:
            s.rollback()
            return _file_failure(factory, delivery_id, worker_id, exc, policy)
        s.commit()  # keeps the frozen texts; ends the transaction before calling the platform

    progress = _Progress()
    lock = threading.Lock()

    def on_part(index: int, receipt: Receipt) -> None:
        with lock:
            try:
                with factory() as ps:
                    kept = queue.record_part(ps, delivery_id, worker_id, index, receipt)
                    ps.commit()
            except Exception:
                progress.unrecorded = True
                raise
            if not kept:
                progress.lease_lost = True
                raise LeaseLost(f"delivery {delivery_id} is no longer leased to {worker_id}")

    try:
        with _LeaseKeeper(factory, delivery_id, worker_id):
            if target is not None:
                receipts = [connector.repost(target, key)]
            else:
                assert outgoing is not None
                receipts = connector.publish(outgoing, on_part=on_part)
    except LeaseLost:
        return Outcome.LEASE_LOST
    except Exception as exc:
        if progress.lease_lost:
            return Outcome.LEASE_LOST
        if progress.unrecorded:
            log.error(
                "delivery %s: a thread part landed but could not be recorded; "
                "leaving it for reconciliation",
                delivery_id,
            )
            return Outcome.UNCERTAIN
        error = exc if isinstance(exc, ConnectorError) else _unexpected(exc, "publishing")
        return _file_failure(factory, delivery_id, worker_id, error, policy)
    if not receipts:
        empty = TransientError("the platform accepted the post but returned no record of it")
        return _file_failure(factory, delivery_id, worker_id, empty, policy)
    return _file_success(factory, delivery_id, worker_id, receipts, _limits_seen(connector))


def reconcile_one(
    factory: sessionmaker[Session],
    delivery_id: int,
    worker_id: str,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    connector_for: ConnectorFactory | None = None,
) -> Outcome:
    """A delivery whose lease expired mid-publish: ask the platform what landed.

    Everything landed → published (no second send). Some thread parts landed → recorded,
    back to pending to continue after them. Nothing landed → back to pending (safe: the
    platform has nothing; on Bluesky the rkey from the idempotency key makes even a race
    harmless). A repost goes back to pending: resharing is idempotent on every platform.
    """
    build = connector_for or _default_connector_for
    with factory() as s:
        delivery = s.get(Delivery, delivery_id)
        if (
            delivery is None
            or delivery.status != DeliveryStatus.RECONCILE
            or delivery.lease_owner != worker_id
        ):
            return Outcome.NOT_CLAIMED
        if delivery.kind == DeliveryKind.REPOST:
            queue.requeue(s, delivery_id, worker_id)
            s.commit()
            return Outcome.REQUEUED
        try:
            with _preparing("preparing to reconcile"):
                connector = build(delivery.account)
                outgoing = outgoing_for(delivery, limit=_text_limit(connector))
        except ConnectorError as exc:
            s.rollback()
            return _file_failure(factory, delivery_id, worker_id, exc, policy)
        s.commit()

    try:
        with _LeaseKeeper(factory, delivery_id, worker_id):
            found = connector.find_published(outgoing) or []
    except Exception as exc:
        error = exc if isinstance(exc, ConnectorError) else _unexpected(exc, "reconciling")
        return _file_failure(factory, delivery_id, worker_id, error, policy)

    recorded = list(outgoing.landed)
    landed = found if len(found) >= len(recorded) else recorded
    if landed and len(landed) >= len(outgoing.parts):
        log.info("delivery %s had landed before its lease expired; recording it", delivery_id)
        return _file_success(factory, delivery_id, worker_id, list(landed))
    with factory() as s:
        for index, receipt in enumerate(landed):
            if not queue.record_part(s, delivery_id, worker_id, index, receipt):
                s.rollback()
                return Outcome.LEASE_LOST
        if not queue.requeue(s, delivery_id, worker_id):
            s.rollback()
            return Outcome.LEASE_LOST
        s.commit()
    if landed:
        log.info(
            "delivery %s: %d of %d thread parts had landed; the rest will follow",
            delivery_id,
            len(landed),
            len(outgoing.parts),
        )
        return Outcome.RESUMED
    log.info("delivery %s: nothing had landed; back in the queue", delivery_id)
    return Outcome.REQUEUED
