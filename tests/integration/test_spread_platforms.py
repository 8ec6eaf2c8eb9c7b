"""Complete spread numbers from the Mastodon and X test servers: every page of resharers up
to the per-sweep maximum, and follower counts re-read in batches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from factories import make_account, make_delivery, make_post
from sqlalchemy import select

from amplify import metrics
from amplify.db import session_factory
from amplify.models import Delivery, Spreader, utcnow
from connectors.base import ConnectorContext, Identity, OutgoingPost, Receipt
from connectors.mastodon import MastodonConnector, clear_instance_cache
from connectors.x import XConnector
from tests.fakes.mastodon_server import FakeMastodonServer
from tests.fakes.x_server import XFakeServer

X_CREDS = {
    "api_key": "consumer-key",
    "api_secret": "consumer-secret",
    "access_token": "1001-access-token",
    "access_token_secret": "access-token-secret",
}


@pytest.fixture
def mastodon() -> Iterator[FakeMastodonServer]:
    clear_instance_cache()
    with FakeMastodonServer() as srv:
        yield srv
    clear_instance_cache()


@pytest.fixture
def x_server() -> Iterator[XFakeServer]:
    with XFakeServer() as fake:
        fake.add_user(
            "amplify_org",
            followers=2500,
            token=X_CREDS["access_token"],
            token_secret=X_CREDS["access_token_secret"],
            consumer_secret=X_CREDS["api_secret"],
        )
        yield fake


def mastodon_connector(srv: FakeMastodonServer) -> MastodonConnector:
    ctx = ConnectorContext(
        handle="amplify", service_url=srv.url, credentials={"access_token": "test-token"}
    )
    return MastodonConnector(ctx, timeout=5.0)


def x_connector(srv: XFakeServer) -> XConnector:
    ctx = ConnectorContext(handle="amplify_org", service_url=srv.url, credentials=X_CREDS)
    return XConnector(ctx, timeout=5.0)


def reblogged(srv: FakeMastodonServer, count: int) -> Receipt:
    """A status of the team account reblogged by ``count`` accounts with 1..count followers."""
    [receipt] = mastodon_connector(srv).publish(
        OutgoingPost(parts=("Our ER story",), idempotency_key="k")
    )
    for n in range(1, count + 1):
        srv.add_account(f"fan{n}", f"token-{n}", followers=n)
        srv.reblog_as(f"fan{n}", receipt.remote_id)
    return receipt


def test_it_lists_all_250_reblogs_by_following_mastodons_link_pages(
    mastodon: FakeMastodonServer,
) -> None:
    receipt = reblogged(mastodon, 250)

    spreaders = mastodon_connector(mastodon).fetch_spreaders(receipt)

    assert len({s.remote_user_id for s in spreaders}) == 250
    assert sum(s.followers_count or 0 for s in spreaders) == sum(range(1, 251))
    # 40 on the first page, then 80 a page: 40 + 80 + 80 + 50.
    assert mastodon.count("GET", f"/api/v1/statuses/{receipt.remote_id}/reblogged_by") == 4


def test_it_stops_at_the_maximum_it_was_given(mastodon: FakeMastodonServer) -> None:
    receipt = reblogged(mastodon, 130)
    assert len(mastodon_connector(mastodon).fetch_spreaders(receipt, limit=100)) == 100


def test_a_sweep_turns_250_reblogs_into_250_spreaders_and_the_full_reach(
    mastodon: FakeMastodonServer, sqlite_url: str
) -> None:
    status_id = reblogged(mastodon, 250).remote_id
    factory = session_factory(sqlite_url)
    with factory() as s:
        account = make_account(
            s,
            platform="mastodon",
            handle="amplify",
            service_url=mastodon.url,
            credentials={"access_token": "test-token"},
            remote_user_id=mastodon.account("amplify").id,
            followers_count=100,
        )
        delivery = make_delivery(
            s,
            post=make_post(s),
            account=account,
            status="published",
            remote_id=status_id,
            published_at=utcnow(),
        )
        s.commit()
        delivery_id, post_id = delivery.id, delivery.post_id

    result = metrics.sweep(factory, force_all=True)

    assert not result.errors
    assert result.spreaders == 250
    with factory() as s:
        assert len(s.scalars(select(Spreader)).all()) == 250
        swept = s.get(Delivery, delivery_id)
        assert swept is not None and swept.spreaders_unseen == 0
        reach = metrics.potential_reach(s, post_id)
    # The publisher's count is the one read now (120 on the server), not the stored 100.
    assert (reach.publishers_followers, reach.resharers_followers) == (120, sum(range(1, 251)))
    assert not reach.partial


def test_it_reads_mastodon_follower_counts_by_id_and_by_handle(
    mastodon: FakeMastodonServer,
) -> None:
    ann = mastodon.add_account("ann", "token-ann", followers=19)
    mastodon.add_account("bo", "token-bo", followers=7)

    profiles = mastodon_connector(mastodon).fetch_profiles(
        [Identity(ann.id, "ann"), Identity("", "@bo"), Identity("", "nobody")]
    )

    assert {(p.handle, p.followers_count) for p in profiles} == {("ann", 19), ("bo", 7)}
    assert mastodon.count("GET", "/api/v1/accounts") == 3  # one batch, two look-ups


def test_it_pages_x_retweeters_to_the_maximum(x_server: XFakeServer) -> None:
    connector = x_connector(x_server)
    [receipt] = connector.publish(OutgoingPost(parts=("Retweet me",), idempotency_key="k"))
    for n in range(1, 251):
        fan = x_server.add_user(f"fan{n}", followers=n)
        x_server.retweet(receipt.remote_id, fan.id)

    assert len({s.remote_user_id for s in connector.fetch_spreaders(receipt)}) == 250
    assert x_server.calls["GET /2/tweets/:id/retweeted_by"] == 3  # 100 a page
    assert len(connector.fetch_spreaders(receipt, limit=150)) == 150


def test_it_reads_x_follower_counts_by_id_and_by_username(x_server: XFakeServer) -> None:
    ann = x_server.add_user("ann", followers=19)
    x_server.add_user("bo", followers=7)

    profiles = x_connector(x_server).fetch_profiles(
        [Identity(ann.id, "ann"), Identity("", "@Bo"), Identity("", "nobody")]
    )

    assert {(p.handle, p.followers_count) for p in profiles} == {("ann", 19), ("bo", 7)}


def test_it_pages_x_quoters_after_the_retweeters_within_the_same_maximum(
    x_server: XFakeServer,
) -> None:
    connector = x_connector(x_server)
    [receipt] = connector.publish(OutgoingPost(parts=("Quote me",), idempotency_key="k"))
    for n in range(1, 131):
        x_server.add_user(f"quoter{n}", followers=n)
        x_server.quote(f"quoter{n}", receipt.remote_id)
    fan = x_server.add_user("fan", followers=5)
    x_server.retweet(receipt.remote_id, fan.id)

    spreaders = connector.fetch_spreaders(receipt)

    kinds = [s.kind for s in spreaders]
    assert (kinds.count("repost"), kinds.count("quote")) == (1, 130)
    assert x_server.calls["GET /2/tweets/:id/quote_tweets"] == 2  # 100 a page
    assert len(connector.fetch_spreaders(receipt, limit=50)) == 50
