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
