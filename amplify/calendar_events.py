"""The Calendar's events and its drag-to-reschedule, as plain functions (no Streamlit).

The page draws these with FullCalendar (streamlit-calendar). FullCalendar runs with
``timeZone: "UTC"`` and is given the workspace zone's wall-clock times, so what it shows
is the workspace's time whatever the browser's zone is; a dropped event comes back as
that same wall-clock time (with a "Z" it does not mean) and is read in the workspace zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from amplify import workflow
from amplify.analytics import post_label
from amplify.errors import AmplifyError, ValidationFailed
from amplify.models import DeliveryStatus, PostState, User, utcnow
from amplify.queries import CalendarEntry
from connectors import registry

# Colour-blind-safe palette (Okabe–Ito, darkened where white text needs it), by account.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#007A5E",
    "#CC79A7",
    "#8F6A00",
    "#56B4E9",
    "#6A3D9A",
    "#4D4D4D",
)
# Sends that are not simply waiting say so at the start of their title.
MARKS: dict[str, str] = {
    DeliveryStatus.PUBLISHED: "✓ ",
    DeliveryStatus.FAILED: "⚠ failed: ",
    DeliveryStatus.CLAIMED: "sending: ",
    DeliveryStatus.RECONCILE: "checking: ",
}
EVENT_MINUTES = 75  # how tall a post is drawn in the week view (room for its title)


TITLE_CHARS = 30  # a story's first words on the calendar: room left for the account


def story_words(body: str, post_id: int) -> str:
    """A story's first words, short enough to leave room for the account in a week slot."""
    label = post_label(body, post_id)
    if len(label) <= TITLE_CHARS:
        return label
    cut = label[: TITLE_CHARS - 1].rsplit(" ", 1)[0] or label[: TITLE_CHARS - 1]
    return cut.rstrip(" ,.;:—-…") + "…"


def account_name(platform: str, handle: str) -> str:
    try:
        info = registry.info(platform)
    except ValueError:  # not a platform offered (a test's connector)
        return f"{platform} {handle}"
    return f"{handle} (practice)" if info.practice else f"{info.label} {handle}"


def colour_for(account_id: int) -> str:
    return PALETTE[account_id % len(PALETTE)]


def wall_clock(when: datetime, tz: ZoneInfo) -> str:
    """``when`` as the workspace's wall-clock time, without a zone (what FullCalendar shows)."""
    return when.astimezone(tz).replace(tzinfo=None).isoformat(timespec="minutes")


def from_wall_clock(text: str, tz: ZoneInfo) -> datetime:
    """A time FullCalendar sent back, read as the workspace's wall-clock time."""
    value = datetime.fromisoformat(text.strip().removesuffix("Z"))
    return value.replace(tzinfo=None).replace(tzinfo=tz)


def movable(entry: CalendarEntry) -> bool:
    """Only an approved story's sends still waiting can be dragged."""
    return entry.post_state == PostState.APPROVED and entry.delivery_status == (
        DeliveryStatus.PENDING
    )


def events(entries: Iterable[CalendarEntry], tz: ZoneInfo) -> list[dict[str, Any]]:
    """FullCalendar event objects: one per send, titled by the story's first words and the
    account, coloured by account; published ones are ticked and cannot be dragged."""
    out = []
    for e in entries:
        start = e.at.astimezone(tz)
        # Drawn an hour long, but never past midnight (FullCalendar would split it in two).
        midnight = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=tz)
        end = min(start + timedelta(minutes=EVENT_MINUTES), midnight)
        done = e.delivery_status == DeliveryStatus.PUBLISHED
        mark = MARKS.get(e.delivery_status, "")
        colour = colour_for(e.account_id)
        out.append(
            {
                "id": f"{e.post_id}:{e.delivery_id}",
                "title": f"{mark}{story_words(e.excerpt, e.post_id)} · "
                f"{account_name(e.platform, e.account)}",
                "start": wall_clock(start, tz),
                "end": wall_clock(end, tz),
                "backgroundColor": colour,
                "borderColor": colour,
                "textColor": "#ffffff",
                "startEditable": movable(e),
                "durationEditable": False,
                "classNames": ["published" if done else e.delivery_status],
                "extendedProps": {
                    "post_id": e.post_id,
                    "delivery_id": e.delivery_id,
                    "status": e.delivery_status,
                },
            }
        )
    return out


def legend(entries: Iterable[CalendarEntry]) -> list[tuple[str, str]]:
    """(account name, colour) for each account on the calendar, in name order."""
    seen = {e.account_id: account_name(e.platform, e.account) for e in entries}
    return sorted(((name, colour_for(aid)) for aid, name in seen.items()), key=lambda r: r[0])


def event_post_id(event: dict[str, Any]) -> int | None:
    """The story behind a FullCalendar event (from its extendedProps, else its id)."""
    props = event.get("extendedProps") or {}
    raw = props.get("post_id")
    if raw is None:
        raw = str(event.get("id", "")).split(":", 1)[0]
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class DropResult:
    ok: bool
    message: str
    post_id: int | None = None


def handle_drop(
    s: Session, actor: User, change: dict[str, Any], tz: ZoneInfo, *, now: datetime | None = None
) -> DropResult:
    """A story dragged to a new time: reschedule it through the workflow (same permission
    and state checks as anywhere else). A drop into the past is refused with a pointer to
    "Publish now"; moving one of a story's sends moves the story on every account.
    Never raises an AmplifyError: the page shows the result's message."""
    event = change.get("event") or {}
    post_id = event_post_id(event)
    start = event.get("start")
    if post_id is None or not isinstance(start, str):
        return DropResult(False, "That move could not be read; drag the story again.")
    try:
        when = from_wall_clock(start, tz)
    except ValueError:
        return DropResult(False, "That move could not be read; drag the story again.", post_id)
    if when < (now or utcnow()):
        return DropResult(
            False,
            f"{when:%a %d %b %H:%M} has already passed, so the story stayed where it was. "
            'To send it straight away, open it and choose "Publish now".',
            post_id,
        )
    try:
        workflow.reschedule(s, actor, post_id, when)
    except AmplifyError as exc:
        s.rollback()  # nothing half-moved is committed by the caller
        text = " ".join(exc.problems) if isinstance(exc, ValidationFailed) else str(exc)
        return DropResult(False, text, post_id)
    return DropResult(True, f"Moved to {when:%a %d %b %H:%M} ({tz.key}).", post_id)
