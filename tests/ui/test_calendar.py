"""Calendar: events named and coloured, drag-to-reschedule through the workflow, the list
view, publish now, and cancelling that tells the lead what the workflow did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest
from uikit import add_sandbox_account, button, submitted_story, texts

from amplify import calendar_events, workflow
from amplify.analytics import post_label
from amplify.db import session_scope
from amplify.models import AuditEvent, Delivery, Post, User, utcnow
from amplify.queries import CalendarEntry
from tests.factories import make_account, make_delivery, make_post, make_user


def _approved(people: dict[str, int], accounts: int = 1) -> int:
    ids = [add_sandbox_account(f"team{i}.sandbox") for i in range(accounts)]
    pid = submitted_story(people["volunteer"])
    with session_scope() as s:
        lead = s.get(User, people["lead"])
        assert lead is not None
        workflow.approve(s, lead, pid, account_ids=ids, scheduled_for=utcnow() + timedelta(hours=3))
    return pid


def _cancel(at: AppTest, pid: int) -> None:
    at.checkbox(key=f"cal_confirm_{pid}").check().run()
    button(at, "Cancel story").click().run()


def test_it_warns_that_a_send_in_flight_was_left_to_finish(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    pid = _approved(people, accounts=2)
    with session_scope() as s:
        first = s.scalars(select(Delivery).where(Delivery.post_id == pid).order_by(Delivery.id))
        next(iter(first)).status = "claimed"  # a worker is publishing it right now
    at = app_as("lead", "calendar.py")
    _cancel(at, pid)
    [warning] = [w.value for w in at.warning]
    assert f"Story #{pid}" in warning
    assert "1 scheduled send(s) stopped" in warning
    assert "1 send(s) were already being published and were left to finish" in warning
    assert not at.success, "no all-clear while a send may still appear"
    with session_scope() as s:
        post = s.get(Post, pid)
        assert post is not None and post.state == "cancelled"
        statuses = sorted(s.scalars(select(Delivery.status).where(Delivery.post_id == pid)))
    assert statuses == ["cancelled", "claimed"]


def test_it_confirms_a_clean_cancel_with_what_was_stopped(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    pid = _approved(people)
    at = app_as("lead", "calendar.py")
    _cancel(at, pid)
    assert [s.value for s in at.success] == [
        f"Story #{pid}: Cancelled: 1 scheduled send(s) stopped."
    ]
    assert not at.warning


# --------------------------------------------------------------------------- events and drops
# FullCalendar's JavaScript does not run under AppTest: the events it is given and the drop
# handler it reports to are plain functions, tested here; the browser journey drags for real.

CHICAGO = ZoneInfo("America/Chicago")


def _entry(
    s: Session, *, at: datetime, status: str = "pending", state: str = "approved", **account: Any
) -> CalendarEntry:
    acct = make_account(s, platform=account.pop("platform", "sandbox"), **account)
    post = make_post(s, body="Telehealth kept 1,200 patients connected in the storms.", state=state)
    d = make_delivery(s, post=post, account=acct, status=status, next_attempt_at=at)
    return CalendarEntry(
        post_id=post.id,
        delivery_id=d.id,
        account_id=acct.id,
        account=acct.handle,
        platform=acct.platform,
        at=at,
        post_state=state,
        delivery_status=status,
        excerpt=post.body,
        url=None,
    )


def test_it_titles_each_event_by_the_story_and_account_in_the_workspace_zone(
    session: Session,
) -> None:
    at = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)  # 09:30 in Chicago
    entry = _entry(session, at=at, handle="chapter.sandbox")
    [event] = calendar_events.events([entry], CHICAGO)
    words, account = event["title"].split(" · ")
    assert account == "chapter.sandbox (practice)"
    assert words.endswith("…") and len(words) <= calendar_events.TITLE_CHARS
    assert post_label(entry.excerpt).startswith(words[:-1]), "the story's own first words"
    assert words.startswith("Telehealth kept 1,200")
    assert event["start"] == "2026-12-03T09:30"
    assert event["end"] == "2026-12-03T10:45"
    assert event["startEditable"] is True
    assert event["extendedProps"]["post_id"] == entry.post_id


def test_it_colours_events_by_account_and_lists_the_colours_in_a_legend(session: Session) -> None:
    at = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    a = _entry(session, at=at, handle="alpha.sandbox")
    b = _entry(session, at=at, handle="beta.example", platform="mastodon")
    again = replace(a, delivery_id=a.delivery_id + 100)
    colours = [e["backgroundColor"] for e in calendar_events.events([a, b, again], CHICAGO)]
    assert colours[0] == colours[2] != colours[1]
    assert calendar_events.legend([a, b, again]) == [
        ("Mastodon beta.example", colours[1]),
        ("alpha.sandbox (practice)", colours[0]),
    ]


def test_it_ticks_published_sends_and_does_not_let_them_be_dragged(session: Session) -> None:
    entry = _entry(
        session, at=datetime(2026, 11, 3, 5, 40, tzinfo=UTC), status="published", state="published"
    )
    [event] = calendar_events.events([entry], CHICAGO)
    assert event["title"].startswith("✓ ")
    assert event["startEditable"] is False
    assert event["start"] == "2026-11-02T23:40"
    assert event["end"] == "2026-11-03T00:00", "an evening post is not split over midnight"


def test_it_reads_a_dropped_time_as_the_workspaces_wall_clock() -> None:
    when = calendar_events.from_wall_clock("2026-12-03T22:30:00Z", CHICAGO)
    assert when == datetime(2026, 12, 3, 22, 30, tzinfo=CHICAGO)
    assert when.astimezone(UTC) == datetime(2026, 12, 4, 4, 30, tzinfo=UTC)


def _drop(post_id: int, start: str) -> dict[str, Any]:
    return {"event": {"id": f"{post_id}:1", "start": start, "extendedProps": {"post_id": post_id}}}


def _approved_in(s: Session, hours: int) -> tuple[Post, User]:
    lead = make_user(s, role="lead")
    acct = make_account(s, platform="sandbox")
    post = make_post(s, scheduled_for=utcnow() + timedelta(hours=hours))
    make_delivery(s, post=post, account=acct, next_attempt_at=post.scheduled_for)
    s.commit()
    return post, lead


def test_it_reschedules_a_dropped_story_through_the_workflow(session: Session) -> None:
    post, lead = _approved_in(session, 3)
    target = (datetime.now(CHICAGO) + timedelta(days=2)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    result = calendar_events.handle_drop(
        session, lead, _drop(post.id, target.strftime("%Y-%m-%dT%H:%M:%SZ")), CHICAGO
    )
    session.commit()
    assert result.ok, result.message
    assert result.message == f"Moved to {target:%a %d %b} 10:00 (America/Chicago)."
    session.expire_all()
    moved = session.get(Post, post.id)
    assert moved is not None and moved.scheduled_for is not None
    assert moved.scheduled_for.astimezone(CHICAGO) == target
    [delivery] = session.scalars(select(Delivery).where(Delivery.post_id == post.id))
    assert delivery.next_attempt_at.astimezone(CHICAGO) == target
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == post.id))
    assert "post.rescheduled" in list(actions)


def test_it_refuses_a_drop_into_the_past_and_leaves_the_story_where_it_was(
    session: Session,
) -> None:
    post, lead = _approved_in(session, 3)
    before = post.scheduled_for
    past = (datetime.now(CHICAGO) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:00Z")
    result = calendar_events.handle_drop(session, lead, _drop(post.id, past), CHICAGO)
    session.commit()
    assert not result.ok
    assert "has already passed" in result.message and "Publish now" in result.message
    session.expire_all()
    kept = session.get(Post, post.id)
    assert kept is not None and kept.scheduled_for == before


def test_it_refuses_a_volunteer_dropping_a_story_with_the_workflows_reason(
    session: Session,
) -> None:
    post, _ = _approved_in(session, 3)
    volunteer = make_user(session, role="volunteer")
    later = (datetime.now(CHICAGO) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:00Z")
    result = calendar_events.handle_drop(session, volunteer, _drop(post.id, later), CHICAGO)
    assert not result.ok
    assert result.message == "Only leads and admins can reschedule stories."


def test_it_says_when_a_dropped_story_can_no_longer_move(session: Session) -> None:
    post, lead = _approved_in(session, 3)
    post.state = "published"
    session.commit()
    later = (datetime.now(CHICAGO) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:00Z")
    result = calendar_events.handle_drop(session, lead, _drop(post.id, later), CHICAGO)
    assert not result.ok
    assert "only approved stories can be rescheduled" in result.message


def test_it_asks_for_the_drag_again_when_the_drop_cannot_be_read(session: Session) -> None:
    _, lead = _approved_in(session, 3)
    result = calendar_events.handle_drop(session, lead, {"event": {"id": "x"}}, CHICAGO)
    assert not result.ok and "drag the story again" in result.message


def test_the_list_view_names_each_send_by_time_account_and_story(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    pid = _approved(people)
    at = app_as("lead", "calendar.py")
    at.button_group(key="keep_cal_view").set_value("List").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert "team0.sandbox (practice)" in shown
    assert "Our clinic cut wait times by half" in shown
    assert f"story #{pid}" in shown


def test_it_publishes_a_story_now_only_when_asked(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    pid = _approved(people)
    at = app_as("lead", "calendar.py")
    button(at, "Publish now").click().run()
    assert [s.value for s in at.success] == [f"Story #{pid} is being published now."]
    with session_scope() as s:
        post = s.get(Post, pid)
        assert post is not None and post.scheduled_for is not None
        assert post.scheduled_for <= utcnow()


def test_a_failed_send_says_so_and_cannot_be_dragged(session: Session) -> None:
    entry = _entry(session, at=datetime(2026, 12, 3, 15, 0, tzinfo=UTC), status="failed")
    [event] = calendar_events.events([entry], CHICAGO)
    assert event["title"].startswith("⚠ failed: Telehealth kept")
    assert event["startEditable"] is False


def test_a_clicked_event_names_its_story_by_its_props_or_its_id() -> None:
    assert calendar_events.event_post_id({"id": "7:12", "extendedProps": {"post_id": 7}}) == 7
    assert calendar_events.event_post_id({"id": "9:30"}) == 9
    assert calendar_events.event_post_id({"id": "not-a-story"}) is None


def test_next_and_previous_move_the_calendar_a_week_at_a_time(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    at = app_as("lead", "calendar.py")
    first = at.caption[0].value
    button(at, "Next").click().run()
    later = at.caption[0].value
    assert later != first
    start = datetime.strptime(first[:11], "%d %b %Y")
    assert later.startswith(f"{start + timedelta(days=7):%d %b %Y}")
    button(at, "Previous").click().run()
    assert at.caption[0].value == first
