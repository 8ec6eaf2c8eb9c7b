"""Time zone, posting slots (and approving into the next open slot), campaigns in the composer."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from uikit import add_sandbox_account, button, submitted_story, texts

from amplify import workspace
from amplify.db import session_scope
from amplify.models import Account, Campaign, Post


def test_it_changes_the_workspace_time_zone_shown_everywhere(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    at = app_as("admin", "team.py")
    at.selectbox(key="tm_tz").set_value("Europe/Berlin").run()
    button(at, "Save time zone").click().run()
    with session_scope() as s:
        assert workspace.get_timezone(s) == "Europe/Berlin"
    submitted_story(people["volunteer"])
    review = app_as("lead", "review.py")
    assert any("CET" in c.value or "CEST" in c.value for c in review.caption), texts(review)


def test_it_saves_posting_slots_and_schedules_into_the_next_open_one(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    acct = add_sandbox_account()
    at = app_as("admin", "team.py")
    at.text_input(key=f"tm_slots_{acct}").input("mon 09:00, thu 14:30").run()
    button(at, "Save slots").click().run()
    with session_scope() as s:
        assert s.get(Account, acct).posting_slots == ["mon 09:00", "thu 14:30"]  # type: ignore[union-attr]
    pid = submitted_story(people["volunteer"])
    lead = app_as("lead", "review.py")
    lead.radio(key=f"rv_{pid}_when").set_value("Next open posting slot").run()
    button(lead, "Approve").click().run()
    with session_scope() as s:
        post = s.get(Post, pid)
        assert post is not None and post.state == "approved" and post.scheduled_for is not None
        local = post.scheduled_for.astimezone(ZoneInfo(workspace.get_timezone(s)))
    assert (local.strftime("%a"), local.strftime("%H:%M")) in {("Mon", "09:00"), ("Thu", "14:30")}


def test_it_explains_when_accounts_have_no_slots(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    add_sandbox_account()
    pid = submitted_story(people["volunteer"])
    lead = app_as("lead", "review.py")
    lead.radio(key=f"rv_{pid}_when").set_value("Next open posting slot").run()
    button(lead, "Approve").click().run()
    assert any("no posting slots" in e.value for e in lead.error), texts(lead)


def test_it_adds_a_campaign_whose_hashtags_show_in_the_preview(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("admin", "campaigns.py")
    at.text_input(key="keep_cp_new_name").input("Screening Week")
    at.text_input(key="keep_cp_new_tags").input("#ScreenEarly")
    at.run()
    button(at, "Add campaign").click().run()
    with session_scope() as s:
        [camp] = s.scalars(select(Campaign)).all()
        cid = camp.id
    share = app_as("volunteer", "share.py")
    share.selectbox(key="keep_share_campaign").set_value(cid)
    share.multiselect(key="keep_share_platforms").set_value(["mastodon"])
    share.text_area(key="keep_share_body").input("Free screenings all week.").run()
    assert any("#ScreenEarly" in t.value for t in share.text), texts(share)
    button(share, "Submit for review").click().run()
    with session_scope() as s:
        assert s.scalar(select(Post.campaign_id)) == cid
