"""Amplification waves: advocates reshare an original once it lands, staggered, once."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from factories import make_account, make_delivery, make_post, make_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from amplify import amplification
from amplify.config import reset_settings
from amplify.models import (
    Account,
    AccountStatus,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Role,
    User,
    utcnow,
)


def _landed_original(s: Session, platform: str, *, amplify: bool = True) -> Delivery:
    org = make_account(s, platform=platform, handle="chapter")
    post = make_post(s, amplify=amplify)
    return make_delivery(
        s,
        post=post,
        account=org,
        status=DeliveryStatus.PUBLISHED,
        remote_id="1851234567890123456",
        remote_url="https://example.invalid/1",
        published_at=utcnow(),
    )


def _advocate(s: Session, platform: str, **fields: object) -> Account:
    owner = make_user(s, role=Role.VOLUNTEER)
    values: dict[str, object] = {"owner_id": owner.id, "amplify_opt_in": True}
    values.update(fields)
    return make_account(s, platform=platform, **values)


def test_it_schedules_one_repost_per_opted_in_advocate_within_the_window(
    session: Session,
) -> None:
    original = _landed_original(session, "bluesky")
    advocates = [_advocate(session, "bluesky") for _ in range(5)]
    _advocate(session, "bluesky", amplify_opt_in=False)
    _advocate(session, "bluesky", status=AccountStatus.NEEDS_ATTENTION)
    _advocate(session, "mastodon")  # another platform
    make_account(session, platform="bluesky", amplify_opt_in=True)  # organisation-owned

    created = amplification.on_published(session, original, rng=random.Random(7))

    assert sorted(d.account_id for d in created) == sorted(a.id for a in advocates)
    assert original.published_at is not None
    for d in created:
        assert d.kind == DeliveryKind.REPOST
        assert d.source_id == original.id
        assert d.status == DeliveryStatus.PENDING
        delay = d.next_attempt_at - original.published_at
        assert timedelta(minutes=15) <= delay <= timedelta(minutes=90)
    # Staggered, not a burst.
    assert len({d.next_attempt_at for d in created}) == len(created)


def test_it_creates_the_wave_only_once(session: Session) -> None:
    original = _landed_original(session, "sandbox")
    _advocate(session, "sandbox")
    _advocate(session, "sandbox")
    assert len(amplification.on_published(session, original)) == 2
    assert amplification.on_published(session, original) == []
    session.commit()
    reposts = session.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.REPOST)).all()
    assert len(reposts) == 2


def test_it_follows_the_configured_window(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPLIFY_AMPLIFY_WINDOW_MINUTES", "[1, 2]")
    reset_settings()
    original = _landed_original(session, "mastodon")
    _advocate(session, "mastodon")
    (repost,) = amplification.on_published(session, original)
    assert original.published_at is not None
    delay = repost.next_attempt_at - original.published_at
    assert timedelta(minutes=1) <= delay <= timedelta(minutes=2)


def test_it_does_nothing_for_a_story_not_marked_to_amplify(session: Session) -> None:
    original = _landed_original(session, "bluesky", amplify=False)
    _advocate(session, "bluesky")
    assert amplification.on_published(session, original) == []


def test_it_gives_x_advocates_a_share_link_instead_of_reposting(session: Session) -> None:
    original = _landed_original(session, "x")
    advocate = _advocate(session, "x")
    assert amplification.on_published(session, original) == []
    assert session.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.REPOST)).all() == []

    owner = session.get(User, advocate.owner_id)
    assert owner is not None
    links = amplification.pending_share_links(session, owner)
    assert [link["share_url"] for link in links] == [
        "https://x.com/intent/retweet?tweet_id=1851234567890123456"
    ]
    assert links[0]["post_id"] == original.post_id


def test_it_stops_offering_share_links_after_a_few_days(session: Session) -> None:
    _landed_original(session, "x")
    advocate = _advocate(session, "x")
    owner = session.get(User, advocate.owner_id)
    assert owner is not None
    assert len(amplification.pending_share_links(session, owner)) == 1
    later = utcnow() + timedelta(days=amplification.SHARE_LINK_DAYS + 1)
    assert amplification.pending_share_links(session, owner, now=later) == []


def test_it_does_not_ask_an_account_to_reshare_a_story_it_published_itself(
    session: Session,
) -> None:
    original = _landed_original(session, "bluesky")
    advocate = _advocate(session, "bluesky")
    make_delivery(session, post=original.post, account=advocate, kind=DeliveryKind.POST)
    assert amplification.on_published(session, original) == []


def test_it_tells_advocates_their_account_will_reshare_automatically(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amplify import notify

    sent: list[dict[str, object]] = []
    monkeypatch.setattr(notify, "emit", lambda s, event, **data: sent.append(data) or 0)
    original = _landed_original(session, "mastodon")
    advocate = _advocate(session, "mastodon")
    stop = notify.listen()
    try:
        amplification.on_published(session, original, rng=random.Random(1))
        assert sent == []  # told once the wave is saved
        session.commit()
    finally:
        stop()
    (note,) = sent
    assert note["user_ids"] == [advocate.owner_id]
    assert note["auto_reshare"] == (15, 90)
    assert note["original_url"] == "https://example.invalid/1"


def test_it_words_the_automatic_reshare_notice_plainly(session: Session) -> None:
    from amplify import notify

    post = make_post(session)
    _, users, title, body = notify._compose(
        session,
        "amplify",
        {
            "post": post,
            "share_links": [],
            "user_ids": [7],
            "auto_reshare": (15, 90),
            "original_url": "https://example.invalid/1",
        },
    )
    assert (users, title) == ([7], "Something to amplify")
    assert "reshares it automatically in 15–90 minutes" in body
    assert "https://example.invalid/1" in body
