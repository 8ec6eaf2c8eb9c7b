"""Calendar: cancelling tells the lead what the workflow did, including sends left in flight."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from uikit import add_sandbox_account, button, submitted_story

from amplify import workflow
from amplify.db import session_scope
from amplify.models import Delivery, Post, User, utcnow


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
