"""The X connector at the wire: the real tweepy runs unmodified against HTTP answers
shaped as docs.x.com shows them (``responses`` intercepts requests; nothing leaves the box)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from responses import matchers

from connectors.base import (
    AuthError,
    ConnectorContext,
    Media,
    OutgoingPost,
    PermanentError,
    RateLimited,
    Receipt,
    TransientError,
)
from connectors.registry import build
from connectors.x import XConnector, created_at_from_id, share_url

BASE = "https://api.x.test"
USER_ID = "2244994945"
OAUTH1 = {
    "api_key": "ck-abc",
    "api_secret": "cs-secret-value",
    "access_token": "2244994945-at",
    "access_token_secret": "ats-secret-value",
}


def fresh_id(offset: int = 0) -> str:
    """A snowflake id created now (X ids carry their creation time)."""
    ms = int(time.time() * 1000) - 1288834974657
    return str((ms << 22) + offset)


OLD_ID = "1212092628029698048"  # a post from 2019


def make(credentials: dict[str, str] | None = None, base: str = BASE) -> XConnector:
    ctx = ConnectorContext(
        handle="@amplify_org", service_url=base, credentials=credentials or OAUTH1
    )
    connector = build("x", ctx)
    assert isinstance(connector, XConnector)
    return connector


def problem(status: int, title: str, detail: str, type_: str = "about:blank") -> dict[str, Any]:
    return {"title": title, "detail": detail, "type": type_, "status": status}


RL_HEADERS = {
    "x-rate-limit-limit": "100",
    "x-rate-limit-remaining": "99",
    "x-rate-limit-reset": "1700000900",
}


def created(rsps: responses.RequestsMock, tweet_id: str, text: str) -> None:
    rsps.post(
        f"{BASE}/2/tweets",
        json={"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}},
        status=201,
        headers=RL_HEADERS,
        match=[matchers.json_params_matcher({"text": text}, strict_match=False)],
    )


def me(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{BASE}/2/users/me",
        json={
            "data": {
                "id": USER_ID,
                "name": "Amplify Org",
                "username": "amplify_org",
                "public_metrics": {
                    "followers_count": 1234,
                    "following_count": 10,
                    "tweet_count": 50,
                    "listed_count": 2,
                    "like_count": 0,
                },
            }
        },
        headers=RL_HEADERS,
    )


def params_of(call: Any) -> dict[str, str]:
    """The query string of a recorded request, one value per name."""
    return dict(parse_qsl(urlsplit(call.request.url).query))


def body_of(call: Any) -> dict[str, Any]:
    return dict(json.loads(call.request.body))


DUPLICATE = problem(
    403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
)


# --------------------------------------------------------------------------- publishing


@responses.activate
def test_it_publishes_a_single_post_and_returns_a_link_a_person_can_open() -> None:
    created(responses.mock, "1445880548472328192", "Our clinic cut wait times by 40%")
    receipts = make().publish(
        OutgoingPost(parts=("Our clinic cut wait times by 40%",), idempotency_key="k1")
    )
    assert receipts == [
        Receipt(
            remote_id="1445880548472328192",
            url="https://x.com/amplify_org/status/1445880548472328192",
        )
    ]
    request = responses.calls[0].request
    assert request.headers["Authorization"].startswith("OAuth ")
    assert 'oauth_token="2244994945-at"' in request.headers["Authorization"]
    assert "cs-secret-value" not in request.headers["Authorization"]


@responses.activate
def test_it_threads_parts_as_replies_and_reports_each_part_as_it_lands() -> None:
    created(responses.mock, "101", "part one 1/3")
    created(responses.mock, "102", "part two 2/3")
    created(responses.mock, "103", "part three 3/3")
    seen: list[tuple[int, str]] = []
    receipts = make().publish(
        OutgoingPost(parts=("part one 1/3", "part two 2/3", "part three 3/3"), idempotency_key="k"),
        on_part=lambda i, r: seen.append((i, r.remote_id)),
    )
    assert [r.remote_id for r in receipts] == ["101", "102", "103"]
    assert seen == [(0, "101"), (1, "102"), (2, "103")]
    bodies = [body_of(c) for c in responses.calls]
    assert "reply" not in bodies[0]
    assert bodies[1]["reply"] == {"in_reply_to_tweet_id": "101"}
    assert bodies[2]["reply"] == {"in_reply_to_tweet_id": "102"}


@responses.activate
def test_it_continues_a_thread_after_the_parts_that_already_landed() -> None:
    created(responses.mock, "203", "third")
    landed = (Receipt(remote_id="201"), Receipt(remote_id="202"))
    seen: list[int] = []
    receipts = make().publish(
        OutgoingPost(parts=("first", "second", "third"), idempotency_key="k", landed=landed),
        on_part=lambda i, r: seen.append(i),
    )
    assert [r.remote_id for r in receipts] == ["201", "202", "203"]
    assert seen == [2]
    assert len(responses.calls) == 1
    assert body_of(responses.calls[0])["reply"] == {"in_reply_to_tweet_id": "202"}


@responses.activate
def test_it_uploads_images_as_multipart_with_alt_text_before_the_post(tmp_path: Path) -> None:
    image = tmp_path / "clinic.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\nfake-png-bytes")
    responses.post(
        f"{BASE}/2/media/upload",
        json={
            "data": {
                "id": "1880028106020515840",
                "media_key": "3_1880028106020515840",
                "size": 22,
                "expires_after_secs": 86400,
                "image": {"image_type": "image/png", "w": 1, "h": 1},
            }
        },
        headers=RL_HEADERS,
    )
    responses.post(
        f"{BASE}/2/media/metadata",
        json={
            "data": {
                "id": "1880028106020515840",
                "associated_metadata": {"alt_text": {"text": "Nurses at the new triage desk"}},
            }
        },
        headers=RL_HEADERS,
    )
    created(responses.mock, "301", "With a picture")
    make().publish(
        OutgoingPost(
            parts=("With a picture",),
            idempotency_key="k",
            media=(Media(str(image), "Nurses at the new triage desk", "image/png"),),
        )
    )
    upload, metadata, post = responses.calls
    assert upload.request.headers["Content-Type"].startswith("multipart/form-data")
    assert upload.request.headers["Authorization"].startswith("OAuth ")
    raw = b"Content-Type: " + upload.request.headers["Content-Type"].encode() + b"\r\n\r\n"
    body = upload.request.body
    assert isinstance(body, bytes)
    message = BytesParser(policy=email_policy).parsebytes(raw + body)
    fields = {
        part.get_param("name", header="content-disposition"): part for part in message.iter_parts()
    }
    assert fields["media_category"].get_content() == "tweet_image"
    assert fields["media"].get_content() == image.read_bytes()
    assert fields["media"].get_content_type() == "image/png"
    assert body_of(metadata) == {
        "id": "1880028106020515840",
        "metadata": {"alt_text": {"text": "Nurses at the new triage desk"}},
    }
    assert body_of(post)["media"] == {"media_ids": ["1880028106020515840"]}


@responses.activate
def test_it_treats_a_duplicate_refusal_as_a_post_that_already_landed() -> None:
    responses.post(f"{BASE}/2/tweets", json=DUPLICATE, status=403, headers=RL_HEADERS)
    me(responses.mock)
    responses.get(
        f"{BASE}/2/users/{USER_ID}/tweets",
        json={
            "data": [
                {"id": "402", "text": "Something else", "edit_history_tweet_ids": ["402"]},
                {
                    "id": "401",
                    "text": "Read it &amp; share https://t.co/AbC123",
                    "edit_history_tweet_ids": ["401"],
                    "entities": {
                        "urls": [
                            {
                                "start": 19,
                                "end": 42,
                                "url": "https://t.co/AbC123",
                                "expanded_url": "https://example.org/story?utm_source=x",
                                "display_url": "example.org/story?utm_sou…",
                            }
                        ]
                    },
                },
            ],
            "meta": {"result_count": 2, "newest_id": "402", "oldest_id": "401"},
        },
        headers=RL_HEADERS,
        match=[matchers.query_param_matcher({"max_results": "100"}, strict_match=False)],
    )
    receipts = make().publish(
        OutgoingPost(
            parts=("Read it & share https://example.org/story?utm_source=x",), idempotency_key="k"
        )
    )
    assert [r.remote_id for r in receipts] == ["401"]


@responses.activate
def test_it_fails_permanently_when_a_duplicate_is_not_among_recent_posts() -> None:
    responses.post(f"{BASE}/2/tweets", json=DUPLICATE, status=403, headers=RL_HEADERS)
    me(responses.mock)
    responses.get(
        f"{BASE}/2/users/{USER_ID}/tweets", json={"meta": {"result_count": 0}}, headers=RL_HEADERS
    )
    with pytest.raises(PermanentError, match="duplicate"):
        make().publish(OutgoingPost(parts=("hello",), idempotency_key="k"))


@responses.activate
def test_it_finds_the_landed_parts_of_a_thread_in_order_after_a_crash() -> None:
    me(responses.mock)
    timeline = [  # newest first, as X returns it
        {
            "id": "503",
            "text": "unrelated reply",
            "edit_history_tweet_ids": ["503"],
            "referenced_tweets": [{"type": "replied_to", "id": "999"}],
        },
        {
            "id": "502",
            "text": "two",
            "edit_history_tweet_ids": ["502"],
            "referenced_tweets": [{"type": "replied_to", "id": "501"}],
        },
        {"id": "501", "text": "one", "edit_history_tweet_ids": ["501"]},
        {"id": "500", "text": "two", "edit_history_tweet_ids": ["500"]},
    ]
    responses.get(
        f"{BASE}/2/users/{USER_ID}/tweets",
        json={"data": timeline, "meta": {"result_count": 4}},
        headers=RL_HEADERS,
    )
    found = make().find_published(OutgoingPost(parts=("one", "two", "three"), idempotency_key="k"))
    assert found is not None
    assert [r.remote_id for r in found] == ["501", "502"]


@responses.activate
def test_it_reports_nothing_landed_when_no_recent_post_matches() -> None:
    me(responses.mock)
    responses.get(
        f"{BASE}/2/users/{USER_ID}/tweets",
        json={
            "data": [{"id": "1", "text": "other", "edit_history_tweet_ids": ["1"]}],
            "meta": {"result_count": 1},
        },
        headers=RL_HEADERS,
    )
    assert make().find_published(OutgoingPost(parts=("mine",), idempotency_key="k")) is None


# --------------------------------------------------------------------------- errors


@responses.activate
def test_it_reports_a_rate_limit_with_the_reset_time_from_the_headers() -> None:
    responses.post(
        f"{BASE}/2/tweets",
        json=problem(429, "Too Many Requests", "Too Many Requests"),
        status=429,
        headers={
            "x-rate-limit-limit": "100",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": "1893456000",
        },
    )
    with pytest.raises(RateLimited) as info:
        make().publish(OutgoingPost(parts=("hi",), idempotency_key="k"))
    assert info.value.retry_at == datetime(2030, 1, 1, tzinfo=UTC)


@responses.activate
def test_it_reports_a_refused_token_as_an_auth_error_naming_the_account() -> None:
    responses.get(
        f"{BASE}/2/users/me",
        json=problem(401, "Unauthorized", "Unauthorized"),
        status=401,
        headers=RL_HEADERS,
    )
    with pytest.raises(AuthError) as info:
        make().whoami()
    assert "@amplify_org" in str(info.value)
    assert "regenerate the Access Token" in str(info.value)
    assert "secret-value" not in str(info.value)


@responses.activate
def test_it_reports_other_refusals_as_permanent_with_x_detail() -> None:
    responses.post(
        f"{BASE}/2/tweets",
        json=problem(403, "Forbidden", "You are not permitted to create a reply to this Tweet."),
        status=403,
        headers=RL_HEADERS,
    )
    with pytest.raises(PermanentError, match="not permitted to create a reply"):
        make().publish(OutgoingPost(parts=("hi",), idempotency_key="k"))


@responses.activate
def test_it_reports_an_app_without_write_permission_as_an_auth_problem() -> None:
    responses.post(
        f"{BASE}/2/tweets",
        json=problem(
            403,
            "Forbidden",
            "Your client app is not configured with the appropriate oauth1 app permissions "
            "for this endpoint.",
            "https://api.twitter.com/2/problems/oauth1-permissions",
        ),
        status=403,
        headers=RL_HEADERS,
    )
    with pytest.raises(AuthError, match="Read and write"):
        make().publish(OutgoingPost(parts=("hi",), idempotency_key="k"))


@responses.activate
def test_it_reports_a_bad_request_as_permanent_with_x_detail() -> None:
    responses.post(
        f"{BASE}/2/tweets",
        json={
            "errors": [{"parameters": {"text": ["x" * 300]}, "message": "Tweet text is too long."}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
        status=400,
        headers=RL_HEADERS,
    )
    with pytest.raises(PermanentError, match="Tweet text is too long"):
        make().publish(OutgoingPost(parts=("x" * 300,), idempotency_key="k"))


@responses.activate
def test_it_treats_a_server_error_as_transient() -> None:
    responses.post(
        f"{BASE}/2/tweets",
        json=problem(503, "Service Unavailable", "Service Unavailable"),
        status=503,
        headers=RL_HEADERS,
    )
    with pytest.raises(TransientError, match="503"):
        make().publish(OutgoingPost(parts=("hi",), idempotency_key="k"))


@responses.activate
def test_it_treats_a_refused_connection_as_transient() -> None:
    responses.post(f"{BASE}/2/tweets", body=requests.ConnectionError("connection reset by peer"))
    with pytest.raises(TransientError, match="Could not connect"):
        make().publish(OutgoingPost(parts=("hi",), idempotency_key="k"))


@responses.activate
def test_it_treats_a_timeout_as_transient() -> None:
    responses.post(f"{BASE}/2/tweets", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(TransientError, match="did not answer within 10 s"):
        make().publish(OutgoingPost(parts=("hi",), idempotency_key="k"))


@responses.activate
def test_it_sends_every_call_with_a_ten_second_timeout(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"png")
    responses.post(f"{BASE}/2/media/upload", json={"data": {"id": "5", "media_key": "3_5"}})
    responses.post(f"{BASE}/2/media/metadata", json={"data": {"id": "5"}})
    created(responses.mock, "7", "hi")
    me(responses.mock)
    connector = make()
    connector.publish(
        OutgoingPost(
            parts=("hi",), idempotency_key="k", media=(Media(str(image), "alt", "image/png"),)
        )
    )
    connector.whoami()
    assert [getattr(c.request, "req_kwargs", {}).get("timeout") for c in responses.calls] == [
        10.0,
        10.0,
        10.0,
        10.0,
    ]


def test_it_refuses_to_repost_and_offers_an_intent_link_instead() -> None:
    with pytest.raises(PermanentError, match="advocate's own click"):
        make().repost(Receipt(remote_id="42"), "key")
    assert share_url(Receipt(remote_id="42")) == "https://x.com/intent/retweet?tweet_id=42"
    assert XConnector.supports_repost is False


# --------------------------------------------------------------------------- reading


def tweet_with_metrics(tweet_id: str, n: int, private: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": tweet_id,
        "text": f"post {n}",
        "created_at": "2026-11-20T10:00:00.000Z",
        "edit_history_tweet_ids": [tweet_id],
        "public_metrics": {
            "retweet_count": n,
            "reply_count": n + 1,
            "like_count": n + 2,
            "quote_count": n + 3,
            "bookmark_count": n + 4,
            "impression_count": n + 5,
        },
    }
    if private:
        data["non_public_metrics"] = {
            "impression_count": n + 50,
            "url_link_clicks": 1,
            "user_profile_clicks": 0,
        }
    return data


@responses.activate
def test_it_reads_metrics_for_a_batch_of_100_posts_in_one_call() -> None:
    ids = [fresh_id(i) for i in range(100)]
    responses.get(
        f"{BASE}/2/tweets",
        json={"data": [tweet_with_metrics(t, n, True) for n, t in enumerate(ids)]},
        headers=RL_HEADERS,
    )
    metrics = make().fetch_metrics([Receipt(remote_id=t) for t in ids])
    assert len(responses.calls) == 1
    params = params_of(responses.calls[0])
    assert params["ids"].split(",") == ids
    assert set(params["tweet.fields"].split(",")) == {
        "public_metrics",
        "non_public_metrics",
        "created_at",
    }
    assert len(metrics) == 100
    m7 = metrics[7]
    assert (
        m7.remote_id,
        m7.reposts,
        m7.replies,
        m7.likes,
        m7.quotes,
        m7.bookmarks,
        m7.impressions,
    ) == (
        ids[7],
        7,
        8,
        9,
        10,
        11,
        57,
    )


@responses.activate
def test_it_asks_only_public_metrics_for_posts_older_than_30_days() -> None:
    responses.get(
        f"{BASE}/2/tweets",
        json={"data": [tweet_with_metrics(OLD_ID, 3, False)]},
        headers=RL_HEADERS,
    )
    (metric,) = make().fetch_metrics([Receipt(remote_id=OLD_ID)])
    assert params_of(responses.calls[0])["tweet.fields"] == "public_metrics,created_at"
    assert metric.impressions == 8
    assert created_at_from_id(OLD_ID) is not None
    assert created_at_from_id(OLD_ID).year == 2019  # type: ignore[union-attr]


@responses.activate
def test_it_falls_back_to_public_metrics_when_x_refuses_the_private_fields() -> None:
    tweet_id = fresh_id()
    responses.get(
        f"{BASE}/2/tweets",
        json={
            "errors": [
                {
                    "resource_id": tweet_id,
                    "field": "non_public_metrics",
                    "title": "Field Authorization Error",
                    "resource_type": "tweet",
                    "section": "data",
                    "detail": "Sorry, you are not authorized to access non_public_metrics "
                    f"on a Tweet [{tweet_id}].",
                    "type": "https://api.twitter.com/2/problems/not-authorized-for-field",
                }
            ]
        },
        headers=RL_HEADERS,
        match=[
            matchers.query_param_matcher(
                {"tweet.fields": "public_metrics,created_at,non_public_metrics"}, strict_match=False
            )
        ],
    )
    responses.get(
        f"{BASE}/2/tweets",
        json={"data": [tweet_with_metrics(tweet_id, 1, False)]},
        headers=RL_HEADERS,
        match=[
            matchers.query_param_matcher(
                {"tweet.fields": "public_metrics,created_at"}, strict_match=False
            )
        ],
    )
    (metric,) = make().fetch_metrics([Receipt(remote_id=tweet_id)])
    assert len(responses.calls) == 2
    assert metric.likes == 3


@responses.activate
def test_it_lists_retweeters_across_pages_with_their_follower_counts() -> None:
    def user(uid: str, followers: int) -> dict[str, Any]:
        return {
            "id": uid,
            "name": f"User {uid}",
            "username": f"user{uid}",
            "public_metrics": {
                "followers_count": followers,
                "following_count": 1,
                "tweet_count": 1,
                "listed_count": 0,
            },
        }

    responses.get(
        f"{BASE}/2/tweets/77/retweeted_by",
        json={
            "data": [user("1", 10), user("2", 20)],
            "meta": {
                "result_count": 2,
                "next_token": "7140dibdnow9c7btw481s8m561gat797rboud5r80xvzm",
            },
        },
        headers=RL_HEADERS,
        match=[
            matchers.query_param_matcher({"max_results": "100", "user.fields": "public_metrics"})
        ],
    )
    responses.get(
        f"{BASE}/2/tweets/77/retweeted_by",
        json={"data": [user("3", 30)], "meta": {"result_count": 1}},
        headers=RL_HEADERS,
        match=[
            matchers.query_param_matcher(
                {"pagination_token": "7140dibdnow9c7btw481s8m561gat797rboud5r80xvzm"},
                strict_match=False,
            )
        ],
    )
    responses.get(
        f"{BASE}/2/tweets/77/quote_tweets",
        json={
            "data": [
                {"id": "88", "text": "so good", "author_id": "4", "edit_history_tweet_ids": ["88"]}
            ],
            "includes": {"users": [user("4", 400)]},
            "meta": {"result_count": 1},
        },
        headers=RL_HEADERS,
    )
    spreaders = make().fetch_spreaders(Receipt(remote_id="77"))
    assert sorted((s.handle, s.followers_count, s.kind) for s in spreaders) == [
        ("user1", 10, "repost"),
        ("user2", 20, "repost"),
        ("user3", 30, "repost"),
        ("user4", 400, "quote"),
    ]


@responses.activate
def test_it_says_who_the_account_is() -> None:
    me(responses.mock)
    identity = make().whoami()
    assert (identity.remote_user_id, identity.handle, identity.followers_count) == (
        USER_ID,
        "amplify_org",
        1234,
    )
    assert params_of(responses.calls[0]) == {"user.fields": "public_metrics"}


# --------------------------------------------------------------------------- credentials and base


@responses.activate
def test_it_signs_with_an_oauth2_user_token_as_a_bearer() -> None:
    created(responses.mock, "601", "hello")
    make({"bearer": "oauth2-user-token"}).publish(
        OutgoingPost(parts=("hello",), idempotency_key="k")
    )
    assert responses.calls[0].request.headers["Authorization"] == "Bearer oauth2-user-token"


@responses.activate
def test_it_sends_every_call_to_the_configured_base_url() -> None:
    responses.get(
        "http://127.0.0.1:8099/xproxy/2/users/me",
        json={"data": {"id": "9", "name": "P", "username": "p"}},
        headers=RL_HEADERS,
    )
    assert make(base="http://127.0.0.1:8099/xproxy/").whoami().remote_user_id == "9"


@responses.activate
def test_it_defaults_to_api_x_com() -> None:
    responses.get(
        "https://api.x.com/2/users/me", json={"data": {"id": "9", "name": "P", "username": "p"}}
    )
    assert make(base="").whoami().handle == "p"


def test_it_asks_for_the_missing_credentials_by_name() -> None:
    with pytest.raises(AuthError, match="access_token_secret"):
        make({"api_key": "a", "api_secret": "b", "access_token": "c"})


def test_it_never_shows_secrets_in_its_repr() -> None:
    assert "secret-value" not in repr(make())


# --------------------------------------------------------------------------- validation


def test_it_accepts_a_post_within_280_weighted_characters() -> None:
    assert (
        make().validate(
            OutgoingPost(
                parts=("a" * 256 + " https://example.org/" + "x" * 200,), idempotency_key="k"
            )
        )
        == []
    )


def test_it_counts_cjk_and_emoji_as_two_and_names_the_overflow() -> None:
    problems = make().validate(OutgoingPost(parts=("ok", "日" * 141), idempotency_key="k"))
    assert problems == [
        "Part 2 of 2 is 282/280 characters on X (links count 23, emoji and CJK characters 2): "
        "shorten it by 2"
    ]


def test_it_requires_alt_text_and_at_most_four_images(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    from PIL import Image  # a real picture: validate checks images by content

    Image.new("RGB", (4, 4)).save(image, format="JPEG")
    media = (*[Media(str(image), "alt") for _ in range(4)], Media(str(image), "  "))
    problems = make().validate(OutgoingPost(parts=("hi",), idempotency_key="k", media=media))
    assert any("at most 4 images" in p and "remove 1" in p for p in problems)
    assert any("Image 5 (a.jpg) needs alt text" in p for p in problems)
    long_alt = make().validate(
        OutgoingPost(parts=("hi",), idempotency_key="k", media=(Media(str(image), "a" * 1001),))
    )
    assert long_alt == [
        "The alt text of image 1 (a.jpg) is 1001 characters; X allows 1,000: shorten it"
    ]


# --------------------------------------------------------------------------- limits in headers


def test_it_reads_every_limit_x_reports_and_waits_for_the_latest_used_up_one() -> None:
    from datetime import timedelta

    from connectors.x import limits_from_headers, retry_at_of

    now = int(time.time())
    headers = {
        "x-rate-limit-limit": "100",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(now + 600),
        "x-user-limit-24hour-limit": "17",
        "x-user-limit-24hour-remaining": "0",
        "x-user-limit-24hour-reset": str(now + 20_000),
        "x-app-limit-24hour-limit": "1667",
        "x-app-limit-24hour-remaining": "1200",
        "x-app-limit-24hour-reset": str(now + 50_000),
    }
    readings = limits_from_headers(headers)
    assert [(r.scope, r.window, r.remaining, r.limit) for r in readings] == [
        ("account", timedelta(minutes=15), 0, 100),
        ("account", timedelta(hours=24), 0, 17),
        ("app", timedelta(hours=24), 1200, 1667),
    ]
    # Not the app's reset (it has posts left), not the 15 minutes: the user's day.
    assert retry_at_of(readings) == datetime.fromtimestamp(now + 20_000, UTC)


def test_it_leaves_out_limits_whose_headers_it_cannot_read() -> None:
    from connectors.x import limits_from_headers, retry_at_of

    readings = limits_from_headers(
        {"x-rate-limit-remaining": "soon", "x-user-limit-24hour-remaining": "0"}
    )
    assert [(r.window.days, r.remaining, r.reset_at) for r in readings] == [(1, 0, None)]
    assert retry_at_of(readings) is None
