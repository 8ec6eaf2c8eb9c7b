"""Small helpers that insert rows directly (no workflow rules), for tests of any module.

Each takes a session, adds and flushes, and returns the row; the caller commits.
Defaults make a valid row; pass keyword arguments to change any column.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from amplify.crypto import encrypt_json
from amplify.models import (
    Account,
    Campaign,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    PostMedia,
    PostState,
    Role,
    Spreader,
    User,
    utcnow,
)

_seq = itertools.count(1)


def _unique() -> str:
    """A short unique suffix (unique even if this module is imported under two names)."""
    return f"{next(_seq)}-{uuid.uuid4().hex[:6]}"


def make_user(s: Session, *, role: str = Role.LEAD, **fields: Any) -> User:
    n = _unique()
    values: dict[str, Any] = {
        "email": f"user{n}@example.org",
        "name": f"User {n}",
        "role": role,
        "password_hash": "not-a-real-hash",
    }
    values.update(fields)
    user = User(**values)
    s.add(user)
    s.flush()
    return user


def make_account(
    s: Session,
    *,
    platform: str = "memory",
    handle: str | None = None,
    credentials: dict[str, str] | None = None,
    **fields: Any,
) -> Account:
    n = _unique()
    account = Account(
        platform=platform,
        handle=handle or f"account{n}",
        credentials_enc=encrypt_json(credentials or {"token": f"token-{n}"}),
        **fields,
    )
    s.add(account)
    s.flush()
    return account


def make_campaign(s: Session, **fields: Any) -> Campaign:
    n = _unique()
    values: dict[str, Any] = {"name": f"Campaign {n}", "utm_campaign": f"campaign-{n}"}
    values.update(fields)
    campaign = Campaign(**values)
    s.add(campaign)
    s.flush()
    return campaign


def make_post(
    s: Session,
    *,
    author: User | None = None,
    body: str = "A story worth telling.",
    state: str = PostState.APPROVED,
    media: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> Post:
    author = author or make_user(s, role=Role.VOLUNTEER)
    post = Post(author_id=author.id, body=body, state=state, **fields)
    for position, item in enumerate(media or []):
        post.media.append(PostMedia(position=position, **item))
    s.add(post)
    s.flush()
    return post


def make_delivery(
    s: Session,
    *,
    post: Post | None = None,
    account: Account | None = None,
    kind: str = DeliveryKind.POST,
    status: str = DeliveryStatus.PENDING,
    next_attempt_at: datetime | None = None,
    **fields: Any,
) -> Delivery:
    post = post or make_post(s)
    account = account or make_account(s)
    delivery = Delivery(
        post_id=post.id,
        account_id=account.id,
        kind=kind,
        status=status,
        next_attempt_at=next_attempt_at or utcnow(),
        idempotency_key=fields.pop("idempotency_key", uuid.uuid4().hex),
        **fields,
    )
    s.add(delivery)
    s.flush()
    return delivery


def make_spreader(
    s: Session,
    delivery: Delivery,
    remote_user_id: str,
    handle: str,
    followers_count: int | None,
    **fields: Any,
) -> Spreader:
    """Someone the platform lists among those who reshared ``delivery`` (a repost unless
    ``kind="quote"``)."""
    spreader = Spreader(
        delivery_id=delivery.id,
        platform=delivery.account.platform,
        remote_user_id=remote_user_id,
        handle=handle,
        followers_count=followers_count,
        **fields,
    )
    s.add(spreader)
    s.flush()
    return spreader
