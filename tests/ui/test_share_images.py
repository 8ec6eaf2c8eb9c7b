"""Images on the Share and Review pages: checked where they enter, only normalised copies
shown and stored, replaced uploads deleted, and a bad image never breaks a page."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from uikit import button, shown, submitted_story, texts

from amplify.config import get_settings
from amplify.db import session_scope
from amplify.models import Post, PostMedia


def photo(size: tuple[int, int] = (3000, 2000), color: str = "navy") -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (41.0, 52.0, 0.0)}  # GPS latitude: where it was taken
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def media_files() -> list[Path]:
    folder = get_settings().data_dir / "media"
    return sorted(folder.iterdir()) if folder.exists() else []


def alt_field(at: AppTest, number: int = 1):  # type: ignore[no-untyped-def]
    [field] = [t for t in at.text_input if t.label.startswith(f"Alt text for image {number}")]
    return field


def only_post() -> tuple[Post, list[PostMedia]]:
    with session_scope() as s:
        [post] = s.scalars(select(Post)).all()
        rows = list(post.media)
        s.expunge_all()
    return post, rows


def test_it_stores_only_the_checked_copy_and_records_its_size(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key="keep_share_body").input("Our van reached the valley.")
    at.file_uploader[0].upload("van.jpg", photo(), "image/jpeg")
    at.run()
    assert [i for i in at.main if i.type == "image"], "the checked preview is shown"
    alt_field(at).input("A navy van on a hill road.")
    at.run()
    button(at, "Save draft").click().run()
    assert not at.exception
    _, [row] = only_post()
    stored = get_settings().data_dir / row.path
    assert (row.width, row.height) == (2048, 1365)
    assert row.size_bytes == stored.stat().st_size and row.sha256 and row.sha256 in row.path
    with Image.open(stored) as saved:
        assert saved.size == (2048, 1365) and not saved.getexif()  # no GPS position kept
    assert media_files() == [stored]


def test_it_says_what_to_fix_and_saves_nothing_when_an_upload_is_not_a_picture(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key="keep_share_body").input("A story with a bad attachment.")
    at.file_uploader[0].upload("notes.png", b"minutes of the meeting\n", "image/png")
    at.run()
    assert not at.exception
    assert "notes.png is not a picture Amplify can read" in shown(texts(at))
    button(at, "Save draft").click().run()
    assert not at.exception
    assert "Please fix the following" in texts(at) and "notes.png" in shown(texts(at))
    with session_scope() as s:
        assert s.scalars(select(PostMedia)).all() == []  # the typed text is only autosaved
        assert all(p.autosaved for p in s.scalars(select(Post)))
    assert media_files() == []


def test_it_refuses_a_decompression_bomb_upload_quickly_with_its_size(
    app_as: Callable[..., AppTest],
) -> None:
    from tests.unit.test_media import huge_png

    at = app_as("volunteer", "share.py")
    at.file_uploader[0].upload("poster.png", huge_png(13_000, 13_000), "image/png")
    at.run()
    assert not at.exception
    assert "poster.png has 169 megapixels" in shown(texts(at))


def test_it_deletes_the_upload_a_draft_replaces(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "share.py")
    at.text_area(key="keep_share_body").input("First version with a navy van.")
    at.file_uploader[0].upload("van.jpg", photo(), "image/jpeg")
    at.run()
    alt_field(at).input("A navy van.")
    at.run()
    button(at, "Save draft").click().run()
    post, [first] = only_post()
    first_file = get_settings().data_dir / first.path
    assert first_file.is_file()

    at.session_state["share_load"] = post.id  # what My stories' Edit does
    at.run()
    at.file_uploader[0].upload("clinic.jpg", photo((800, 600), "green"), "image/jpeg")
    at.run()
    alt_field(at).input("A green clinic door.")
    at.run()
    button(at, "Save draft").click().run()
    assert not at.exception
    _, [second] = only_post()
    assert second.path != first.path
    assert not first_file.exists()
    assert media_files() == [get_settings().data_dir / second.path]


def test_review_lists_every_story_when_one_has_a_bad_image(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    folder = get_settings().data_dir / "media"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "old.png").write_text("a text file stored before images were checked")
    good = submitted_story(people["volunteer"], "The good story.")
    bad = submitted_story(people["volunteer"], "The story with a broken picture.")
    with session_scope() as s:
        s.add(PostMedia(post_id=bad, position=0, path="media/old.png", alt_text="A chart"))
    at = app_as("lead", "review.py")
    assert not at.exception
    page = shown(texts(at))
    assert f"#{good}" in page and f"#{bad}" in page
    assert "old.png is not a picture Amplify can read" in page
    assert "Ask the author to attach it again" in page
