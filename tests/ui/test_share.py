"""Share a story and My stories: previews, images with alt text, drafts, submit, nothing lost."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from uikit import button, shown, texts

from amplify.config import get_settings
from amplify.db import session_scope
from amplify.models import Post


def k(at: AppTest, name: str) -> str:
    """The key of a Share form field in the form's current generation (share.k)."""
    try:
        gen = at.session_state["share_form_gen"]
    except KeyError:  # AppTest's session state has no .get
        gen = 0
    return f"keep_share_{name}" if gen == 0 else f"keep_share_{gen}_{name}"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buf, format="PNG")
    return buf.getvalue()


def _posts() -> list[Post]:
    with session_scope() as s:
        posts = list(s.scalars(select(Post).order_by(Post.id)))
        for p in posts:
            _ = p.media
        s.expunge_all()
        return posts


def test_it_submits_a_story_for_review(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key=k(at, "body")).input("Our clinic cut ER wait times in half.")
    at.multiselect(key=k(at, "platforms")).set_value(["sandbox"])
    at.run()
    button(at, "Submit for review").click().run()
    [post] = _posts()
    assert post.state == "submitted"
    assert post.body == "Our clinic cut ER wait times in half."
    assert post.target_platforms == ["sandbox"]
    assert "with the leads for review" in texts(at)
    assert at.text_area(key=k(at, "body")).value == "", "the form starts fresh after success"


def test_it_shows_live_counters_and_the_thread_split(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    at.multiselect(key=k(at, "platforms")).set_value(["x", "sandbox"])
    at.text_area(key=k(at, "body")).input("Short win.").run()
    shown = texts(at)
    assert "**X** — 10/280 (270 left)" in shown
    assert "practice network" in shown
    long = " ".join(["Volunteers staffed the screening tent all weekend."] * 8)
    at.text_area(key=k(at, "body")).input(long).run()
    assert "a thread of 2 posts" in texts(at)


def test_it_keeps_everything_typed_when_validation_fails(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    at.text_input(key=k(at, "link")).input("not a link")
    at.text_area(key=k(at, "body")).input("A story with a bad link.")
    at.run()
    button(at, "Save draft").click().run()
    assert any("http://" in shown(e.value) for e in at.error), [e.value for e in at.error]
    assert at.text_area(key=k(at, "body")).value == "A story with a bad link."
    assert at.text_input(key=k(at, "link")).value == "not a link"
    [kept] = _posts()
    assert kept.autosaved, "only the copy kept while typing, nothing saved on purpose"
    assert (kept.body, kept.link) == ("A story with a bad link.", "not a link")


def test_it_keeps_the_typed_story_across_a_page_switch(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key=k(at, "body")).input("Half written…").run()
    at.switch_page("amplify/ui/pages/my_stories.py").run()
    at.switch_page("amplify/ui/pages/share.py").run()
    assert at.text_area(key=k(at, "body")).value == "Half written…"


def test_it_requires_alt_text_and_saves_images_under_uuid_names(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key=k(at, "body")).input("Look at our new screening van.")
    at.file_uploader[0].set_value(("van.png", _png(), "image/png"))
    at.run()
    button(at, "Save draft").click().run()
    assert any("alt text" in e.value for e in at.error)
    assert all(p.autosaved for p in _posts()), "nothing saved on purpose"
    media_dir = get_settings().data_dir / "media"
    assert not any(media_dir.glob("*")) if media_dir.exists() else True
    at.text_input(key=k(at, "alt_van.png")).input("A white van with a red cross.")
    at.run()
    button(at, "Save draft").click().run()
    [post] = _posts()
    assert post.state == "draft"
    [media] = post.media
    assert media.alt_text == "A white van with a red cross."
    assert media.path.startswith("media/") and "van" not in media.path
    assert (Path(get_settings().data_dir) / media.path).read_bytes() == _png()


def test_it_lists_my_drafts_and_submits_one(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key=k(at, "body")).input("Draft to finish later.").run()
    button(at, "Save draft").click().run()
    at.switch_page("amplify/ui/pages/my_stories.py").run()
    assert "Drafts (1)" in texts(at)
    button(at, "Submit for review").click().run()
    assert _posts()[0].state == "submitted"
    assert "Waiting for review (1)" in texts(at)
    button(at, "Withdraw").click().run()
    assert _posts()[0].state == "draft"


def test_it_edits_a_draft_from_my_stories(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key=k(at, "body")).input("First version.").run()
    button(at, "Save draft").click().run()
    at.switch_page("amplify/ui/pages/my_stories.py").run()
    button(at, "Edit").click().run()
    assert "Editing your draft" in texts(at)
    # AppTest keeps re-requesting the last switch_page target; follow st.switch_page.
    at.switch_page("amplify/ui/pages/share.py")
    assert at.text_area(key=k(at, "body")).value == "First version."
    at.text_area(key=k(at, "body")).input("Second version.").run()
    button(at, "Save draft").click().run()
    [post] = _posts()
    assert post.body == "Second version."


def test_it_saves_a_custom_text_for_one_platform_and_previews_it_with_its_own_count(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("volunteer", "share.py")
    at.multiselect(key=k(at, "platforms")).set_value(["x", "bluesky"])
    at.text_area(key=k(at, "body")).input("Short win.").run()
    assert at.text_area(key=k(at, "ov_x")).value == "", "custom text starts empty"
    assert [e.label for e in at.expander] == ["Custom text for X", "Custom text for Bluesky"]
    at.text_area(key=k(at, "ov_x")).input("Custom words for X only!").run()
    shown = texts(at)
    assert "**X (custom text)** — 24/280 (256 left)" in shown
    assert "**Bluesky** — 10/300 (290 left)" in shown, "the other platform keeps the story"
    assert "Custom words for X only!" in [t.value for t in at.text]
    button(at, "Save draft").click().run()
    [post] = _posts()
    assert post.body == "Short win."
    assert post.overrides == {"x": "Custom words for X only!"}


def test_it_keeps_a_custom_text_when_saving_fails_and_when_editing_the_draft(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("volunteer", "share.py")
    at.multiselect(key=k(at, "platforms")).set_value(["mastodon"])
    at.text_area(key=k(at, "body")).input("Our van reached three villages.")
    at.text_input(key=k(at, "link")).input("not a link")
    at.run()
    at.text_area(key=k(at, "ov_mastodon")).input("Toot: the van reached 3 villages.").run()
    button(at, "Save draft").click().run()
    assert at.error, "the bad link is refused"
    assert at.text_area(key=k(at, "ov_mastodon")).value == "Toot: the van reached 3 villages."
    at.text_input(key=k(at, "link")).input("").run()
    button(at, "Save draft").click().run()
    assert _posts()[0].overrides == {"mastodon": "Toot: the van reached 3 villages."}
    assert at.text_area(key=k(at, "ov_mastodon")).value == "", "a new story starts empty"
    at.switch_page("amplify/ui/pages/my_stories.py").run()
    button(at, "Edit").click().run()
    at.switch_page("amplify/ui/pages/share.py")
    assert at.text_area(key=k(at, "ov_mastodon")).value == "Toot: the van reached 3 villages."
    at.text_area(key=k(at, "body")).input("Our van reached four villages.").run()
    button(at, "Save draft").click().run()
    [post] = _posts()
    assert post.body == "Our van reached four villages."
    assert post.overrides == {"mastodon": "Toot: the van reached 3 villages."}, (
        "editing the draft does not drop its custom text"
    )


# --------------------------------------------------------------------------- issue 8


def _campaign(name: str = "Nurse Week") -> int:
    from amplify import campaigns
    from amplify.models import User

    with session_scope() as s:
        admin = s.scalars(select(User).where(User.role == "admin")).first()
        return campaigns.create_campaign(s, admin, name=name).id


def test_it_empties_every_field_after_submitting_and_the_next_story_keeps_nothing(
    app_as: Callable[..., AppTest],
) -> None:
    cid = _campaign()
    at = app_as("volunteer", "share.py")
    assert at.selectbox(key=k(at, "campaign")).options[0] == "No campaign"
    assert at.selectbox(key=k(at, "campaign")).index == 0, "no campaign, not 'Choose an option'"
    at.text_area(key=k(at, "body")).input("First story: the van reached three villages.")
    at.text_input(key=k(at, "link")).input("https://example.org/first")
    at.selectbox(key=k(at, "campaign")).set_value(cid)
    at.multiselect(key=k(at, "platforms")).set_value(["mastodon"])
    at.run()
    at.text_area(key=k(at, "ov_mastodon")).input("Toot about the van.")
    at.checkbox(key=k(at, "want_time")).check()
    at.run()
    button(at, "Submit for review").click().run()
    assert "with the leads for review" in texts(at)
    assert "Write another story" in texts(at)
    assert at.text_area(key=k(at, "body")).value == ""
    assert at.text_input(key=k(at, "link")).value == ""
    assert at.selectbox(key=k(at, "campaign")).index == 0
    assert at.checkbox(key=k(at, "want_time")).value is False
    assert not at.file_uploader[0].value
    button(at, "Submit for review").click().run()
    assert any("text is empty" in e.value for e in at.error), "nothing typed: nothing sent"
    assert len(_posts()) == 1
    at.text_area(key=k(at, "body")).input("Second story: a new clinic opened.").run()
    button(at, "Submit for review").click().run()
    first, second = _posts()
    assert (first.link, first.campaign_id) == ("https://example.org/first", cid)
    assert first.overrides == {"mastodon": "Toot about the van."}
    assert second.body == "Second story: a new clinic opened."
    assert (second.link, second.campaign_id, second.overrides) == (None, None, {})
    assert second.state == "submitted" and not second.autosaved


def test_it_refuses_the_same_story_sent_again_right_away(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    for _ in range(2):
        at.text_area(key=k(at, "body")).input("Our clinic cut ER wait times in half.")
        at.text_input(key=k(at, "link")).input("https://example.org/er")
        button(at, "Submit for review").click().run()
    assert "You already sent this story for review at" in texts(at)
    assert [p.state for p in _posts()] == ["submitted"]


def test_it_keeps_what_is_typed_and_restores_it_after_a_reload(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from uikit import open_app

    at = app_as("volunteer", "share.py")
    at.text_area(key=k(at, "body")).input("Half written, then the laptop restarted").run()
    at.text_input(key=k(at, "link")).input("https://example.org/half").run()
    [kept] = _posts()
    assert kept.autosaved and kept.state == "draft"
    assert (kept.body, kept.link) == (
        "Half written, then the laptop restarted",
        "https://example.org/half",
    )

    again = open_app(people["volunteer"], "share.py")  # a reload: a new session
    assert "We kept what you were writing at" in texts(again)
    assert again.text_area(key=k(again, "body")).value == kept.body
    assert again.text_input(key=k(again, "link")).value == "https://example.org/half"
    again.text_area(key=k(again, "body")).input("Half written, then finished.").run()
    button(again, "Submit for review").click().run()
    [post] = _posts()
    assert post.id == kept.id and post.state == "submitted" and not post.autosaved
    assert post.body == "Half written, then finished."
    fresh = open_app(people["volunteer"], "share.py")
    assert fresh.text_area(key=k(fresh, "body")).value == "", "nothing left to restore"


def test_it_lists_an_autosaved_draft_in_my_stories_and_deletes_it(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key=k(at, "body")).input("Typed, then abandoned.").run()
    at.switch_page("amplify/ui/pages/my_stories.py").run()
    assert "Drafts (1)" in texts(at) and "autosaved" in texts(at)
    button(at, "Delete draft #1").click().run()
    assert _posts() == []
    assert "Draft #1 deleted." in texts(at)
    at.switch_page("amplify/ui/pages/share.py").run()
    assert at.text_area(key=k(at, "body")).value == "", "the deleted draft's form is emptied"
    assert _posts() == [], "and not kept again"


def test_it_shows_the_leads_note_while_the_author_edits_the_story(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from uikit import submitted_story

    from amplify import workflow
    from amplify.models import User

    pid = submitted_story(people["volunteer"], "A story without the clinic's name.")
    with session_scope() as s:
        lead = s.get(User, people["lead"])
        workflow.reject(s, lead, pid, "Add the **clinic's** name, please.")
    at = app_as("volunteer", "my_stories.py")
    button(at, "Edit").click().run()
    at.switch_page("amplify/ui/pages/share.py")
    assert at.text_area(key=k(at, "body")).value == "A story without the clinic's name."
    assert "Note from the lead: Add the **clinic's** name, please." in texts(at)


def test_it_warns_when_a_story_makes_too_long_a_thread(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    at.multiselect(key=k(at, "platforms")).set_value(["x", "mastodon"])
    long = " ".join(["Volunteers staffed the screening tent all weekend long."] * 30)
    at.text_area(key=k(at, "body")).input(long).run()
    warnings = [w.value for w in at.warning]
    assert any("On X this becomes a thread of" in w and "past 5" in w for w in warnings)
    assert any("On Mastodon this becomes a thread of" in w and "past 3" in w for w in warnings)
    at.text_area(key=k(at, "body")).input("A short win.").run()
    assert not any("becomes a thread" in w.value for w in at.warning)


def test_it_offers_the_next_open_slot_as_preferred_time_and_refuses_a_past_one(
    app_as: Callable[..., AppTest],
) -> None:
    from datetime import timedelta

    from uikit import add_sandbox_account

    from amplify.models import Account, utcnow

    acct = add_sandbox_account()
    with session_scope() as s:
        s.get(Account, acct).posting_slots = ["mon 09:00"]  # type: ignore[union-attr]
    at = app_as("volunteer", "share.py")
    at.multiselect(key=k(at, "platforms")).set_value(["sandbox"])
    at.text_area(key=k(at, "body")).input("A story with a time.")
    at.checkbox(key=k(at, "want_time")).check().run()
    assert "next open posting slot" in texts(at)
    day = at.date_input(key=k(at, "pref_day")).value
    assert day.weekday() == 0 and at.time_input(key=k(at, "pref_time")).value.hour == 9
    yesterday = (utcnow() - timedelta(days=2)).date()
    at.date_input(key=k(at, "pref_day")).set_value(yesterday).run()
    button(at, "Save draft").click().run()
    assert any("preferred time has already passed" in e.value for e in at.error)
    assert all(p.autosaved for p in _posts()), "nothing saved on purpose"


def test_it_keeps_the_words_in_a_new_draft_when_the_kept_copy_cannot_take_them(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from amplify import workflow
    from amplify.models import User

    at = app_as("volunteer", "share.py")
    at.text_area(key=k(at, "body")).input("Typed in this tab.").run()
    [kept] = _posts()
    with session_scope() as s:  # the same draft sent for review from another tab
        workflow.submit(s, s.get(User, people["volunteer"]), kept.id)
    at.text_area(key=k(at, "body")).input("Typed in this tab, and more.").run()
    assert not at.exception
    assert f"Draft #{kept.id} could not take your changes" in texts(at)
    assert at.text_area(key=k(at, "body")).value == "Typed in this tab, and more."
    bodies = {p.body: (p.state, p.autosaved) for p in _posts()}
    assert bodies == {
        "Typed in this tab.": ("submitted", False),
        "Typed in this tab, and more.": ("draft", True),
    }, "the new words are kept in a new draft at once"
    button(at, "Save draft").click().run()
    assert {p.body: p.autosaved for p in _posts()} == {
        "Typed in this tab.": False,
        "Typed in this tab, and more.": False,
    }


def test_it_keeps_a_drafts_images_when_its_restored_copy_is_saved(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from uikit import open_app

    from amplify import workflow
    from amplify.models import User

    with session_scope() as s:
        author = s.get(User, people["volunteer"])
        draft = workflow.create_draft(
            s,
            author,
            body="A draft with a picture.",
            media=[workflow.MediaInput("media/van.png", "A white van.", "image/png")],
        )
        pid = draft.id
    at = app_as("volunteer", "my_stories.py")
    button(at, "Edit").click().run()
    at.switch_page("amplify/ui/pages/share.py")
    at.text_area(key=k(at, "body")).input("A draft with a picture, typed on.").run()
    again = open_app(people["volunteer"], "share.py")  # a reload
    assert "Its saved images stay" in texts(again)
    button(again, "Save draft").click().run()
    [post] = _posts()
    assert post.id == pid and not post.autosaved
    assert post.body == "A draft with a picture, typed on."
    assert [m.alt_text for m in post.media] == ["A white van."]
