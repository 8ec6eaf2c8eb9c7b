"""Bulk import of stories from a CSV file: check every row first, then import in one go.

Columns (header row required; order free; ``body`` and ``accounts`` must be present):

``body``           the story text
``accounts``       one or more ``platform:handle`` separated by ``;``
                   (e.g. ``x:team; bluesky:team.bsky.social``)
``scheduled_for``  ISO 8601 (``2026-03-01 09:00``, ``2026-03-01T15:00:00Z``); a time without
                   an offset is read in the workspace time zone. Needed with ``--approve``,
                   where ``now`` publishes at once. A past time, a time the clocks skip
                   (spring forward) and a time that happens twice (fall back; add the offset)
                   are refused.
``campaign``       the name of an existing campaign (empty: none)
``link``           an http(s) URL
``image``          a path inside the CSV file's folder (or ``AMPLIFY_IMPORT_MEDIA_DIR``),
                   checked like an upload (``amplify.media``); its normalised copy goes into
                   ``data/media/``. Absolute paths and ``..`` are refused.
``alt_text``       required when ``image`` is given

At most ``MAX_ROWS`` stories per file: split bigger files.

``parse_csv`` is pure apart from reading the accounts and campaigns that rows name: it
returns the rows it understood and a ``(line_number, reason)`` problem for each row it did
not. ``import_csv`` never holds the database's write lock while it reads and checks: every
row is checked first (the story rules of ``amplify.workflow`` included) in a read-only
transaction, so publishing and other writers carry on; then all rows are written in one
short transaction of bulk inserts (10,000 rows: well under a second). All of them or none
(or, with ``skip_invalid``, all the valid ones).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from amplify import media as images
from amplify import queue
from amplify.db import session_scope
from amplify.errors import AmplifyError, NotAllowed, NotFound, ValidationFailed
from amplify.models import (
    Account,
    AccountStatus,
    AuditEvent,
    Campaign,
    Delivery,
    DeliveryKind,
    Post,
    PostMedia,
    PostState,
    User,
    utcnow,
)
from amplify.permissions import Action, refusal

REQUIRED_COLUMNS = ("body", "accounts")
OPTIONAL_COLUMNS = ("scheduled_for", "campaign", "link", "image", "alt_text")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
#: Stories per file. Checking is linear and writing is one bulk insert, so 10,000 rows take
#: seconds (benchmarks/import_speed.py); beyond that a file is better split, to keep a
#: mistake small and the dashboard's lists usable.
MAX_ROWS = 10_000
#: Largest file read: 10,000 long stories with their columns fit comfortably.
MAX_FILE_BYTES = 50 * 1024 * 1024
#: A scheduled time further ahead than this is almost certainly a typo in the year.
MAX_AHEAD = timedelta(days=5 * 366)
#: ``scheduled_for`` value meaning "publish at once" (with --approve).
NOW = "now"


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
    publish_now: bool
    campaign_id: int | None
    link: str | None
    image: images.StoredImage | None  # the checked, normalised copy in data/media
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


class TimeProblem(ValueError):
    """A ``scheduled_for`` that cannot be used; the message says what to write instead."""


def parse_time(text: str, tz: tzinfo) -> datetime:
    """ISO 8601 date-time, as aware UTC; without an offset it is a wall-clock time in ``tz``.

    Raises TimeProblem for text that is not a time, a time out of range, a wall-clock time
    the clocks skip in ``tz`` (spring forward) and one they pass twice (fall back).
    """
    example = "e.g. 2026-03-01 09:00 or 2026-03-01T15:00:00Z"
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimeProblem(f"{text!r} is not an ISO 8601 date and time ({example})") from None
    if value.tzinfo is None or value.utcoffset() is None:
        value = _wall_clock(value, tz)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise TimeProblem(f"{text!r} is too far in the past or future; check the year") from None


def _zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def _wall_clock(naive: datetime, tz: tzinfo) -> datetime:
    """``naive`` read in ``tz``, refusing the times a change of clocks makes not exist or
    exist twice (zoneinfo would silently shift the first and pick one of the second)."""
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    try:
        before, after = first.utcoffset(), second.utcoffset()
        if before == after:
            return first
        round_trip = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    except OverflowError:
        raise TimeProblem(f"{naive} is too far in the past or future; check the year") from None
    assert before is not None and after is not None
    day = naive.strftime("%Y-%m-%d")
    shown = naive.strftime("%Y-%m-%d %H:%M")
    if round_trip != naive:  # spring forward: this wall time is skipped
        jump_from, jump_to = _jump(naive, tz, before, after)
        raise TimeProblem(
            f"{shown} does not exist in {_zone_name(tz)}: on {day} the clocks jump from "
            f"{jump_from} to {jump_to}; pick a time outside that gap"
        )
    raise TimeProblem(
        f"{shown} happens twice in {_zone_name(tz)} on {day} (the clocks go back): "
        f"it could be {shown}{_offset(before)} or {shown}{_offset(after)}; write the one you "
        "mean with its offset"
    )


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _jump(naive: datetime, tz: tzinfo, before: timedelta, after: timedelta) -> tuple[str, str]:
    """The wall-clock times on either side of the gap ``naive`` falls in, e.g. 2:00 → 3:00."""
    low = (naive - after).replace(tzinfo=UTC)  # an instant before the change
    high = (naive - before).replace(tzinfo=UTC)  # one after it
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    change = high.replace(second=0, microsecond=0)
    return (
        (change + before).strftime("%-H:%M"),
        (change + after).strftime("%-H:%M"),
    )


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
            hint = (
                f"connected {platform} accounts: {', '.join(known)}"
                if known
                else (f"no {platform} account is connected yet; add it with `amplify accounts add`")
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
    # strict: a quote opened and never closed is an error at the end of the file, not one
    # story swallowing every line after it.
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
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
    now = utcnow()
    stories = 0
    line = reader.line_num + 1  # the line the next record starts on
    while True:
        start = line
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.problems.append(Problem(start, _malformed(exc)))
            break
        line = reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue  # blank line
        stories += 1
        if stories > MAX_ROWS:
            result.rows.clear()
            result.problems = [
                Problem(
                    start,
                    f"the file has more than {MAX_ROWS:,} stories; split it into files of at "
                    f"most {MAX_ROWS:,} rows and import them one after another",
                )
            ]
            return result
        if any("\x00" in cell for cell in record):
            result.problems.append(Problem(start, _NUL))
            continue
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

        scheduled_for, publish_now, time_problem = _schedule(
            row.get("scheduled_for", ""), tz, now, require_schedule
        )
        if time_problem:
            problems.append(time_problem)

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

        image: images.StoredImage | None = None
        mime_type = ""
        image_name = row.get("image", "")
        alt_text = row.get("alt_text", "")
        if image_name:
            try:  # inside the CSV's folder only, checked like an upload, stored normalised
                image = images.import_image(image_name, csv_dir=base_dir)
                mime_type = image.mime_type
            except images.ImageRefused as exc:
                problems.append(str(exc))
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
                publish_now=publish_now,
                campaign_id=campaign_id,
                link=link,
                image=image,
                alt_text=alt_text,
                mime_type=mime_type,
            )
        )
    return result


_NUL = (
    "contains a NUL character (\\0), which cannot be stored; remove it (a file saved as "
    "UTF-16 looks like this: save it again as CSV UTF-8)"
)


def _malformed(exc: csv.Error) -> str:
    if "unexpected end of data" in str(exc):
        return (
            "a double quote opened on this line is never closed, so the file ends inside it; "
            'close the quote (a quote inside quoted text is written twice: "")'
        )
    return f"is not well-formed CSV ({exc}); check the double quotes on this line"


def _schedule(
    text: str, tz: tzinfo, now: datetime, required: bool
) -> tuple[datetime | None, bool, str | None]:
    """(time, publish now?, problem) for one ``scheduled_for`` cell."""
    example = "e.g. 2026-03-01 09:00"
    if not text:
        if required:
            return (
                None,
                False,
                (
                    f"scheduled_for is empty; with --approve every row needs a date and time "
                    f"({example}), or {NOW!r} to publish at once"
                ),
            )
        return None, False, None
    if text.strip().lower() == NOW:
        if not required:
            return (
                None,
                False,
                (f"scheduled_for {NOW!r} only works with --approve; leave it empty for drafts"),
            )
        return now, True, None
    try:
        when = parse_time(text, tz)
    except TimeProblem as exc:
        return None, False, f"scheduled_for {exc}"
    local = when.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if when < now:
        fix = f", or write {NOW!r} to publish at once" if required else ""
        return (
            None,
            False,
            (
                f"scheduled_for {text!r} ({local} {_zone_name(tz)}) has already passed; "
                f"give a later time{fix}"
            ),
        )
    if when > now + MAX_AHEAD:
        return None, False, (f"scheduled_for {text!r} is more than five years away; check the year")
    return when, False, None


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
        raise ValidationFailed(["there is more than one user; say who imports with --as EMAIL"])
    only = s.scalars(select(User)).one()
    return only


def _stored_media(row: ImportRow) -> tuple[Any, ...]:
    """The row's checked image (already in data/media), as the workflow's MediaInput."""
    from amplify import workflow

    if row.image is None:
        return ()
    return (workflow.MediaInput(row.image.path, row.alt_text, row.image.mime_type),)


@dataclass(frozen=True)
class _Story:
    """A row that passed every check, ready to be written."""

    row: ImportRow
    fields: dict[str, Any]  # the workflow's normalised story fields
    media: tuple[Any, ...]


def _may_approve(actor: User) -> None:
    reason = refusal(actor, Action.APPROVE)
    if reason is not None:
        raise NotAllowed(
            f"{actor.email} is a {actor.role}: {reason} Import without --approve to "
            "create drafts for a lead to review."
        )


def check_rows(
    s: Session, actor: User, rows: Sequence[ImportRow], *, approve: bool = False
) -> tuple[list[_Story], list[Problem]]:
    """Apply the workflow's story rules to every row, reading only (no write lock).

    The same checks as ``workflow.create_draft`` (+ ``approve``): text, link, campaign,
    images, the accounts' state, the text fitting each platform, and the double-send guard
    (a story its author saved minutes ago, or the same story twice in the file).
    """
    from amplify import workflow

    recent: dict[Any, int] = {}
    for post in workflow.recent_stories(s, actor.id):  # newest first
        recent.setdefault(workflow.story_key(post), post.id)
    seen: dict[Any, int] = {}
    account_checks: dict[tuple[int, ...], tuple[list[Account], list[str]]] = {}
    stories: list[_Story] = []
    problems: list[Problem] = []
    for row in rows:
        accounts: list[Account] | None = None  # checked only when approving
        account_problems: list[str] = []
        if approve:
            if row.account_ids not in account_checks:
                account_checks[row.account_ids] = workflow.usable_accounts(s, row.account_ids)
            accounts, account_problems = account_checks[row.account_ids]
        try:
            media = _stored_media(row)
            fields, key, fit_problems = workflow.check_new_story(
                s,
                {
                    "body": row.body,
                    "campaign_id": row.campaign_id,
                    "link": row.link,
                    "target_platforms": list(row.platforms),
                    "preferred_time": row.scheduled_for,
                    "media": list(media),
                },
                accounts,
            )
        except AmplifyError as exc:
            problems.append(Problem(row.line, _reason(exc)))
            continue
        reasons: list[str] = []
        if key in seen:
            reasons.append(f"the same story as line {seen[key]}; remove one of them")
        elif key in recent:
            reasons.append(
                f"you saved this story minutes ago (#{recent[key]}); remove the row or wait "
                "ten minutes if you really mean to share it twice"
            )
        seen.setdefault(key, row.line)
        reasons.extend(account_problems + fit_problems)
        if reasons:
            problems.append(Problem(row.line, "; ".join(reasons)))
        else:
            stories.append(_Story(row, fields, media))
    return stories, problems


def _reason(exc: AmplifyError) -> str:
    if isinstance(exc, ValidationFailed):
        return "; ".join(exc.problems)
    return str(exc)


def write_stories(
    s: Session, actor: User, stories: Sequence[_Story], *, approve: bool = False
) -> list[int]:
    """Write checked stories in bulk, in the caller's transaction; the new post ids in row
    order. (``import_csv`` prepares the rows before taking the lock: ``prepare`` + ``write``.)"""
    return write(s, prepare(s.get_bind().dialect, actor, stories, approve=approve))


@dataclass
class _Table:
    """Rows for one table, every value already converted to what the database driver takes
    (the slow part of an insert), so that under the lock only the driver works. ``story``
    names the column that holds a story's index until its post id is known."""

    sql: str
    rows: list[Any]
    story: int | str | None


@dataclass
class Prepared:
    stories: Sequence[_Story]
    approve: bool
    tables: list[_Table]


def _table(dialect: Any, model: Any, rows: list[dict[str, Any]], story: str | None) -> _Table:
    table = model.__table__
    defaults = _python_defaults(table, set(rows[0]))
    if defaults:
        rows = [{**defaults, **r} for r in rows]
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    processors = {k: table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in keys}

    def driver(row: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v if v is None or processors[k] is None else processors[k](v) for k, v in row.items()
        }

    if compiled.positional:
        order = list(compiled.positiontup or ())
        return _Table(
            str(compiled),
            [[driver(r)[k] for k in order] for r in rows],
            order.index(story) if story else None,
        )
    return _Table(str(compiled), [driver(r) for r in rows], story)


def _python_defaults(table: Any, given: set[str]) -> dict[str, Any]:
    """Values of the model's Python-side defaults (``default=...``) for columns not given:
    a raw executemany does not run them (SQL-side defaults still apply)."""
    values: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.key in given or default is None or column.primary_key:
            continue
        if default.is_scalar:
            values[column.key] = default.arg
        elif default.is_callable:
            values[column.key] = default.arg(None)
    return values


def prepare(dialect: Any, actor: User, stories: Sequence[_Story], *, approve: bool) -> Prepared:
    """Everything the write needs, built without the lock (post ids come later)."""
    now = utcnow()
    state = PostState.APPROVED if approve else PostState.DRAFT
    numbered = list(enumerate(stories))
    tables: list[_Table] = []
    if not stories:
        return Prepared(stories, approve, tables)
    posts = [
        {
            "id": i,
            "author_id": actor.id,
            "campaign_id": st.fields["campaign_id"],
            "body": st.fields["body"],
            "overrides": {},
            "link": st.fields["link"],
            "target_platforms": st.fields["target_platforms"],
            "state": str(state),
            "preferred_time": st.row.scheduled_for,
            "scheduled_for": st.row.scheduled_for if approve else None,
            "amplify": False,
            "autosaved": False,
            "created_at": now,
            "updated_at": now,
            "submitted_at": now if approve else None,
            "version": 1,
        }
        for i, st in numbered
    ]
    tables.append(_table(dialect, Post, posts, "id"))
    media = [
        {
            "post_id": i,
            "position": n,
            "path": m.path,
            "alt_text": m.alt_text.strip(),
            "mime_type": m.mime_type,
            **images.columns(st.row.image),  # a row has at most one image
        }
        for i, st in numbered
        for n, m in enumerate(st.media)
    ]
    if media:
        tables.append(_table(dialect, PostMedia, media, "post_id"))
    events = [
        _event(actor, "post.created", i, now, source="csv", line=st.row.line) for i, st in numbered
    ]
    if approve:
        deliveries = [
            queue.new_delivery_row(
                post_id=i,
                account_id=account_id,
                kind=str(DeliveryKind.POST),
                next_attempt_at=st.row.scheduled_for,
                idempotency_key=uuid.uuid4().hex,
            )
            for i, st in numbered
            for account_id in st.row.account_ids
        ]
        tables.append(_table(dialect, Delivery, deliveries, "post_id"))
        for i, st in numbered:
            when = st.row.scheduled_for
            events.append(_event(actor, "post.submitted", i, now, source="csv"))
            events.append(
                _event(
                    actor,
                    "post.approved",
                    i,
                    now,
                    source="csv",
                    account_ids=list(st.row.account_ids),
                    scheduled_for=when.isoformat() if when else None,
                    publish_now=st.row.publish_now,
                    amplify=False,
                    created=len(st.row.account_ids),
                )
            )
    tables.append(_table(dialect, AuditEvent, events, "subject_id"))
    return Prepared(stories, approve, tables)


def _event(actor: User, action: str, post_id: int, at: datetime, **detail: Any) -> dict[str, Any]:
    return {
        "actor_id": actor.id,
        "at": at,
        "action": action,
        "subject_type": "post",
        "subject_id": post_id,
        "detail": detail,
    }


def _new_post_ids(s: Session, count: int) -> list[int]:
    """``count`` ids for new posts, taken under the write lock."""
    if s.get_bind().dialect.name == "postgresql":
        return list(
            s.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence('posts', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": count},
            )
        )
    # SQLite: the write lock is held (BEGIN IMMEDIATE), so nobody else can take these.
    last = s.scalar(select(func.coalesce(func.max(Post.id), 0))) or 0
    return list(range(last + 1, last + 1 + count))


def write(s: Session, prepared: Prepared) -> list[int]:
    """The short part, under the write lock: re-check what may have changed, take post ids,
    and hand each table's rows to the driver in one executemany."""
    if not prepared.stories:
        return []
    _still_usable(s, prepared.stories, prepared.approve)
    ids = _new_post_ids(s, len(prepared.stories))
    connection = s.connection()
    for table in prepared.tables:
        if table.story is not None:
            for row in table.rows:
                row[table.story] = ids[row[table.story]]
        rows = [r if isinstance(r, dict) else tuple(r) for r in table.rows]
        connection.exec_driver_sql(table.sql, rows)
    return ids


def _still_usable(s: Session, stories: Sequence[_Story], approve: bool) -> None:
    """What was checked without the lock may have changed since: an account disconnected,
    a campaign archived. Re-read those (two small queries) under the lock."""
    problems: list[Problem] = []
    campaign_ids = {st.fields["campaign_id"] for st in stories} - {None}
    archived = (
        set(s.scalars(select(Campaign.id).where(Campaign.id.in_(campaign_ids), Campaign.archived)))
        if campaign_ids
        else set()
    )
    usable: set[int] = set()
    if approve:
        ids = {a for st in stories for a in st.row.account_ids}
        usable = set(
            s.scalars(
                select(Account.id).where(Account.id.in_(ids), Account.status == AccountStatus.OK)
            )
        )
    for st in stories:
        if st.fields["campaign_id"] in archived:
            problems.append(Problem(st.row.line, "its campaign was archived during the import"))
        elif approve and not set(st.row.account_ids) <= usable:
            problems.append(
                Problem(st.row.line, "one of its accounts was disconnected during the import")
            )
    if problems:
        raise ImportFailed(problems)


def read_csv_file(path: Path) -> str:
    """The file's text, refusing what cannot be a story file (missing, too big, not UTF-8)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValidationFailed(
                [
                    f"{path} is {size // (1024 * 1024)} MB, more than the "
                    f"{MAX_FILE_BYTES // (1024 * 1024)} MB a story file may be; split it into "
                    f"files of at most {MAX_ROWS:,} rows"
                ]
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist; check the file name") from None
    except IsADirectoryError:
        raise NotFound(f"{path} is a folder; give the CSV file inside it") from None
    except UnicodeDecodeError:
        raise ValidationFailed([f"{path} is not UTF-8 text; save it as CSV UTF-8"]) from None


def import_csv(
    path: Path,
    *,
    as_email: str | None = None,
    approve: bool = False,
    skip_invalid: bool = False,
    url: str | None = None,
) -> ImportResult:
    """Check every row of ``path`` without the write lock, then write them all at once.

    Runs its own transactions (``url``: the database, default the configured one): the
    checks read only, so the worker, the dashboard and other commands keep writing while a
    big file is checked; the write is one short transaction. When any row is invalid and
    ``skip_invalid`` is false this raises ``ImportFailed`` listing every problem and nothing
    is written. With ``skip_invalid`` the valid rows are imported and the result lists the
    skipped ones.
    """
    with session_scope(url, readonly=True) as s:
        actor = acting_user(s, as_email)
        if approve:
            _may_approve(actor)
        text = read_csv_file(path)
        parsed = parse_csv(s, text, base_dir=path.resolve().parent, require_schedule=approve)
        if parsed.problems and not skip_invalid:
            raise ImportFailed(parsed.problems)
        stories, problems = check_rows(s, actor, parsed.rows, approve=approve)
        if problems and not skip_invalid:
            raise ImportFailed(sorted(parsed.problems + problems, key=lambda p: p.line))
        prepared = prepare(s.get_bind().dialect, actor, stories, approve=approve)
    with session_scope(url) as s:
        actor = acting_user(s, actor.email)  # still there, still allowed, under the lock
        if approve:
            _may_approve(actor)
        post_ids = write(s, prepared)
    return ImportResult(
        post_ids=post_ids,
        problems=sorted(parsed.problems + problems, key=lambda p: p.line),
        approved=approve,
        actor_email=actor.email,
    )
