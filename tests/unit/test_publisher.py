from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from amplify import publisher, queue, textrules
from amplify.accounts import connector_for
from amplify.config import reset_settings
from amplify.db import session_factory
from amplify.models import (
    Account,
    AccountStatus,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    PostState,
    utcnow,
)
from amplify.retry import RetryPolicy
from connectors.base import (
    CLOCK_SKEW_ALLOWANCE,
    AuthError,
    PermanentError,
    RateLimited,
    Receipt,
    TransientError,
)
from tests import memory_connector as memory
from tests.factories import make_account, make_campaign, make_delivery, make_post

NOW = utcnow()
NET = memory.NETWORK
# A story long enough to become a three-part thread at the memory platform's 500 characters.
LONG = " ".join(
    f"Sentence {i} of a long story about a clinic that got it right." for i in range(20)
)


@pytest.fixture(autouse=True)
def _memory_platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-memory platform, with text rules of its own (500 characters, plain count)."""
    monkeypatch.setitem(textrules.PLATFORM_LIMITS, "memory", 500)
    memory.reset()
    yield
    memory.reset()


@pytest.fixture
def factory(db_url: str) -> sessionmaker[Session]:
    return session_factory(db_url)


@pytest.fixture
def notes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The notifications composed, with notifications listening to the domain's events."""
    seen: list[tuple[str, dict[str, Any]]] = []
    from amplify import notify

    monkeypatch.setattr(notify, "emit", lambda s, event, **data: seen.append((event, data)) or 0)
    stop = notify.listen()
    yield seen
    stop()


def new_delivery(factory: sessionmaker[Session], **post_fields: Any) -> tuple[int, str]:
    with factory() as s:
        account = make_account(s)
        post = make_post(s, **post_fields)
        did = make_delivery(s, post=post, account=account, next_attempt_at=NOW).id
        s.commit()
        return did, account.handle


def claimed(factory: sessionmaker[Session], worker: str = "w1", now: Any = None) -> list[int]:
    return queue.claim_due(factory, worker, limit=10, now=now or NOW + timedelta(seconds=1))


def get(factory: sessionmaker[Session], delivery_id: int) -> Delivery:
    with factory() as s:
        d = s.get(Delivery, delivery_id)
        assert d is not None
        return d


# --------------------------------------------------------------------------- building


def test_it_builds_the_text_with_the_override_utm_link_and_campaign_hashtags(factory) -> None:
    with factory() as s:
        campaign = make_campaign(s, utm_campaign="spring-drive", hashtags="#HealthIT")
        post = make_post(
            s,
            body="Generic text",
            campaign_id=campaign.id,
            link="https://example.org/story",
            overrides={"memory": "Text just for this network"},
        )
        d = make_delivery(s, post=post)
        out = publisher.outgoing_for(d)
    assert out.text.startswith("Text just for this network")
    assert "Generic text" not in out.text
    tagged = (
        "https://example.org/story?utm_source=memory&utm_medium=social&utm_campaign=spring-drive"
    )
    assert tagged in out.text
    assert out.link == tagged
    assert out.text.rstrip().endswith("#HealthIT")
    assert out.idempotency_key == d.idempotency_key


def test_it_leaves_the_link_untagged_when_the_campaign_turns_utm_off(factory) -> None:
    with factory() as s:
        campaign = make_campaign(s, utm_enabled=False)
        post = make_post(s, campaign_id=campaign.id, link="https://example.org/a")
        out = publisher.outgoing_for(make_delivery(s, post=post))
    assert out.link == "https://example.org/a"
    assert "utm_" not in out.text


def test_it_splits_a_long_story_into_a_thread_and_attaches_media_by_absolute_path(
    factory,
) -> None:
    with factory() as s:
        post = make_post(
            s,
            body=LONG,
            media=[{"path": "media/clinic.jpg", "alt_text": "Nurses at the front desk"}],
        )
        d = make_delivery(s, post=post)
        d.parts = [{"remote_id": "9", "uri": None, "cid": None, "url": None}]
        out = publisher.outgoing_for(d)
    assert len(out.parts) == 3
    assert all(len(p) <= 500 for p in out.parts)
    (media,) = out.media
    assert media.path.endswith("/data/media/clinic.jpg") and media.path.startswith("/")
    assert media.alt_text == "Nurses at the front desk"
    assert out.landed == (Receipt("9"),)


# --------------------------------------------------------------------------- publishing


def test_it_publishes_a_claimed_delivery_once_and_keeps_the_receipt(factory) -> None:
    did, handle = new_delivery(factory, body="Our clinic cut wait times in half.")
    assert claimed(factory) == [did]
    outcome = publisher.publish_one(factory, did, "w1")
    assert outcome == "published"
    (record,) = NET.published(handle)
    assert record.text == "Our clinic cut wait times in half."
    d = get(factory, did)
    assert d.status == DeliveryStatus.PUBLISHED
    assert d.remote_id == str(record.id) and d.remote_url == record.receipt.url
    with factory() as s:
        assert s.get(Post, d.post_id).state == PostState.PUBLISHED  # type: ignore[union-attr]


def test_it_does_nothing_for_a_delivery_this_worker_has_not_claimed(factory) -> None:
    did, _ = new_delivery(factory)
    assert publisher.publish_one(factory, did, "w1") == "not_claimed"
    claimed(factory, "w2")
    assert publisher.publish_one(factory, did, "w1") == "not_claimed"
    assert NET.call_count("publish") == 0
    assert get(factory, did).status == DeliveryStatus.CLAIMED


@pytest.mark.parametrize(
    ("error", "outcome", "status"),
    [
        (RateLimited("slow down", retry_at=NOW + timedelta(minutes=15)), "rate_limited", "pending"),
        (TransientError("the server timed out"), "retry", "pending"),
        (PermanentError("the text is too long"), "failed", "failed"),
        (AuthError("the token was revoked; reconnect the account"), "needs_attention", "failed"),
    ],
)
def test_it_files_each_kind_of_platform_error(factory, notes, error, outcome, status) -> None:
    did, handle = new_delivery(factory)
    claimed(factory)
    NET.fail_next(error, method="publish")
    assert publisher.publish_one(factory, did, "w1") == outcome
    d = get(factory, did)
    assert d.status == status
    assert d.last_error == str(error)
    assert NET.published(handle) == []
    if isinstance(error, RateLimited):
        assert d.next_attempt_at == error.retry_at
    with factory() as s:
        account = s.get(Account, d.account_id)
        assert account is not None
        expected = AccountStatus.NEEDS_ATTENTION if isinstance(error, AuthError) else "ok"
        assert account.status == expected
    events = [e for e, _ in notes]
    if isinstance(error, AuthError):
        assert events == ["account_attention"]
    elif isinstance(error, PermanentError):
        assert events == ["delivery_failed"]
    else:
        assert events == []


def test_it_treats_an_unexpected_exception_as_transient_without_repeating_its_message(
    factory,
) -> None:
    class Leaky:
        def publish(self, post: Any, on_part: Any = None) -> list[Receipt]:
            raise RuntimeError("POST https://api.invalid/?token=hunter2 failed")

    did, _ = new_delivery(factory)
    claimed(factory)
    outcome = publisher.publish_one(factory, did, "w1", connector_for=lambda a: Leaky())  # type: ignore[arg-type,return-value]
    assert outcome == "retry"
    d = get(factory, did)
    assert d.status == DeliveryStatus.PENDING
    assert "RuntimeError" in (d.last_error or "")
    assert "hunter2" not in (d.last_error or "")


def test_it_flags_the_account_when_its_stored_credentials_cannot_be_decrypted(factory) -> None:
    other_key = Fernet(Fernet.generate_key())
    did, _ = new_delivery(factory)
    with factory() as s:
        d = s.get(Delivery, did)
        assert d is not None
        d.account.credentials_enc = other_key.encrypt(b'{"token": "t"}').decode()
        s.commit()
    claimed(factory)
    assert publisher.publish_one(factory, did, "w1") == "needs_attention"
    d = get(factory, did)
    assert d.status == DeliveryStatus.FAILED
    with factory() as s:
        account = s.get(Account, d.account_id)
        assert account is not None
        assert account.status == AccountStatus.NEEDS_ATTENTION
        assert "AMPLIFY_SECRET_KEY" in (account.last_error or "")
    assert NET.call_count("publish") == 0


def test_it_gives_up_after_the_policy_allows_no_more_attempts(factory) -> None:
    did, _ = new_delivery(factory)
    policy = RetryPolicy(max_attempts=2, jitter=0)
    NET.fail_next(TransientError("502 from the platform"), times=2, method="publish")
    now = NOW + timedelta(seconds=1)
    for _ in range(2):
        assert queue.claim_due(factory, "w1", limit=1, now=now) == [did]
        publisher.publish_one(factory, did, "w1", policy=policy)
        now = get(factory, did).next_attempt_at + timedelta(seconds=1)
    d = get(factory, did)
    assert d.status == DeliveryStatus.FAILED
    assert d.last_error == "gave up after 2 attempts; last error: 502 from the platform"


def test_it_resumes_a_thread_after_a_crash_right_after_the_landed_parts(factory) -> None:
    did, handle = new_delivery(factory, body=LONG)
    claimed(factory)
    NET.interrupt_after(1, TransientError("connection reset"))
    assert publisher.publish_one(factory, did, "w1") == "retry"
    d = get(factory, did)
    assert len(d.parts) == 1 and d.status == DeliveryStatus.PENDING
    assert queue.claim_due(factory, "w1", limit=1, now=d.next_attempt_at) == [did]
    assert publisher.publish_one(factory, did, "w1") == "published"
    records = NET.published(handle)
    assert [r.key for r in records] == [
        d.idempotency_key,
        f"{d.idempotency_key}#1",
        f"{d.idempotency_key}#2",
    ]
    assert records[1].reply_to == records[0].id and records[2].reply_to == records[1].id
    done = get(factory, did)
    assert [p["remote_id"] for p in done.parts] == [str(r.id) for r in records]
    assert done.remote_id == str(records[0].id)


def test_it_stops_a_thread_when_another_worker_took_the_delivery_over(factory) -> None:
    did, handle = new_delivery(factory, body=LONG)
    claimed(factory)

    class Overtaken:
        """Publishes for real, but first the lease runs out and recovery takes over."""

        def __init__(self, account: Account) -> None:
            self.inner = connector_for(account)

        def publish(self, post: Any, on_part: Any = None) -> list[Receipt]:
            with factory() as s:
                queue.expire_leases(s, now=NOW + timedelta(hours=1))
                s.commit()
            return self.inner.publish(post, on_part=on_part)

    outcome = publisher.publish_one(factory, did, "w1", connector_for=Overtaken)  # type: ignore[arg-type]
    assert outcome == "lease_lost"
    assert len(NET.published(handle)) == 1  # stopped after the first part
    d = get(factory, did)
    assert d.status == DeliveryStatus.RECONCILE and d.parts == []


def test_it_keeps_the_lease_alive_while_a_slow_platform_call_runs(
    factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPLIFY_LEASE_SECONDS", "1")
    reset_settings()
    did, handle = new_delivery(factory)
    assert queue.claim_due(factory, "w1", limit=1) == [did]
    expired_meanwhile: list[int] = []

    class Slow:
        def __init__(self, account: Account) -> None:
            self.inner = connector_for(account)

        def publish(self, post: Any, on_part: Any = None) -> list[Receipt]:
            time.sleep(1.6)  # longer than the one-second lease
            with factory() as s:
                expired_meanwhile.extend(queue.expire_leases(s))
                s.commit()
            return self.inner.publish(post, on_part=on_part)

    outcome = publisher.publish_one(factory, did, "w1", connector_for=Slow)  # type: ignore[arg-type]
    assert expired_meanwhile == []
    assert outcome == "published"
    assert len(NET.published(handle)) == 1


def test_it_leaves_a_landed_post_for_reconciliation_when_the_receipt_cannot_be_saved(
    factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    did, handle = new_delivery(factory)
    claimed(factory)

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError("UPDATE deliveries", {}, Exception("disk I/O error"))

    monkeypatch.setattr(queue, "complete", broken)
    assert publisher.publish_one(factory, did, "w1") == "uncertain"
    assert len(NET.published(handle)) == 1
    assert get(factory, did).status == DeliveryStatus.CLAIMED  # never re-queued blindly


def test_it_reposts_the_published_original_from_the_advocate_account(factory) -> None:
    with factory() as s:
        org = make_account(s)
        advocate = make_account(s)
        post = make_post(s)
        original = make_delivery(s, post=post, account=org, next_attempt_at=NOW)
        repost = make_delivery(
            s,
            post=post,
            account=advocate,
            kind=DeliveryKind.REPOST,
            source_id=original.id,
            next_attempt_at=NOW,
        )
        s.commit()
        original_id, repost_id, advocate_handle = original.id, repost.id, advocate.handle
    assert claimed(factory) == [original_id]  # the repost waits for the original
    assert publisher.publish_one(factory, original_id, "w1") == "published"
    assert claimed(factory) == [repost_id]
    assert publisher.publish_one(factory, repost_id, "w1") == "published"
    (shared,) = NET.published(advocate_handle)
    assert shared.kind == "repost"
    assert shared.repost_of == get(factory, original_id).remote_id
    assert get(factory, repost_id).remote_id == str(shared.id)


def test_it_tells_the_author_once_the_story_is_out(factory, notes) -> None:
    did, _ = new_delivery(factory)
    claimed(factory)
    publisher.publish_one(factory, did, "w1")
    assert [event for event, _ in notes] == ["published"]


# --------------------------------------------------------------------------- reconciling


def _crash_after_publishing(factory, did: int) -> None:
    """The worker published, then died before saving the receipt; the lease runs out."""
    with factory() as s:
        d = s.get(Delivery, did)
        assert d is not None
        connector_for(d.account).publish(publisher.outgoing_for(d))
    with factory() as s:
        assert queue.expire_leases(s, now=NOW + timedelta(hours=1)) == [did]
        s.commit()


def test_it_reconciles_an_expired_lease_without_publishing_a_second_time(factory) -> None:
    did, handle = new_delivery(factory)
    claimed(factory)
    _crash_after_publishing(factory, did)
    assert queue.claim_reconcile(factory, "w2", limit=5, now=NOW + timedelta(hours=1)) == [did]
    assert publisher.reconcile_one(factory, did, "w2") == "published"
    assert NET.call_count("publish") == 1
    (record,) = NET.published(handle)
    d = get(factory, did)
    assert d.status == DeliveryStatus.PUBLISHED and d.remote_id == str(record.id)


def test_it_requeues_a_delivery_that_never_reached_the_platform(factory) -> None:
    did, handle = new_delivery(factory)
    claimed(factory)
    later = NOW + timedelta(hours=1)
    with factory() as s:
        queue.expire_leases(s, now=later)
        s.commit()
    queue.claim_reconcile(factory, "w2", limit=5, now=later)
    assert publisher.reconcile_one(factory, did, "w2") == "requeued"
    assert get(factory, did).status == DeliveryStatus.PENDING
    assert claimed(factory, "w2", now=later + timedelta(seconds=1)) == [did]
    assert publisher.publish_one(factory, did, "w2") == "published"
    assert len(NET.published(handle)) == 1


def test_it_bounds_reconciliation_by_the_first_claim_less_the_clock_skew_allowance(
    factory,
) -> None:
    did, _ = new_delivery(factory)
    first = NOW + timedelta(seconds=1)
    claimed(factory, now=first)
    with factory() as s:
        d = s.get(Delivery, did)
        assert d is not None
        assert publisher.outgoing_for(d).not_before == first - CLOCK_SKEW_ALLOWANCE


def test_it_continues_a_half_landed_thread_found_by_reconciliation(factory) -> None:
    did, handle = new_delivery(factory, body=LONG)
    claimed(factory)
    NET.interrupt_after(2, PermanentError("never filed: the worker died here"))
    with factory() as s:
        d = s.get(Delivery, did)
        assert d is not None
        with pytest.raises(PermanentError):
            connector_for(d.account).publish(publisher.outgoing_for(d))
        queue.expire_leases(s, now=NOW + timedelta(hours=1))
        s.commit()
    later = NOW + timedelta(hours=1)
    queue.claim_reconcile(factory, "w2", limit=5, now=later)
    assert publisher.reconcile_one(factory, did, "w2") == "resumed"
    d = get(factory, did)
    assert d.status == DeliveryStatus.PENDING and len(d.parts) == 2
    assert claimed(factory, "w2", now=later + timedelta(seconds=1)) == [did]
    assert publisher.publish_one(factory, did, "w2") == "published"
    assert len(NET.published(handle)) == 3  # parts 1 and 2 were not sent again


def test_it_keeps_reconciling_later_when_the_platform_cannot_answer(factory) -> None:
    did, _ = new_delivery(factory)
    claimed(factory)
    later = NOW + timedelta(hours=1)
    with factory() as s:
        queue.expire_leases(s, now=later)
        s.commit()
    queue.claim_reconcile(factory, "w2", limit=5, now=later)
    NET.fail_next(TransientError("503"), method="find_published")
    assert publisher.reconcile_one(factory, did, "w2") == "reconcile"
    d = get(factory, did)
    assert d.status == DeliveryStatus.RECONCILE and d.lease_owner is None
    assert NET.call_count("publish") == 0


def test_it_sends_the_words_frozen_at_the_first_attempt_even_if_the_campaign_changed(
    factory,
) -> None:
    with factory() as s:
        campaign = make_campaign(s, hashtags="#Before")
        s.commit()
        campaign_id = campaign.id
    did, handle = new_delivery(factory, body=LONG, campaign_id=campaign_id)
    claimed(factory)
    NET.interrupt_after(1, TransientError("connection reset"))
    assert publisher.publish_one(factory, did, "w1") == "retry"
    frozen = get(factory, did).texts
    assert frozen and "#Before" in frozen[-1]
    with factory() as s:
        s.get(type(campaign), campaign_id).hashtags = "#After"
        s.commit()
    d = get(factory, did)
    assert queue.claim_due(factory, "w1", limit=1, now=d.next_attempt_at) == [did]
    assert publisher.publish_one(factory, did, "w1") == "published"
    assert [r.text for r in NET.published(handle)] == frozen


def test_it_splits_at_the_limit_the_connector_already_knows(factory, monkeypatch) -> None:
    monkeypatch.setattr(memory.MemoryConnector, "text_limit", lambda self: 300, raising=False)
    did, handle = new_delivery(factory, body=LONG)
    claimed(factory)
    assert publisher.publish_one(factory, did, "w1") == "published"
    parts = [r.text for r in NET.published(handle)]
    assert len(parts) > 3  # the default 500 would have made three
    assert all(len(p) <= 300 for p in parts)
