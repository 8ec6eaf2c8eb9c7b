from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from amplify import db as amplify_db
from amplify import workflow
from amplify.errors import Conflict, IllegalTransition, NotAllowed, NotFound, ValidationFailed
from amplify.models import (
    Account,
    AuditEvent,
    Delivery,
    Post,
    PostState,
    User,
    utcnow,
)
from amplify.workflow import MediaInput

WHEN = datetime(2031, 5, 4, 15, 30, tzinfo=UTC)


def _user(s, role: str, name: str) -> User:
    user = User(email=f"{name}@example.org", name=name, role=role, password_hash="x")
    s.add(user)
    s.flush()
    return user


def _account(s, handle: str, *, platform: str = "sandbox", status: str = "ok") -> Account:
    account = Account(platform=platform, handle=handle, credentials_enc="x", status=status)
    s.add(account)
    s.flush()
    return account


@pytest.fixture
def people(session):
    people = {
        "admin": _user(session, "admin", "ada"),
        "lead": _user(session, "lead", "lee"),
        "vol": _user(session, "volunteer", "val"),
        "other": _user(session, "volunteer", "otto"),
    }
    session.commit()
    return people


@pytest.fixture
def accounts(session):
    accs = [_account(session, "org.one"), _account(session, "org.two")]
    session.commit()
    return accs


def _draft(s, author, body="Our clinic cut wait times by half.") -> Post:
    return workflow.create_draft(s, author, body=body)


def _submitted(s, people) -> Post:
    post = _draft(s, people["vol"])
    return workflow.submit(s, people["vol"], post.id)


def _approved(s, people, accounts, when=WHEN) -> Post:
    post = _submitted(s, people)
    return workflow.approve(
        s, people["lead"], post.id, account_ids=[a.id for a in accounts], scheduled_for=when
    )


def _events(s, post_id: int) -> list[str]:
    return [e.action for e in workflow.post_history(s, post_id)]


# --------------------------------------------------------------------------- drafting


def test_it_creates_a_draft_and_records_it(session, people):
    post = workflow.create_draft(
        session,
        people["vol"],
        body="  Our clinic cut wait times by half.  ",
        link="https://example.org/story",
        target_platforms=["bluesky", "mastodon"],
        overrides={"x": "Short version", "bluesky": "  "},
        media=[MediaInput("uploads/a.jpg", "Nurses at the desk", "image/jpeg")],
    )
    assert post.state == PostState.DRAFT
    assert post.body == "Our clinic cut wait times by half."
    assert post.author_id == people["vol"].id
    assert post.overrides == {"x": "Short version"}
    assert [m.alt_text for m in post.media] == ["Nurses at the desk"]
    assert _events(session, post.id) == ["post.created"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"body": "   "}, "text is empty"),
        ({"link": "ftp://example.org/x"}, "must start with http:// or https://"),
        ({"link": "example.org"}, "must start with http:// or https://"),
        ({"media": [MediaInput("a.jpg", "")]}, "Image 1 needs alt text"),
        ({"media": [MediaInput(f"{i}.jpg", "alt") for i in range(5)]}, "at most 4 images"),
        ({"media": [MediaInput("a.pdf", "alt", "application/pdf")]}, "not an image"),
        ({"media": [MediaInput("/etc/passwd", "alt")]}, "must be uploaded through Amplify"),
        ({"media": [MediaInput("media/../../secret.key", "alt")]}, "uploaded through Amplify"),
        ({"target_platforms": ["myspace"]}, "Unknown platform(s): myspace"),
        ({"preferred_time": datetime(2031, 1, 1, 9, 0)}, "with its time zone"),
        ({"campaign_id": 12345}, "campaign does not exist"),
    ],
)
def test_it_says_what_to_fix_in_a_draft(session, people, fields, expected):
    kwargs = {"body": "A story"} | fields
    with pytest.raises(ValidationFailed) as exc:
        workflow.create_draft(session, people["vol"], **kwargs)
    assert expected in str(exc.value)
    assert session.scalar(select(func.count(Post.id))) == 0


def test_it_accepts_four_images_with_alt_text(session, people):
    media = [MediaInput(f"{i}.png", f"Photo {i}", "image/png") for i in range(4)]
    post = workflow.create_draft(session, people["vol"], body="Four photos", media=media)
    assert [m.position for m in post.media] == [0, 1, 2, 3]


def test_it_refuses_an_inactive_person_drafting(session, people):
    people["vol"].active = False
    with pytest.raises(NotAllowed, match="deactivated"):
        _draft(session, people["vol"])


def test_it_lets_an_author_edit_their_draft(session, people):
    post = _draft(session, people["vol"])
    workflow.edit(session, people["vol"], post.id, body="Better words", link="https://a.example")
    assert (post.body, post.link) == ("Better words", "https://a.example")
    history = workflow.post_history(session, post.id)
    assert history[-1].action == "post.edited"
    assert history[-1].detail == {"fields": ["body", "link"]}


def test_it_refuses_a_volunteer_editing_someone_elses_draft(session, people):
    post = _draft(session, people["vol"])
    with pytest.raises(NotAllowed, match="Only leads and admins can edit someone else's story"):
        workflow.edit(session, people["other"], post.id, body="Mine now")


def test_it_refuses_editing_unknown_fields(session, people):
    post = _draft(session, people["vol"])
    with pytest.raises(ValidationFailed, match="cannot be edited here: state"):
        workflow.edit(session, people["vol"], post.id, state="approved")


def test_it_asks_the_author_to_withdraw_before_editing_a_submitted_story(session, people):
    post = _submitted(session, people)
    with pytest.raises(IllegalTransition, match="withdraw it first to edit"):
        workflow.edit(session, people["vol"], post.id, body="Changed")


def test_it_lets_a_lead_polish_a_submitted_story(session, people):
    post = _submitted(session, people)
    workflow.edit(session, people["lead"], post.id, body="Polished")
    assert post.body == "Polished" and post.state == PostState.SUBMITTED


def test_it_refuses_editing_an_approved_story_with_a_readable_message(session, people, accounts):
    post = _approved(session, people, accounts)
    with pytest.raises(IllegalTransition) as exc:
        workflow.edit(session, people["lead"], post.id, body="Too late")
    assert str(exc.value) == "This story is already approved; cancel it first to edit."


def test_it_reports_a_missing_story(session, people):
    with pytest.raises(NotFound, match="no story #404"):
        workflow.submit(session, people["vol"], 404)


# --------------------------------------------------------------------------- submit/withdraw


def test_it_submits_and_withdraws(session, people):
    post = _draft(session, people["vol"])
    workflow.submit(session, people["vol"], post.id)
    assert post.state == PostState.SUBMITTED and post.submitted_at is not None
    workflow.withdraw(session, people["vol"], post.id)
    assert post.state == PostState.DRAFT and post.submitted_at is None
    assert _events(session, post.id) == ["post.created", "post.submitted", "post.withdrawn"]


def test_it_refuses_a_volunteer_submitting_someone_elses_draft(session, people):
    post = _draft(session, people["vol"])
    with pytest.raises(NotAllowed, match="only submit stories you wrote"):
        workflow.submit(session, people["other"], post.id)


# --------------------------------------------------------------------------- approve


def test_it_approves_with_one_delivery_per_account(session, people, accounts):
    post = _approved(session, people, accounts)
    assert post.state == PostState.APPROVED
    assert post.scheduled_for == WHEN
    deliveries = session.scalars(select(Delivery).where(Delivery.post_id == post.id)).all()
    assert sorted(d.account_id for d in deliveries) == sorted(a.id for a in accounts)
    assert {d.kind for d in deliveries} == {"post"}
    assert {d.status for d in deliveries} == {"pending"}
    assert {d.next_attempt_at for d in deliveries} == {WHEN}
    keys = [d.idempotency_key for d in deliveries]
    assert len(set(keys)) == 2 and all(len(k) == 32 for k in keys)
    event = workflow.post_history(session, post.id)[-1]
    assert event.action == "post.approved" and event.actor_id == people["lead"].id
    assert event.detail["scheduled_for"] == WHEN.isoformat()


def test_it_refuses_a_volunteer_approving(session, people, accounts):
    post = _submitted(session, people)
    with pytest.raises(NotAllowed, match="Only leads and admins can approve stories"):
        workflow.approve(
            session, people["vol"], post.id, account_ids=[accounts[0].id], scheduled_for=WHEN
        )


def test_it_lets_an_admin_do_what_a_lead_does(session, people, accounts):
    post = _submitted(session, people)
    workflow.approve(
        session, people["admin"], post.id, account_ids=[accounts[0].id], scheduled_for=WHEN
    )
    assert post.state == PostState.APPROVED


def test_it_needs_at_least_one_account_to_approve(session, people):
    post = _submitted(session, people)
    with pytest.raises(ValidationFailed, match="at least one account"):
        workflow.approve(session, people["lead"], post.id, account_ids=[], scheduled_for=WHEN)
    assert post.state == PostState.SUBMITTED


def test_it_refuses_an_account_that_needs_attention(session, people):
    broken = _account(session, "broken", status="needs_attention")
    broken.last_error = "the app password was revoked"
    post = _submitted(session, people)
    with pytest.raises(ValidationFailed, match="app password was revoked"):
        workflow.approve(
            session, people["lead"], post.id, account_ids=[broken.id], scheduled_for=WHEN
        )


def test_it_refuses_a_time_without_a_zone(session, people, accounts):
    post = _submitted(session, people)
    with pytest.raises(ValidationFailed, match="time zone"):
        workflow.approve(
            session,
            people["lead"],
            post.id,
            account_ids=[accounts[0].id],
            scheduled_for=datetime(2031, 5, 4, 15, 30),
        )


def test_it_lets_a_long_story_through_as_a_thread(session, people):
    x = _account(session, "org", platform="x")
    post = _draft(session, people["vol"], body=" ".join(["Patients waited less."] * 40))
    workflow.submit(session, people["vol"], post.id)
    workflow.approve(session, people["lead"], post.id, account_ids=[x.id], scheduled_for=WHEN)
    assert post.state == PostState.APPROVED


def test_it_refuses_text_the_platform_cannot_take(session, people, monkeypatch):
    import amplify.textrules as textrules

    def refuse(*args, **kwargs):
        raise ValueError("a word is longer than a post")

    monkeypatch.setattr(textrules, "render", refuse)
    x = _account(session, "org", platform="x")
    post = _submitted(session, people)
    with pytest.raises(ValidationFailed, match="does not fit x: a word is longer"):
        workflow.approve(session, people["lead"], post.id, account_ids=[x.id], scheduled_for=WHEN)


def test_it_writes_the_audit_event_in_the_same_transaction(session, people, accounts):
    post = _submitted(session, people)
    session.commit()
    workflow.approve(
        session, people["lead"], post.id, account_ids=[a.id for a in accounts], scheduled_for=WHEN
    )
    assert "post.approved" in _events(session, post.id)
    session.rollback()
    assert "post.approved" not in _events(session, post.id)
    assert session.scalar(select(func.count(Delivery.id))) == 0
    assert session.get(Post, post.id).state == PostState.SUBMITTED


# --------------------------------------------------------------------------- reject


def test_it_sends_a_story_back_to_its_author_with_a_note(session, people):
    post = _submitted(session, people)
    workflow.reject(session, people["lead"], post.id, "Add the clinic's name, please.")
    assert post.state == PostState.DRAFT
    assert post.review_note == "Add the clinic's name, please."
    assert workflow.post_history(session, post.id)[-1].detail == {
        "note": "Add the clinic's name, please."
    }
    workflow.edit(session, people["vol"], post.id, body="At Riverside Clinic, ...")


def test_it_needs_a_note_to_send_a_story_back(session, people):
    post = _submitted(session, people)
    with pytest.raises(ValidationFailed, match="Write a note"):
        workflow.reject(session, people["lead"], post.id, "  ")


# --------------------------------------------------------------------------- reschedule/cancel


def test_it_reschedules_only_pending_deliveries(session, people, accounts):
    post = _approved(session, people, accounts)
    first, second = sorted(post.deliveries, key=lambda d: d.id)
    second.status = "claimed"
    later = WHEN + timedelta(days=1)
    workflow.reschedule(session, people["lead"], post.id, later)
    session.refresh(first)
    session.refresh(second)
    assert post.scheduled_for == later
    assert first.next_attempt_at == later
    assert second.next_attempt_at == WHEN


def test_it_cancels_pending_deliveries_and_leaves_those_in_flight(session, people, accounts):
    third = _account(session, "org.three")
    post = _submitted(session, people)
    workflow.approve(
        session,
        people["lead"],
        post.id,
        account_ids=[a.id for a in [*accounts, third]],
        scheduled_for=WHEN,
    )
    pending, claimed, reconciling = sorted(post.deliveries, key=lambda d: d.id)
    claimed.status, claimed.lease_owner = "claimed", "worker-1"
    reconciling.status = "reconcile"
    result = workflow.cancel(session, people["lead"], post.id)
    assert post.state == PostState.CANCELLED
    assert (result.cancelled, result.in_flight) == (1, 2)
    assert "left to finish" in result.message
    assert [pending.status, claimed.status, reconciling.status] == [
        "cancelled",
        "claimed",
        "reconcile",
    ]
    assert workflow.post_history(session, post.id)[-1].detail["in_flight"] == 2


def test_it_lets_a_lead_cancel_a_draft(session, people):
    post = _draft(session, people["vol"])
    workflow.cancel(session, people["lead"], post.id)
    assert post.state == PostState.CANCELLED


def test_it_never_resends_to_an_account_that_already_published_after_reapproval(
    session, people, accounts
):
    third = _account(session, "org.three")
    post = _approved(session, people, accounts)
    done, waiting = sorted(post.deliveries, key=lambda d: d.id)
    done.status, done.published_at, done.remote_id = "published", utcnow(), "r1"
    done_key, waiting_key = done.idempotency_key, waiting.idempotency_key
    workflow.cancel(session, people["lead"], post.id)
    workflow.edit(session, people["lead"], post.id, body="Corrected figures")
    later = WHEN + timedelta(hours=2)
    workflow.approve(
        session,
        people["lead"],
        post.id,
        account_ids=[a.id for a in [*accounts, third]],
        scheduled_for=later,
    )
    rows = {d.account_id: d for d in session.scalars(select(Delivery))}
    assert len(rows) == 3
    assert (rows[done.account_id].status, rows[done.account_id].idempotency_key) == (
        "published",
        done_key,
    )
    rearmed = rows[waiting.account_id]
    assert (rearmed.status, rearmed.next_attempt_at, rearmed.idempotency_key) == (
        "pending",
        later,
        waiting_key,
    )
    assert rows[third.id].status == "pending"
    assert rows[third.id].idempotency_key not in {done_key, waiting_key}


def test_it_publishes_at_once_when_reapproved_for_accounts_that_all_published(
    session, people, accounts
):
    post = _approved(session, people, accounts[:1])
    (delivery,) = post.deliveries
    delivery.status = "published"
    delivery.published_at = WHEN
    workflow.cancel(session, people["lead"], post.id)
    workflow.approve(
        session, people["lead"], post.id, account_ids=[accounts[0].id], scheduled_for=WHEN
    )
    assert post.state == PostState.PUBLISHED


def test_it_publishes_a_reapproved_story_without_waiting_for_accounts_left_out(
    session, people, accounts
):
    post = _approved(session, people, accounts)
    workflow.cancel(session, people["lead"], post.id)
    workflow.approve(
        session, people["lead"], post.id, account_ids=[accounts[0].id], scheduled_for=WHEN
    )
    kept = next(d for d in post.deliveries if d.account_id == accounts[0].id)
    left_out = next(d for d in post.deliveries if d.account_id == accounts[1].id)
    assert left_out.status == "cancelled"
    kept.status, kept.published_at = "published", WHEN
    assert workflow.refresh_post_state(session, post) == PostState.PUBLISHED


def test_it_cancels_an_approved_story_whose_every_send_was_cancelled(session, people, accounts):
    post = _approved(session, people, accounts[:1])
    (delivery,) = post.deliveries
    delivery.status = "cancelled"
    assert workflow.refresh_post_state(session, post) == PostState.CANCELLED
    assert workflow.post_history(session, post.id)[-1].detail == {
        "reason": "every send was cancelled"
    }


# --------------------------------------------------------------------------- illegal moves

LEGAL_FROM = {
    "submit": {"draft"},
    "withdraw": {"submitted"},
    "approve": {"submitted", "cancelled"},
    "reject": {"submitted"},
    "reschedule": {"approved"},
    "cancel": {"draft", "submitted", "approved"},
    "edit": {"draft", "submitted", "cancelled"},
}


def _attempt(s, move, people, post, account):
    lead = people["lead"]
    if move == "submit":
        return workflow.submit(s, lead, post.id)
    if move == "withdraw":
        return workflow.withdraw(s, lead, post.id)
    if move == "approve":
        return workflow.approve(s, lead, post.id, account_ids=[account.id], scheduled_for=WHEN)
    if move == "reject":
        return workflow.reject(s, lead, post.id, "needs work")
    if move == "reschedule":
        return workflow.reschedule(s, lead, post.id, WHEN)
    if move == "cancel":
        return workflow.cancel(s, lead, post.id)
    return workflow.edit(s, lead, post.id, body="new words")


@pytest.mark.parametrize(
    ("move", "state"),
    [(m, st) for m, legal in LEGAL_FROM.items() for st in PostState if st not in legal],
)
def test_it_refuses_every_illegal_transition_with_a_readable_message(
    session, people, accounts, move, state
):
    post = _draft(session, people["vol"])
    post.state = state
    session.flush()
    events_before = len(_events(session, post.id))
    with pytest.raises(IllegalTransition) as exc:
        _attempt(session, move, people, post, accounts[0])
    assert str(exc.value).startswith("This story ")
    assert post.state == state
    assert len(_events(session, post.id)) == events_before


@pytest.mark.parametrize(
    ("move", "state"), [(m, st) for m, legal in LEGAL_FROM.items() for st in legal]
)
def test_it_allows_every_legal_transition(session, people, accounts, move, state):
    post = _draft(session, people["vol"])
    post.state = state
    session.flush()
    _attempt(session, move, people, post, accounts[0])
    assert len(_events(session, post.id)) == 2


# --------------------------------------------------------------------------- deliveries


def test_it_retries_a_failed_delivery_now_keeping_attempts(session, people, accounts):
    post = _approved(session, people, accounts[:1])
    (delivery,) = post.deliveries
    delivery.status, delivery.attempts = "failed", 3
    delivery.last_error, delivery.error_kind = "server said no", "permanent"
    before = utcnow()
    workflow.retry_delivery(session, people["lead"], delivery.id)
    assert delivery.status == "pending"
    assert delivery.attempts == 3
    assert delivery.last_error is None
    assert before <= delivery.next_attempt_at <= utcnow()
    assert workflow.post_history(session, post.id)[-1].action == "delivery.retried"


def test_it_refuses_retrying_a_delivery_that_did_not_fail(session, people, accounts):
    post = _approved(session, people, accounts[:1])
    (delivery,) = post.deliveries
    with pytest.raises(IllegalTransition, match="this one is pending"):
        workflow.retry_delivery(session, people["lead"], delivery.id)


def test_it_refuses_a_volunteer_retrying(session, people, accounts):
    post = _approved(session, people, accounts[:1])
    (delivery,) = post.deliveries
    delivery.status = "failed"
    with pytest.raises(NotAllowed, match="retry"):
        workflow.retry_delivery(session, people["vol"], delivery.id)


def test_it_publishes_the_story_when_every_post_delivery_landed(session, people, accounts):
    post = _approved(session, people, accounts)
    first, second = sorted(post.deliveries, key=lambda d: d.id)
    first.status, first.published_at = "published", WHEN
    assert workflow.refresh_post_state(session, post) == PostState.APPROVED
    session.add(
        Delivery(
            post_id=post.id,
            account_id=first.account_id,
            kind="repost",
            status="pending",
            next_attempt_at=WHEN,
            idempotency_key="repost-key",
        )
    )
    second.status, second.published_at = "published", WHEN + timedelta(minutes=1)
    assert workflow.refresh_post_state(session, post) == PostState.PUBLISHED
    assert post.published_at == WHEN + timedelta(minutes=1)
    assert _events(session, post.id)[-1] == "post.published"


# --------------------------------------------------------------------------- concurrency


def test_it_raises_conflict_on_a_stale_expected_version(session, people):
    post = _draft(session, people["vol"])
    seen = post.version
    workflow.edit(session, people["lead"], post.id, body="Lead's edit")
    session.flush()
    with pytest.raises(Conflict, match="Someone else changed this story"):
        workflow.edit(session, people["vol"], post.id, expected_version=seen, body="Mine")
    assert post.body == "Lead's edit"


def test_it_raises_conflict_when_two_sessions_edit_one_story(db_url):
    factory = amplify_db.session_factory(db_url)
    with factory() as s:
        author = _user(s, "volunteer", "val")
        lead = _user(s, "lead", "lee")
        post_id = _draft(s, author).id
        s.commit()
    with factory() as first, factory() as second:
        mine = workflow.get_post(first, post_id)
        first_lead = first.get(User, lead.id)
        first.commit()  # the page was rendered; its transaction is over
        workflow.edit(second, second.get(User, lead.id), post_id, body="Their edit")
        second.commit()
        assert mine.version == 1
        with pytest.raises(Conflict, match="reload to see their changes"):
            workflow.edit(first, first_lead, post_id, body="My edit")
        first.rollback()
    with factory() as s:
        assert s.get(Post, post_id).body == "Their edit"


def test_it_raises_conflict_when_two_postgres_transactions_overlap(pg_url):
    factory = amplify_db.session_factory(pg_url)
    with factory() as s:
        author = _user(s, "volunteer", "val")
        lead = _user(s, "lead", "lee")
        post_id = _draft(s, author).id
        s.commit()
    with factory() as first, factory() as second:
        first_lead = first.get(User, lead.id)
        # first's transaction stays open while it holds the story it read (version 1)
        mine = workflow.get_post(first, post_id)
        workflow.edit(second, second.get(User, lead.id), post_id, body="Their edit")
        second.commit()
        with pytest.raises(Conflict):
            workflow.edit(first, first_lead, post_id, body="My edit")
        first.rollback()
        assert mine.body == "Their edit"  # reloaded after the rollback
    with factory() as s:
        assert s.get(Post, post_id).body == "Their edit"
        assert s.get(Post, post_id).version == 2


# --------------------------------------------------------------------------- listings, notify


def test_it_lists_what_each_person_may_see(session, people, accounts):
    own = _draft(session, people["vol"], body="mine")
    theirs = _draft(session, people["other"], body="theirs")
    public = _approved(session, people, accounts)
    seen_by_vol = {p.id for p in workflow.posts_for(session, people["vol"])}
    seen_by_other = {p.id for p in workflow.posts_for(session, people["other"])}
    seen_by_lead = {p.id for p in workflow.posts_for(session, people["lead"])}
    assert seen_by_vol == {own.id, public.id}
    assert seen_by_other == {theirs.id, public.id}
    assert seen_by_lead == {own.id, theirs.id, public.id}
    drafts = workflow.posts_for(session, people["lead"], states=["draft"])
    assert {p.id for p in drafts} == {own.id, theirs.id}
    by_author = workflow.posts_for(session, people["lead"], author_id=people["other"].id)
    assert [p.id for p in by_author] == [theirs.id]


@pytest.fixture
def notify_calls(monkeypatch) -> Iterator[list[tuple[str, dict]]]:
    """What notifications hear, with notifications subscribed to the workflow's events."""
    import amplify.notify as notify

    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(notify, "emit", lambda s, event, **data: calls.append((event, data)))
    stop = notify.listen()
    yield calls
    stop()


def test_it_tells_notify_about_workflow_events_once_they_are_committed(
    session, people, accounts, notify_calls
):
    post = _submitted(session, people)
    assert notify_calls == []  # nothing is said before the change is saved
    session.commit()
    workflow.reject(session, people["lead"], post.id, "Needs a source")
    session.commit()
    workflow.submit(session, people["vol"], post.id)
    workflow.approve(
        session, people["lead"], post.id, account_ids=[accounts[0].id], scheduled_for=WHEN
    )
    session.commit()
    workflow.cancel(session, people["lead"], post.id)
    session.commit()
    assert [c[0] for c in notify_calls] == [
        "submitted",
        "rejected",
        "submitted",
        "approved",
        "cancelled",
    ]
    assert notify_calls[1][1]["note"] == "Needs a source"
    assert all(c[1]["post_id"] == post.id for c in notify_calls)
    assert all(c[1]["post"].id == post.id for c in notify_calls)


def test_it_tells_nobody_about_a_change_that_was_rolled_back(session, people, notify_calls):
    post = _submitted(session, people)
    session.commit()
    workflow.withdraw(session, people["vol"], post.id)
    workflow.submit(session, people["vol"], post.id)
    session.rollback()
    session.commit()
    assert [c[0] for c in notify_calls] == ["submitted"]


def test_it_carries_on_when_notify_is_broken(session, people, monkeypatch):
    import amplify.notify as notify

    calls = []

    def broken(*args, **kwargs):
        calls.append(args[1])
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr(notify, "emit", broken)
    stop = notify.listen()
    try:
        post = _submitted(session, people)
        session.commit()  # the failure is logged, not raised
        workflow.withdraw(session, people["vol"], post.id)
        workflow.submit(session, people["vol"], post.id)
        session.commit()
    finally:
        stop()
    assert session.get(Post, post.id).state == PostState.SUBMITTED
    assert calls == ["submitted", "submitted"]


def test_it_wakes_the_embedded_worker_once_an_approval_reschedule_or_retry_is_committed(
    session, people, accounts, monkeypatch
):
    from amplify import embedded

    woken: list[int] = []
    monkeypatch.setattr(embedded, "wake", lambda: woken.append(1))
    stop = embedded.listen()
    try:
        post = _submitted(session, people)
        session.commit()
        workflow.approve(
            session, people["lead"], post.id, account_ids=[accounts[0].id], scheduled_for=WHEN
        )
        assert woken == []
        session.commit()
        assert len(woken) == 1
        workflow.reschedule(session, people["lead"], post.id, WHEN + timedelta(hours=1))
        session.commit()
        assert len(woken) == 2
        (delivery,) = post.deliveries
        delivery.status, delivery.last_error = "failed", "server said no"
        workflow.retry_delivery(session, people["lead"], delivery.id)
        session.commit()
        assert len(woken) == 3
    finally:
        stop()


def test_it_keeps_the_audit_trail_in_order(session, people, accounts):
    post = _approved(session, people, accounts)
    workflow.reschedule(session, people["lead"], post.id, WHEN + timedelta(hours=1))
    workflow.cancel(session, people["admin"], post.id)
    events = workflow.post_history(session, post.id)
    assert [e.action for e in events] == [
        "post.created",
        "post.submitted",
        "post.approved",
        "post.rescheduled",
        "post.cancelled",
    ]
    assert [e.actor_id for e in events][-1] == people["admin"].id
    assert session.scalar(select(func.count(AuditEvent.id))) == 5


# --------------------------------------------------------------------------- roles × services

# Which roles each workflow service lets through, on a story someone else (a volunteer) wrote.
SERVICE_ROLES = {
    "edit": {"lead", "admin"},
    "submit": {"lead", "admin"},
    "withdraw": {"lead", "admin"},
    "approve": {"lead", "admin"},
    "reject": {"lead", "admin"},
    "reschedule": {"lead", "admin"},
    "cancel": {"lead", "admin"},
    "retry_delivery": {"lead", "admin"},
}
START_STATE = {
    "edit": "draft",
    "submit": "draft",
    "withdraw": "submitted",
    "approve": "submitted",
    "reject": "submitted",
    "reschedule": "approved",
    "cancel": "approved",
    "retry_delivery": "approved",
}


def _call(s, service, actor, post, account):
    if service == "retry_delivery":
        delivery = Delivery(
            post_id=post.id,
            account_id=account.id,
            status="failed",
            next_attempt_at=WHEN,
            idempotency_key=f"retry-{post.id}",
        )
        s.add(delivery)
        s.flush()
        return workflow.retry_delivery(s, actor, delivery.id)
    if service == "approve":
        return workflow.approve(s, actor, post.id, account_ids=[account.id], scheduled_for=WHEN)
    if service == "reject":
        return workflow.reject(s, actor, post.id, "needs a source")
    if service == "reschedule":
        return workflow.reschedule(s, actor, post.id, WHEN)
    if service == "edit":
        return workflow.edit(s, actor, post.id, body="edited")
    return getattr(workflow, service)(s, actor, post.id)


@pytest.mark.parametrize("role", ["volunteer", "lead", "admin", "inactive lead"])
@pytest.mark.parametrize("service", list(SERVICE_ROLES))
def test_it_lets_each_role_through_each_service_or_refuses_it(
    session, people, accounts, role, service
):
    post = _draft(session, people["other"])
    post.state = START_STATE[service]
    session.flush()
    actor = {
        "volunteer": people["vol"],
        "lead": people["lead"],
        "admin": people["admin"],
        "inactive lead": people["lead"],
    }[role]
    if role == "inactive lead":
        actor.active = False
    events = len(_events(session, post.id))
    if role in SERVICE_ROLES[service]:
        _call(session, service, actor, post, accounts[0])
        assert len(_events(session, post.id)) == events + 1
    else:
        with pytest.raises(NotAllowed):
            _call(session, service, actor, post, accounts[0])
        assert len(_events(session, post.id)) == events
        assert post.state == START_STATE[service]


@pytest.mark.parametrize("role", ["volunteer", "lead", "admin"])
def test_it_lets_every_active_role_draft_and_submit_their_own(session, people, role):
    actor = {"volunteer": people["vol"], "lead": people["lead"], "admin": people["admin"]}[role]
    post = workflow.create_draft(session, actor, body="Mine")
    workflow.edit(session, actor, post.id, body="Still mine")
    workflow.submit(session, actor, post.id)
    workflow.withdraw(session, actor, post.id)
    assert _events(session, post.id) == [
        "post.created",
        "post.edited",
        "post.submitted",
        "post.withdrawn",
    ]
