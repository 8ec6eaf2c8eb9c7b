"""Reach page: every role sees how far stories spread; numbers match the analytics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from uikit import texts

from amplify import analytics, snapshots
from amplify.db import session_scope
from amplify.models import DeliveryKind, DeliveryStatus, User, utcnow
from amplify.ui import charts
from connectors.base import Metrics
from tests.factories import make_account, make_delivery, make_post, make_spreader


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
        make_spreader(s, d, "fan", "fan.sandbox", 100)
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
    assert metrics["Engagement (simulated)"] == "15"
    assert metrics["Potential reach (simulated)"] == "1,000"  # 900 publisher + 100 resharer
    assert metrics["Publishers' followers (simulated)"] == "900"
    assert metrics["Resharers' followers (simulated)"] == "100"
    shown = texts(at)
    assert "each account counted once" in shown
    assert "sandbox practice network" in shown  # simulated numbers are labelled


def test_it_offers_what_it_shows_as_csv(app_as: Callable[..., AppTest], people) -> None:
    _published_story(people["volunteer"])
    at = app_as("admin", "reach.py")
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download engagement over time (CSV)" in labels
    assert "Download who reshared (CSV)" in labels


def test_it_says_simulated_on_a_sandbox_storys_reach_before_its_first_reading(
    app_as: Callable[..., AppTest], people: dict[str, int]
) -> None:
    with session_scope() as s:
        org = make_account(s, platform="sandbox", handle="chapter.sandbox", followers_count=237)
        post = make_post(s, author=s.get(User, people["volunteer"]), body="Fresh off the press")
        make_delivery(s, post=post, account=org, status="published", published_at=utcnow())
    at = app_as("lead", "reach.py")
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Potential reach (simulated)"] == "237"
    assert "sandbox practice network" in texts(at)


def test_it_counts_publishers_apart_from_advocates_who_reshared(
    app_as: Callable[..., AppTest], people: dict[str, int]
) -> None:
    with session_scope() as s:
        org = make_account(s, platform="bluesky", followers_count=500, remote_user_id="did:org")
        post = make_post(s, author=s.get(User, people["volunteer"]), body="One account posts")
        original = make_delivery(
            s, post=post, account=org, status="published", published_at=utcnow(), remote_id="1"
        )
        for n in range(3):
            advocate = make_account(
                s,
                platform="bluesky",
                remote_user_id=f"did:a{n}",
                followers_count=10,
                owner_id=people["volunteer"],
            )
            make_delivery(
                s,
                post=post,
                account=advocate,
                kind=DeliveryKind.REPOST,
                status="published",
                published_at=utcnow(),
                source_id=original.id,
            )
            # The same reshare, as the platform lists it.
            make_spreader(s, original, f"did:a{n}", advocate.handle, 10)
        original.spreaders_unseen = 4
    at = app_as("lead", "reach.py")
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert "**Published from** 1 account; **reshared by** 3 accounts, and 4 more." in shown
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Potential reach"] == "530+"
    assert "Partial: the platforms count 4 more reshares than they list" in shown


def test_it_names_stories_by_their_first_words_not_their_ids(
    app_as: Callable[..., AppTest], people: dict[str, int]
) -> None:
    post_id = _published_story(people["volunteer"])
    at = app_as("lead", "reach.py")
    [story] = [b for b in at.selectbox if b.label == "Story"]
    assert story.options == ["Telehealth kept patients connected."]
    assert f"#{post_id}" not in texts(at)


def test_it_always_draws_the_whole_week_and_says_when_there_is_too_little_data(
    app_as: Callable[..., AppTest], people: dict[str, int]
) -> None:
    _published_story(people["volunteer"])
    at = app_as("lead", "reach.py")
    assert "Not enough data yet: best times need at least 5 posts" in texts(at)
    one = pd.DataFrame([{"weekday": "Mon", "hour": 9, "engagement": 2.0, "posts": 1}])
    for enough in (False, True):
        spec = charts.best_times_heatmap(one, enough).to_dict()
        [values] = [v for v in spec["datasets"].values()]
        assert len(values) == 7 * 24
    assert analytics.BEST_TIMES_MIN_POSTS == 5


def test_its_charts_read_counts_as_whole_numbers_and_label_every_bar() -> None:
    over = pd.DataFrame(
        {
            "day": pd.to_datetime(["2026-03-02", "2026-03-03"]),
            "series": ["A story", "A story"],
            "engagement": [1, 2],
            "total": [1, 3],
        }
    )
    spec = charts.engagement_over_time(over).to_dict()
    assert spec["encoding"]["y"]["axis"]["format"] == ",d"
    assert spec["encoding"]["x"]["type"] == "temporal"
    people = pd.DataFrame(
        {
            "platform": ["x"] * 30,
            "handle": [f"fan{n}" for n in range(30)],
            "followers_count": list(range(30)),
            "kind": ["repost"] * 30,
            "role": ["reshared"] * 30,
        }
    )
    bars = charts.spread_bars(people).to_dict()
    marks = [layer["mark"]["type"] for layer in bars["layer"]]
    assert marks == ["bar", "text"]  # a text label beside every bar
    assert bars["layer"][0]["encoding"]["y"]["axis"]["labelOverlap"] is False
