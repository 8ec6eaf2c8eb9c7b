"""Reach analytics: numbers a lead can trust, computed from snapshots through the rollups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from amplify import analytics, snapshots
from amplify.models import DeliveryKind, DeliveryStatus, EngagementDaily, MetricSnapshot, utcnow
from connectors.base import Metrics
from tests.factories import (
    make_account,
    make_campaign,
    make_delivery,
    make_post,
    make_spreader,
    make_user,
)


def _published(s, *, post=None, account=None, kind=DeliveryKind.POST, hours_ago=30, **kw):
    when = utcnow() - timedelta(hours=hours_ago)
    return make_delivery(
        s,
        post=post,
        account=account,
        kind=kind,
        status=DeliveryStatus.PUBLISHED,
        published_at=when,
        **kw,
    )


def _period(days=30, campaign_id=None):
    now = utcnow()
    return analytics.Period(now - timedelta(days=days), now + timedelta(hours=1), campaign_id)


def test_it_appends_snapshots_and_keeps_latest_counts_on_the_delivery(session):
    d = _published(session)
    snapshots.append(session, d, Metrics("1", likes=3, reposts=1), utcnow() - timedelta(hours=2))
    snapshots.append(session, d, Metrics("1", likes=5, reposts=2, replies=1))
    session.commit()
    assert session.scalar(select(func.count(MetricSnapshot.id))) == 2
    assert (d.likes, d.reposts, d.replies, d.engagement) == (5, 2, 1, 8)


def test_it_rolls_up_only_the_gain_so_days_do_not_double_count(session):
    d = _published(session, hours_ago=72)
    snapshots.append(session, d, Metrics("1", likes=10), utcnow() - timedelta(days=2))
    snapshots.append(session, d, Metrics("1", likes=25), utcnow())
    session.commit()
    gains = sorted(session.scalars(select(EngagementDaily.gain)).all())
    assert gains == [10, 15]
    over = analytics.engagement_over_time(session, _period())
    assert over["total"].iloc[-1] == 25


def test_it_keeps_a_drop_in_counts_as_a_negative_gain(session):
    d = _published(session)
    snapshots.append(session, d, Metrics("1", likes=10), utcnow() - timedelta(hours=1))
    snapshots.append(session, d, Metrics("1", likes=7), utcnow())
    session.commit()
    assert session.scalar(select(func.sum(EngagementDaily.gain))) == 7


def test_it_counts_kpis_from_original_posts_not_reposts(session):
    advocate = make_user(session, role="volunteer")
    org = make_account(session, followers_count=1000)
    adv_account = make_account(
        session, owner_id=advocate.id, amplify_opt_in=True, followers_count=50
    )
    idle = make_user(session, role="volunteer")
    make_account(session, owner_id=idle.id, amplify_opt_in=True)
    post = make_post(session)
    original = _published(session, post=post, account=org)
    _published(session, post=post, account=adv_account, kind=DeliveryKind.REPOST)
    snapshots.append(session, original, Metrics("1", likes=4, reposts=2, quotes=1))
    session.commit()

    k = analytics.kpis(session, _period())
    assert k.stories_published == 1
    assert k.deliveries_published == 1
    assert k.engagement == 7
    assert k.reshares == 3
    assert (k.advocates_active, k.advocates_opted_in) == (1, 2)
    assert k.participation == pytest.approx(0.5)


def test_it_filters_by_campaign_and_period(session):
    c1, c2 = make_campaign(session), make_campaign(session)
    d1 = _published(session, post=make_post(session, campaign_id=c1.id))
    d2 = _published(session, post=make_post(session, campaign_id=c2.id))
    _published(session, post=make_post(session, campaign_id=c1.id), hours_ago=24 * 60)
    for d, likes in ((d1, 3), (d2, 9)):
        snapshots.append(session, d, Metrics("1", likes=likes))
    session.commit()
    assert analytics.kpis(session, _period(campaign_id=c1.id)).engagement == 3
    assert analytics.kpis(session, _period(campaign_id=c1.id)).stories_published == 1
    assert analytics.kpis(session, _period()).engagement == 12


def test_it_labels_sandbox_numbers_as_simulated(session):
    d = _published(session)
    snapshots.append(session, d, Metrics("1", likes=1, simulated=True))
    session.commit()
    assert analytics.kpis(session, _period()).simulated is True


def test_it_counts_each_account_once_in_potential_reach(session):
    org = make_account(session, platform="bluesky", followers_count=1000, remote_user_id="did:org")
    post = make_post(session)
    d = _published(session, post=post, account=org)
    make_spreader(session, d, "did:a", "a", 200)
    make_spreader(session, d, "did:a", "a", 200, kind="quote")
    make_spreader(session, d, "did:b", "b", None)
    session.commit()
    spread = analytics.spread(session, post.id)
    assert spread.potential_reach == 1200
    assert "each account counted once" in spread.method


def test_it_places_best_times_in_the_workspace_zone(session):
    # 2026-01-05 15:00 UTC is Monday 09:00 in Chicago (UTC-6 in winter).
    from datetime import UTC, datetime

    when = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    d = make_delivery(session, status=DeliveryStatus.PUBLISHED, published_at=when)
    snapshots.append(session, d, Metrics("1", likes=6), when + timedelta(hours=1))
    session.commit()
    period = analytics.Period(when - timedelta(days=1), when + timedelta(days=1))
    best = analytics.best_times(session, period)
    assert best[["weekday", "hour", "engagement", "posts"]].values.tolist() == [["Mon", 9, 6.0, 1]]


def test_it_ranks_volunteers_and_advocates(session):
    star = make_user(session, role="volunteer", name="Star")
    quiet = make_user(session, role="volunteer", name="Quiet")
    adv = make_user(session, role="volunteer", name="Advocate")
    adv_acct = make_account(session, owner_id=adv.id, amplify_opt_in=True, followers_count=300)
    for author, likes in ((star, 50), (quiet, 5)):
        post = make_post(session, author=author)
        d = _published(session, post=post)
        snapshots.append(session, d, Metrics("1", likes=likes))
        _published(session, post=post, account=adv_acct, kind=DeliveryKind.REPOST)
    session.commit()
    vols = analytics.volunteer_leaderboard(session, _period())
    assert vols["volunteer"].tolist() == ["Star", "Quiet"]
    advs = analytics.advocate_leaderboard(session, _period())
    assert advs.values.tolist() == [["Advocate", 2, 600]]


def test_it_refuses_an_unknown_grouping(session):
    with pytest.raises(ValueError, match="cannot group engagement by 'colour'"):
        analytics.engagement_over_time(session, _period(), by="colour")


def test_it_credits_an_advocate_who_reshared_with_their_own_click(session):
    # On X advocates share through a link: the reshare is seen only among the retweeters.
    adv = make_user(session, role="volunteer", name="Clicker")
    make_account(session, platform="x", handle="Clicker_Ann", owner_id=adv.id, followers_count=42)
    org = make_account(session, platform="x", followers_count=900, remote_user_id="1")
    post = make_post(session)
    d = _published(session, post=post, account=org, remote_id="77")
    make_spreader(session, d, "4242", "clicker_ann", 40)
    session.commit()
    advs = analytics.advocate_leaderboard(session, _period())
    # Our account's own reading (42) counts, once, under the advocate's name.
    assert advs.values.tolist() == [["Clicker", 1, 42]]


def test_it_names_stories_by_first_words_and_tells_repeated_openings_apart():
    from datetime import UTC, datetime

    body = "Closed-loop referrals mean every patient gets the follow-up they were promised."
    labels = analytics.post_labels(
        [(1, body), (2, body), (3, "Short one")],
        {
            1: datetime(2026, 11, 24, 17, 5, tzinfo=UTC),
            2: datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        },
    )
    assert labels == {
        1: "Closed-loop referrals mean every patient gets… (24 Nov)",
        2: "Closed-loop referrals mean every patient gets… (25 Nov)",
        3: "Short one",
    }
    assert analytics.post_label("", 7) == "Story 7"


def test_it_computes_everything_the_reach_page_shows_on_both_databases(db_url):
    from amplify.db import session_factory

    with session_factory(db_url)() as s:
        adv = make_user(s, role="volunteer", name="Advocate")
        org = make_account(s, platform="bluesky", followers_count=500, remote_user_id="did:o")
        mine = make_account(
            s, platform="bluesky", owner_id=adv.id, followers_count=30, remote_user_id="did:a"
        )
        post = make_post(s, body="A story told on both databases")
        d = _published(s, post=post, account=org, remote_id="1")
        _published(s, post=post, account=mine, kind=DeliveryKind.REPOST, source_id=d.id)
        snapshots.append(s, d, Metrics("1", likes=4, reposts=1))
        make_spreader(s, d, "did:a", mine.handle, 30)
        s.commit()
        period = _period()
        top = analytics.top_posts(s, period)
        assert top["story"].tolist() == ["A story told on both databases"]
        spread = analytics.spread(s, post.id)
        assert (len(spread.publishers), len(spread.resharers), spread.potential_reach) == (
            1,
            1,
            530,
        )
        assert analytics.advocate_leaderboard(s, period).values.tolist() == [["Advocate", 1, 30]]
        assert analytics.kpis(s, period).stories_published == 1
        assert not analytics.engagement_over_time(s, period, "post").empty
        assert analytics.best_times(s, period)["posts"].sum() == 1
        assert not analytics.post_timeline(s, post.id).empty
