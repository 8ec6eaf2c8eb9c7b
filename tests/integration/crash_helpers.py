"""The worker's crash path for the wire-level connector tests: one worker claims a delivery
and dies (before sending, or after the platform accepted), and another reconciles it later.

Imported inside the tests, like the rest of amplify there: the connector modules stand alone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from amplify import publisher, queue
from amplify.db import session_factory
from amplify.models import Delivery, DeliveryStatus, utcnow
from connectors.base import TransientError
from tests.factories import make_account, make_delivery


def claimed_delivery(
    sqlite_url: str, text: str, **account: Any
) -> tuple[sessionmaker[Session], int]:
    """A delivery of ``text`` due now from a new account, claimed by worker w1."""
    factory = session_factory(sqlite_url)
    with factory() as s:
        acct = make_account(s, **account)
        did = make_delivery(s, account=acct, texts=[text], next_attempt_at=utcnow()).id
        s.commit()
    assert queue.claim_due(factory, "w1", limit=1) == [did]
    return factory, did


def send_and_lose_the_answer(factory: sessionmaker[Session], did: int) -> None:
    """w1 sends the delivery and dies before it records a receipt (the send fails for it)."""
    with factory() as s:
        delivery = s.get(Delivery, did)
        assert delivery is not None
        with pytest.raises(TransientError):
            publisher._default_connector_for(delivery.account).publish(
                publisher.outgoing_for(delivery)
            )


def reconcile_later(factory: sessionmaker[Session], did: int, *, hours: int) -> str:
    """``hours`` later w1's lease has expired; w2 reconciles: what it concluded."""
    later = utcnow() + timedelta(hours=hours)
    with factory() as s:
        assert queue.expire_leases(s, now=later) == [did]
        s.commit()
    assert queue.claim_reconcile(factory, "w2", limit=1, now=later) == [did]
    return publisher.reconcile_one(factory, did, "w2")


def published_remote_id(factory: sessionmaker[Session], did: int) -> str | None:
    """The remote id recorded for the delivery, which must be published."""
    with factory() as s:
        delivery = s.get(Delivery, did)
        assert delivery is not None and delivery.status == DeliveryStatus.PUBLISHED
        return delivery.remote_id
