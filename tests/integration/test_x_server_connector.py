"""The X connector against the local X stand-in over real sockets (tests/fakes/x_server.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

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
from connectors.x import XConnector
from tests.fakes.x_server import XFakeServer, remote_inject, remote_stats

ROOT = Path(__file__).resolve().parents[2]

CREDS = {
    "api_key": "consumer-key",
    "api_secret": "consumer-secret",
    "access_token": "1001-access-token",
    "access_token_secret": "access-token-secret",
}


@pytest.fixture
def server() -> Iterator[XFakeServer]:
    with XFakeServer(hang_seconds=5) as fake:
        fake.add_user(
            "amplify_org",
            followers=2500,
            token=CREDS["access_token"],
            token_secret=CREDS["access_token_secret"],
            consumer_secret=CREDS["api_secret"],
        )
        yield fake


def connect(
    server: XFakeServer, creds: dict[str, str] | None = None, timeout: float = 1.0
) -> XConnector:
    context = ConnectorContext(
        handle="amplify_org", service_url=server.url, credentials=creds or CREDS
    )
    return XConnector(context, timeout=timeout)


def thread(*parts: str) -> OutgoingPost:
    return OutgoingPost(parts=parts, idempotency_key="key")


THREE = (
    "Our clinic cut ER waits by 40% 1/3",
    "Read how: https://example.org/story?utm_source=x & share 2/3",
    "Thank you, nurses <3 3/3",
)


def test_it_publishes_a_three_part_thread_as_a_reply_chain(server: XFakeServer) -> None:
    seen: list[int] = []
    receipts = connect(server).publish(thread(*THREE), on_part=lambda i, r: seen.append(i))
    posts = server.posts
    assert [p["text"] for p in posts] == list(THREE)
    assert [p["id"] for p in posts] == [r.remote_id for r in receipts]
    assert posts[1]["in_reply_to"] == posts[0]["id"]
    assert posts[2]["in_reply_to"] == posts[1]["id"]
    assert seen == [0, 1, 2]
    assert receipts[0].url == f"https://x.com/amplify_org/status/{posts[0]['id']}"
    assert server.calls["POST /2/tweets"] == 3


def test_it_finds_every_part_of_a_published_thread_despite_t_co_links(
    server: XFakeServer,
) -> None:
    connector = connect(server)
    published = connector.publish(thread(*THREE))
    assert connector.find_published(thread(*THREE)) == published
    assert server.calls["GET /2/users/:id/tweets"] == 1


def test_it_continues_a_thread_from_the_parts_found_after_a_failure(
    server: XFakeServer,
) -> None:
    connector = connect(server)
    server.inject("server_error", endpoint="POST /2/tweets", skip=1)
    seen: list[int] = []
    with pytest.raises(TransientError):
        connector.publish(thread(*THREE), on_part=lambda i, r: seen.append(i))
    assert seen == [0]
    found = connector.find_published(thread(*THREE))
    assert found is not None and [r.remote_id for r in found] == [server.posts[0]["id"]]
    receipts = connector.publish(
        OutgoingPost(parts=THREE, idempotency_key="key", landed=tuple(found))
    )
    assert [p["id"] for p in server.posts] == [r.remote_id for r in receipts]
    assert server.posts[1]["in_reply_to"] == receipts[0].remote_id


def test_it_reports_nothing_landed_when_the_first_part_failed(server: XFakeServer) -> None:
    connector = connect(server)
    server.inject("503", endpoint="POST /2/tweets")
    with pytest.raises(TransientError, match="503"):
        connector.publish(thread(*THREE))
    assert connector.find_published(thread(*THREE)) is None


def test_it_reconciles_a_post_whose_answer_was_lost_instead_of_posting_twice(
    server: XFakeServer,
) -> None:
    connector = connect(server)
    server.inject("hang", endpoint="POST /2/tweets", after=True)
    with pytest.raises(TransientError, match="did not answer"):
        connector.publish(thread(*THREE))
    assert len(server.posts) == 1  # part 1 landed; its answer never came back
    found = connector.find_published(thread(*THREE))
    assert found is not None and len(found) == 1
    receipts = connector.publish(
        OutgoingPost(parts=THREE, idempotency_key="key", landed=tuple(found))
    )
    assert len(receipts) == 3
    assert len(server.posts) == 3


def test_it_turns_a_duplicate_refusal_into_the_existing_post(server: XFakeServer) -> None:
    connector = connect(server)
    server.inject("reset", endpoint="POST /2/tweets", after=True)
    with pytest.raises(TransientError, match="Could not connect"):
        connector.publish(thread(THREE[1]))
    (existing,) = server.posts
    (receipt,) = connector.publish(thread(THREE[1]))  # a blind retry: X says duplicate
    assert receipt.remote_id == existing["id"]
    assert len(server.posts) == 1


def test_it_uploads_an_image_with_alt_text(server: XFakeServer, tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    Image.new("RGB", (8, 8), (10, 120, 200)).save(path)
    post = OutgoingPost(
        parts=("Wait times, before and after",),
        idempotency_key="k",
        media=(Media(str(path), "Bar chart: waits fell from 50 to 30 minutes", "image/png"),),
    )
    connector = connect(server)
    (receipt,) = connector.publish(post)
    (media,) = server.media.values()
    assert media["alt_text"] == "Bar chart: waits fell from 50 to 30 minutes"
    assert media["media_category"] == "tweet_image"
    assert media["size"] == path.stat().st_size
    assert server.posts[0]["media_ids"] == [next(iter(server.media))]
    assert connector.find_published(post) == [receipt]  # the appended media link is ignored


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("server_error", TransientError, "server error"),
        ("reset", TransientError, "Could not connect"),
        ("hang", TransientError, "did not answer within 1 s"),
        ("unauthorized", AuthError, "regenerate the Access Token"),
    ],
)
def test_it_maps_each_injected_fault_to_its_error_kind(
    server: XFakeServer, kind: str, error: type[Exception], message: str
) -> None:
    server.inject(kind, endpoint="POST /2/tweets")
    with pytest.raises(error, match=message):
        connect(server).publish(thread("hello"))
    assert server.posts == []
    assert connect(server).publish(thread("hello"))  # one fault, consumed once


def test_it_reports_an_injected_rate_limit_with_its_reset_time(server: XFakeServer) -> None:
    server.inject("rate_limit", endpoint="POST /2/tweets", reset_in=600)
    with pytest.raises(RateLimited) as info:
        connect(server).publish(thread("hello"))
    assert info.value.retry_at is not None
    wait = (info.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 590 <= wait <= 601


def test_it_hits_the_per_user_post_limit() -> None:
    with XFakeServer(post_limit=2) as server:
        connector = connect(server)
        connector.publish(thread("one", "two"))
        with pytest.raises(RateLimited):
            connector.publish(thread("three"))
        assert len(server.posts) == 2


def test_it_refuses_a_request_with_a_bad_oauth_signature(server: XFakeServer) -> None:
    wrong = {**CREDS, "api_secret": "not-the-consumer-secret"}
    with pytest.raises(AuthError):
        connect(server, wrong).whoami()
    assert connect(server).whoami().followers_count == 2500


def test_it_reads_metrics_and_spreaders(server: XFakeServer) -> None:
    connector = connect(server)
    (receipt,) = connector.publish(thread("Metrics please"))
    fan = server.add_user("fan_one", followers=321)
    server.retweet(receipt.remote_id, fan.id)
    server.engage(receipt.remote_id, like_count=4, impression_count=90)
    (metrics,) = connector.fetch_metrics([receipt, Receipt(remote_id="1")])
    assert (metrics.likes, metrics.reposts, metrics.impressions) == (4, 1, 90)
    (spreader,) = connector.fetch_spreaders(receipt)
    assert (spreader.handle, spreader.followers_count, spreader.kind) == ("fan_one", 321, "repost")


def test_it_deletes_a_post(server: XFakeServer) -> None:
    connector = connect(server)
    (receipt,) = connector.publish(thread("Short-lived"))
    connector.delete(receipt)
    connector.delete(receipt)  # already gone: no error
    assert server.posts == []


def test_it_refuses_an_empty_post_permanently(server: XFakeServer) -> None:
    with pytest.raises(PermanentError, match="Tweet text or media is required"):
        connect(server).publish(thread(""))


def test_it_runs_as_its_own_process_shared_over_http(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.x_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        context = ConnectorContext(handle="a", service_url=url, credentials={"bearer": "tok-a"})
        XConnector(context, timeout=2).publish(thread("from process A"))
        remote_inject(url, "server_error", endpoint="POST /2/tweets", status=502)
        with pytest.raises(TransientError, match="502"):
            XConnector(context, timeout=2).publish(thread("again"))
        stats = remote_stats(url)
        assert stats["posts"] == 1
        assert stats["calls"]["POST /2/tweets"] == 2
        with urllib.request.urlopen(f"{url}/_fake/posts", timeout=2) as response:
            assert [p["text"] for p in json.loads(response.read())["posts"]] == ["from process A"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_it_adds_the_configured_latency_to_each_request() -> None:
    with XFakeServer(latency=0.3) as server:
        started = time.monotonic()
        connect(server).whoami()
        assert time.monotonic() - started >= 0.3


def test_it_counts_concurrent_posts_from_many_threads_exactly(server: XFakeServer) -> None:
    errors: list[Exception] = []

    def post(n: int) -> None:
        try:
            connect(server, timeout=10).publish(thread(f"parallel story {n}"))
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    workers = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert len({p["id"] for p in server.posts}) == 20
    assert server.stats()["posts_created"] == 20
    assert server.calls["POST /2/tweets"] == 20


# --------------------------------------------------------------------------- time bound

REMINDER = "Tomorrow is advocacy day at the Capitol - join us!"
PAIR = (f"{REMINDER} 1/2", "Bring a friend and water 2/2")


def bounded(*parts: str, landed: tuple[Receipt, ...] = ()) -> OutgoingPost:
    """A post first claimed now: nothing X dated before five minutes ago can be it."""
    not_before = datetime.now(UTC) - timedelta(minutes=5)
    return OutgoingPost(parts=parts, idempotency_key="key", landed=landed, not_before=not_before)


def posted_before(server: XFakeServer, *parts: str, ago: timedelta) -> list[str]:
    """The same words posted ``ago`` (a reply chain when several parts); their ids."""
    ids: list[str] = []
    for part in parts:
        ids.append(
            server.add_post(
                "amplify_org",
                part,
                created_at=datetime.now(UTC) - ago,
                in_reply_to=ids[-1] if ids else None,
            )
        )
    return ids


def test_it_ignores_last_weeks_post_with_the_same_words_when_nothing_landed(
    server: XFakeServer,
) -> None:
    (old,) = posted_before(server, REMINDER, ago=timedelta(days=7))
    connector = connect(server)
    server.inject("reset", endpoint="POST /2/tweets")
    with pytest.raises(TransientError):
        connector.publish(bounded(REMINDER))  # never reached X
    assert connector.find_published(bounded(REMINDER)) is None
    (receipt,) = connector.publish(bounded(REMINDER))
    assert [p["id"] for p in server.posts] == [old, receipt.remote_id]
    assert server.posts[0]["text"] == REMINDER  # untouched


def test_it_finds_the_post_that_landed_this_time_not_last_weeks(server: XFakeServer) -> None:
    (old,) = posted_before(server, REMINDER, ago=timedelta(days=7))
    connector = connect(server)
    server.inject("hang", endpoint="POST /2/tweets", after=True)
    with pytest.raises(TransientError, match="did not answer"):
        connector.publish(bounded(REMINDER))  # accepted; the answer never came
    found = connector.find_published(bounded(REMINDER))
    assert found is not None and [r.remote_id for r in found] == [server.posts[1]["id"]]
    assert found[0].remote_id != old
    assert server.stats()["posts_created"] == 1


def test_it_ignores_last_weeks_thread_and_continues_this_one_after_its_landed_part(
    server: XFakeServer,
) -> None:
    old = posted_before(server, *PAIR, ago=timedelta(days=7))
    connector = connect(server)
    assert connector.find_published(bounded(*PAIR)) is None
    server.inject("reset", endpoint="POST /2/tweets", after=True)
    with pytest.raises(TransientError):
        connector.publish(bounded(*PAIR))  # part 1 accepted, its answer lost
    found = connector.find_published(bounded(*PAIR))
    assert found is not None and len(found) == 1 and found[0].remote_id not in old
    receipts = connector.publish(bounded(*PAIR, landed=tuple(found)))
    new = [p for p in server.posts if p["id"] not in old]
    assert [p["id"] for p in new] == [r.remote_id for r in receipts]
    assert new[1]["in_reply_to"] == new[0]["id"]
    assert server.stats()["posts_created"] == 2


def test_it_never_takes_an_earlier_post_for_this_one_when_x_calls_it_a_duplicate(
    server: XFakeServer,
) -> None:
    """X refuses the same words within its duplicate window; the post from two hours ago
    is older than the first claim, so it is not this delivery's receipt."""
    posted_before(server, REMINDER, ago=timedelta(hours=2))
    with pytest.raises(PermanentError, match="before this story was sent"):
        connect(server).publish(bounded(REMINDER))
    assert server.stats()["posts_created"] == 0


def test_it_asks_x_only_for_posts_since_the_first_claim(server: XFakeServer) -> None:
    posted_before(server, *(f"older post {n}" for n in range(3)), ago=timedelta(days=2))
    connector = connect(server)
    connector.publish(bounded("fresh"))
    assert connector._timeline(bounded("fresh"))[-1].text == "fresh"
    assert len(connector._timeline(bounded("fresh"))) == 1


# --------------------------------------------------------------------------- daily caps


def test_it_waits_for_the_24_hour_reset_when_the_user_cap_is_used_up(server: XFakeServer) -> None:
    server.inject(
        "rate_limit",
        endpoint="POST /2/tweets",
        reset_in=600,
        daily="user",
        daily_reset_in=20 * 3600,
    )
    with pytest.raises(RateLimited) as info:
        connect(server).publish(thread("hello"))
    assert info.value.retry_at is not None
    wait = (info.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 20 * 3600 - 10 <= wait <= 20 * 3600 + 1  # the day's reset, not the 15 minutes
    assert "X allows 17 posts a day for this account on your plan" in str(info.value)
    assert "the next goes out at" in str(info.value)
    daily = [r for r in info.value.limits if r.window == timedelta(hours=24)]
    assert [(r.scope, r.remaining, r.limit) for r in daily] == [("account", 0, 17)]


def test_it_waits_for_the_app_cap_reset_and_says_it_is_the_apps(server: XFakeServer) -> None:
    server.inject("rate_limit", endpoint="POST /2/tweets", daily="app", daily_reset_in=5 * 3600)
    with pytest.raises(RateLimited, match="a day for your X app") as info:
        connect(server).publish(thread("hello"))
    assert info.value.retry_at is not None
    assert (info.value.retry_at - datetime.now(UTC)) > timedelta(hours=4)


def test_it_reports_the_daily_caps_x_counts_on_every_post() -> None:
    with XFakeServer(user_day_limit=2, app_day_limit=1667) as server:
        server.add_user("amplify_org", token=CREDS["access_token"])
        connector = connect(server)
        connector.publish(thread("one"))
        seen = {(r.scope, r.window): r for r in connector.limits_seen}
        assert seen["account", timedelta(hours=24)].remaining == 1
        assert seen["app", timedelta(hours=24)].limit == 1667
        connector.publish(thread("two"))
        with pytest.raises(RateLimited, match="X allows 2 posts a day") as info:
            connector.publish(thread("three"))
        assert info.value.retry_at is not None
        assert info.value.retry_at - datetime.now(UTC) > timedelta(hours=23)
        assert len(server.posts) == 2


# --------------------------------------------------------------------------- garbage


@pytest.mark.parametrize("body", ["no_data", "missing_ids", "wrong_types"])
def test_it_reports_an_upload_answer_without_a_media_id_as_transient(
    server: XFakeServer, tmp_path: Path, body: str
) -> None:
    path = tmp_path / "chart.png"
    Image.new("RGB", (8, 8), (10, 120, 200)).save(path)
    post = OutgoingPost(
        parts=("With a chart",),
        idempotency_key="k",
        media=(Media(str(path), "A chart", "image/png"),),
    )
    server.inject("garbage", endpoint="POST /2/media/upload", body=body)
    with pytest.raises(
        TransientError, match="cannot read while trying to read the id of the image"
    ):
        connect(server).publish(post)
    assert server.posts == []


def test_it_reports_a_201_without_data_as_transient_and_finds_the_post_on_retry(
    server: XFakeServer,
) -> None:
    connector = connect(server)
    server.inject("garbage", endpoint="POST /2/tweets", body="no_data")
    with pytest.raises(TransientError, match="X sent an answer Amplify cannot read"):
        connector.publish(bounded(REMINDER))
    (receipt,) = connector.publish(bounded(REMINDER))  # X: duplicate -> the landed post
    assert [p["id"] for p in server.posts] == [receipt.remote_id]


# --------------------------------------------------------------------------- the whole path


def test_a_crash_after_x_accepted_ends_with_exactly_one_new_post_beside_last_weeks(
    server: XFakeServer, sqlite_url: str
) -> None:
    from tests.integration.crash_helpers import (
        claimed_delivery,
        published_remote_id,
        reconcile_later,
        send_and_lose_the_answer,
    )

    (old,) = posted_before(server, REMINDER, ago=timedelta(days=7))
    factory, did = claimed_delivery(sqlite_url, REMINDER, **_account(server))
    server.inject("hang", endpoint="POST /2/tweets", after=True, hang_seconds=0.5)
    send_and_lose_the_answer(factory, did)  # X accepts, the worker dies before the receipt
    assert reconcile_later(factory, did, hours=1) == "published"
    assert published_remote_id(factory, did) == server.posts[1]["id"] != old
    assert server.stats()["posts_created"] == 1
    assert [p["text"] for p in server.posts] == [REMINDER, REMINDER]


def test_a_crash_before_x_accepted_sends_the_post_once_despite_last_weeks(
    server: XFakeServer, sqlite_url: str
) -> None:
    from amplify import publisher, queue
    from tests.integration.crash_helpers import (
        claimed_delivery,
        published_remote_id,
        reconcile_later,
    )

    (old,) = posted_before(server, REMINDER, ago=timedelta(days=7))
    factory, did = claimed_delivery(sqlite_url, REMINDER, **_account(server))  # w1 dies
    assert reconcile_later(factory, did, hours=1) == "requeued"  # last week's is not it
    assert queue.claim_due(factory, "w2", limit=1) == [did]
    assert publisher.publish_one(factory, did, "w2") == "published"
    assert published_remote_id(factory, did) != old
    assert server.stats()["posts_created"] == 1
    assert server.posts[0]["id"] == old and server.posts[0]["text"] == REMINDER


def _account(server: XFakeServer) -> dict[str, Any]:
    return {
        "platform": "x",
        "handle": "amplify_org",
        "service_url": server.url,
        "credentials": CREDS,
    }
