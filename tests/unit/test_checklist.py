"""The first-hour checklist ticks itself off from the data, and hiding it is an admin's setting."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from amplify import checklist
from amplify.errors import NotAllowed
from amplify.models import AuditEvent, Role
from tests.factories import make_account, make_delivery, make_post, make_user


def _done(s: Session) -> dict[str, bool]:
    return {step.key: step.done for step in checklist.steps(s)}


def test_it_ticks_nothing_in_a_workspace_with_only_its_admin(session: Session) -> None:
    make_user(session, role=Role.ADMIN)
    assert _done(session) == {"account": False, "people": False, "slots": False, "story": False}
    assert not checklist.all_done(session)


def test_it_ticks_each_step_as_the_data_appears(session: Session) -> None:
    make_user(session, role=Role.ADMIN)
    account = make_account(session, platform="sandbox")
    assert _done(session)["account"] and not _done(session)["slots"]
    make_user(session, role=Role.VOLUNTEER)
    assert _done(session)["people"]
    account.posting_slots = ["mon 09:00"]
    session.flush()
    assert _done(session)["slots"]
    make_delivery(session, post=make_post(session), account=account)
    assert _done(session) == {"account": True, "people": True, "slots": True, "story": True}
    assert checklist.all_done(session)


def test_an_advocates_own_or_a_disabled_account_does_not_tick_the_team_account(
    session: Session,
) -> None:
    admin = make_user(session, role=Role.ADMIN)
    make_account(session, platform="sandbox", owner_id=admin.id, posting_slots=["mon 09:00"])
    make_account(session, platform="sandbox", status="disabled", posting_slots=["tue 10:00"])
    assert not _done(session)["account"]
    assert not _done(session)["slots"]


def test_an_inactive_person_does_not_count_as_added(session: Session) -> None:
    make_user(session, role=Role.ADMIN)
    make_user(session, role=Role.VOLUNTEER, active=False)
    assert not _done(session)["people"]


def test_each_step_points_at_the_page_where_it_is_done(session: Session) -> None:
    from amplify.ui.nav import PAGES

    paths = {p.url_path for p in PAGES}
    assert {step.page for step in checklist.steps(session)} <= paths


def test_an_admin_hides_it_for_good_and_the_change_is_audited(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    assert not checklist.is_dismissed(session)
    checklist.dismiss(session, admin)
    assert checklist.is_dismissed(session)
    audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.changed"))
    assert [e.detail["key"] for e in audited] == [checklist.DISMISSED_KEY]


def test_it_refuses_a_lead_hiding_the_workspaces_checklist(session: Session) -> None:
    lead = make_user(session, role=Role.LEAD)
    with pytest.raises(NotAllowed):
        checklist.dismiss(session, lead)
    assert not checklist.is_dismissed(session)
