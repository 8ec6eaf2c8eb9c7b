"""Bulk import of stories from a CSV file: check every row first, then import in one go.

Columns (header row required; order free; ``body`` and ``accounts`` must be present):

``body``           the story text
``accounts``       one or more ``platform:handle`` separated by ``;``
                   (e.g. ``x:team; bluesky:team.bsky.social``)
``scheduled_for``  ISO 8601 (``2026-03-01 09:00``, ``2026-03-01T15:00:00Z``); a time without
                   an offset is read in the workspace time zone. Needed with ``--approve``.
``campaign``       the name of an existing campaign (empty: none)
``link``           an http(s) URL
``image``          a path relative to the CSV file; copied into ``data/media/``
``alt_text``       required when ``image`` is given

``parse_csv`` is pure apart from reading the accounts and campaigns that rows name: it
returns the rows it understood and a ``(line_number, reason)`` problem for each row it did
not. ``import_rows`` then creates the stories through the workflow services, in the
caller's transaction: all of them, or (``skip_invalid``) all the valid ones.
"""

from __future__ import annotations

import csv
import hashlib
import io
import mimetypes
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from amplify.config import get_settings
from amplify.errors import AmplifyError, NotAllowed, NotFound, ValidationFailed
from amplify.models import Account, Campaign, User
from amplify.permissions import Action, refusal

REQUIRED_COLUMNS = ("body", "accounts")
OPTIONAL_COLUMNS = ("scheduled_for", "campaign", "link", "image", "alt_text")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MAX_IMAGE_BYTES = 5_000_000


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class ImportRow:
    line: int
    body: str
    account_ids: tuple[int, ...]
    platforms: tuple[str, ...]
    scheduled_for: datetime | None
    campaign_id: int | None
    link: str | None
    image: Path | None  # absolute path of the source file
    alt_text: str
    mime_type: str


@dataclass
class ParseResult:
    rows: list[ImportRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ImportResult:
    post_ids: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    approved: bool = False
    actor_email: str = ""

    @property
    def imported(self) -> int:
        return len(self.post_ids)


class ImportFailed(AmplifyError):
    """Nothing was imported; ``problems`` says which lines to fix and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"nothing imported: {len(problems)} row(s) need fixing (or pass --skip-invalid "
            f"to import the others):\n{lines}"
        )


# --------------------------------------------------------------------------- parsing


def parse_time(text: str, tz: tzinfo) -> datetime:
    """ISO 8601 date-time; without an offset it is a wall-clock time in ``tz``."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=tz)
    return value


def _account_index(s: Session) -> dict[tuple[str, str], list[Account]]:
    index: dict[tuple[str, str], list[Account]] = {}
    for account in s.scalars(select(Account).order_by(Account.id)):
        index.setdefault((account.platform, account.handle.lower().lstrip("@")), []).append(account)
    return index


def _campaign_index(s: Session) -> dict[str, Campaign]:
    return {c.name.strip().lower(): c for c in s.scalars(select(Campaign).order_by(Campaign.name))}


def _campaign_names(campaigns: dict[str, Campaign]) -> str:
    names = [c.name for c in campaigns.values() if not getattr(c, "archived", False)]
    if not names:
        return "there are no campaigns yet; create one first or leave the column empty"
    return "existing campaigns: " + ", ".join(sorted(names))


def _parse_accounts(
    text: str, index: dict[tuple[str, str], list[Account]]
) -> tuple[list[Account], list[str]]:
    accounts: list[Account] = []
    problems: list[str] = []
    entries = [e.strip() for e in text.split(";") if e.strip()]
    if not entries:
        return [], ["accounts is empty; give one or more platform:handle separated by ';'"]
    for entry in entries:
        platform, sep, handle = entry.partition(":")
        platform, handle = platform.strip().lower(), handle.strip().lstrip("@")
        if not sep or not platform or not handle:
            problems.append(
                f"account {entry!r} is not platform:handle (e.g. bluesky:team.bsky.social)"
            )
            continue
        found = index.get((platform, handle.lower()), [])
        if not found and "@" in handle:  # Mastodon style user@server
            user, _, host = handle.lower().partition("@")
            found = [
                a
                for a in index.get((platform, user), [])
                if urlsplit(a.service_url).hostname == host
            ]
        if not found:
            known = sorted(
                {a.label for group in index.values() for a in group if a.platform == platform}
            )
            hint = f"connected {platform} accounts: {', '.join(known)}" if known else (
                f"no {platform} account is connected yet; add it with `amplify accounts add`"
            )
            problems.append(f"no account {platform}:{handle} ({hint})")
        elif len(found) > 1:
            servers = ", ".join(urlsplit(a.service_url).hostname or a.service_url for a in found)
            problems.append(
                f"{platform}:{handle} is connected on {len(found)} servers ({servers}); "
                f"say which, e.g. {platform}:{handle}@{urlsplit(found[0].service_url).hostname}"
            )
        elif found[0] not in accounts:
            accounts.append(found[0])
    return accounts, problems


def parse_csv(
    s: Session,
    text: str,
    *,
    base_dir: Path,
    tz: tzinfo | None = None,
    require_schedule: bool = False,
) -> ParseResult:
    """Read and check every row. Line numbers are those of the file (the header is line 1).

    ``tz``: the zone for times without an offset; default the workspace zone an admin chose
    (``amplify.workspace``), else ``AMPLIFY_TIMEZONE``.
    """
    if tz is None:
        from amplify.workspace import workspace_tz

        tz = workspace_tz(s)
    result = ParseResult()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        result.problems.append(Problem(1, "the file is empty; line 1 must name the columns"))
        return result
    except csv.Error as exc:
        result.problems.append(Problem(1, f"the header line cannot be read as CSV ({exc})"))
        return result
    columns = [h.strip().lower() for h in header]
    unknown = [c for c in columns if c and c not in KNOWN_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    header_problems = []
    if unknown:
        header_problems.append(
            f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(KNOWN_COLUMNS)}"
        )
    if missing:
        header_problems.append(f"missing column(s) {', '.join(missing)}")
    if duplicated:
        header_problems.append(f"column(s) named twice: {', '.join(duplicated)}")
    if header_problems:
        result.problems.append(Problem(1, "; ".join(header_problems)))
        return result

    accounts = _account_index(s)
    campaigns = _campaign_index(s)
    line = reader.line_num + 1  # the line the next record starts on
    while True:
        start = line
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.problems.append(Problem(start, f"cannot be read as CSV ({exc}); check quotes"))
            break
        line = reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue  # blank line
        if len(record) > len(columns):
            result.problems.append(
                Problem(
                    start,
                    f"has {len(record)} fields but the header names {len(columns)}; "
                    "put text containing commas in double quotes",
                )
            )
            continue
        row = {c: (record[i].strip() if i < len(record) else "") for i, c in enumerate(columns)}
        problems: list[str] = []

        body = row.get("body", "")
        if not body:
            problems.append("body is empty; write the story")
        row_accounts, account_problems = _parse_accounts(row.get("accounts", ""), accounts)
        problems.extend(account_problems)

        scheduled_for: datetime | None = None
        when = row.get("scheduled_for", "")
        if when:
            try:
                scheduled_for = parse_time(when, tz)
            except ValueError:
                problems.append(
                    f"scheduled_for {when!r} is not an ISO 8601 date and time "
                    "(e.g. 2026-03-01 09:00 or 2026-03-01T15:00:00Z)"
                )
        elif require_schedule:
            problems.append(
                "scheduled_for is empty; with --approve every row needs a date and time "
                "(e.g. 2026-03-01 09:00)"
            )

        campaign_id: int | None = None
        campaign_name = row.get("campaign", "")
        if campaign_name:
            campaign = campaigns.get(campaign_name.lower())
            if campaign is None:
                problems.append(f"unknown campaign {campaign_name!r}; {_campaign_names(campaigns)}")
            elif getattr(campaign, "archived", False):
                problems.append(
                    f"campaign {campaign.name!r} is archived; {_campaign_names(campaigns)}"
                )
            else:
                campaign_id = campaign.id

        link = row.get("link", "") or None
        if link and not (link.startswith("http://") or link.startswith("https://")):
            problems.append(f"link {link!r} must start with http:// or https://")

        image: Path | None = None
        mime_type = ""
        image_name = row.get("image", "")
        alt_text = row.get("alt_text", "")
        if image_name:
            image = (base_dir / image_name).resolve()
            mime_type = mimetypes.guess_type(image.name)[0] or ""
            if not image.is_file():
                problems.append(f"image {image_name!r} not found next to the CSV file ({image})")
            elif not mime_type.startswith("image/"):
                problems.append(
                    f"image {image_name!r} is not a picture (use .jpg, .png, .gif or .webp)"
                )
            elif image.stat().st_size > MAX_IMAGE_BYTES:
                problems.append(
                    f"image {image_name!r} is larger than {MAX_IMAGE_BYTES // 1_000_000} MB; "
                    "make it smaller"
                )
            if not alt_text:
                problems.append(
                    "alt_text is empty but an image is given; describe the image for people "
                    "who cannot see it"
                )
        elif alt_text:
            problems.append("alt_text is given without an image; fill in image or clear alt_text")

        if problems:
            result.problems.append(Problem(start, "; ".join(problems)))
            continue
        result.rows.append(
            ImportRow(
                line=start,
                body=body,
                account_ids=tuple(a.id for a in row_accounts),
                platforms=tuple(dict.fromkeys(a.platform for a in row_accounts)),
                scheduled_for=scheduled_for,
                campaign_id=campaign_id,
                link=link,
                image=image,
                alt_text=alt_text,
                mime_type=mime_type,
            )
        )
    return result


# --------------------------------------------------------------------------- importing


def acting_user(s: Session, email: str | None) -> User:
    """The user an import acts as: ``email``, or the only user when there is exactly one."""
    from amplify import users

    if email:
        user = users.get_by_email(s, email)
        if user is None:
            raise NotFound(f"nobody signs in as {email}; check the address or add them first")
        return user
    count = s.scalar(select(func.count()).select_from(User)) or 0
    if count == 0:
        raise NotFound(
            "there are no users yet; add one with `amplify users add EMAIL --role admin`"
        )
    if count > 1:
        raise ValidationFailed(
            ["there is more than one user; say who imports with --as EMAIL"]
        )
    only = s.scalars(select(User)).one()
    return only


def copy_media(source: Path, data_dir: Path | None = None) -> str:
    """Copy an image into ``data/media/`` under its content hash; returns the relative path."""
    data_dir = data_dir or get_settings().data_dir
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:32]
    relative = f"media/{digest}{source.suffix.lower()}"
    target = data_dir / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return relative


def _import_one(s: Session, actor: User, row: ImportRow, approve: bool) -> int:
    from amplify import workflow

    media: tuple[workflow.MediaInput, ...] = ()
    if row.image is not None:
        media = (workflow.MediaInput(copy_media(row.image), row.alt_text, row.mime_type),)
    post = workflow.create_draft(
        s,
        actor,
        body=row.body,
        campaign_id=row.campaign_id,
        link=row.link,
        target_platforms=row.platforms,
        preferred_time=row.scheduled_for,
        media=media,
    )
    if approve:
        assert row.scheduled_for is not None  # parse_csv(require_schedule=True)
        workflow.submit(s, actor, post.id)
        workflow.approve(
            s, actor, post.id, account_ids=row.account_ids, scheduled_for=row.scheduled_for
        )
    return post.id


def _may_approve(actor: User) -> None:
    reason = refusal(actor, Action.APPROVE)
    if reason is not None:
        raise NotAllowed(
            f"{actor.email} is a {actor.role}: {reason} Import without --approve to "
            "create drafts for a lead to review."
        )


def import_rows(
    s: Session,
    actor: User,
    rows: Sequence[ImportRow],
    *,
    approve: bool = False,
    skip_invalid: bool = False,
) -> ImportResult:
    """Create a story per row as ``actor`` (with ``approve``: submitted and approved too).

    Runs in the caller's transaction. A row the workflow refuses becomes a problem; unless
    ``skip_invalid``, any problem means nothing is imported (the caller rolls back).
    """
    if approve:
        _may_approve(actor)
    result = ImportResult(approved=approve, actor_email=actor.email)
    for row in rows:
        savepoint = s.begin_nested()
        try:
            post_id = _import_one(s, actor, row, approve)
        except AmplifyError as exc:
            savepoint.rollback()
            result.problems.append(Problem(row.line, str(exc)))
            if not skip_invalid:
                break
        else:
            savepoint.commit()
            result.post_ids.append(post_id)
    if result.problems and not skip_invalid:
        result.post_ids = []
    return result


def import_csv(
    s: Session,
    path: Path,
    *,
    as_email: str | None = None,
    approve: bool = False,
    skip_invalid: bool = False,
) -> ImportResult:
    """Parse, check and import ``path`` in the caller's transaction.

    When any row is invalid and ``skip_invalid`` is false this raises ``ImportFailed``
    listing every problem, and the caller's ``session_scope`` rolls back: nothing is
    created. With ``skip_invalid`` the valid rows are imported and the result lists the
    skipped ones.
    """
    actor = acting_user(s, as_email)
    if approve:
        _may_approve(actor)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist; check the file name") from None
    except UnicodeDecodeError:
        raise ValidationFailed([f"{path} is not UTF-8 text; save it as CSV UTF-8"]) from None
    parsed = parse_csv(s, text, base_dir=path.resolve().parent, require_schedule=approve)
    if parsed.problems and not skip_invalid:
        raise ImportFailed(parsed.problems)
    result = import_rows(s, actor, parsed.rows, approve=approve, skip_invalid=skip_invalid)
    if result.problems and not skip_invalid:
        raise ImportFailed(result.problems)
    result.problems = sorted(parsed.problems + result.problems, key=lambda p: p.line)
    return result
