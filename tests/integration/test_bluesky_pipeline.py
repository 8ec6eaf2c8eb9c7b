"""A story through Amplify's real publishing path (queue + publisher on PostgreSQL) to the
local atproto network: published once, a crashed worker reconciled without a duplicate,
and the Bluesky session stored encrypted on the account."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from atproto_net.network import AtprotoNetwork
from bluesky_helpers import BlueskyAccounts, ConnectorFactory
from factories import make_account, make_delivery, make_post
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from amplify import crypto, metrics, queue
from amplify.db import session_factory
from amplify.models import (
    Account,
    Delivery,
    DeliveryStatus,
    MetricSnapshot,
    Spreader,
    utcnow,
)
from amplify.publisher import publish_one, reconcile_one
from amplify.queue import Outcome
from connectors.base import ConnectorContext, OutgoingPost, Receipt
from connectors.bluesky import POST, BlueskyConnector, record_key

pytestmark = [pytest.mark.atproto, pytest.mark.postgres]


def bluesky_delivery(
    factory: sessionmaker[Session], network: AtprotoNetwork, accounts: BlueskyAccounts, body: str
) -> int:
    with factory() as s:
        account = make_account(
            s,
            platform="bluesky",
            handle=accounts.team.handle,
            service_url=network.pds_url,
            credentials={"app_password": accounts.team.app_password},
        )
        delivery = make_delivery(s, post=make_post(s, body=body), account=account)
        s.commit()
        return delivery.id


def test_it_publishes_a_story_once_and_keeps_the_session(
    pg_url: str, atproto_network: AtprotoNetwork, bsky_accounts: BlueskyAccounts
) -> None:
    factory = session_factory(pg_url)
    body = f"Our clinic's story, published by the worker {uuid.uuid4().hex[:6]}"
    delivery_id = bluesky_delivery(factory, atproto_network, bsky_accounts, body)
    before = len(atproto_network.list_records(bsky_accounts.team.did, POST))

    assert queue.claim_due(factory, "w1", limit=5) == [delivery_id]
    assert publish_one(factory, delivery_id, "w1") == Outcome.PUBLISHED

    with factory() as s:
        delivery = s.get(Delivery, delivery_id)
        assert delivery is not None and delivery.status == DeliveryStatus.PUBLISHED
        expected = f"at://{bsky_accounts.team.did}/{POST}/{record_key(delivery.idempotency_key, 0)}"
        assert delivery.remote_uri == expected
        account = s.get(Account, delivery.account_id)
        assert account is not None and account.session_enc
        session = crypto.decrypt(account.session_enc)
        assert session.startswith(f"{bsky_accounts.team.handle}:::{bsky_accounts.team.did}:::")
    records = atproto_network.list_records(bsky_accounts.team.did, POST)
    assert len(records) == before + 1
    assert any(r.uri == expected and r.value.text == body for r in records)


def test_it_reconciles_a_worker_that_died_after_publishing_without_a_second_post(
    pg_url: str, atproto_network: AtprotoNetwork, bsky_accounts: BlueskyAccounts
) -> None:
    factory = session_factory(pg_url)
    delivery_id = bluesky_delivery(
        factory, atproto_network, bsky_accounts, f"Crash story {uuid.uuid4().hex[:6]}"
    )
    before = len(atproto_network.list_records(bsky_accounts.team.did, POST))
    assert queue.claim_due(factory, "dying", limit=5) == [delivery_id]

    # The dying worker's post lands, then the worker vanishes before recording it.
    with factory() as s:
        delivery = s.get(Delivery, delivery_id)
        assert delivery is not None
        key, text = delivery.idempotency_key, delivery.post.body
    BlueskyConnector(
        ConnectorContext(
            handle=bsky_accounts.team.handle,
            service_url=atproto_network.pds_url,
            credentials={"app_password": bsky_accounts.team.app_password},
        )
    ).publish(OutgoingPost(parts=(text,), idempotency_key=key))
    assert len(atproto_network.list_records(bsky_accounts.team.did, POST)) == before + 1

    later = utcnow() + timedelta(hours=1)
    with factory() as s:
        assert queue.expire_leases(s, now=later) == [delivery_id]
        s.commit()
    assert queue.claim_reconcile(factory, "w2", limit=5, now=later) == [delivery_id]
    assert reconcile_one(factory, delivery_id, "w2") == Outcome.PUBLISHED

    with factory() as s:
        delivery = s.get(Delivery, delivery_id)
        assert delivery is not None and delivery.status == DeliveryStatus.PUBLISHED
        assert delivery.remote_uri and delivery.remote_uri.endswith(record_key(key, 0))
    assert len(atproto_network.list_records(bsky_accounts.team.did, POST)) == before + 1


def test_it_sweeps_counts_and_spreaders_from_the_appview(
    pg_url: str,
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    factory = session_factory(pg_url)
    delivery_id = bluesky_delivery(
        factory, atproto_network, bsky_accounts, f"Sweep story {uuid.uuid4().hex[:6]}"
    )
    assert queue.claim_due(factory, "w1", limit=5) == [delivery_id]
    assert publish_one(factory, delivery_id, "w1") == Outcome.PUBLISHED
    with factory() as s:
        delivery = s.get(Delivery, delivery_id)
        assert delivery is not None
        receipt = Receipt(
            remote_id=delivery.remote_id or "", uri=delivery.remote_uri, cid=delivery.remote_cid
        )
    bsky_connector(bsky_accounts.bob).repost(receipt, uuid.uuid4().hex)
    carol = atproto_network.client(bsky_accounts.carol)
    carol.like(receipt.uri or "", receipt.cid or "")
    carol.follow(bsky_accounts.bob.did)
    atproto_network.process_all()

    result = metrics.sweep(factory, force_all=True)
    assert not result.errors

    with factory() as s:
        [snapshot] = s.scalars(
            select(MetricSnapshot).where(MetricSnapshot.delivery_id == delivery_id)
        )
        assert (snapshot.likes, snapshot.reposts, snapshot.replies, snapshot.quotes) == (1, 1, 0, 0)
        spreaders = list(s.scalars(select(Spreader).where(Spreader.delivery_id == delivery_id)))
        assert [(p.handle, p.platform) for p in spreaders] == [
            (bsky_accounts.bob.handle, "bluesky")
        ]
        assert spreaders[0].followers_count == 1  # carol follows bob
