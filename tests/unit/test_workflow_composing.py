"""The composer's service rules: no double sends, autosaved drafts, past times need "publish
now", and a lead's thread cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from amplify import workflow
from amplify.errors import IllegalTransition, NotAllowed, ValidationFailed
from amplify.models import AuditEvent, Post, PostState, utcnow
from tests.factories import make_account, make_user

WHEN = datetime(2031, 5, 4, 15, 30, tzinfo=UTC)
STORY = "Our clinic cut wait times by half."
LONG = " ".join(["Volunteers staffed the screening tent all weekend long."] * 40)


@pytest.fixture
def people(session):
    people = {
        "lead": make_user(session, role="lead", name="lee"),
        "vol": make_user(session, role="volunteer", name="val"),
        "other": make_user(session, role="volunteer", name="otto"),
    }
    session.commit()
    return people


def _submitted(s, author, body=STORY, **fields) -> Post:
    post = workflow.create_draft(s, author, body=body, **fields)
    return workflow.submit(s, author, post.id)


# --------------------------------------------------------------------------- double sends


def test_it_refuses_the_same_story_sent_twice_within_minutes(session, people):
    first = _submitted(session, people["vol"], link="https://example.org/a")
    session.commit()
    with pytest.raises(ValidationFailed) as exc:
        _submitted(session, people["vol"], link="https://example.org/a")
    [problem] = exc.value.problems
    assert problem.startswith("You already sent this story for review at ")
    assert f"(#{first.id}); it is in My stories." in problem
    session.rollback()
    assert len(session.scalars(select(Post)).all()) == 1


def test_it_refuses_a_second_identical_draft_within_minutes(session, people):
    workflow.create_draft(session, people["vol"], body=STORY)
    with pytest.raises(ValidationFailed, match="You already saved this story as a draft at"):
        workflow.create_draft(session, people["vol"], body=f"  {STORY} ")


def test_it_takes_a_different_story_or_another_author_or_the_same_story_later(session, people):
    first = _submitted(session, people["vol"], link="https://example.org/a")
    _submitted(session, people["vol"], link="https://example.org/b")  # a different link
    _submitted(session, people["other"], link="https://example.org/a")  # another author
    first.submitted_at = utcnow() - workflow.DUPLICATE_WINDOW - timedelta(minutes=1)
    first.created_at = first.submitted_at
    session.flush()
    again = _submitted(session, people["vol"], link="https://example.org/a")
    assert again.state == PostState.SUBMITTED


def test_it_refuses_submitting_a_draft_identical_to_one_just_sent(session, people):
    _submitted(session, people["vol"])
    draft = workflow.autosave(session, people["vol"], body=STORY)
    with pytest.raises(ValidationFailed, match="You already sent this story for review"):
        workflow.submit(session, people["vol"], draft.id)


# --------------------------------------------------------------------------- autosave


def test_it_keeps_what_is_typed_as_an_autosaved_draft_and_finds_the_newest(session, people):
    assert workflow.latest_autosave(session, people["vol"]) is None
    post = workflow.autosave(
        session, people["vol"], body="Half a sto", link="https://exa", target_platforms=["x"]
    )
    assert post.autosaved and post.state == PostState.DRAFT
    assert (post.body, post.link) == ("Half a sto", "https://exa"), "kept as typed"
    workflow.autosave(
        session, people["vol"], post.id, expected_version=post.version, body="Half a story."
    )
    assert workflow.latest_autosave(session, people["vol"]) is post
    assert workflow.latest_autosave(session, people["other"]) is None
    assert post.body == "Half a story."
    actions = session.scalars(select(AuditEvent.action)).all()
    assert actions == ["post.autosaved"], "one entry for the draft, not one per keystroke"


def test_it_clears_the_autosaved_mark_when_saved_or_submitted_on_purpose(session, people):
    saved = workflow.autosave(session, people["vol"], body="First story.")
    workflow.edit(session, people["vol"], saved.id, body="First story, saved.")
    assert saved.autosaved is False
    sent = workflow.autosave(session, people["vol"], body="Second story.")
    workflow.submit(session, people["vol"], sent.id)
    assert sent.autosaved is False and sent.state == PostState.SUBMITTED
    assert workflow.latest_autosave(session, people["vol"]) is None


def test_it_checks_an_autosaved_link_before_review(session, people):
    post = workflow.autosave(session, people["vol"], body="A story.", link="not a link")
    with pytest.raises(ValidationFailed, match="must start with http"):
        workflow.submit(session, people["vol"], post.id)


def test_it_autosaves_only_into_the_authors_own_draft(session, people):
    post = workflow.autosave(session, people["vol"], body="Mine.")
    with pytest.raises(NotAllowed):
        workflow.autosave(session, people["other"], post.id, body="Not yours.")
    workflow.submit(session, people["vol"], post.id)
    with pytest.raises(IllegalTransition, match="start a new story"):
        workflow.autosave(session, people["vol"], post.id, body="Typed after submitting.")


def test_it_deletes_an_own_draft_and_nothing_else(session, people):
    post = workflow.autosave(session, people["vol"], body="Typed, then abandoned.")
    with pytest.raises(NotAllowed):
        workflow.delete_draft(session, people["other"], post.id)
    sent = _submitted(session, people["vol"])
    with pytest.raises(IllegalTransition, match="only drafts can be deleted"):
        workflow.delete_draft(session, people["vol"], sent.id)
    workflow.delete_draft(session, people["vol"], post.id)
    assert session.get(Post, post.id) is None
    deleted = session.scalars(select(AuditEvent).where(AuditEvent.action == "post.deleted")).one()
    assert deleted.subject_id == post.id and deleted.detail == {"autosaved": True}


# --------------------------------------------------------------------------- past times


def test_it_refuses_a_past_time_unless_told_to_publish_now(session, people):
    account = make_account(session, platform="sandbox", handle="org.one")
    post = _submitted(session, people["vol"])
    past = utcnow() - timedelta(hours=2)
    with pytest.raises(ValidationFailed, match=r'has already passed.*"Publish now"'):
        workflow.approve(
            session, people["lead"], post.id, account_ids=[account.id], scheduled_for=past
        )
    assert post.state == PostState.SUBMITTED
    workflow.approve(
        session,
        people["lead"],
        post.id,
        account_ids=[account.id],
        scheduled_for=past,
        publish_now=True,
    )
    assert post.state == PostState.APPROVED
    assert workflow.post_history(session, post.id)[-1].detail["publish_now"] is True


def test_it_takes_now_computed_a_moment_ago_as_now(session, people):
    account = make_account(session, platform="sandbox", handle="org.one")
    post = _submitted(session, people["vol"])
    a_moment_ago = utcnow() - timedelta(seconds=5)
    workflow.approve(
        session, people["lead"], post.id, account_ids=[account.id], scheduled_for=a_moment_ago
    )
    assert post.state == PostState.APPROVED


def test_it_refuses_rescheduling_into_the_past_unless_told_to_publish_now(session, people):
    account = make_account(session, platform="sandbox", handle="org.one")
    post = _submitted(session, people["vol"])
    workflow.approve(session, people["lead"], post.id, account_ids=[account.id], scheduled_for=WHEN)
    past = utcnow() - timedelta(days=1)
    with pytest.raises(ValidationFailed, match=r"The new time .* has already passed"):
        workflow.reschedule(session, people["lead"], post.id, past)
    assert post.scheduled_for == WHEN
    workflow.reschedule(session, people["lead"], post.id, past, publish_now=True)
    assert post.scheduled_for == past


# --------------------------------------------------------------------------- thread cap


def test_it_refuses_a_thread_longer_than_the_leads_cap(session, people):
    x = make_account(session, platform="x", handle="org")
    post = _submitted(session, people["vol"], body=LONG)
    workflow.edit(session, people["lead"], post.id, thread_cap=3)
    with pytest.raises(ValidationFailed) as exc:
        workflow.approve(session, people["lead"], post.id, account_ids=[x.id], scheduled_for=WHEN)
    [problem] = exc.value.problems
    assert "On X the text needs" in problem and "capped at 3" in problem
    assert "shorten it" in problem and "raise the cap" in problem
    workflow.edit(session, people["lead"], post.id, thread_cap=None)
    workflow.approve(session, people["lead"], post.id, account_ids=[x.id], scheduled_for=WHEN)
    assert post.state == PostState.APPROVED


def test_it_lets_only_leads_cap_a_thread_and_only_with_a_sensible_number(session, people):
    post = workflow.create_draft(session, people["vol"], body=STORY)
    with pytest.raises(NotAllowed, match="Only leads and admins can cap a thread"):
        workflow.edit(session, people["vol"], post.id, thread_cap=2)
    for bad in (0, -1, workflow.MAX_THREAD_CAP + 1, True):
        with pytest.raises(ValidationFailed, match="thread cap must be a whole number"):
            workflow.edit(session, people["lead"], post.id, thread_cap=bad)
    workflow.edit(session, people["lead"], post.id, thread_cap=4)
    assert post.thread_cap == 4
