from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from amplify.db import session_scope
from amplify.models import SandboxRecord, utcnow
from connectors.base import (
    AuthError,
    ConnectorContext,
    Media,
    OutgoingPost,
    PermanentError,
    RateLimited,
    Receipt,
)
from connectors.registry import build
from connectors.sandbox import (
    DISPLAY_NAME,
    SandboxConnector,
    model_metrics,
    model_spreaders,
    pool_account,
)


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def make(
    handle: str = "team.sandbox",
    url: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> SandboxConnector:
    ctx = ConnectorContext(handle=handle, service_url="", credentials={})
    if clock is None:
        return SandboxConnector(ctx, database_url=url)
    return SandboxConnector(ctx, database_url=url, clock=clock)


def count(url: str) -> int:
    with session_scope(url) as s:
        return int(s.scalar(select(func.count()).select_from(SandboxRecord)) or 0)


def test_it_is_labelled_as_a_practice_network(sqlite_url: str) -> None:
    conn = build("sandbox", ConnectorContext(handle="team", service_url="", credentials={}))
    assert isinstance(conn, SandboxConnector)
    assert conn.display_name == DISPLAY_NAME
    assert "nothing is really posted" in conn.whoami().display_name
    assert conn.whoami().handle == "team"


def test_it_records_a_post_once_per_idempotency_key(sqlite_url: str) -> None:
    conn = make(url=sqlite_url)
    post = OutgoingPost(parts=("Our clinic cut wait times",), idempotency_key="k1")
    first = conn.publish(post)
    second = conn.publish(post)
    assert first == second
    assert count(sqlite_url) == 1
    with session_scope(sqlite_url) as s:
        record = s.scalars(select(SandboxRecord)).one()
        assert record.text == "Our clinic cut wait times"
        assert record.handle == "team.sandbox"


def test_it_threads_each_part_as_a_reply_to_the_one_before(sqlite_url: str) -> None:
    conn = make(url=sqlite_url)
    seen: list[int] = []
    receipts = conn.publish(
        OutgoingPost(parts=("1/3 a", "2/3 b", "3/3 c"), idempotency_key="t"),
        on_part=lambda i, r: seen.append(i),
    )
    assert seen == [0, 1, 2]
    with session_scope(sqlite_url) as s:
        rows = s.scalars(select(SandboxRecord).order_by(SandboxRecord.id)).all()
        assert [r.text for r in rows] == ["1/3 a", "2/3 b", "3/3 c"]
        assert [r.reply_to for r in rows] == [None, rows[0].id, rows[1].id]
    assert [r.remote_id for r in receipts] == [str(r.id) for r in rows]


def test_it_resumes_a_thread_after_the_parts_that_landed(sqlite_url: str) -> None:
    conn = make(url=sqlite_url)
    post = OutgoingPost(parts=("a", "b", "c"), idempotency_key="resume")
    first = conn.publish(OutgoingPost(parts=("a",), idempotency_key="resume"))
    receipts = conn.publish(
        OutgoingPost(parts=post.parts, idempotency_key="resume", landed=tuple(first))
    )
    assert count(sqlite_url) == 3
    assert receipts[0] == first[0]
    assert conn.find_published(post) == receipts


def test_it_finds_nothing_published_for_an_unknown_key(sqlite_url: str) -> None:
    conn = make(url=sqlite_url)
    assert conn.find_published(OutgoingPost(parts=("x",), idempotency_key="nope")) is None


def test_it_flags_over_long_text_and_missing_alt_text(sqlite_url: str) -> None:
    conn = make(url=sqlite_url)
    problems = conn.validate(
        OutgoingPost(
            parts=("x" * 501,), idempotency_key="v", media=(Media("/tmp/a.png", alt_text=" "),)
        )
    )
    assert any("501 characters" in p and "500" in p for p in problems)
    assert any("alt text" in p for p in problems)
    assert conn.validate(OutgoingPost(parts=("x" * 500,), idempotency_key="v")) == []
    with pytest.raises(PermanentError):
        conn.publish(OutgoingPost(parts=("x" * 501,), idempotency_key="v"))
    assert count(sqlite_url) == 0


def test_it_reposts_once_and_deletes(sqlite_url: str) -> None:
    conn = make(url=sqlite_url)
    (original,) = conn.publish(OutgoingPost(parts=("story",), idempotency_key="o"))
    advocate = make("ada.sandbox", url=sqlite_url)
    r1 = advocate.repost(original, "rp-1")
    r2 = advocate.repost(original, "rp-1")
    assert r1 == r2
    with session_scope(sqlite_url) as s:
        rec = s.get(SandboxRecord, int(r1.remote_id))
        assert rec is not None and rec.kind == "repost" and rec.repost_of == int(original.remote_id)
    conn.delete(original)
    with session_scope(sqlite_url) as s:
        rec = s.get(SandboxRecord, int(original.remote_id))
        assert rec is not None and rec.deleted
    with pytest.raises(PermanentError):
        advocate.repost(original, "rp-2")


def test_it_models_engagement_rising_and_levelling_off(sqlite_url: str) -> None:
    clock = Clock()
    conn = make(url=sqlite_url, clock=clock)
    receipts = [
        conn.publish(OutgoingPost(parts=(f"s{i}",), idempotency_key=f"m{i}"))[0] for i in range(5)
    ]
    at_start = conn.fetch_metrics(receipts)
    assert all(m.simulated for m in at_start)
    assert [m.remote_id for m in at_start] == [r.remote_id for r in receipts]
    assert all(m.likes == 0 for m in at_start)
    clock.now += timedelta(hours=3)
    three_hours = conn.fetch_metrics(receipts)
    clock.now += timedelta(days=30)
    month = conn.fetch_metrics(receipts)
    for early, late in zip(three_hours, month, strict=True):
        assert 0 < early.likes <= late.likes <= 200
        assert late.reposts <= late.likes
    # Deterministic: the same record at the same age reads the same.
    assert conn.fetch_metrics(receipts) == month
    # Saturating: the last days add (almost) nothing.
    rid = int(receipts[0].remote_id)
    assert model_metrics(rid, 24 * 30) == model_metrics(rid, 24 * 60)


def test_it_differs_between_records(sqlite_url: str) -> None:
    finals = {model_metrics(i, 1000)["likes"] for i in range(1, 30)}
    assert len(finals) > 10


def test_it_returns_zeros_for_a_deleted_record(sqlite_url: str) -> None:
    clock = Clock()
    conn = make(url=sqlite_url, clock=clock)
    (r,) = conn.publish(OutgoingPost(parts=("gone",), idempotency_key="d"))
    conn.delete(r)
    clock.now += timedelta(days=2)
    (m,) = conn.fetch_metrics([r])
    assert (m.likes, m.reposts, m.simulated) == (0, 0, True)


def test_it_lists_simulated_spreaders_matching_the_reshare_count(sqlite_url: str) -> None:
    clock = Clock()
    conn = make(url=sqlite_url, clock=clock)
    (r,) = conn.publish(OutgoingPost(parts=("spread",), idempotency_key="sp"))
    clock.now += timedelta(days=3)
    (m,) = conn.fetch_metrics([r])
    spreaders = conn.fetch_spreaders(r)
    assert len(spreaders) == min(m.reposts + m.quotes, 50)
    assert all(s.handle.endswith(".sandbox") for s in spreaders)
    assert len({s.remote_user_id for s in spreaders}) == len(spreaders)
    assert all(s.followers_count is not None and s.followers_count >= 30 for s in spreaders)
    assert model_spreaders(int(r.remote_id), 7) == model_spreaders(int(r.remote_id), 7)
    assert pool_account(5).followers_count == pool_account(5).followers_count


def test_it_refuses_a_fail_auth_handle_with_a_plain_reason(sqlite_url: str) -> None:
    conn = make("fail-auth-demo", url=sqlite_url)
    with pytest.raises(AuthError, match="refused the sign-in"):
        conn.whoami()
    with pytest.raises(AuthError):
        conn.publish(OutgoingPost(parts=("x",), idempotency_key="fa"))
    assert count(sqlite_url) == 0


def test_it_refuses_a_fail_perm_handle_permanently(sqlite_url: str) -> None:
    conn = make("fail-perm.sandbox", url=sqlite_url)
    with pytest.raises(PermanentError):
        conn.publish(OutgoingPost(parts=("x",), idempotency_key="fp"))
    with pytest.raises(RateLimited) as info:
        make("fail-rate.sandbox", url=sqlite_url).publish(
            OutgoingPost(parts=("x",), idempotency_key="fr")
        )
    assert info.value.retry_at is not None


def test_it_rejects_a_receipt_that_is_not_a_sandbox_record(sqlite_url: str) -> None:
    with pytest.raises(PermanentError, match="not a practice-network record"):
        make(url=sqlite_url).fetch_metrics([Receipt(remote_id="at://x")])


def test_it_reads_while_the_caller_holds_the_sqlite_write_lock(sqlite_url: str) -> None:
    # The metrics sweep keeps its own transaction open while it asks for numbers.
    conn = make(url=sqlite_url)
    post = OutgoingPost(parts=("held",), idempotency_key="lock")
    receipts = conn.publish(post)
    with session_scope(sqlite_url) as s:
        s.execute(select(SandboxRecord.id)).all()  # BEGIN IMMEDIATE: the write lock is ours
        assert len(conn.fetch_metrics(receipts)) == 1
        assert conn.find_published(post) == receipts
