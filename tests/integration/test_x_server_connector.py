"""The X connector against the local X stand-in over real sockets (tests/fakes/x_server.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

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
