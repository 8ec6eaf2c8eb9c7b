"""Reach page: every role sees how far stories spread; numbers match the analytics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest
from uikit import texts

from amplify import snapshots
from amplify.db import session_scope
from amplify.models import DeliveryStatus, Spreader, User, utcnow
from connectors.base import Metrics
from tests.factories import make_account, make_delivery, make_post


def _published_story(author_id: int) -> int:
    with session_scope() as s:
        org = make_account(s, platform="sandbox", handle="chapter.sandbox", followers_count=900)
        author = s.get(User, author_id)
        post = make_post(s, author=author, body="Telehealth kept patients connected.")
        when = utcnow() - timedelta(hours=5)
        d = make_delivery(
            s, post=post, account=org, status=DeliveryStatus.PUBLISHED, published_at=when
        )
        snapshots.append(
            s, d, Metrics("1", likes=12, reposts=3, simulated=True), when + timedelta(hours=1)
        )
        s.add(
            Spreader(
                delivery_id=d.id,
                platform="sandbox",
                remote_user_id="fan",
                handle="fan.sandbox",
                followers_count=100,
                kind="repost",
            )
        )
        return post.id


@pytest.mark.parametrize("role", ["volunteer", "lead", "admin"])
def test_it_shows_reach_to_every_role(app_as: Callable[..., AppTest], role: str) -> None:
    at = app_as(role, "reach.py")
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Reach"]
    assert "Nothing published in this period yet." in texts(at)


def test_it_shows_kpis_spread_and_the_reach_method(
    app_as: Callable[..., AppTest], people: dict[str, int]
) -> None:
    _published_story(people["volunteer"])
    at = app_as("lead", "reach.py")
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stories published"] == "1"
    assert metrics["Engagement"] == "15"
    assert metrics["Potential reach"] == "1,000"  # 900 publisher + 100 resharer
    shown = texts(at)
    assert "each account counted once" in shown
    assert "sandbox practice network" in shown  # simulated numbers are labelled


def test_it_offers_what_it_shows_as_csv(app_as: Callable[..., AppTest], people) -> None:
    _published_story(people["volunteer"])
    at = app_as("admin", "reach.py")
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download engagement over time (CSV)" in labels
    assert "Download who reshared (CSV)" in labels
