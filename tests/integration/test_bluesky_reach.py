"""Potential reach against the real local atproto network: follower counts that change
between sweeps, an advocate account connected but never tested, a reshare of a reshare."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from atproto import models
from atproto_net.network import AtprotoNetwork, TestAccount
from bluesky_helpers import ConnectorFactory
from factories import make_account, make_delivery, make_post, make_user
from sqlalchemy.orm import Session, sessionmaker

from amplify import analytics, metrics
from amplify.db import session_factory
from amplify.models import Account, DeliveryKind, DeliveryStatus, utcnow
from connectors import bluesky
from connectors.base import OutgoingPost

pytestmark = [pytest.mark.atproto]


def follow(network: AtprotoNetwork, who: TestAccount, *targets: TestAccount) -> list[str]:
    client = network.client(who)
    return [client.follow(t.did).uri for t in targets]


def our_account(
    s: Session, network: AtprotoNetwork, acct: TestAccount, *, tested: bool, **fields: object
) -> Account:
    return make_account(
        s,
        platform="bluesky",
        handle=acct.handle,
        service_url=network.pds_url,
        credentials={"app_password": acct.app_password},
        remote_user_id=acct.did if tested else None,
        **fields,
    )


def reach_of(factory: sessionmaker[Session], post_id: int) -> metrics.Reach:
    with factory() as s:
        return metrics.potential_reach(s, post_id)


def test_reach_follows_changing_followers_untested_advocates_and_reshares_of_reshares(
    atproto_network: AtprotoNetwork, bsky_connector: ConnectorFactory, sqlite_url: str
) -> None:
    net = atproto_network
    team, bob, carol, dave = (net.create_account(n) for n in ("team", "bob", "carol", "dave"))
    fans = [net.create_account(f"fan{n}") for n in range(3)]
    follow(net, fans[0], team, bob, carol, dave)
    _, bob_follow = follow(net, fans[1], team, bob)
    [unfollow_team] = follow(net, fans[2], team)

    [original] = bsky_connector(team).publish(
        OutgoingPost(
            parts=(f"Reach story {uuid.uuid4().hex[:6]}",), idempotency_key=uuid.uuid4().hex
        )
    )
    bob_repost = bsky_connector(bob).repost(original, uuid.uuid4().hex)
    carol_repost = bsky_connector(carol).repost(original, uuid.uuid4().hex)
    # Dave reposts Bob's repost: the record names the original and, as "via", Bob's repost.
    net.client(dave).com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(
            repo=dave.did,
            collection="app.bsky.feed.repost",
            record=models.AppBskyFeedRepost.Record(
                subject=models.ComAtprotoRepoStrongRef.Main(uri=original.uri, cid=original.cid),
                via=models.ComAtprotoRepoStrongRef.Main(uri=bob_repost.uri, cid=bob_repost.cid),
                created_at=datetime.now(UTC).isoformat(),
            ),
        )
    )
    net.process_all()

    factory = session_factory(sqlite_url)
    with factory() as s:
        advocate = make_user(s, role="volunteer", name="Advocate")
        team_acct = our_account(s, net, team, tested=True, followers_count=0)
        bob_acct = our_account(s, net, bob, tested=True, followers_count=0, owner_id=advocate.id)
        # Connected but never tested: Amplify knows neither its id nor its followers.
        carol_acct = our_account(s, net, carol, tested=False, owner_id=advocate.id)
        post = make_post(s)
        source = make_delivery(
            s,
            post=post,
            account=team_acct,
            status=DeliveryStatus.PUBLISHED,
            remote_id=original.remote_id,
            remote_uri=original.uri,
            remote_cid=original.cid,
            published_at=utcnow(),
        )
        for acct, repost in ((bob_acct, bob_repost), (carol_acct, carol_repost)):
            make_delivery(
                s,
                post=post,
                account=acct,
                kind=DeliveryKind.REPOST,
                source_id=source.id,
                status=DeliveryStatus.PUBLISHED,
                remote_id=repost.remote_id,
                remote_uri=repost.uri,
                published_at=utcnow(),
            )
        s.commit()
        post_id = post.id

    first = metrics.sweep(factory, force_all=True)
    assert not first.errors, first.errors

    before = reach_of(factory, post_id)
    assert [(a.handle, a.followers) for a in before.publishers] == [(team.handle, 3)]
    assert {a.handle: a.followers for a in before.resharers} == {
        bob.handle: 2,
        carol.handle: 1,
        dave.handle: 1,
    }
    assert before.reach == 3 + 2 + 1 + 1
    assert not before.partial
    with factory() as s:
        spread = analytics.spread(s, post_id)
        assert len(spread.publishers) == 1 and len(spread.resharers) == 3
        assert spread.potential_reach == before.reach

    # The reposters again, one a page: the connector follows getRepostedBy's cursor.
    pages: list[str | None] = []
    read_page = bluesky._reposted_by

    def counted(client: Any, uri: str, cursor: str | None) -> Any:
        pages.append(cursor)
        return read_page(client, uri, cursor)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bluesky, "SPREADERS_PAGE", 1)
        patch.setattr(bluesky, "_reposted_by", counted)
        paged = bsky_connector(team).fetch_spreaders(original)
        assert {p.handle for p in paged} == {bob.handle, carol.handle, dave.handle}
        assert len(pages) >= 3 and pages[0] is None and all(pages[1:3])
        assert len(bsky_connector(team).fetch_spreaders(original, limit=2)) == 2

    # Followers change; nobody new reshares, so only the follower re-reading sees it:
    # the team loses a fan, Bob loses one (19 -> 13 in miniature), Carol gains one.
    net.client(fans[2]).delete_follow(unfollow_team)
    net.client(fans[1]).delete_follow(bob_follow)
    follow(net, fans[1], carol)
    net.process_all()

    second = metrics.sweep(factory, force_all=True)
    assert not second.errors, second.errors
    assert second.spreader_calls == 0

    after = reach_of(factory, post_id)
    assert [(a.handle, a.followers) for a in after.publishers] == [(team.handle, 2)]
    assert {a.handle: a.followers for a in after.resharers} == {
        bob.handle: 1,
        carol.handle: 2,
        dave.handle: 1,
    }
    assert after.reach == 2 + 1 + 2 + 1
    with factory() as s:
        report = {r["post_id"]: r for r in metrics.reach_report(s)}[post_id]
        assert report["potential_reach"] == after.reach
        assert (report["publishers"], report["resharers"]) == (1, 3)
        stored = s.get(Account, carol_acct.id)
        assert stored is not None and stored.followers_count == 2
