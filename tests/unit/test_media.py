"""amplify.media: every image is checked where it enters, and only a normalised copy is kept."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy.orm import Session

from amplify import media
from amplify.config import get_settings
from amplify.media import ImageRefused
from tests.factories import make_post


def png_bytes(size: tuple[int, int] = (40, 30), mode: str = "RGB", color: object = "teal") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")  # type: ignore[arg-type]
    return out.getvalue()


def jpeg_bytes(size: tuple[int, int] = (40, 30), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, format="JPEG", **save)
    return out.getvalue()


def huge_png(width: int, height: int) -> bytes:
    """A real PNG header announcing ``width``×``height`` RGBA pixels, with a few rows of data
    (enough for any reader that trusts the header to start allocating)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width * 4 + 1) * 8)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- checking


def test_it_refuses_a_text_file_named_png_by_its_content() -> None:
    with pytest.raises(ImageRefused, match=r"van\.png is not a picture .* JPEG or PNG"):
        media.check(b"just some text, not a picture\n", "van.png")


def test_it_refuses_a_13000_by_13000_png_from_its_header_without_decoding() -> None:
    bomb = huge_png(13_000, 13_000)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageRefused, match=r"poster\.png has 169 megapixels; .* up to 50"):
            media.check(bomb, "poster.png")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5  # decoding it would take seconds
    assert peak < 20 * 1024 * 1024  # and about 700 MB


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own note
def test_it_refuses_a_picture_just_over_the_cap_and_says_its_size() -> None:
    with pytest.raises(ImageRefused, match=r"8,000×7,000 pixels \(56 megapixels\)"):
        media.check(huge_png(8_000, 7_000), "poster.png")


def test_it_refuses_a_file_over_the_size_cap_before_reading_it_as_an_image() -> None:
    with pytest.raises(ImageRefused, match=r"big\.jpg is 10\.0 MB; .* up to 1\.0 MB"):
        media.check(b"\xff\xd8" + b"0" * (10 * 1024 * 1024), "big.jpg", max_bytes=1024 * 1024)


def test_it_refuses_a_damaged_picture() -> None:
    noisy = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    with pytest.raises(ImageRefused, match="damaged or incomplete"):
        media.check(out.getvalue()[: len(out.getvalue()) // 2], "cut.png")
    assert media.check(out.getvalue()).width == 300


def test_it_refuses_formats_it_does_not_take_even_when_pillow_reads_them() -> None:
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, format="BMP")
    with pytest.raises(ImageRefused, match="not a picture Amplify can read"):
        media.check(out.getvalue(), "scan.png")


def test_it_shrinks_a_large_photo_to_the_stated_side() -> None:
    checked = media.check(jpeg_bytes((4000, 3000)))
    assert (checked.width, checked.height) == (media.MAX_SIDE, 1536)
    assert checked.format == "JPEG" and checked.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(checked.data)) as again:
        assert again.size == (media.MAX_SIDE, 1536)


def test_it_turns_the_photo_upright_and_drops_its_metadata() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    exif[0x010F] = "PhoneMaker"
    data = jpeg_bytes((40, 20), exif=exif.tobytes(), comment=b"secret place")
    checked = media.check(data)
    assert (checked.width, checked.height) == (20, 40)
    with Image.open(io.BytesIO(checked.data)) as stored:
        assert not stored.getexif()
        assert "comment" not in stored.info and "exif" not in stored.info


def test_it_keeps_transparency_and_pngs_as_png() -> None:
    checked = media.check(png_bytes((16, 16), "RGBA", (0, 0, 0, 0)))
    assert checked.format == "PNG"
    with Image.open(io.BytesIO(checked.data)) as stored:
        assert stored.mode == "RGBA" and stored.getpixel((0, 0)) == (0, 0, 0, 0)
    assert media.check(png_bytes()).format == "PNG"


def test_it_stores_the_copy_once_under_its_sha256(tmp_path: Path) -> None:
    first = media.ingest(png_bytes(), "a.png", data_dir=tmp_path)
    second = media.ingest(png_bytes(), "b.png", data_dir=tmp_path)
    stored = tmp_path / first.path
    assert first == second
    assert first.path == f"media/{first.sha256}.png"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == first.sha256
    assert first.size_bytes == stored.stat().st_size and (first.width, first.height) == (40, 30)
    assert stored.stat().st_mode & 0o077 == 0
    assert [p.name for p in (tmp_path / "media").iterdir()] == [stored.name]


# --------------------------------------------------------------------------- CSV images


def test_it_takes_csv_images_only_from_inside_the_csvs_folder(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    (folder / "photos").mkdir(parents=True)
    (folder / "photos" / "van.png").write_bytes(png_bytes())
    (tmp_path / "outside.png").write_bytes(png_bytes())
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    stored = media.import_image("photos/van.png", csv_dir=folder, data_dir=tmp_path / "data")
    assert stored.path.startswith("media/") and (tmp_path / "data" / stored.path).is_file()
    refusals = {
        str(tmp_path / "outside.png"): "absolute path",
        "../outside.png": "outside the CSV file's folder",
        "photos/../../outside.png": "outside the CSV file's folder",
        "link.png": "leads outside",
        "C:\\photos\\van.png": "absolute path",
        "missing.png": "was not found",
    }
    for name, reason in refusals.items():
        with pytest.raises(ImageRefused, match=reason):
            media.import_image(name, csv_dir=folder, data_dir=tmp_path / "data")


def test_it_also_takes_csv_images_from_the_configured_media_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (library / "logo.png").write_bytes(png_bytes())
    monkeypatch.setenv("AMPLIFY_IMPORT_MEDIA_DIR", str(library))
    from amplify.config import reset_settings

    reset_settings()
    stored = media.import_image("logo.png", csv_dir=tmp_path / "elsewhere")
    assert (get_settings().data_dir / stored.path).is_file()


def test_it_refuses_a_text_file_named_png_in_a_csv(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_text("name,email\n")
    with pytest.raises(ImageRefused, match=r"image 'fake\.png' is not a picture"):
        media.import_image("fake.png", csv_dir=tmp_path, data_dir=tmp_path / "data")
    assert not (tmp_path / "data" / "media").exists() or not any(
        (tmp_path / "data" / "media").iterdir()
    )


# --------------------------------------------------------------------------- using images


def test_it_names_the_problem_of_a_file_by_its_content(tmp_path: Path) -> None:
    text = tmp_path / "a.png"
    text.write_text("hello")
    good = tmp_path / "b.png"
    good.write_bytes(png_bytes())
    bomb = tmp_path / "c.png"
    bomb.write_bytes(huge_png(13_000, 13_000))
    assert "not a picture" in (media.problem(text) or "")
    assert "megapixels" in (media.problem(bomb) or "")
    assert media.problem(good) is None
    assert "missing on disk" in (media.problem(tmp_path / "gone.png") or "")


def test_it_sends_a_normalised_copy_as_it_is_and_normalises_an_older_big_file(
    tmp_path: Path,
) -> None:
    stored = media.ingest(png_bytes(), data_dir=tmp_path)
    assert media.publishable(tmp_path / stored.path) == (tmp_path / stored.path).read_bytes()
    legacy = tmp_path / "old.jpg"
    legacy.write_bytes(jpeg_bytes((5000, 100)))
    with Image.open(io.BytesIO(media.publishable(legacy))) as sent:
        assert max(sent.size) == media.MAX_SIDE
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png(13_000, 13_000))
    with pytest.raises(ImageRefused, match="megapixels"):
        media.publishable(bomb)


def test_it_makes_small_previews_and_none_for_files_that_fail_the_checks(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes((1200, 600)))
    thumb = media.thumbnail(good)
    assert thumb is not None
    with Image.open(io.BytesIO(thumb)) as small:
        assert small.size == (media.THUMB_SIDE, 160)
    text = tmp_path / "text.png"
    text.write_text("hello")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png(13_000, 13_000))
    assert media.thumbnail(text) is None
    assert media.thumbnail(bomb) is None
    assert media.thumbnail(tmp_path / "gone.png") is None


def test_it_records_size_and_hash_of_a_storys_images(session: Session) -> None:
    stored = media.ingest(png_bytes())
    post = make_post(session, media=[{"path": stored.path, "alt_text": "A teal square"}])
    media.describe(session, post.media)
    [row] = post.media
    assert (row.width, row.height, row.size_bytes, row.sha256) == (
        stored.width,
        stored.height,
        stored.size_bytes,
        stored.sha256,
    )


# --------------------------------------------------------------------------- orphans


def _age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_it_removes_unused_files_older_than_an_hour_and_keeps_the_rest(session: Session) -> None:
    folder = get_settings().data_dir / "media"
    used = media.ingest(png_bytes(color="red"))
    replaced = media.ingest(png_bytes(color="blue"))
    fresh = media.ingest(png_bytes(color="green"))  # an upload on its way into a story
    make_post(session, media=[{"path": used.path, "alt_text": "red"}])
    leftover = folder / ".upload-x.tmp"
    leftover.write_bytes(b"half")
    for path in (used.path, replaced.path):
        _age(get_settings().data_dir / path, 2)
    _age(leftover, 2)
    removed = media.remove_orphans(session)
    assert sorted(removed) == sorted([replaced.path, "media/.upload-x.tmp"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [Path(used.path).name, Path(fresh.path).name]
    )
    later = datetime.now(UTC) + timedelta(hours=2)
    assert media.remove_orphans(session, now=later) == [fresh.path]


def test_it_removes_the_images_of_a_deleted_draft(session: Session) -> None:
    from amplify import workflow
    from tests.factories import make_user

    author = make_user(session, role="volunteer")
    stored = media.ingest(png_bytes(color="orange"))
    draft = workflow.create_draft(
        session,
        author,
        body="A draft with a picture.",
        media=[workflow.MediaInput(stored.path, "An orange square", stored.mime_type)],
    )
    workflow.delete_draft(session, author, draft.id)
    session.commit()
    _age(get_settings().data_dir / stored.path, 2)
    assert media.remove_orphans(session) == [stored.path]  # the only story is gone, too


def test_it_leaves_the_media_folder_alone_when_the_database_has_no_stories(
    session: Session,
) -> None:
    stored = media.ingest(png_bytes())
    _age(get_settings().data_dir / stored.path, 5)
    assert media.remove_orphans(session) == []
    assert (get_settings().data_dir / stored.path).is_file()


def test_it_deletes_a_replaced_upload_at_once_unless_another_story_uses_it(
    session: Session,
) -> None:
    shared = media.ingest(png_bytes(color="red"))
    alone = media.ingest(png_bytes(color="blue"))
    make_post(session, media=[{"path": shared.path, "alt_text": "red"}])
    deleted = media.discard(session, [shared.path, alone.path, "../secret.key", "media/.x"])
    assert deleted == [alone.path]
    assert (get_settings().data_dir / shared.path).is_file()
    assert not (get_settings().data_dir / alone.path).exists()


def test_it_sets_pillows_own_guard_to_the_stated_cap() -> None:
    assert Image.MAX_IMAGE_PIXELS == media.MAX_PIXELS


def test_the_worker_sweeps_unused_images_on_a_timer(session: Session) -> None:
    from amplify.worker import Worker

    make_post(session)
    session.commit()
    unused = media.ingest(png_bytes(color="purple"))
    _age(get_settings().data_dir / unused.path, 2)
    worker = Worker(concurrency=1, metrics_enabled=False)
    worker.start()
    try:
        job = worker._scheduler.get_job("media") if worker._scheduler else None
        assert job is not None and job.trigger.interval.total_seconds() == 900
        job.func()
    finally:
        worker.stop()
    assert not (get_settings().data_dir / unused.path).exists()


def test_bluesky_refuses_a_huge_stored_original_from_its_header_at_publish() -> None:
    from connectors.base import PermanentError
    from connectors.bluesky import prepare_image

    started = time.perf_counter()
    with pytest.raises(PermanentError, match="169 megapixels"):
        prepare_image(huge_png(13_000, 13_000))
    assert time.perf_counter() - started < 0.5
