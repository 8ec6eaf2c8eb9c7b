"""Images: the one door every image comes in through (an upload, a CSV file, a link card's
picture).

An image is checked once, where it enters, and a normalised copy is kept. Pages and
connectors use only that copy, so nothing decodes a stranger's file again.

The checks, in order; each refusal says what to fix:

1. size in bytes, before anything is read into an image library (``MAX_INPUT_BYTES``);
2. format by content, not by name: Pillow's detection limited to ``ALLOWED_FORMATS``
   (a text file renamed ``.png`` is refused; no exotic decoder is ever tried);
3. pixel count from the header (``MAX_PIXELS``), before a single pixel is decoded, so
   a decompression bomb (a 13000×13000 PNG of 657 KB) costs a few milliseconds;
4. decodable: the first frame is decoded in full (truncated or damaged files are refused).

The normalised copy: EXIF orientation applied; metadata dropped (EXIF with its GPS position,
XMP, comments, text chunks; the colour profile stays so colours do not shift); at most
``MAX_SIDE`` pixels on its longer side; JPEG for photos, PNG for PNG and GIF sources and
anything with transparency (JPEG when a PNG would pass ``MAX_STORED_BYTES``); animated images
keep their first frame. It is saved as ``data/media/<sha256>.<jpg|png>`` (so the same
picture is stored once) and ``PostMedia`` records its width, height, size and sha256.

Files under ``data/media`` that no story refers to any more (an upload replaced in the
composer, the images of a deleted draft) are removed by :func:`remove_orphans` once they are
older than ``ORPHAN_GRACE``, so an upload being written is never touched.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from amplify.config import get_settings
from amplify.errors import AmplifyError
from amplify.models import AuditEvent, Post, PostMedia

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- the caps

#: Largest file accepted. A phone photo is 2–8 MB; anything bigger is rarely a photo and
#: costs time to read. (Uploads, CSV images; a link card's picture has its own 5 MB cap.)
MAX_INPUT_BYTES = 10 * 1024 * 1024
#: Largest picture, in pixels, read from the header before decoding. A 48-megapixel phone
#: photo fits; checking the largest PNG allowed peaks at about 260 MB once, at entry (a
#: 12-megapixel JPEG at about 35 MB: it is decoded at reduced scale; benchmarks/image_check.py).
#: A 13000×13000 image (169 megapixels) is refused from its header in milliseconds.
MAX_PIXELS = 50_000_000
#: Longer side of the normalised copy: what a post's picture is shown at on X, Bluesky (which
#: scales to 2000) and Mastodon; larger only costs upload time.
MAX_SIDE = 2048
#: Largest normalised copy: X's limit for a post image. A PNG that would be larger is
#: stored as a JPEG instead.
MAX_STORED_BYTES = 5 * 1024 * 1024
JPEG_QUALITY = 85
#: Formats recognised by content. Pillow never tries another decoder on our behalf.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
#: Unreferenced files under data/media younger than this are left alone (an upload may be
#: on its way into a story).
ORPHAN_GRACE = timedelta(hours=1)
#: Side of the small previews pages show.
THUMB_SIDE = 320

# Pillow's own guard, process-wide: warn above the cap, refuse above twice the cap, for any
# image opened anywhere in the app (Streamlit's st.image included). Every image of ours is
# checked against MAX_PIXELS from its header first anyway.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png"}
_EXT = {"JPEG": "jpg", "PNG": "png"}
_HELP = "Save it as a JPEG or PNG photo and attach it again."


class ImageRefused(AmplifyError):
    """An image that cannot be used; the message says which one and what to do."""


@dataclass(frozen=True)
class Checked:
    """A checked, normalised image, in memory."""

    data: bytes
    format: str  # JPEG | PNG
    width: int
    height: int

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def mime_type(self) -> str:
        return _MIME[self.format]

    @property
    def extension(self) -> str:
        return _EXT[self.format]

    @property
    def size_bytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class StoredImage:
    """A normalised copy on disk; ``path`` is relative to the data folder."""

    path: str
    mime_type: str
    width: int
    height: int
    size_bytes: int
    sha256: str


# --------------------------------------------------------------------------- checking


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def _open(source: bytes | BinaryIO, name: str) -> Image.Image:
    """The image header, checked for format and pixel count; nothing decoded yet."""
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        image = Image.open(stream, formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fired first (over twice the cap): its message has the count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageRefused(_too_many_pixels(name, int(found[1]) if found else None)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRefused(
            f"{name} is not a picture Amplify can read (it accepts JPEG, PNG, GIF and WebP "
            f"files, whatever the name says). {_HELP}"
        ) from None
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        image.close()
        raise ImageRefused(_too_many_pixels(name, width * height, (width, height)))
    return image


def _too_many_pixels(name: str, pixels: int | None, size: tuple[int, int] | None = None) -> str:
    if size and pixels:
        what = f" is {size[0]:,}×{size[1]:,} pixels ({pixels / 1e6:.0f} megapixels)"
    else:
        what = f" has {pixels / 1e6:.0f} megapixels" if pixels else " has too many pixels"
    return (
        f"{name}{what}; Amplify takes pictures of up to {MAX_PIXELS // 1_000_000} megapixels. "
        "Make it smaller (for example 4000×3000) and attach it again."
    )


def header(data: bytes, name: str = "The image") -> tuple[str, int, int]:
    """(format, width, height) read from the header only; raises ImageRefused."""
    if len(data) > MAX_INPUT_BYTES:
        raise ImageRefused(_too_big(name, len(data), MAX_INPUT_BYTES))
    with _open(data, name) as image:
        return str(image.format), image.size[0], image.size[1]


def _too_big(name: str, size: int, limit: int) -> str:
    return (
        f"{name} is {_megabytes(size)}; Amplify takes files of up to {_megabytes(limit)}. "
        "Make it smaller (for example export it at 2000 pixels wide) and attach it again."
    )


def _decoded(image: Image.Image, name: str) -> Image.Image:
    """The first frame, decoded (a JPEG at the smallest scale still ≥ MAX_SIDE), upright."""
    if image.format == "JPEG":
        image.draft(None, (MAX_SIDE, MAX_SIDE))  # libjpeg scales while decoding: less memory
    try:
        image.load()
    except Exception as exc:  # any decoder failure: damaged, truncated, unsupported variant
        raise ImageRefused(
            f"{name} is damaged or incomplete and cannot be read ({type(exc).__name__}). {_HELP}"
        ) from None
    try:
        ImageOps.exif_transpose(image, in_place=True)  # no copy of a big picture
    except Exception:  # a malformed EXIF block: keep the picture as it is stored
        log.debug("unreadable EXIF orientation in %s; kept as stored", name)
    return image


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    """``image`` at most ``side`` pixels on its longer side, in RGB or RGBA. Shrinks first
    and converts after, so a big picture is never copied at full size (except palettes,
    which cannot be resized smoothly)."""
    target = "RGBA" if _has_alpha(image) else "RGB"
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert(target)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image if image.mode == target else image.convert(target)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )


def _encode(image: Image.Image, fmt: str, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    image.info = {}  # no EXIF, XMP, comments or text chunks travel on
    options: dict[str, object] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True, **options)
    else:
        image.save(out, format="PNG", **options)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image.convert("RGB")
    background = Image.new("RGB", image.size, "white")
    background.paste(image, mask=image.getchannel("A"))
    return background


def check(data: bytes, name: str = "The image", *, max_bytes: int = MAX_INPUT_BYTES) -> Checked:
    """Check ``data`` (see the module notes) and return its normalised copy, in memory.

    ``name`` starts every refusal message (a file name, or "The image").
    Raises :class:`ImageRefused` with what to fix."""
    if not data:
        raise ImageRefused(f"{name} is empty. {_HELP}")
    if len(data) > max_bytes:
        raise ImageRefused(_too_big(name, len(data), max_bytes))
    with _open(data, name) as opened:
        source_format = str(opened.format)
        icc = opened.info.get("icc_profile")
        image = _decoded(opened, name)
        try:
            keep_png = source_format in ("PNG", "GIF") or _has_alpha(image)
            image = _shrunk(image, MAX_SIDE)
            fmt = "PNG" if keep_png else "JPEG"
            encoded = _encode(image, fmt, icc)
            if fmt == "PNG" and len(encoded) > MAX_STORED_BYTES:
                fmt, encoded = "JPEG", _encode(_flatten(image), "JPEG", icc)
        except (OSError, ValueError) as exc:
            raise ImageRefused(
                f"{name} uses a colour format Amplify cannot convert ({type(exc).__name__}). "
                f"{_HELP}"
            ) from None
        return Checked(encoded, fmt, image.size[0], image.size[1])


def _media_dir(data_dir: Path | None = None) -> Path:
    return (data_dir or get_settings().data_dir) / "media"


def store(checked: Checked, data_dir: Path | None = None) -> StoredImage:
    """Write ``checked`` as ``media/<sha256>.<ext>`` (once; later stores refresh its time)."""
    folder = _media_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    digest = checked.sha256
    name = f"{digest}.{checked.extension}"
    target = folder / name
    if target.exists():
        os.utime(target)  # in use again: the orphan sweep's grace starts over
    else:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(checked.data)
            os.chmod(temp, 0o600)
            os.replace(temp, target)  # readers never see half a file
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    return StoredImage(
        path=f"media/{name}",
        mime_type=checked.mime_type,
        width=checked.width,
        height=checked.height,
        size_bytes=checked.size_bytes,
        sha256=digest,
    )


def columns(stored: StoredImage | None) -> dict[str, int | str]:
    """The ``PostMedia`` columns that describe ``stored`` (none for no image)."""
    if stored is None:
        return {}
    return {
        "width": stored.width,
        "height": stored.height,
        "size_bytes": stored.size_bytes,
        "sha256": stored.sha256,
    }


def ingest(data: bytes, name: str = "The image", data_dir: Path | None = None) -> StoredImage:
    """Check ``data`` and store its normalised copy; raises ImageRefused."""
    return store(check(data, name), data_dir)


def read_capped(path: Path, name: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path``, refused past ``max_bytes`` without reading the rest."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageRefused(f"{name} cannot be read ({exc.strerror or exc}).") from None
    if len(data) > max_bytes:
        raise ImageRefused(_too_big(name, path.stat().st_size, max_bytes))
    return data


# --------------------------------------------------------------------------- CSV images


def import_roots(csv_dir: Path) -> list[Path]:
    """Where a CSV's ``image`` names may point: the CSV's folder, then the configured
    ``AMPLIFY_IMPORT_MEDIA_DIR`` when there is one."""
    roots = [csv_dir]
    configured = get_settings().import_media_dir
    if configured:
        roots.append(Path(configured))
    return roots


def resolve_import_path(name: str, roots: Sequence[Path]) -> Path:
    """The file a CSV names, inside one of ``roots``; raises ImageRefused for an absolute
    path, a ``..`` that climbs out, a link leading outside, or a missing file."""
    cleaned = name.strip()
    if not cleaned:
        raise ImageRefused("image is empty.")
    if (
        PurePosixPath(cleaned).is_absolute()
        or PureWindowsPath(cleaned).is_absolute()
        or PureWindowsPath(cleaned).drive
        or cleaned.startswith("~")
    ):
        raise ImageRefused(
            f"image {cleaned!r} is an absolute path; give a path relative to the CSV file's "
            "folder (for example photos/van.jpg)."
        )
    if ".." in PurePosixPath(cleaned.replace("\\", "/")).parts:
        raise ImageRefused(
            f"image {cleaned!r} points outside the CSV file's folder; put the picture in that "
            "folder (or a folder inside it) and name it from there."
        )
    for root in roots:
        base = root.resolve()
        candidate = (base / cleaned).resolve()
        if not candidate.is_relative_to(base):  # a symbolic link leading elsewhere
            raise ImageRefused(
                f"image {cleaned!r} leads outside the CSV file's folder; copy the picture "
                "into that folder."
            )
        if candidate.is_file():
            return candidate
    where = " or ".join(str(r) for r in roots)
    raise ImageRefused(f"image {cleaned!r} was not found in {where}; check the file name.")


def import_image(
    name: str, *, csv_dir: Path, roots: Sequence[Path] | None = None, data_dir: Path | None = None
) -> StoredImage:
    """A CSV row's ``image``: resolved inside the allowed folders, checked like an upload,
    stored normalised. Raises ImageRefused with a message for the row."""
    path = resolve_import_path(name, roots or import_roots(csv_dir))
    label = f"image {name.strip()!r}"
    info = path.stat()
    return store(_checked_file(str(path), info.st_mtime_ns, info.st_size, label), data_dir)


@functools.lru_cache(maxsize=8)
def _checked_file(path: str, _mtime_ns: int, _size: int, label: str) -> Checked:
    """A file checked once while it is unchanged: a CSV naming the same logo on 10,000 rows
    decodes it once (refusals are not kept, they are quick)."""
    return check(read_capped(Path(path), label), label)


# --------------------------------------------------------------------------- using images


def problem(path: str | Path) -> str | None:
    """Why the file at ``path`` cannot be attached (not a picture by content, too large),
    read from its header only; None when it can."""
    name = os.path.basename(str(path)) or "The image"
    try:
        size = os.path.getsize(path)
        if size > MAX_INPUT_BYTES:
            return _too_big(name, size, MAX_INPUT_BYTES)
        with open(path, "rb") as fh, _open(fh, name):  # reads the header only
            pass
    except ImageRefused as exc:
        return str(exc)
    except OSError:
        return f"{name} is missing on disk: attach it again."
    return None


def publishable_bytes(data: bytes, name: str = "The image") -> bytes:
    """``data`` ready to send: a normalised copy as it is (header read only), anything else
    (a file stored before images were checked, a link card's picture) checked and normalised
    now. Never decodes more than ``MAX_PIXELS``. Raises ImageRefused saying what to fix."""
    fmt, width, height = header(data, name)
    if fmt in _MIME and max(width, height) <= MAX_SIDE and len(data) <= MAX_STORED_BYTES:
        return data
    return check(data, name).data


def publishable(path: str | Path) -> bytes:
    """:func:`publishable_bytes` of the file at ``path`` (read up to the size cap)."""
    name = os.path.basename(str(path)) or "The image"
    return publishable_bytes(read_capped(Path(path), name), name)


def _small(data: bytes) -> bytes | None:
    try:
        with _open(data, "image") as opened:
            image = _shrunk(_decoded(opened, "image"), THUMB_SIDE)
            return _encode(image, "PNG" if image.mode == "RGBA" else "JPEG", None)
    except ImageRefused:
        return None


@functools.lru_cache(maxsize=512)
def _thumbnail(path: str, _mtime_ns: int, _size: int) -> bytes | None:
    try:
        return _small(read_capped(Path(path), "image"))
    except ImageRefused:
        return None


def thumbnail(path: str | Path) -> bytes | None:
    """A small preview of the image at ``path`` for a page (made once per file and kept in
    memory), or None when the file is missing or is not a picture that passes the checks."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return _thumbnail(str(path), info.st_mtime_ns, info.st_size)


_previews: dict[str, bytes] = {}  # sha256 → preview; small, bounded below


def preview(checked: Checked) -> bytes:
    """A small preview of a checked image (for the composer: cheap to show on every run)."""
    key = checked.sha256
    found = _previews.get(key)
    if found is None:
        found = _small(checked.data) or checked.data
        if len(_previews) >= 256:
            _previews.pop(next(iter(_previews)), None)
        _previews[key] = found
    return found


def describe(s: Session, rows: Iterable[PostMedia], data_dir: Path | None = None) -> None:
    """Fill width, height, size and sha256 of ``rows`` that lack them, from their files
    (headers only: these are normalised copies)."""
    base = data_dir or get_settings().data_dir
    for row in rows:
        if row.sha256:
            continue
        path = base / row.path
        try:
            data = read_capped(path, row.path)
            _, row.width, row.height = header(data, row.path)
        except ImageRefused:
            continue
        row.size_bytes = len(data)
        row.sha256 = hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- orphans


def _ever_had_stories(s: Session) -> bool:
    if s.scalar(select(Post.id).limit(1)) is not None:
        return True
    recorded = select(AuditEvent.id).where(AuditEvent.subject_type == "post").limit(1)
    return s.scalar(recorded) is not None


def _referenced(s: Session) -> set[str]:
    return set(s.scalars(select(PostMedia.path).distinct()))


def discard(s: Session, paths: Iterable[str], data_dir: Path | None = None) -> list[str]:
    """Delete now the files at ``paths`` (relative to the data folder, under media/) that no
    story refers to any more: the uploads a composer replaced. Returns those deleted."""
    base = data_dir or get_settings().data_dir
    referenced = _referenced(s)
    deleted = []
    for rel in dict.fromkeys(paths):
        parts = PurePosixPath(rel).parts
        if rel in referenced or len(parts) != 2 or parts[0] != "media" or parts[1].startswith("."):
            continue
        with contextlib.suppress(FileNotFoundError):
            (base / rel).unlink()
            deleted.append(rel)
    return deleted


def remove_orphans(
    s: Session,
    *,
    data_dir: Path | None = None,
    older_than: timedelta = ORPHAN_GRACE,
    now: datetime | None = None,
) -> list[str]:
    """Delete files in data/media that no story refers to and that are older than
    ``older_than`` (uploads replaced or removed, images of deleted drafts, half-written
    temporary files). Returns the relative paths deleted.

    A database that never held a story is left alone: a fresh database pointed at a data
    folder full of another workspace's pictures is a mistake, not a clean-up."""
    folder = _media_dir(data_dir)
    if not folder.is_dir() or not _ever_had_stories(s):
        return []
    cutoff = ((now or datetime.now(UTC)) - older_than).timestamp()
    referenced = _referenced(s)
    deleted = []
    for entry in os.scandir(folder):
        rel = f"media/{entry.name}"
        if not entry.is_file(follow_symlinks=False) or rel in referenced:
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        deleted.append(rel)
    if deleted:
        log.info("removed %d unused image file(s) from %s", len(deleted), folder)
    return deleted
