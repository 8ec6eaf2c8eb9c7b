"""Review and Calendar: approve on an account, send back with a note, bulk, reschedule, cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from uikit import add_sandbox_account, button, submitted_story, texts

from amplify import workflow
from amplify.db import session_scope
from amplify.models import Delivery, Post, User, utcnow


def _post(post_id: int) -> Post:
    with session_scope() as s:
        post = s.get(Post, post_id)
        assert post is not None
        _ = post.deliveries
        s.expunge_all()
        return post


def test_it_lists_submitted_stories_oldest_first(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    first = submitted_story(people["volunteer"], "First story in.")
    second = submitted_story(people["volunteer"], "Second story in.")
    at = app_as("lead", "review.py")
    headings = [m.value for m in at.markdown if m.value.startswith("**#")]
    assert headings[0].startswith(f"**#{first}**") and headings[1].startswith(f"**#{second}**")


def test_it_approves_a_story_now_on_a_sandbox_account(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    acct = add_sandbox_account()
    pid = submitted_story(people["volunteer"])
    at = app_as("lead", "review.py")
    assert at.multiselect(key=f"rv_{pid}_acc").value == [acct], (
        "the story's platform is preselected"
    )
    at.radio(key=f"rv_{pid}_when").set_value("Publish now").run()
    button(at, "Approve").click().run()
    post = _post(pid)
    assert post.state == "approved"
    [delivery] = post.deliveries
    assert delivery.account_id == acct and delivery.status == "pending"
    assert abs(delivery.next_attempt_at - utcnow()) < timedelta(minutes=2)
    assert f"Story #{pid} approved" in texts(at)


def test_it_approves_with_an_edited_text_at_a_chosen_time(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    add_sandbox_account()
    pid = submitted_story(people["volunteer"])
    at = app_as("lead", "review.py")
    at.text_area(key=f"rv_{pid}_body_v2").input("Edited by the lead.")
    at.radio(key=f"rv_{pid}_when").set_value("At a time").run()
    later = utcnow() + timedelta(days=2)
    at.date_input(key=f"rv_{pid}_dt_day").set_value(later.date()).run()
    button(at, "Approve").click().run()
    post = _post(pid)
    assert post.body == "Edited by the lead."
    assert post.scheduled_for is not None and post.scheduled_for > utcnow() + timedelta(days=1)


def test_it_sends_a_story_back_only_with_a_note(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    pid = submitted_story(people["volunteer"])
    at = app_as("lead", "review.py")
    button(at, "Send back").click().run()
    assert at.error, "a missing note is explained"
    assert _post(pid).state == "submitted"
    at.text_input(key=f"rv_{pid}_note").input("Add the clinic's name, please.")
    button(at, "Send back").click().run()
    post = _post(pid)
    assert post.state == "draft" and post.review_note == "Add the clinic's name, please."
    mine = app_as("volunteer", "my_stories.py")
    assert "Note from the lead: Add the clinic's name, please." in texts(mine)


def test_it_bulk_approves_selected_stories(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    add_sandbox_account()
    a = submitted_story(people["volunteer"], "Story A")
    b = submitted_story(people["volunteer"], "Story B")
    c = submitted_story(people["volunteer"], "Story C")
    at = app_as("lead", "review.py")
    at.checkbox(key=f"rv_{a}_sel").check()
    at.checkbox(key=f"rv_{c}_sel").check().run()
    button(at, "Approve selected").click().run()
    assert [_post(x).state for x in (a, b, c)] == ["approved", "submitted", "approved"]


def test_it_shows_a_conflict_when_another_lead_acted_first(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    add_sandbox_account()
    pid = submitted_story(people["volunteer"])
    at = app_as("lead", "review.py")
    with session_scope() as s:
        admin = s.get(User, people["admin"])
        assert admin is not None
        workflow.edit(s, admin, pid, body="Changed by someone else meanwhile.")
    button(at, "Approve").click().run()
    assert any("Someone else got there first" in w.value for w in at.warning), texts(at)
    assert _post(pid).state == "submitted"
    at.run()
    assert at.text_area(key=f"rv_{pid}_body_v3").value == "Changed by someone else meanwhile."
    button(at, "Approve").click().run()
    assert _post(pid).state == "approved", "after reloading, the lead can approve"


def _approved(people: dict[str, int]) -> int:
    acct = add_sandbox_account()
    pid = submitted_story(people["volunteer"])
    with session_scope() as s:
        lead = s.get(User, people["lead"])
        assert lead is not None
        workflow.approve(
            s, lead, pid, account_ids=[acct], scheduled_for=utcnow() + timedelta(hours=3)
        )
    return pid


def test_it_cancels_from_the_calendar_after_confirmation(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    pid = _approved(people)
    at = app_as("lead", "calendar.py")
    assert button(at, "Cancel story").disabled
    at.checkbox(key=f"cal_confirm_{pid}").check().run()
    button(at, "Cancel story").click().run()
    assert _post(pid).state == "cancelled"


def test_it_shows_the_lead_each_image_with_its_alt_text(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    import io

    from PIL import Image

    from amplify.config import get_settings

    media = get_settings().data_dir / "media"
    media.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
    (media / "abc.png").write_bytes(buf.getvalue())
    with session_scope() as s:
        vol = s.get(User, people["volunteer"])
        assert vol is not None
        post = workflow.create_draft(
            s,
            vol,
            body="Our van visited three towns.",
            media=[workflow.MediaInput("media/abc.png", "A red van in a town square", "image/png")],
        )
        workflow.submit(s, vol, post.id)
    at = app_as("lead", "review.py")
    [img] = [e for e in at.main if e.type == "image"]
    assert "Alt text: A red van in a town square" in str(img.proto)


def _campaign_story(people: dict[str, int]) -> tuple[int, int]:
    """A submitted story in a campaign with hashtags and a UTM slug, linking to a page."""
    from tests.factories import make_campaign

    acct = add_sandbox_account()
    with session_scope() as s:
        camp = make_campaign(
            s, name="Spring drive", utm_campaign="spring-drive", hashtags="#HealthForAll"
        )
        author = s.get(User, people["volunteer"])
        assert author is not None
        post = workflow.create_draft(
            s,
            author,
            body="Our clinic cut wait times by half.",
            campaign_id=camp.id,
            link="https://example.org/story",
            target_platforms=["sandbox"],
        )
        workflow.submit(s, author, post.id)
        return post.id, acct


def test_it_previews_exactly_what_the_publisher_will_send(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from amplify import publisher

    pid, acct = _campaign_story(people)
    at = app_as("lead", "review.py")
    shown = [t.value for t in at.text]
    [text] = [t for t in shown if "clinic" in t]
    assert "https://example.org/story?utm_source=sandbox&utm_medium=social" in text
    assert "utm_campaign=spring-drive" in text
    assert text.endswith("#HealthForAll")
    button(at, "Approve").click().run()
    with session_scope() as s:
        delivery = s.scalar(select(Delivery).where(Delivery.post_id == pid))
        assert delivery is not None and delivery.account_id == acct
        assert publisher._render(delivery, None) == [text], "the preview is what gets sent"


def test_it_saves_a_lead_s_custom_text_and_previews_it_as_a_thread(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from amplify import textrules

    pid, _ = _campaign_story(people)
    at = app_as("lead", "review.py")
    assert at.text_area(key=f"rv_{pid}_ov_sandbox_v2").value == ""
    long = " ".join(["The lead's own words for the practice network."] * 12)
    at.text_area(key=f"rv_{pid}_ov_sandbox_v2").input(long).run()
    shown = texts(at)
    parts = textrules.render(
        "sandbox",
        "ignored",
        link="https://example.org/story",
        campaign_slug="spring-drive",
        hashtags="#HealthForAll",
        override=long,
    )
    assert len(parts) > 1
    assert f"a thread of {len(parts)} posts · custom text" in shown
    assert [t.value for t in at.text][-len(parts) :] == parts
    button(at, "Approve").click().run()
    post = _post(pid)
    assert post.state == "approved"
    assert post.overrides == {"sandbox": long}
    assert post.body == "Our clinic cut wait times by half.", "the story itself is unchanged"


# --------------------------------------------------------------------------- issue 8


def _slots(account_id: int, *items: str) -> None:
    from amplify.models import Account

    with session_scope() as s:
        s.get(Account, account_id).posting_slots = list(items)  # type: ignore[union-attr]


def test_it_defaults_to_the_next_open_slot_and_refuses_a_past_time_without_publish_now(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    acct = add_sandbox_account()
    _slots(acct, "wed 10:00")
    pid = submitted_story(people["volunteer"])
    at = app_as("lead", "review.py")
    assert at.radio(key=f"rv_{pid}_when").value == "Next open posting slot"
    assert "Goes out Wed" in texts(at)
    at.radio(key=f"rv_{pid}_when").set_value("At a time").run()
    at.date_input(key=f"rv_{pid}_dt_day").set_value((utcnow() - timedelta(days=3)).date()).run()
    button(at, "Approve").click().run()
    assert any("has already passed" in e.value and "Publish now" in e.value for e in at.error)
    assert _post(pid).state == "submitted", "not published now by surprise"
    at.radio(key=f"rv_{pid}_when").set_value("Next open posting slot").run()
    button(at, "Approve").click().run()
    post = _post(pid)
    assert post.state == "approved" and post.scheduled_for is not None
    assert post.scheduled_for > utcnow()


def test_it_defaults_to_a_time_when_the_accounts_have_no_slots(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    add_sandbox_account()
    pid = submitted_story(people["volunteer"])
    at = app_as("lead", "review.py")
    assert at.radio(key=f"rv_{pid}_when").value == "At a time"
    button(at, "Approve").click().run()
    post = _post(pid)
    assert post.state == "approved" and post.scheduled_for is not None
    assert post.scheduled_for > utcnow() + timedelta(minutes=30), "not now"


def test_it_lets_a_lead_fix_the_link_and_the_campaign(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from amplify import campaigns

    add_sandbox_account()
    with session_scope() as s:
        admin = s.get(User, people["admin"])
        cid = campaigns.create_campaign(s, admin, name="Spring drive").id
    pid = submitted_story(people["volunteer"])
    at = app_as("lead", "review.py")
    box = at.selectbox(key=f"rv_{pid}_camp_v2")
    assert box.options[0] == "No campaign" and box.index == 0
    at.radio(key=f"rv_{pid}_when").set_value("Publish now").run()
    at.text_input(key=f"rv_{pid}_link_v2").input("example.org/story").run()
    button(at, "Approve").click().run()
    assert any("must start with http" in e.value for e in at.error), texts(at)
    assert _post(pid).state == "submitted"
    at.text_input(key=f"rv_{pid}_link_v2").input("https://example.org/story").run()
    at.selectbox(key=f"rv_{pid}_camp_v2").set_value(cid).run()
    assert any("utm_campaign=spring-drive" in t.value for t in at.text), "the preview follows"
    button(at, "Approve").click().run()
    post = _post(pid)
    assert post.state == "approved"
    assert (post.link, post.campaign_id) == ("https://example.org/story", cid)


def test_it_warns_about_a_long_thread_and_refuses_one_over_the_cap(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    add_sandbox_account()
    long = " ".join(["Volunteers staffed the screening tent all weekend long."] * 30)
    pid = submitted_story(people["volunteer"], long)
    at = app_as("lead", "review.py")
    at.radio(key=f"rv_{pid}_when").set_value("Publish now").run()
    assert any("most readers stop" in w.value for w in at.warning), texts(at)
    at.number_input(key=f"rv_{pid}_cap_v2").set_value(2).run()
    assert any("capped at 2" in e.value for e in at.error), texts(at)
    button(at, "Approve").click().run()
    assert any("raise the cap" in e.value for e in at.error), texts(at)
    assert _post(pid).state == "submitted"
    assert _post(pid).thread_cap is None, "nothing saved when approval is refused"
    at.number_input(key=f"rv_{pid}_cap_v2").set_value(workflow.MAX_THREAD_CAP).run()
    button(at, "Approve").click().run()
    post = _post(pid)
    assert post.state == "approved" and post.thread_cap == workflow.MAX_THREAD_CAP


def test_it_bulk_approves_with_what_is_typed_in_each_card(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    add_sandbox_account()
    a = submitted_story(people["volunteer"], "Story A")
    b = submitted_story(people["volunteer"], "Story B")
    at = app_as("lead", "review.py")
    at.text_area(key=f"rv_{a}_body_v2").input("Story A, polished by the lead.")
    at.radio(key=f"rv_{a}_when").set_value("Publish now")
    at.checkbox(key=f"rv_{a}_sel").check()
    at.checkbox(key=f"rv_{b}_sel").check().run()
    button(at, "Approve selected").click().run()
    first, second = _post(a), _post(b)
    assert first.state == second.state == "approved"
    assert first.body == "Story A, polished by the lead.", "the card's edit is not lost"
    assert first.scheduled_for is not None and second.scheduled_for is not None
    assert first.scheduled_for < utcnow() + timedelta(minutes=1) < second.scheduled_for
