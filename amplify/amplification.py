"""Amplification waves: advocates reshare a story once its original lands.

When the original (``kind="post"``) delivery of a post with ``amplify=True`` is published,
every advocate account on the same platform — owned by a person (``owner_id`` set),
opted in, status ok — gets one repost delivery, due at a random moment within
``settings.amplify_window_minutes`` after the original landed, so the reshares arrive as a
natural wave rather than a burst. Platforms whose rules allow automatic reposts get a
repost delivery; on X (automation rules forbid coordinated automatic reposts) the
advocate gets a share link instead, by notification and on the dashboard.
"""

from __future__ import annotations

import hashlib
import logging
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from amplify import events, queue
from amplify.config import get_settings
from amplify.models import (
    Account,
    AccountStatus,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    User,
    utcnow,
)
from connectors import registry
from connectors.base import Receipt, Reshare

log = logging.getLogger(__name__)

# How long after the original lands a share link stays on an advocate's dashboard.
SHARE_LINK_DAYS = 3


def reshare_on(platform: str) -> str:
    """How advocates reshare on ``platform`` (a ``Reshare`` value), as its connector says;
    not at all on a platform nobody describes (a test's connector)."""
    try:
        return registry.info(platform).reshare
    except ValueError:
        return Reshare.NONE


def _platforms_resharing(how: str) -> tuple[str, ...]:
    return tuple(p for p in registry.platforms() if reshare_on(p) == how)


def share_link(platform: str, remote_id: str) -> str:
    shares = reshare_on(platform) == Reshare.SHARE_LINK
    build = registry.info(platform).share_link if shares else None
    if build is None:
        raise ValueError(f"{platform} has no share links; its advocates repost automatically")
    return build(Receipt(remote_id=remote_id))


def repost_key(source_id: int, account_id: int) -> str:
    """Stable idempotency key of the repost of delivery ``source_id`` by ``account_id``."""
    return hashlib.sha256(f"amplify-repost:{source_id}:{account_id}".encode()).hexdigest()[:40]


def advocate_accounts(s: Session, platform: str) -> list[Account]:
    return list(
        s.scalars(
            select(Account)
            .where(
                Account.platform == platform,
                Account.owner_id.is_not(None),
                Account.amplify_opt_in.is_(True),
                Account.status == AccountStatus.OK,
            )
            .order_by(Account.id)
        )
    )


def on_published(
    s: Session,
    delivery: Delivery,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> list[Delivery]:
    """Start the amplification wave of a landed original. Idempotent: a repost delivery
    exists at most once per (post, account). Returns the repost deliveries it created.
    The caller commits."""
    if delivery.kind != DeliveryKind.POST or delivery.status != DeliveryStatus.PUBLISHED:
        return []
    post = delivery.post
    if post is None or not post.amplify:
        return []
    account = delivery.account
    platform = account.platform
    rng = rng or random.Random()
    landed = delivery.published_at or now or utcnow()
    low, high = get_settings().amplify_window_minutes
    low, high = min(low, high), max(low, high)

    publishing_ids = set(
        s.scalars(
            select(Delivery.account_id).where(
                Delivery.post_id == post.id, Delivery.kind == DeliveryKind.POST
            )
        )
    )
    advocates = [a for a in advocate_accounts(s, platform) if a.id not in publishing_ids]

    how = reshare_on(platform)
    if how == Reshare.SHARE_LINK:
        _notify_share_links(s, post, delivery, advocates)
        return []
    if how != Reshare.AUTOMATIC:
        return []

    existing = set(
        s.scalars(
            select(Delivery.account_id).where(
                Delivery.post_id == post.id, Delivery.kind == DeliveryKind.REPOST
            )
        )
    )
    created: list[Delivery] = []
    for adv in advocates:
        if adv.id in existing:
            continue
        due = landed + timedelta(minutes=rng.uniform(low, high))
        repost = queue.new_delivery(
            post_id=post.id,
            account_id=adv.id,
            kind=DeliveryKind.REPOST,
            source_id=delivery.id,
            next_attempt_at=due,
            idempotency_key=repost_key(delivery.id, adv.id),
        )
        try:
            with s.begin_nested():
                s.add(repost)
                s.flush()
        except IntegrityError:
            # Another worker created it first: exactly one wave per original.
            continue
        created.append(repost)
    if created:
        _notify_auto_reshare(s, post, delivery, created, (low, high))
        log.info(
            "amplification wave for post %s: %d advocate reposts on %s across %d–%d minutes",
            post.id,
            len(created),
            platform,
            low,
            high,
        )
    return created


def _notify_share_links(
    s: Session, post: Post, delivery: Delivery, advocates: list[Account]
) -> None:
    if not advocates or not delivery.remote_id:
        return
    link = share_link(delivery.account.platform, delivery.remote_id)
    owners = sorted({a.owner_id for a in advocates if a.owner_id is not None})
    events.emit(s, "story.ready_to_amplify", post_id=post.id, share_links=[link], user_ids=owners)


def _notify_auto_reshare(
    s: Session, post: Post, delivery: Delivery, created: list[Delivery], window: tuple[int, int]
) -> None:
    """Advocates whose accounts reshare automatically still hear about it (and may add
    their own words to the original)."""
    ids = {d.account_id for d in created}
    owners = sorted(
        {a.owner_id for a in s.scalars(select(Account).where(Account.id.in_(ids))) if a.owner_id}
    )
    events.emit(
        s,
        "story.ready_to_amplify",
        post_id=post.id,
        share_links=[],
        user_ids=owners,
        auto_reshare=window,
        original_url=delivery.remote_url,
    )


def pending_share_links(
    s: Session, user: User, *, now: datetime | None = None, days: int = SHARE_LINK_DAYS
) -> list[dict[str, Any]]:
    """Share links for ``user``'s opted-in accounts on share-link platforms (X): originals
    of amplify-posts that landed in the last ``days`` days, newest first."""
    now = now or utcnow()
    mine = [
        a
        for a in s.scalars(
            select(Account).where(
                Account.owner_id == user.id,
                Account.amplify_opt_in.is_(True),
                Account.platform.in_(_platforms_resharing(Reshare.SHARE_LINK)),
            )
        )
    ]
    if not mine:
        return []
    platforms = {a.platform for a in mine}
    rows = s.execute(
        select(Delivery, Account, Post)
        .join(Account, Delivery.account_id == Account.id)
        .join(Post, Delivery.post_id == Post.id)
        .where(
            Delivery.kind == DeliveryKind.POST,
            Delivery.status == DeliveryStatus.PUBLISHED,
            Delivery.published_at >= now - timedelta(days=days),
            Delivery.remote_id.is_not(None),
            Post.amplify.is_(True),
            Account.platform.in_(platforms),
            Account.owner_id.is_distinct_from(user.id),
        )
        .order_by(Delivery.published_at.desc())
    ).all()
    out: list[dict[str, Any]] = []
    for d, acct, post in rows:
        assert d.remote_id is not None
        out.append(
            {
                "delivery_id": d.id,
                "post_id": post.id,
                "platform": acct.platform,
                "from_handle": acct.handle,
                "excerpt": " ".join(post.body.split())[:120],
                "url": d.remote_url,
                "share_url": share_link(acct.platform, d.remote_id),
                "published_at": d.published_at,
                "your_accounts": [a.handle for a in mine if a.platform == acct.platform],
            }
        )
    return out
