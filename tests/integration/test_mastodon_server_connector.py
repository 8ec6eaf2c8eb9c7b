"""MastodonConnector (real mastodon-py, real HTTP) against the local Mastodon-compatible server."""

from __future__ import annotations

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
from connectors.mastodon import MastodonConnector, clear_instance_cache
from tests.fakes.mastodon_server import FakeMastodonServer

TOKEN = "test-token"


@pytest.fixture(autouse=True)
def _fresh_instance_cache() -> Iterator[None]:
    clear_instance_cache()
    yield
    clear_instance_cache()


@pytest.fixture
def server() -> Iterator[FakeMastodonServer]:
    with FakeMastodonServer() as srv:
        yield srv


def connect(
    srv: FakeMastodonServer, token: str = TOKEN, handle: str = "amplify", timeout: float = 2.0
) -> MastodonConnector:
    context = ConnectorContext(
        handle=handle, service_url=srv.url, credentials={"access_token": token}
    )
    return MastodonConnector(context, timeout=timeout)


@pytest.fixture
def connector(server: FakeMastodonServer) -> MastodonConnector:
    return connect(server)


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "chart.png"
    Image.new("RGB", (8, 8), (10, 120, 200)).save(path)
    return str(path)


def post(*parts: str, key: str = "delivery-1", **kw: object) -> OutgoingPost:
    return OutgoingPost(parts=parts, idempotency_key=key, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- publishing


def test_it_posts_a_status_with_the_delivery_key_as_idempotency_key(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    receipts = connector.publish(post("Nurses cut ER waits by 40%"))
    assert len(receipts) == 1
    [status] = server.posts_of("amplify")
    assert receipts[0].remote_id == status.id
    assert receipts[0].url is not None and receipts[0].url.endswith(f"/@amplify/{status.id}")
    me = server.account("amplify")
    assert server._idempotency[(me.id, "delivery-1")][0] == status.id


def test_it_posts_once_when_published_twice_with_the_same_key(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    first = connector.publish(post("Same story"))
    second = connector.publish(post("Same story"))
    assert first == second
    assert len(server.posts_of("amplify")) == 1
    assert server.count("POST", "/api/v1/statuses") == 2


def test_it_threads_parts_as_replies_and_reports_each_as_it_lands(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    seen: list[int] = []
    receipts = connector.publish(
        post("one 1/3", "two 2/3", "three 3/3"), on_part=lambda i, _r: seen.append(i)
    )
    assert seen == [0, 1, 2]
    statuses = {s.id: s for s in server.posts_of("amplify")}
    assert statuses[receipts[0].remote_id].in_reply_to_id is None
    assert statuses[receipts[1].remote_id].in_reply_to_id == receipts[0].remote_id
    assert statuses[receipts[2].remote_id].in_reply_to_id == receipts[1].remote_id


def test_it_continues_a_thread_after_the_parts_that_landed(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    first_try = post("one 1/2", "two 2/2")
    landed = connector.publish(post("one 1/2"))  # part 1 landed in an earlier attempt
    resumed = OutgoingPost(first_try.parts, first_try.idempotency_key, landed=tuple(landed))
    server.inject(method="POST", path="/api/v1/statuses", status=503)
    with pytest.raises(TransientError):
        connector.publish(resumed)
    receipts = connector.publish(resumed)
    assert receipts[0] == landed[0]
    assert len(server.posts_of("amplify")) == 2
    assert server.statuses[receipts[1].remote_id].in_reply_to_id == landed[0].remote_id


def test_it_uploads_media_with_its_alt_text_and_attaches_it_to_the_first_part(
    server: FakeMastodonServer, connector: MastodonConnector, image: str
) -> None:
    media = (Media(image, "Bar chart: waits fell from 50 to 30 minutes", "image/png"),)
    receipts = connector.publish(post("With a chart 1/2", "more 2/2", media=media))
    first = server.statuses[receipts[0].remote_id]
    [media_id] = first.media_ids
    assert server.media[media_id]["description"] == media[0].alt_text
    assert server.media[media_id]["_bytes"] == Path(image).stat().st_size
    assert server.statuses[receipts[1].remote_id].media_ids == []
    assert server.count("POST", "/api/v2/media") == 1


def test_it_reports_media_still_processing_as_transient_without_posting(
    image: str,
) -> None:
    with FakeMastodonServer(media_processing=True) as srv:
        connector = connect(srv)
        with pytest.raises(TransientError, match="still processing"):
            connector.publish(post("chart", media=(Media(image, "a chart", "image/png"),)))
        assert srv.posts_of("amplify") == []
        assert srv.count("GET", "/api/v1/media/") == 1
        srv.finish_processing()
        srv.media_processing = False
        assert len(connector.publish(post("chart", media=(Media(image, "chart", "image/png"),))))
        assert len(srv.posts_of("amplify")) == 1


def test_it_reblogs_from_another_account_and_lists_it_as_a_spreader(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    [original] = connector.publish(post("Boost me"))
    server.add_account("advocate", "advocate-token", followers=321)
    advocate = connect(server, token="advocate-token", handle="advocate")
    reblog = advocate.repost(original, "repost-key")
    again = advocate.repost(original, "repost-key")
    assert reblog.remote_id == again.remote_id != original.remote_id
    [metrics] = connector.fetch_metrics([original])
    assert metrics.reposts == 1
    [spreader] = connector.fetch_spreaders(original)
    assert (spreader.handle, spreader.followers_count, spreader.kind) == (
        "advocate",
        321,
        "repost",
    )


def test_it_reads_counts_for_many_statuses_in_one_call_on_mastodon_4_3(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    receipts = [connector.publish(post(f"story {i}", key=f"k{i}"))[0] for i in range(3)]
    server.statuses[receipts[1].remote_id].favourites_count = 7
    server.statuses[receipts[2].remote_id].quotes_count = 2
    before = server.count("GET", "/api/v1/statuses")
    metrics = connector.fetch_metrics(receipts)
    assert server.count("GET", "/api/v1/statuses") - before == 1
    by_id = {m.remote_id: m for m in metrics}
    assert by_id[receipts[1].remote_id].likes == 7
    assert by_id[receipts[2].remote_id].quotes == 2
    assert by_id[receipts[0].remote_id].likes == 0


def test_it_reads_counts_one_status_per_call_before_mastodon_4_3() -> None:
    with FakeMastodonServer(version="4.2.10") as srv:
        connector = connect(srv)
        receipts = [connector.publish(post(f"story {i}", key=f"k{i}"))[0] for i in range(3)]
        srv.statuses[receipts[0].remote_id].favourites_count = 4
        metrics = connector.fetch_metrics(receipts)
        assert [m.remote_id for m in metrics] == [r.remote_id for r in receipts]
        assert metrics[0].likes == 4
        assert srv.count("GET", "/api/v1/statuses/") == 3
        assert ("GET", "/api/v1/statuses") not in srv.calls


def test_it_leaves_a_deleted_status_out_of_the_counts(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    a, b = (connector.publish(post(t, key=t))[0] for t in ("a", "b"))
    connector.delete(a)
    connector.delete(a)  # deleting twice is fine: it is gone either way
    assert [m.remote_id for m in connector.fetch_metrics([a, b])] == [b.remote_id]


def test_it_says_who_the_account_is(connector: MastodonConnector) -> None:
    me = connector.whoami()
    assert (me.handle, me.display_name, me.followers_count) == ("amplify", "Amplify Team", 120)


# --------------------------------------------------------------------------- instance limit


def test_it_validates_against_the_instance_limit_read_once() -> None:
    with FakeMastodonServer(max_characters=1000) as srv:
        connector = connect(srv)
        assert connector.validate(post("a" * 900)) == []
        problems = connector.validate(post("a" * 1001))
        assert problems and "1000" in problems[0]
        assert srv.count("GET", "/api/v2/instance") == 1
        # another connector for the same instance uses the cache too
        connect(srv).validate(post("hi"))
        assert srv.count("GET", "/api/v2/instance") == 1


def test_it_flags_missing_alt_text_and_too_many_images(
    connector: MastodonConnector, image: str
) -> None:
    problems = connector.validate(post("hi", media=(Media(image, " "),) * 5))
    assert any("alt text" in p for p in problems)
    assert any("at most 4 images" in p for p in problems)


# --------------------------------------------------------------------------- reconciliation


def test_it_reposts_safely_with_the_same_key_inside_the_hour_after_a_lost_response(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    server.inject(method="POST", path="/api/v1/statuses", reset_after=True)
    with pytest.raises(TransientError):
        connector.publish(post("Lost response"))
    assert len(server.posts_of("amplify")) == 1  # it did land
    server.advance(50 * 60)
    receipts = connector.publish(post("Lost response"))
    assert len(server.posts_of("amplify")) == 1
    assert receipts[0].remote_id == server.posts_of("amplify")[0].id


def test_it_finds_a_landed_thread_by_its_text_after_the_key_expired(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    text = "Thanks @alice@health.example! Read https://example.org/a/long/story/path?utm=x 1/2"
    server.inject(method="POST", path="/api/v1/statuses", reset_after=True)
    thread = post(text, "Second part with #HealthIT\n\nand a paragraph 2/2")
    with pytest.raises(TransientError):
        connector.publish(thread)  # part 1 landed, its answer was lost
    server.advance(2 * 3600)  # the Idempotency-Key is forgotten now
    found = connector.find_published(thread)
    assert found is not None
    [only] = found
    assert only.remote_id == server.posts_of("amplify")[0].id
    # the second part is published on resume, as a reply to the first
    receipts = connector.publish(OutgoingPost(thread.parts, thread.idempotency_key, landed=(only,)))
    assert len(server.posts_of("amplify")) == 2
    assert server.statuses[receipts[1].remote_id].in_reply_to_id == only.remote_id
    again = connector.find_published(thread)
    assert again is not None and [r.remote_id for r in again] == [r.remote_id for r in receipts]


def test_it_finds_nothing_when_nothing_landed(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    connector.publish(post("Another story", key="other"))
    server.inject(method="POST", path="/api/v1/statuses", reset=True)
    with pytest.raises(TransientError):
        connector.publish(post("Never arrived"))
    assert connector.find_published(post("Never arrived")) is None


# --------------------------------------------------------------------------- errors


def test_it_reports_a_rate_limit_with_the_servers_reset_time(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    server.inject(method="POST", path="/api/v1/statuses", status=429, reset_in=120)
    with pytest.raises(RateLimited) as caught:
        connector.publish(post("Too soon"))
    retry_at = caught.value.retry_at
    assert retry_at is not None
    expected = datetime.now(UTC) + timedelta(seconds=120)
    assert abs((retry_at - expected).total_seconds()) < 5
    assert server.posts_of("amplify") == []


def test_it_reports_a_refused_token_as_auth_with_what_to_do(server: FakeMastodonServer) -> None:
    connector = connect(server, token="revoked-secret-token")
    with pytest.raises(AuthError) as caught:
        connector.publish(post("hi"))
    message = str(caught.value)
    assert "@amplify" in message and server.host in message
    assert "write:statuses" in message and "reconnect" in message
    assert "revoked-secret-token" not in message
    with pytest.raises(AuthError):
        connector.whoami()


def test_it_reports_a_missing_scope_as_auth(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    server.inject(status=403, error="This action is outside the authorized scopes")
    with pytest.raises(AuthError, match="scope"):
        connector.publish(post("hi"))


def test_it_reports_a_validation_refusal_as_permanent_with_the_servers_text(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    with pytest.raises(PermanentError, match="character limit of 500"):
        connector.publish(post("a" * 501))
    with pytest.raises(PermanentError, match="could not find"):
        connector.fetch_spreaders(Receipt("999"))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_it_reports_server_errors_as_transient(
    server: FakeMastodonServer, connector: MastodonConnector, status: int
) -> None:
    server.inject(method="POST", status=status)
    with pytest.raises(TransientError):
        connector.publish(post("hi"))
    assert server.posts_of("amplify") == []


def test_it_reports_a_timeout_as_transient_without_waiting_long(
    server: FakeMastodonServer,
) -> None:
    connector = connect(server, timeout=0.3)
    server.inject(hang=2.0)
    started = datetime.now(UTC)
    with pytest.raises(TransientError, match="could not reach"):
        connector.whoami()
    assert (datetime.now(UTC) - started).total_seconds() < 1.5


def test_it_reports_a_connection_reset_as_transient(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    server.inject(reset=True)
    with pytest.raises(TransientError):
        connector.whoami()
    assert connector.whoami().handle == "amplify"


def test_it_works_with_added_latency() -> None:
    with FakeMastodonServer(latency=0.05) as srv:
        connector = connect(srv)
        assert connector.publish(post("slow but fine"))[0].remote_id


# --------------------------------------------------------------------------- time bound

REMINDER = "Tomorrow is advocacy day at the Capitol — join us!"
THREAD = (f"{REMINDER} 1/2", "Bring a friend and water 2/2")


def _bounded(*parts: str, key: str = "delivery-bounded", **kw: object) -> OutgoingPost:
    """A post first claimed now: nothing older than five minutes ago can be it."""
    not_before = datetime.now(UTC) - timedelta(minutes=5)
    return OutgoingPost(parts=parts, idempotency_key=key, not_before=not_before, **kw)  # type: ignore[arg-type]


def _last_week(server: FakeMastodonServer, *parts: str) -> list[str]:
    """The same words posted a week ago (as a thread when several parts); their ids."""
    week_ago = datetime.now(UTC) - timedelta(days=7)
    ids: list[str] = []
    for part in parts:
        status = server.add_status(
            "amplify", part, created_at=week_ago, in_reply_to_id=ids[-1] if ids else None
        )
        ids.append(status.id)
    return ids


def test_it_ignores_last_weeks_status_with_the_same_words_when_nothing_landed(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    (old,) = _last_week(server, REMINDER)
    server.inject(method="POST", path="/api/v1/statuses", reset=True)
    with pytest.raises(TransientError):
        connector.publish(_bounded(REMINDER))  # never reached the server
    assert connector.find_published(_bounded(REMINDER)) is None
    (receipt,) = connector.publish(_bounded(REMINDER))
    assert [s.id for s in server.posts_of("amplify")] == [old, receipt.remote_id]
    assert server.statuses[old].text == REMINDER  # untouched


def test_it_finds_the_status_that_landed_this_time_not_last_weeks(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    (old,) = _last_week(server, REMINDER)
    server.inject(method="POST", path="/api/v1/statuses", reset_after=True)
    with pytest.raises(TransientError):
        connector.publish(_bounded(REMINDER))  # accepted; the answer was lost
    server.advance(2 * 3600)  # the Idempotency-Key is forgotten
    found = connector.find_published(_bounded(REMINDER))
    new = [s.id for s in server.posts_of("amplify") if s.id != old]
    assert found is not None and [r.remote_id for r in found] == new
    assert len(server.posts_of("amplify")) == 2


def test_it_ignores_last_weeks_thread_and_finds_only_the_part_that_landed(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    old = _last_week(server, *THREAD)
    server.inject(method="POST", path="/api/v1/statuses", reset_after=True)
    with pytest.raises(TransientError):
        connector.publish(_bounded(*THREAD))  # part 1 accepted, its answer lost
    server.advance(2 * 3600)
    found = connector.find_published(_bounded(*THREAD))
    assert found is not None and len(found) == 1  # not last week's part 2
    assert found[0].remote_id not in old
    receipts = connector.publish(
        OutgoingPost(THREAD, "delivery-bounded", landed=tuple(found), not_before=datetime.now(UTC))
    )
    assert server.statuses[receipts[1].remote_id].in_reply_to_id == found[0].remote_id
    assert len(server.posts_of("amplify")) == 4  # last week's two, this week's two


def test_it_ignores_last_weeks_thread_when_no_part_landed(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    _last_week(server, *THREAD)
    assert connector.find_published(_bounded(*THREAD)) is None


def test_it_still_finds_a_landed_status_with_no_time_bound(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    """Deliveries claimed before the bound existed have no first claim: text alone decides."""
    (old,) = _last_week(server, REMINDER)
    found = connector.find_published(post(REMINDER))
    assert found is not None and found[0].remote_id == old


def test_a_crash_before_mastodon_accepted_sends_the_post_once_despite_last_weeks(
    server: FakeMastodonServer, sqlite_url: str
) -> None:
    from amplify import publisher, queue
    from tests.integration.crash_helpers import (
        claimed_delivery,
        published_remote_id,
        reconcile_later,
    )

    (old,) = _last_week(server, REMINDER)
    factory, did = claimed_delivery(sqlite_url, REMINDER, **_account(server))  # w1 dies
    assert reconcile_later(factory, did, hours=1) == "requeued"  # last week's is not it
    assert queue.claim_due(factory, "w2", limit=1) == [did]
    assert publisher.publish_one(factory, did, "w2") == "published"
    statuses = server.posts_of("amplify")
    assert [s.text for s in statuses] == [REMINDER, REMINDER]
    assert published_remote_id(factory, did) == statuses[1].id != old


def test_a_crash_after_mastodon_accepted_records_this_weeks_status(
    server: FakeMastodonServer, sqlite_url: str
) -> None:
    from tests.integration.crash_helpers import (
        claimed_delivery,
        published_remote_id,
        reconcile_later,
        send_and_lose_the_answer,
    )

    (old,) = _last_week(server, REMINDER)
    factory, did = claimed_delivery(sqlite_url, REMINDER, **_account(server))
    server.inject(method="POST", path="/api/v1/statuses", reset_after=True)
    send_and_lose_the_answer(factory, did)  # Mastodon accepts, the worker dies
    server.advance(2 * 3600)  # the Idempotency-Key is forgotten: only the text can tell
    assert reconcile_later(factory, did, hours=2) == "published"
    statuses = server.posts_of("amplify")
    assert len(statuses) == 2
    assert published_remote_id(factory, did) == statuses[1].id != old


def _account(server: FakeMastodonServer) -> dict[str, Any]:
    return {
        "platform": "mastodon",
        "handle": "amplify",
        "service_url": server.url,
        "credentials": {"access_token": TOKEN},
    }


@pytest.mark.parametrize("garbage", ["missing_ids", "wrong_types", "html"])
def test_it_reports_an_upload_answer_without_a_media_id_as_transient_without_posting(
    server: FakeMastodonServer, connector: MastodonConnector, image: str, garbage: str
) -> None:
    server.inject(method="POST", path="/api/v2/media", garbage=garbage)
    with pytest.raises(TransientError, match="cannot read while trying to"):
        connector.publish(post("With a chart", media=(Media(image, "A bar chart"),)))
    assert server.posts_of("amplify") == []


def test_it_reads_further_pages_while_they_are_newer_than_the_first_claim(
    server: FakeMastodonServer, connector: MastodonConnector
) -> None:
    (landed,) = connector.publish(_bounded(REMINDER))
    for n in range(45):  # the chapter kept posting after the answer was lost
        server.add_status("amplify", f"Another update {n}", created_at=datetime.now(UTC))
    server.advance(2 * 3600)
    found = connector.find_published(_bounded(REMINDER))
    assert found is not None and [r.remote_id for r in found] == [landed.remote_id]
    pages = [p for m, p in server.calls if m == "GET" and p.endswith("/statuses")]
    assert len(pages) == 2  # two pages of 40
