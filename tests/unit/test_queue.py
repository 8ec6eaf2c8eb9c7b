from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from factories import make_account, make_delivery, make_post
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from amplify import queue
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
from amplify.retry import Failure, RetryPolicy
from connectors.base import AuthError, PermanentError, RateLimited, Receipt, TransientError

NOW = utcnow().replace(microsecond=0)
EARLIER = NOW - timedelta(minutes=5)
NO_JITTER = RetryPolicy(base_seconds=30, factor=2, cap_seconds=300, max_attempts=3, jitter=0)


@pytest.fixture
def factory(db_url: str) -> sessionmaker[Session]:
    return session_factory(db_url)


def add(factory: sessionmaker[Session], n: int = 1, **fields: object) -> list[int]:
    """``n`` due deliveries, each on its own new account; ids."""
    with factory() as s:
        ids = [make_delivery(s, next_attempt_at=EARLIER, **fields).id for _ in range(n)]  # type: ignore[arg-type]
        s.commit()
    return ids


def get(factory: sessionmaker[Session], delivery_id: int) -> Delivery:
    with factory() as s:
        delivery = s.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery


def claim(factory: sessionmaker[Session], worker: str = "w1", limit: int = 10) -> list[int]:
    return queue.claim_due(factory, worker, limit=limit, now=NOW, lease_seconds=60)


# --------------------------------------------------------------------------- claiming


def test_it_claims_a_due_delivery_with_a_lease_and_counts_the_attempt(factory) -> None:
    (did,) = add(factory)
    assert claim(factory) == [did]
    d = get(factory, did)
    assert d.status == DeliveryStatus.CLAIMED
    assert d.lease_owner == "w1"
    assert d.lease_expires_at == NOW + timedelta(seconds=60)
    assert d.attempts == 1


def test_it_remembers_the_first_claim_and_never_moves_it(factory) -> None:
    (did,) = add(factory)
    assert claim(factory) == [did]
    assert get(factory, did).first_claimed_at == NOW
    with factory() as s:
        assert queue.fail(s, did, "w1", TransientError("503"), now=NOW, policy=NO_JITTER)
        s.commit()
    later = NOW + timedelta(hours=2)
    assert queue.claim_due(factory, "w2", limit=1, now=later, lease_seconds=60) == [did]
    d = get(factory, did)
    assert d.attempts == 2
    assert d.first_claimed_at == NOW


def test_it_leaves_deliveries_that_are_not_due_yet(factory) -> None:
    with factory() as s:
        make_delivery(s, next_attempt_at=NOW + timedelta(seconds=1))
        s.commit()
    assert claim(factory) == []


def test_it_never_hands_one_delivery_to_two_workers(factory) -> None:
    ids = add(factory, 3)
    first = claim(factory, "w1")
    assert sorted(first) == sorted(ids)
    assert claim(factory, "w2") == []


def test_it_respects_the_limit_and_hands_out_the_earliest_first(factory) -> None:
    with factory() as s:
        late = make_delivery(s, next_attempt_at=NOW - timedelta(minutes=1)).id
        early = make_delivery(s, next_attempt_at=NOW - timedelta(minutes=9)).id
        middle = make_delivery(s, next_attempt_at=NOW - timedelta(minutes=4)).id
        s.commit()
    assert claim(factory, limit=2) == [early, middle]
    assert claim(factory, "w2") == [late]


def test_it_claims_only_the_earliest_due_delivery_of_each_account(factory) -> None:
    with factory() as s:
        account = make_account(s)
        second = make_delivery(s, account=account, next_attempt_at=NOW - timedelta(minutes=1))
        first = make_delivery(s, account=account, next_attempt_at=NOW - timedelta(minutes=2))
        s.commit()
        first_id, second_id = first.id, second.id
    assert claim(factory) == [first_id]
    assert claim(factory, "w2") == []  # the account is busy until the first one finishes
    with factory() as s:
        assert queue.complete(s, first_id, "w1", [Receipt("r1")])
        s.commit()
    assert claim(factory, "w2") == [second_id]


def test_it_gives_an_account_nothing_new_while_a_delivery_is_being_reconciled(factory) -> None:
    with factory() as s:
        account = make_account(s)
        make_delivery(s, account=account, status=DeliveryStatus.RECONCILE)
        make_delivery(s, account=account, next_attempt_at=EARLIER)
        s.commit()
    assert claim(factory) == []


def test_it_skips_accounts_that_need_attention_and_keeps_their_deliveries_pending(
    factory,
) -> None:
    with factory() as s:
        broken = make_account(s, status=AccountStatus.NEEDS_ATTENTION)
        stuck = make_delivery(s, account=broken, next_attempt_at=EARLIER).id
        fine = make_delivery(s, next_attempt_at=EARLIER).id
        s.commit()
    assert claim(factory) == [fine]
    assert get(factory, stuck).status == DeliveryStatus.PENDING


def test_it_holds_a_repost_until_the_post_it_reshares_has_landed(factory) -> None:
    with factory() as s:
        post = make_post(s)
        original = make_delivery(s, post=post, next_attempt_at=NOW + timedelta(hours=1))
        repost = make_delivery(
            s, post=post, kind=DeliveryKind.REPOST, source_id=original.id, next_attempt_at=EARLIER
        )
        s.commit()
        original_id, repost_id = original.id, repost.id
    assert claim(factory) == []
    with factory() as s:
        d = s.get(Delivery, original_id)
        assert d is not None
        d.status = DeliveryStatus.PUBLISHED
        s.commit()
    assert claim(factory) == [repost_id]


def test_it_does_not_send_deliveries_of_a_story_that_is_not_approved(factory) -> None:
    with factory() as s:
        make_delivery(s, post=make_post(s, state=PostState.CANCELLED), next_attempt_at=EARLIER)
        make_delivery(s, post=make_post(s, state=PostState.DRAFT), next_attempt_at=EARLIER)
        s.commit()
    assert claim(factory) == []


def test_it_claims_only_for_the_accounts_asked_for(factory) -> None:
    a, b = add(factory, 2)
    account_b = get(factory, b).account_id
    assert queue.claim_due(factory, "w1", limit=5, now=NOW, account_ids=[account_b]) == [b]
    assert get(factory, a).status == DeliveryStatus.PENDING


# --------------------------------------------------------------------------- completing


def test_it_completes_with_remote_refs_parts_and_the_first_metrics_time(factory) -> None:
    (did,) = add(factory)
    claim(factory)
    receipts = [Receipt("1", uri="at://a/1", cid="c1", url="https://x/1"), Receipt("2")]
    with factory() as s:
        assert queue.complete(s, did, "w1", receipts, now=NOW)
        s.commit()
    d = get(factory, did)
    assert d.status == DeliveryStatus.PUBLISHED
    assert (d.remote_id, d.remote_uri, d.remote_cid, d.remote_url) == (
        "1",
        "at://a/1",
        "c1",
        "https://x/1",
    )
    assert [p["remote_id"] for p in d.parts] == ["1", "2"]
    assert d.published_at == NOW
    assert d.next_metrics_at == NOW + timedelta(minutes=15)
    assert d.lease_owner is None and d.lease_expires_at is None


def test_it_marks_the_story_published_when_its_last_delivery_lands(factory) -> None:
    with factory() as s:
        post = make_post(s)
        one = make_delivery(s, post=post, next_attempt_at=EARLIER).id
        two = make_delivery(s, post=post, next_attempt_at=EARLIER).id
        s.commit()
        post_id = post.id
    claim(factory)
    with factory() as s:
        queue.complete(s, one, "w1", [Receipt("a")])
        s.commit()
        assert s.get(Post, post_id).state == PostState.APPROVED  # type: ignore[union-attr]
        queue.complete(s, two, "w1", [Receipt("b")])
        s.commit()
        assert s.get(Post, post_id).state == PostState.PUBLISHED  # type: ignore[union-attr]


def test_it_publishes_the_story_when_its_last_two_deliveries_complete_at_once(factory) -> None:
    with factory() as s:
        post = make_post(s)
        one = make_delivery(s, post=post, next_attempt_at=EARLIER).id
        two = make_delivery(s, post=post, next_attempt_at=EARLIER).id
        s.commit()
        post_id = post.id
    claim(factory)
    first = factory()
    assert queue.complete(first, one, "w1", [Receipt("a")])  # not committed yet
    outcome: list[bool] = []

    def other_worker() -> None:
        with factory() as s:
            outcome.append(queue.complete(s, two, "w1", [Receipt("b")]))
            s.commit()

    thread = threading.Thread(target=other_worker)
    thread.start()
    thread.join(timeout=0.5)  # it waits for the first transaction
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert outcome == [True]
    with factory() as s:
        assert s.get(Post, post_id).state == PostState.PUBLISHED  # type: ignore[union-attr]


def test_it_refuses_to_complete_for_a_worker_that_lost_its_lease(factory) -> None:
    (did,) = add(factory)
    claim(factory, "w1")
    with factory() as s:
        assert queue.expire_leases(s, now=NOW + timedelta(minutes=5)) == [did]
        s.commit()
    with factory() as s:
        assert queue.complete(s, did, "w1", [Receipt("late")]) is False
        assert queue.fail(s, did, "w1", TransientError("boom")) is None
        s.commit()
    d = get(factory, did)
    assert d.status == DeliveryStatus.RECONCILE
    assert d.remote_id is None


def test_it_records_each_thread_part_and_extends_the_lease(factory) -> None:
    (did,) = add(factory)
    claim(factory)
    with factory() as s:
        later = NOW + timedelta(seconds=50)
        assert queue.record_part(s, did, "w1", 0, Receipt("p0"), now=later, lease_seconds=60)
        assert queue.record_part(s, did, "w1", 1, Receipt("p1"), now=later, lease_seconds=60)
        assert not queue.record_part(s, did, "intruder", 2, Receipt("p2"))
        s.commit()
    d = get(factory, did)
    assert [p["remote_id"] for p in d.parts] == ["p0", "p1"]
    assert d.lease_expires_at == NOW + timedelta(seconds=110)
    assert [r.remote_id for r in queue.landed_receipts(d)] == ["p0", "p1"]


def test_it_extends_a_lease_only_for_the_worker_holding_it(factory) -> None:
    (did,) = add(factory)
    claim(factory)
    later = NOW + timedelta(seconds=50)
    with factory() as s:
        assert queue.extend_lease(s, did, "w1", now=later, lease_seconds=60)
        assert not queue.extend_lease(s, did, "w2", now=later + timedelta(seconds=30))
        s.commit()
    assert get(factory, did).lease_expires_at == later + timedelta(seconds=60)
    with factory() as s:
        assert queue.expire_leases(s, now=NOW + timedelta(seconds=61)) == []


# --------------------------------------------------------------------------- failing


def test_it_waits_for_the_platform_reset_time_after_a_rate_limit(factory) -> None:
    with factory() as s:
        account = make_account(s)
        did = make_delivery(s, account=account, next_attempt_at=EARLIER).id
        sibling = make_delivery(s, account=account, next_attempt_at=NOW).id
        s.commit()
    claim(factory)
    reset = NOW + timedelta(minutes=15)
    with factory() as s:
        status = queue.fail(s, did, "w1", RateLimited("slow down", retry_at=reset), now=NOW)
        s.commit()
    assert status == DeliveryStatus.PENDING
    d = get(factory, did)
    assert d.next_attempt_at == reset
    assert d.attempts == 0  # a rate limit is not a failed attempt
    assert d.error_kind == "rate_limited" and d.last_error == "slow down"
    assert get(factory, sibling).next_attempt_at == reset  # the whole account waits
    assert queue.claim_due(factory, "w1", limit=5, now=reset - timedelta(seconds=1)) == []
    assert queue.claim_due(factory, "w1", limit=5, now=reset) == [did]


def test_it_never_gives_up_on_rate_limits_alone(factory) -> None:
    (did,) = add(factory)
    for round_ in range(NO_JITTER.max_attempts + 2):
        now = NOW + timedelta(hours=round_)
        assert queue.claim_due(factory, "w1", limit=1, now=now) == [did]
        with factory() as s:
            queue.fail(s, did, "w1", RateLimited("wait"), now=now, policy=NO_JITTER)
            s.commit()
    assert get(factory, did).status == DeliveryStatus.PENDING


def test_it_backs_off_after_transient_errors_and_gives_up_after_max_attempts(factory) -> None:
    (did,) = add(factory)
    now = NOW
    delays = []
    for _ in range(NO_JITTER.max_attempts - 1):
        assert queue.claim_due(factory, "w1", limit=1, now=now) == [did]
        with factory() as s:
            status = queue.fail(s, did, "w1", TransientError("timeout"), now=now, policy=NO_JITTER)
            s.commit()
        assert status == DeliveryStatus.PENDING
        d = get(factory, did)
        delays.append((d.next_attempt_at - now).total_seconds())
        now = d.next_attempt_at
    assert delays == [30, 60]
    assert queue.claim_due(factory, "w1", limit=1, now=now) == [did]
    with factory() as s:
        status = queue.fail(s, did, "w1", TransientError("timeout"), now=now, policy=NO_JITTER)
        s.commit()
    d = get(factory, did)
    assert status == d.status == DeliveryStatus.FAILED
    assert d.last_error == "gave up after 3 attempts; last error: timeout"


def test_it_stops_at_a_permanent_error_with_the_platform_reason(factory) -> None:
    (did,) = add(factory)
    claim(factory)
    with factory() as s:
        queue.fail(s, did, "w1", PermanentError("the text is too long by 12 characters"))
        s.commit()
    d = get(factory, did)
    assert d.status == DeliveryStatus.FAILED
    assert d.error_kind == "permanent"
    assert d.last_error == "the text is too long by 12 characters"
    assert d.lease_owner is None


def test_it_marks_the_account_as_needing_attention_after_an_auth_error(factory) -> None:
    (did,) = add(factory)
    claim(factory)
    with factory() as s:
        queue.fail(s, did, "w1", AuthError("the token was revoked; reconnect the account"))
        s.commit()
    d = get(factory, did)
    assert d.status == DeliveryStatus.FAILED and d.error_kind == "auth"
    with factory() as s:
        account = s.get(Account, d.account_id)
        assert account is not None
        assert account.status == AccountStatus.NEEDS_ATTENTION
        assert account.last_error == "the token was revoked; reconnect the account"


# --------------------------------------------------------------------------- recovery


def test_it_sends_an_expired_lease_to_reconcile_never_straight_back_to_pending(factory) -> None:
    (did,) = add(factory)
    (fresh,) = add(factory)
    claim(factory)
    with factory() as s:
        d = s.get(Delivery, fresh)
        assert d is not None
        d.lease_expires_at = NOW + timedelta(hours=1)
        s.commit()
    with factory() as s:
        assert queue.expire_leases(s, now=NOW + timedelta(minutes=2)) == [did]
        s.commit()
    d = get(factory, did)
    assert d.status == DeliveryStatus.RECONCILE
    assert d.lease_owner is None
    assert get(factory, fresh).status == DeliveryStatus.CLAIMED
    assert claim(factory, "w2") == []  # reconcile is not pending


def test_it_leases_reconcile_work_to_one_worker_at_a_time(factory) -> None:
    ids = add(factory, 2, status=DeliveryStatus.RECONCILE)
    got = queue.claim_reconcile(factory, "w1", limit=5, now=NOW, lease_seconds=60)
    assert got == sorted(ids)
    assert queue.claim_reconcile(factory, "w2", limit=5, now=NOW) == []
    # The lease of a reconciling worker that vanished runs out; another may take over.
    later = NOW + timedelta(seconds=61)
    assert queue.claim_reconcile(factory, "w2", limit=5, now=later) == sorted(ids)
    with factory() as s:
        assert queue.complete(s, ids[0], "w1", [Receipt("x")]) is False
        assert queue.complete(s, ids[0], "w2", [Receipt("x")]) is True
        s.commit()


def test_it_keeps_reconciling_when_the_platform_cannot_be_asked_right_now(factory) -> None:
    (did,) = add(factory, status=DeliveryStatus.RECONCILE)
    queue.claim_reconcile(factory, "w1", limit=1, now=NOW)
    with factory() as s:
        status = queue.fail(s, did, "w1", TransientError("502"), now=NOW, policy=NO_JITTER)
        s.commit()
    assert status == DeliveryStatus.RECONCILE
    d = get(factory, did)
    assert d.next_attempt_at == NOW + timedelta(seconds=30)
    assert "could not check whether it was already published" in (d.last_error or "")


def test_it_releases_unstarted_claims_of_a_stopping_worker_only(factory) -> None:
    mine = add(factory, 2)
    claim(factory, "w1")
    (theirs,) = add(factory)
    claim(factory, "w2")
    with factory() as s:
        assert queue.release(s, "w1") == 2
        s.commit()
    for did in mine:
        d = get(factory, did)
        assert (d.status, d.lease_owner, d.attempts) == (DeliveryStatus.PENDING, None, 0)
    assert get(factory, theirs).status == DeliveryStatus.CLAIMED


# --------------------------------------------------------------------------- reading


def test_it_counts_deliveries_per_status_and_knows_the_next_due_time(factory) -> None:
    add(factory, 2)
    with factory() as s:
        make_delivery(s, next_attempt_at=NOW + timedelta(hours=2), status=DeliveryStatus.FAILED)
        s.commit()
    claim(factory, limit=1)
    with factory() as s:
        counts = queue.queue_counts(s)
        assert counts["pending"] == 1 and counts["claimed"] == 1 and counts["failed"] == 1
        assert counts["published"] == 0
        assert queue.next_due(s) == EARLIER
        s.execute(select(Delivery))  # the session is still usable
    with factory() as s:
        for d in s.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.PENDING)):
            d.status = DeliveryStatus.CANCELLED
        s.commit()
        assert queue.next_due(s) is None


def test_it_names_each_connector_error_for_the_retry_policy() -> None:
    assert queue.failure_of(RateLimited("slow down")) == Failure.RATE_LIMITED
    assert queue.failure_of(AuthError("token revoked")) == Failure.AUTH
    assert queue.failure_of(PermanentError("too long")) == Failure.PERMANENT
    assert queue.failure_of(TransientError("timeout")) == Failure.TRANSIENT
