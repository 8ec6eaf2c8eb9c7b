"""The menu: where each role lands, and headings that hold only pages of their own job."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest
from uikit import add_sandbox_account, button

from amplify import checklist
from amplify.db import session_scope
from amplify.models import User
from amplify.ui import nav


def _person(role: str) -> User:
    return User(email=f"{role}@example.org", name=role, role=role, active=True)


@pytest.mark.parametrize(
    ("role", "landing"), [("volunteer", "share"), ("lead", "review"), ("admin", "review")]
)
def test_it_lands_leads_and_admins_on_review_and_volunteers_on_share(
    role: str, landing: str
) -> None:
    assert nav.landing_for(_person(role)) == landing


def test_it_lands_an_admin_on_the_checklist_while_it_is_wanted_and_no_one_else() -> None:
    assert nav.landing_for(_person("admin"), checklist=True) == nav.CHECKLIST_PAGE
    assert nav.landing_for(_person("lead"), checklist=True) == "review"


def test_a_volunteer_sees_no_review_heading_over_their_reach_page() -> None:
    menu = nav.menu_for(_person("volunteer"))
    assert "Review" not in menu
    assert [p.title for p in menu["Results"]] == ["Reach"]
    assert [p.title for p in menu["Stories"]] == ["Share a story", "My stories", "Amplify"]


def test_every_heading_a_role_sees_holds_only_its_own_jobs_pages() -> None:
    jobs = {
        "Stories": {"share", "my-stories", "amplify"},
        "Review": {"review", "calendar"},
        "Results": {"reach"},
        "Team": {"activity", "system"},
        "Admin": {"accounts", "campaigns", "team"},
        "You": {"me"},
        "Get started": {"get-started"},
    }
    for role in ("volunteer", "lead", "admin"):
        for heading, pages in nav.menu_for(_person(role), checklist=True).items():
            assert pages, f"{role} sees an empty {heading!r} heading"
            assert {p.url_path for p in pages} <= jobs[heading], (role, heading)


def test_the_checklist_is_in_the_menu_only_while_wanted() -> None:
    admin = _person("admin")
    assert "Get started" in nav.menu_for(admin, checklist=True)
    assert "Get started" not in nav.menu_for(admin, checklist=False)


def _progress(at: AppTest) -> str:
    return str(at.get("progress")[0].proto)


def test_a_lead_opens_the_app_on_review(app_as: Callable[..., AppTest]) -> None:
    at = app_as("lead")
    assert [t.value for t in at.title] == ["Review"]


def test_a_new_admin_lands_on_the_checklist_which_ticks_off_and_can_be_hidden(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("admin")
    assert [t.value for t in at.title] == ["Get started"]
    assert "1 of 4 done" in _progress(at), "people were added (the fixture's lead and volunteer)"
    add_sandbox_account()
    at.run()
    assert "2 of 4 done" in _progress(at)
    button(at, "Hide this checklist").click().run()
    with session_scope() as s:
        assert checklist.is_dismissed(s)
    at = app_as("admin")
    assert [t.value for t in at.title] == ["Review"]


def test_an_admin_whose_steps_are_all_done_opens_on_review_with_the_list_still_in_the_menu(
    app_as: Callable[..., AppTest],
) -> None:
    from amplify.models import Account
    from tests.factories import make_delivery, make_post

    account_id = add_sandbox_account()
    with session_scope() as s:
        account = s.get(Account, account_id)
        assert account is not None
        account.posting_slots = ["mon 09:00"]
        make_delivery(s, post=make_post(s), account=account)
    with session_scope() as s:
        assert checklist.all_done(s) and not checklist.is_dismissed(s)
    at = app_as("admin")
    assert [t.value for t in at.title] == ["Review"]
    admin = User(email="a@example.org", name="a", role="admin", active=True)
    assert nav.checklist_for(admin) == nav.Checklist(shown=True, landing=False)
