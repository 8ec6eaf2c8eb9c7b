"""Metrics: snapshots on the decay schedule, batched reads, spreaders, potential reach."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import ClassVar

import pytest
from factories import make_account, make_delivery, make_post, make_spreader
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from amplify import metrics
from amplify.db import session_factory
from amplify.models import (
    Account,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    MetricSnapshot,
    Spreader,
    utcnow,
)
from connectors.base import Connector, ConnectorContext, SpreaderInfo
from tests import memory_connector as memory


class SmallBatchConnector(memory.MemoryConnector):
    """The memory network read 25 records per call, like Bluesky's getPosts."""

    metrics_batch_size: ClassVar[int] = 25


@pytest.fixture(autouse=True)
def _fresh_network() -> Iterator[None]:
    memory.reset()
    yield
    memory.reset()


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker[Session]:
    return session_factory(sqlite_url)


def build(account: Account) -> Connector:
    ctx = ConnectorContext(handle=account.handle, service_url="", credentials={})
    if account.platform == "bluesky":
        return SmallBatchConnector(ctx)
    return memory.MemoryConnector(ctx)


def _published(s: Session, account: Account, n: int, *, at: datetime) -> list[Delivery]:
    """``n`` stories that landed on ``account`` at ``at``, first snapshot due 15 min later."""
    return [
        make_delivery(
            s,
            post=make_post(s),
            account=account,
            status=DeliveryStatus.PUBLISHED,
            remote_id=f"{account.handle}-{i}",
            published_at=at,
            next_metrics_at=at + timedelta(minutes=15),
        )
        for i in range(n)
    ]


def _amplified(s: Session, original: Delivery, advocate: Account) -> None:
    """The advocate's account reshared ``original`` through Amplify."""
    make_delivery(
        s,
        post=original.post,
        account=advocate,
        kind=DeliveryKind.REPOST,
        status="published",
        source_id=original.id,
    )


def test_it_reads_250_x_records_in_3_calls_and_250_bluesky_records_in_10(
    factory: sessionmaker[Session],
) -> None:
    landed = utcnow() - timedelta(minutes=20)
    with factory() as s:
        x_accounts = [make_account(s, platform="x") for _ in range(5)]
        bsky_accounts = [make_account(s, platform="bluesky") for _ in range(5)]
        for acct in [*x_accounts, *bsky_accounts]:
            _published(s, acct, 50, at=landed)
        s.commit()

    result = metrics.sweep(factory, connector_for=build)

    assert result.deliveries == 500
    assert result.snapshots == 500
    assert result.calls_by_platform == {"x": 3, "bluesky": 10}
    assert result.calls == 13
    assert memory.NETWORK.call_count("fetch_metrics") == 13


def test_it_appends_snapshots_and_follows_the_decay_schedule(
    factory: sessionmaker[Session],
) -> None:
    landed = utcnow() - timedelta(minutes=20)
    with factory() as s:
        acct = make_account(s, platform="x")
        (d,) = _published(s, acct, 1, at=landed)
        s.commit()
        delivery_id = d.id
    memory.NETWORK.set_metrics(d.remote_id or "", likes=3)

    first = metrics.sweep(factory, connector_for=build)
    assert first.snapshots == 1
    # Nothing is due again until an hour after landing.
    assert metrics.sweep(factory, connector_for=build).snapshots == 0
    memory.NETWORK.set_metrics(d.remote_id or "", likes=9, reposts=1)
    second = metrics.sweep(factory, now=landed + timedelta(minutes=61), connector_for=build)
    assert second.snapshots == 1

    with factory() as s:
        snaps = s.scalars(
            select(MetricSnapshot)
            .where(MetricSnapshot.delivery_id == delivery_id)
            .order_by(MetricSnapshot.id)
        ).all()
        assert [x.likes for x in snaps] == [3, 9]
        d2 = s.get(Delivery, delivery_id)
        assert d2 is not None
        assert d2.metrics_step == 2
        assert d2.next_metrics_at == landed + timedelta(minutes=180)


def test_it_skips_schedule_points_missed_while_the_worker_was_down(
    factory: sessionmaker[Session],
) -> None:
    landed = utcnow() - timedelta(days=2)
    with factory() as s:
        acct = make_account(s, platform="x")
        (d,) = _published(s, acct, 1, at=landed)
        s.commit()
        delivery_id = d.id
    result = metrics.sweep(factory, connector_for=build)
    assert result.snapshots == 1  # one reading now, not six to catch up
    with factory() as s:
        d2 = s.get(Delivery, delivery_id)
        assert d2 is not None
        assert d2.next_metrics_at == landed + timedelta(days=3)


def test_it_reads_everything_published_when_forced(factory: sessionmaker[Session]) -> None:
    landed = utcnow()
    with factory() as s:
        acct = make_account(s, platform="x")
        _published(s, acct, 7, at=landed)
        s.commit()
    assert metrics.sweep(factory, connector_for=build).snapshots == 0
    assert metrics.sweep(factory, connector_for=build, force_all=True).snapshots == 7


def test_it_records_resharers_with_follower_counts_only_when_reshares_grew(
    factory: sessionmaker[Session],
) -> None:
    landed = utcnow() - timedelta(minutes=20)
    with factory() as s:
        acct = make_account(s, platform="x")
        (d,) = _published(s, acct, 1, at=landed)
        s.commit()
    rid = d.remote_id or ""
    memory.NETWORK.set_metrics(rid, likes=5, reposts=2)
    memory.NETWORK.spreaders[rid] = [
        SpreaderInfo("u1", "nurse_ann", followers_count=120),
        SpreaderInfo("u2", "dr_bo", followers_count=3400),
    ]
    first = metrics.sweep(factory, connector_for=build)
    assert (first.spreader_calls, first.spreaders) == (1, 2)

    # Same counts next time: no spreader call.
    again = metrics.sweep(factory, force_all=True, connector_for=build)
    assert again.spreader_calls == 0

    memory.NETWORK.set_metrics(rid, likes=5, reposts=3)
    memory.NETWORK.spreaders[rid] = [
        SpreaderInfo("u1", "nurse_ann", followers_count=150),
        SpreaderInfo("u2", "dr_bo", followers_count=3400),
        SpreaderInfo("u3", "clinic_fan", followers_count=None),
    ]
    third = metrics.sweep(factory, force_all=True, connector_for=build)
    assert (third.spreader_calls, third.spreaders) == (1, 1)
    with factory() as s:
        rows = {sp.handle: sp.followers_count for sp in s.scalars(select(Spreader))}
        assert rows == {"nurse_ann": 150, "dr_bo": 3400, "clinic_fan": None}


def test_it_counts_each_account_once_in_potential_reach(session: Session) -> None:
    post = make_post(session)
    org_x = make_account(session, platform="x", followers_count=1000, remote_user_id="org")
    org_bsky = make_account(session, platform="bluesky", followers_count=500)
    advocate = make_account(
        session, platform="bluesky", followers_count=70, owner_id=post.author_id
    )
    dx = make_delivery(session, post=post, account=org_x, status="published", remote_id="1")
    db = make_delivery(session, post=post, account=org_bsky, status="published", remote_id="2")
    _amplified(session, db, advocate)
    # The same person reshared on two deliveries, and the org's own account shows up too.
    for delivery, uid, handle, followers in [
        (dx, "u1", "nurse_ann", 120),
        (dx, "u2", "dr_bo", 3400),
        (db, "u9", "nurse_ann.bsky", 80),
        (dx, "org", "chapter", 1000),
    ]:
        make_spreader(session, delivery, uid, handle, followers)
    make_spreader(session, dx, "u1", "nurse_ann", 120, kind="quote")
    session.flush()

    result = metrics.potential_reach(session, post.id)

    assert len(result.publishers) == 2  # the org's own account among resharers stays one
    assert len(result.resharers) == 4  # u1, u2 on X; u9 and the advocate on Bluesky
    assert result.publishers_followers == 1000 + 500
    assert result.resharers_followers == 70 + 120 + 3400 + 80
    assert result.reach == result.publishers_followers + result.resharers_followers
    assert "each account counted once" in result.method


def test_it_counts_an_untested_advocate_once_at_the_count_seen_among_resharers(
    session: Session,
) -> None:
    post = make_post(session)
    org = make_account(session, platform="bluesky", followers_count=400, remote_user_id="did:o")
    # Connected but never tested: no remote id, no follower count.
    advocate = make_account(
        session, platform="bluesky", handle="Ann.Example.Test", owner_id=post.author_id
    )
    original = make_delivery(session, post=post, account=org, status="published", remote_id="1")
    _amplified(session, original, advocate)
    make_spreader(session, original, "did:ann", "@ann.example.test", 19)
    session.flush()

    result = metrics.potential_reach(session, post.id)

    [ann] = result.resharers
    assert (ann.handle, ann.followers, ann.owner_id, ann.via_amplify) == (
        "Ann.Example.Test",
        19,
        post.author_id,
        True,
    )
    assert result.reach == 400 + 19
    assert not result.partial


def test_it_lists_advocates_reshares_under_reshared_by_not_as_publishers(
    session: Session,
) -> None:
    post = make_post(session)
    org = make_account(session, platform="bluesky", followers_count=300, remote_user_id="did:o")
    original = make_delivery(session, post=post, account=org, status="published", remote_id="1")
    for n in range(8):
        advocate = make_account(
            session,
            platform="bluesky",
            remote_user_id=f"did:adv{n}",
            followers_count=10 + n,
            owner_id=post.author_id,
        )
        _amplified(session, original, advocate)
        # The platform lists the same reshare among the original's reposters.
        make_spreader(session, original, f"did:adv{n}", advocate.handle, 10 + n)
    session.flush()

    result = metrics.potential_reach(session, post.id)

    assert [a.handle for a in result.publishers] == [org.handle]
    assert len(result.resharers) == 8
    assert result.reach == 300 + sum(10 + n for n in range(8))


def test_it_counts_the_latest_follower_reading_of_resharers_and_publishers(
    factory: sessionmaker[Session],
) -> None:
    landed = utcnow() - timedelta(minutes=20)
    with factory() as s:
        org = make_account(s, platform="x", handle="chapter", followers_count=250)
        (d,) = _published(s, org, 1, at=landed)
        s.commit()
        post_id = d.post_id
    rid = d.remote_id or ""
    memory.NETWORK.set_metrics(rid, likes=5, reposts=1)
    memory.NETWORK.spreaders[rid] = [SpreaderInfo("u1", "nurse_ann", followers_count=19)]
    metrics.sweep(factory, connector_for=build)
    with factory() as s:
        assert metrics.potential_reach(s, post_id).reach == 250 + 19

    # Followers change; the reshare count does not, so nobody is listed again, but the
    # sweep re-reads the follower counts of everyone it reports on.
    memory.NETWORK.followers.update({"nurse_ann": 13, "chapter": 262})
    later = metrics.sweep(factory, force_all=True, connector_for=build)

    assert later.spreader_calls == 0
    assert memory.NETWORK.call_count("fetch_profiles") == 2
    with factory() as s:
        reach = metrics.potential_reach(s, post_id)
        assert (reach.publishers_followers, reach.resharers_followers) == (262, 13)
        account = s.get(Account, org.id)
        assert account is not None and account.followers_count == 262


def test_it_reads_at_most_the_maximum_of_resharers_and_counts_the_rest_as_more(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "MAX_SPREADERS_PER_SWEEP", 40)
    landed = utcnow() - timedelta(minutes=20)
    with factory() as s:
        org = make_account(s, platform="x", followers_count=100)
        (d,) = _published(s, org, 1, at=landed)
        s.commit()
        post_id = d.post_id
    rid = d.remote_id or ""
    memory.NETWORK.set_metrics(rid, reposts=55, quotes=5)
    memory.NETWORK.spreaders[rid] = [
        SpreaderInfo(f"u{n}", f"fan{n}", followers_count=2) for n in range(55)
    ]

    result = metrics.sweep(factory, connector_for=build)

    assert result.spreaders == 40
    with factory() as s:
        delivery = s.get(Delivery, d.id)
        assert delivery is not None and delivery.spreaders_unseen == 20
        reach = metrics.potential_reach(s, post_id)
    assert (len(reach.resharers), reach.unseen, reach.partial) == (40, 20, True)
    assert reach.reach == 100 + 40 * 2


def test_it_reports_reach_per_story_with_latest_counts(factory: sessionmaker[Session]) -> None:
    landed = utcnow() - timedelta(minutes=20)
    with factory() as s:
        acct = make_account(s, platform="x", followers_count=250)
        a, b = _published(s, acct, 2, at=landed)
        s.commit()
    memory.NETWORK.set_metrics(a.remote_id or "", likes=4, reposts=1)
    memory.NETWORK.spreaders[a.remote_id or ""] = [SpreaderInfo("u1", "fan", followers_count=40)]
    metrics.sweep(factory, connector_for=build)
    memory.NETWORK.set_metrics(a.remote_id or "", likes=6, reposts=1)
    metrics.sweep(factory, force_all=True, connector_for=build)

    with factory() as s:
        report = metrics.reach_report(s)
        snapshots = s.scalar(select(func.count()).select_from(MetricSnapshot))
    assert snapshots == 4
    by_post = {r["post_id"]: r for r in report}
    row = by_post[a.post_id]
    assert row["likes"] == 6
    assert row["potential_reach"] == 290
    assert (row["publishers_followers"], row["resharers_followers"]) == (250, 40)
    assert (row["publishers"], row["resharers"], row["partial"]) == (1, 1, False)
    assert row["resharer_details"] == [
        {"platform": "x", "handle": "fan", "kind": "repost", "followers_count": 40}
    ]
    assert row["reach_method"] == metrics.REACH_METHOD
    assert by_post[b.post_id]["potential_reach"] == 250


def test_it_knows_a_mastodon_account_by_its_handle_with_the_instance_domain() -> None:
    assert metrics.normalised_handle("mastodon", "@Ann", "https://Mastodon.Social") == (
        "ann@mastodon.social"
    )
    assert metrics.normalised_handle("mastodon", "ann@other.example", "https://a.example") == (
        "ann@other.example"
    )
    assert metrics.normalised_handle("bluesky", "@Ann.BSKY.social") == "ann.bsky.social"


def test_it_counts_an_advocate_on_another_mastodon_server_once(session: Session) -> None:
    post = make_post(session)
    org = make_account(
        session,
        platform="mastodon",
        handle="chapter",
        service_url="https://a.example",
        remote_user_id="1",
        followers_count=300,
    )
    # Ids are per server: on a.example Ann is 99, on her own server she is 5.
    make_account(
        session,
        platform="mastodon",
        handle="ann",
        service_url="https://b.example",
        remote_user_id="5",
        followers_count=21,
        owner_id=post.author_id,
    )
    d = make_delivery(session, post=post, account=org, status="published", remote_id="10")
    make_spreader(session, d, "99", "ann@b.example", 20)
    # A local account whose id happens to be Ann's id on her own server.
    make_spreader(session, d, "5", "bo", 7)
    session.flush()

    result = metrics.potential_reach(session, post.id)

    assert {(a.handle, a.followers, a.owner_id) for a in result.resharers} == {
        ("ann", 21, post.author_id),
        ("bo", 7, None),
    }
    assert result.reach == 300 + 21 + 7
