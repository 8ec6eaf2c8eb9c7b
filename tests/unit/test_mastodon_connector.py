"""MastodonConnector at the wire: the real mastodon-py SDK against `responses`-mocked HTTP.

Every body and header below is shaped as docs.joinmastodon.org documents it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
from PIL import Image
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
from connectors.mastodon import MastodonConnector, clear_instance_cache, html_to_text

BASE = "https://mastodon.example"
TOKEN = "secret-app-token"


def status(sid: str, content: str = "<p>hi</p>", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": sid,
        "created_at": "2026-11-24T01:00:00.000Z",
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "uri": f"{BASE}/users/team/statuses/{sid}",
        "url": f"{BASE}/@team/{sid}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "edited_at": None,
        "content": content,
        "reblog": None,
        "account": account("1", "team"),
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": None,
        "poll": None,
    }
    body.update(extra)
    return body


def account(aid: str, username: str, followers: int = 10) -> dict[str, Any]:
    return {
        "id": aid,
        "username": username,
        "acct": username,
        "display_name": username.title(),
        "locked": False,
        "bot": False,
        "created_at": "2024-01-01T00:00:00.000Z",
        "note": "",
        "url": f"{BASE}/@{username}",
        "followers_count": followers,
        "following_count": 1,
        "statuses_count": 5,
        "emojis": [],
        "fields": [],
    }


def instance(version: str = "4.3.1", max_characters: int = 500) -> dict[str, Any]:
    return {
        "domain": "mastodon.example",
        "title": "Example",
        "version": version,
        "configuration": {
            "statuses": {
                "max_characters": max_characters,
                "max_media_attachments": 4,
                "characters_reserved_per_url": 23,
            },
            "media_attachments": {"image_size_limit": 16777216},
        },
        "api_versions": {"mastodon": 2},
    }


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_instance_cache()
    yield
    clear_instance_cache()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def connector() -> MastodonConnector:
    context = ConnectorContext(
        handle="@team", service_url=BASE + "/", credentials={"access_token": TOKEN}
    )
    return MastodonConnector(context)


def post(*parts: str, key: str = "delivery-key", **kw: Any) -> OutgoingPost:
    return OutgoingPost(parts=parts, idempotency_key=key, **kw)


def form(call: Any) -> dict[str, list[str]]:
    body = call.request.body
    return parse_qs(body if isinstance(body, str) else body.decode())


# --------------------------------------------------------------------------- publishing


def test_it_sends_the_text_with_the_token_and_the_delivery_key(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.post(
        f"{BASE}/api/v1/statuses",
        json=status("100"),
        match=[
            matchers.header_matcher(
                {"Idempotency-Key": "delivery-key", "Authorization": f"Bearer {TOKEN}"}
            )
        ],
    )
    [receipt] = connector.publish(post("Nurses cut waits"))
    assert receipt == Receipt("100", uri=f"{BASE}/users/team/statuses/100", url=f"{BASE}/@team/100")
    assert form(rsps.calls[0])["status"] == ["Nurses cut waits"]
    assert "in_reply_to_id" not in form(rsps.calls[0])


def test_it_threads_with_in_reply_to_and_a_key_per_part(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    for sid, key in (("101", "delivery-key:1"), ("102", "delivery-key:2")):
        rsps.post(
            f"{BASE}/api/v1/statuses",
            json=status(sid),
            match=[matchers.header_matcher({"Idempotency-Key": key})],
        )
    landed = (Receipt("100"),)
    got: list[tuple[int, str]] = []
    receipts = connector.publish(
        post("a 1/3", "b 2/3", "c 3/3", landed=landed),
        on_part=lambda i, r: got.append((i, r.remote_id)),
    )
    assert [r.remote_id for r in receipts] == ["100", "101", "102"]
    assert got == [(1, "101"), (2, "102")]
    assert form(rsps.calls[0])["in_reply_to_id"] == ["100"]
    assert form(rsps.calls[1])["in_reply_to_id"] == ["101"]
    assert form(rsps.calls[1])["status"] == ["c 3/3"]


def test_it_sends_nothing_when_every_part_already_landed(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    landed = (Receipt("1"), Receipt("2"))
    assert connector.publish(post("a", "b", landed=landed)) == list(landed)
    assert len(rsps.calls) == 0


def test_it_uploads_media_with_alt_text_to_v2_media_then_attaches_it(
    rsps: responses.RequestsMock, connector: MastodonConnector, tmp_path: Path
) -> None:
    path = tmp_path / "chart.png"
    Image.new("RGB", (4, 4)).save(path)
    rsps.get(f"{BASE}/api/v2/instance/", json=instance())
    rsps.post(
        f"{BASE}/api/v2/media",
        json={"id": "555", "type": "image", "url": f"{BASE}/m/555.png", "description": "alt"},
    )
    rsps.post(f"{BASE}/api/v1/statuses", json=status("100"))
    connector.publish(post("with chart", media=(Media(str(path), "Waits fell", "image/png"),)))
    upload = rsps.calls[1].request
    assert upload.url == f"{BASE}/api/v2/media"
    body = upload.body if isinstance(upload.body, bytes) else str(upload.body).encode()
    assert b'name="description"' in body and b"Waits fell" in body
    assert b"image/png" in body
    assert form(rsps.calls[2])["media_ids[]"] == ["555"]


def test_it_checks_a_202_upload_once_and_then_reports_transient(
    rsps: responses.RequestsMock, connector: MastodonConnector, tmp_path: Path
) -> None:
    path = tmp_path / "chart.png"
    Image.new("RGB", (4, 4)).save(path)
    rsps.get(f"{BASE}/api/v2/instance/", json=instance())
    rsps.post(f"{BASE}/api/v2/media", status=202, json={"id": "9", "type": "image", "url": None})
    rsps.get(f"{BASE}/api/v1/media/9", status=206, json={"id": "9", "type": "image", "url": None})
    with pytest.raises(TransientError, match="still processing"):
        connector.publish(post("x", media=(Media(str(path), "alt", "image/png"),)))
    assert not any(str(c.request.url).endswith("/api/v1/statuses") for c in rsps.calls)


def test_it_reblogs_and_lists_reblogging_accounts_with_followers(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.post(
        f"{BASE}/api/v1/statuses/100/reblog",
        json=status("200", content="", reblog=status("100"), url=None),
    )
    rsps.get(
        f"{BASE}/api/v1/statuses/100/reblogged_by",
        json=[account("7", "nurse.jo", 1500), account("8", "dr@other.example", 90)],
    )
    receipt = connector.repost(Receipt("100"), "k")
    assert receipt.remote_id == "200"
    spreaders = connector.fetch_spreaders(Receipt("100"))
    assert [(s.remote_user_id, s.handle, s.followers_count) for s in spreaders] == [
        ("7", "nurse.jo", 1500),
        ("8", "dr@other.example", 90),
    ]


def test_it_says_who_the_account_is(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v1/accounts/verify_credentials", json=account("1", "team", 77))
    me = connector.whoami()
    assert (me.remote_user_id, me.handle, me.followers_count) == ("1", "team", 77)


def test_it_deletes_and_treats_an_already_deleted_status_as_done(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.delete(f"{BASE}/api/v1/statuses/100", json=status("100", text="hi"))
    rsps.delete(f"{BASE}/api/v1/statuses/101", status=404, json={"error": "Record not found"})
    connector.delete(Receipt("100"))
    connector.delete(Receipt("101"))
    assert len(rsps.calls) == 2


# --------------------------------------------------------------------------- metrics


def test_it_reads_counts_in_one_batch_call_on_4_3(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v2/instance/", json=instance("4.3.1"))
    rsps.get(
        f"{BASE}/api/v1/statuses",
        json=[
            status("1", reblogs_count=3, favourites_count=5, replies_count=1, quotes_count=2),
            status("2", favourites_count=1),
        ],
    )
    metrics = connector.fetch_metrics([Receipt("1"), Receipt("2")])
    assert [(m.remote_id, m.likes, m.reposts, m.replies, m.quotes) for m in metrics] == [
        ("1", 5, 3, 1, 2),
        ("2", 1, 0, 0, 0),
    ]
    batch = rsps.calls[1].request
    assert parse_qs(str(batch.url).split("?", 1)[1])["id[]"] == ["1", "2"]


def test_it_reads_one_status_per_call_on_older_instances(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v2/instance/", json=instance("4.2.8"))
    rsps.get(f"{BASE}/api/v1/statuses/1", json=status("1", favourites_count=9))
    rsps.get(f"{BASE}/api/v1/statuses/2", status=404, json={"error": "Record not found"})
    metrics = connector.fetch_metrics([Receipt("1"), Receipt("2")])
    assert [(m.remote_id, m.likes) for m in metrics] == [("1", 9)]


def test_it_splits_more_than_a_batch_into_several_calls(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v2/instance/", json=instance("4.4.0"))

    def echo(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        ids = parse_qs(str(request.url).split("?", 1)[1])["id[]"]
        return 200, {}, json.dumps([status(i) for i in ids])

    rsps.add_callback(responses.GET, f"{BASE}/api/v1/statuses", callback=echo)
    targets = [Receipt(str(i)) for i in range(1, 46)]
    metrics = connector.fetch_metrics(targets)
    assert [m.remote_id for m in metrics] == [t.remote_id for t in targets]
    assert sum(1 for c in rsps.calls if "/api/v1/statuses?" in str(c.request.url)) == 3


# --------------------------------------------------------------------------- validate


def test_it_reads_the_instance_limit_once_for_two_validations(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v2/instance/", json=instance(max_characters=5000))
    assert connector.validate(post("a" * 4000)) == []
    problems = connector.validate(post("ok", "b" * 5001))
    assert problems == [
        "Part 2 of the thread is 5001 characters; mastodon.example allows 5000. "
        "Shorten it or split it into a thread."
    ]
    assert len(rsps.calls) == 1


def test_it_falls_back_to_v1_instance_on_older_servers(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v2/instance/", status=404, json={"error": "Record not found"})
    rsps.get(
        f"{BASE}/api/v1/instance/",
        json={"uri": "mastodon.example", "version": "3.5.3", "max_toot_chars": 1000},
    )
    assert connector.instance().max_characters == 1000
    assert connector.instance().version == (3, 5, 3)
    assert len(rsps.calls) == 2


def test_it_validates_with_the_default_limit_when_the_instance_is_unreachable(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v2/instance/", body=requests.ConnectionError("down"))
    assert connector.validate(post("a" * 501))
    assert connector.validate(post("a" * 500)) == []


def test_it_counts_urls_as_23_when_validating(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v2/instance/", json=instance(max_characters=30))
    assert connector.validate(post("see https://example.org/" + "x" * 100)) == []


# --------------------------------------------------------------------------- reconcile


def test_it_finds_a_landed_thread_in_recent_statuses_by_text(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    part1 = "Thanks @alice@health.example for https://example.org/story?utm_source=mastodon 1/2"
    part2 = "Line one\nline two & more 2/2"
    rsps.get(f"{BASE}/api/v1/accounts/verify_credentials", json=account("1", "team"))
    html1 = (
        '<p>Thanks <span class="h-card"><a href="https://health.example/@alice" '
        'class="u-url mention">@<span>alice</span></a></span> for '
        '<a href="https://example.org/story?utm_source=mastodon" rel="nofollow noopener">'
        '<span class="invisible">https://</span><span class="ellipsis">example.org/story</span>'
        '<span class="invisible">?utm_source=mastodon</span></a> 1/2</p>'
    )
    rsps.get(
        f"{BASE}/api/v1/accounts/1/statuses",
        json=[
            status("12", "<p>unrelated</p>"),
            status("11", "<p>Line one<br />line two &amp; more 2/2</p>", in_reply_to_id="10"),
            status("10", html1),
            status("9", html1),  # the same text posted earlier in another thread
        ],
        match=[
            matchers.query_param_matcher(
                {"limit": "40", "exclude_reblogs": "1"}, strict_match=False
            )
        ],
    )
    found = connector.find_published(post(part1, part2))
    assert found is not None and [r.remote_id for r in found] == ["10", "11"]


def test_it_finds_nothing_when_no_recent_status_matches(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(f"{BASE}/api/v1/accounts/verify_credentials", json=account("1", "team"))
    rsps.get(f"{BASE}/api/v1/accounts/1/statuses", json=[status("5", "<p>other</p>")])
    assert connector.find_published(post("mine")) is None


def test_it_reads_status_html_back_as_the_typed_text() -> None:
    assert html_to_text("<p>a &lt;b&gt;<br />c</p><p>d</p>") == "a <b>\nc\n\nd"


# --------------------------------------------------------------------------- errors


def test_it_reports_429_as_rate_limited_until_the_reset_header(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    reset = datetime.now(UTC) + timedelta(minutes=4)
    rsps.post(
        f"{BASE}/api/v1/statuses",
        status=429,
        json={"error": "Too many requests"},
        headers={
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        },
    )
    with pytest.raises(RateLimited) as caught:
        connector.publish(post("x"))
    assert caught.value.retry_at is not None
    assert abs((caught.value.retry_at - reset).total_seconds()) < 3


def test_it_reports_401_as_auth_naming_account_instance_and_scopes(
    rsps: responses.RequestsMock, connector: MastodonConnector
) -> None:
    rsps.get(
        f"{BASE}/api/v1/accounts/verify_credentials",
        status=401,
        json={"error": "The access token is invalid"},
    )
    with pytest.raises(AuthError) as caught:
        connector.whoami()
    assert str(caught.value) == (
        "Mastodon refused the access token for @team on mastodon.example: create a new "
        "application token with write:statuses, write:media, read scopes and reconnect"
    )
    assert TOKEN not in repr(connector)


@pytest.mark.parametrize(
    ("code", "error", "kind"),
    [
        (422, "Validation failed: Text character limit of 500 exceeded", PermanentError),
        (403, "This action is not allowed", PermanentError),
        (404, "Record not found", PermanentError),
        (403, "This action is outside the authorized scopes", AuthError),
        (422, "Cannot attach files that have not finished processing.", TransientError),
        (500, "We're sorry, but something went wrong", TransientError),
        (502, "Bad gateway", TransientError),
        (503, "Service unavailable", TransientError),
    ],
)
def test_it_maps_each_refusal_to_its_kind_with_the_servers_text(
    rsps: responses.RequestsMock,
    connector: MastodonConnector,
    code: int,
    error: str,
    kind: type[Exception],
) -> None:
    rsps.post(f"{BASE}/api/v1/statuses", status=code, json={"error": error})
    with pytest.raises(kind) as caught:
        connector.publish(post("x"))
    if kind is PermanentError:
        assert error in str(caught.value)


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("reset by peer"), requests.ReadTimeout("read timed out")],
)
def test_it_reports_network_failures_as_transient(
    rsps: responses.RequestsMock, connector: MastodonConnector, failure: Exception
) -> None:
    rsps.post(f"{BASE}/api/v1/statuses", body=failure)
    with pytest.raises(TransientError, match=r"could not reach Mastodon at mastodon\.example"):
        connector.publish(post("x"))


def test_it_reports_a_missing_media_file_as_permanent(
    rsps: responses.RequestsMock, connector: MastodonConnector, tmp_path: Path
) -> None:
    rsps.get(f"{BASE}/api/v2/instance/", json=instance())
    with pytest.raises(PermanentError, match="media file"):
        connector.publish(post("x", media=(Media(str(tmp_path / "gone.png"), "alt"),)))


def test_it_refuses_to_start_without_an_instance_url_or_token() -> None:
    with pytest.raises(ValueError, match="instance URL"):
        MastodonConnector(ConnectorContext("team", "", {"access_token": "t"}))
    with pytest.raises(ValueError, match="no access token"):
        MastodonConnector(ConnectorContext("team", BASE, {}))
