"""The story state machine: who may move a story where, with what, and the audit trail.

```
draft ─submit─▶ submitted ─approve─▶ approved ─(all deliveries published)─▶ published
  ▲                 │                    │
  └─reject/withdraw─┘                    └─cancel─▶ cancelled ─(edit, approve again)─▶ approved
```

Every function takes the caller's session and never commits: the change and its
AuditEvent land together or not at all. A story edited by two people at once raises
Conflict rather than silently keeping one of the edits (``Post.version``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from amplify import events, queue, textrules
from amplify.errors import Conflict, IllegalTransition, NotAllowed, NotFound, ValidationFailed
from amplify.models import (
    Account,
    AccountStatus,
    AuditEvent,
    Campaign,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    PostMedia,
    PostState,
    User,
    utcnow,
)
from amplify.permissions import LEADS, Action, can, require

log = logging.getLogger(__name__)

MAX_MEDIA = 4
MAX_LINK_LENGTH = 2000
CONFLICT_MESSAGE = (
    "Someone else changed this story while you were working on it; reload to see their changes."
)
EDITABLE_FIELDS = frozenset(
    {
        "body",
        "campaign_id",
        "link",
        "target_platforms",
        "preferred_time",
        "overrides",
        "media",
        "thread_cap",
    }
)
# Only leads decide how long a thread may get.
LEAD_ONLY_FIELDS = frozenset({"thread_cap"})
MAX_THREAD_CAP = 50
# The same story from the same author twice within this window is a double click, a form the
# browser sent again or a reload, not a second story: refused with a pointer to the first.
# Long enough to catch those; short enough that a deliberate repeat later (a weekly
# reminder) is not stopped.
DUPLICATE_WINDOW = timedelta(minutes=10)
# "Now" computed by a page a moment before the service sees it is not "in the past".
PAST_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class MediaInput:
    """An image to attach to a story: ``path`` relative to the data dir, alt text required."""

    path: str
    alt_text: str
    mime_type: str = "image/jpeg"


@dataclass(frozen=True)
class CancelResult:
    """What ``cancel`` did: deliveries stopped, and the ones it could not stop."""

    post: Post
    cancelled: int
    in_flight: int
    already_published: int

    @property
    def message(self) -> str:
        parts = [f"Cancelled: {self.cancelled} scheduled send(s) stopped."]
        if self.in_flight:
            parts.append(
                f"{self.in_flight} send(s) were already being published and were left to "
                "finish; check the story in a minute and delete them on the platform if needed."
            )
        if self.already_published:
            parts.append(
                f"{self.already_published} account(s) had already published it; "
                "delete those posts on the platform if they must go."
            )
        return " ".join(parts)


# --------------------------------------------------------------------------- audit + events


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def audit(
    s: Session,
    actor: User | None,
    action: str,
    subject_type: str,
    subject_id: int | None,
    **detail: Any,
) -> AuditEvent:
    """Record who did what, in the caller's transaction. Never pass secrets in ``detail``."""
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        at=utcnow(),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=_jsonable(detail),
    )
    s.add(event)
    return event


def _story_event(s: Session, name: str, post: Post, actor: User, **extra: Any) -> None:
    """Tell the rest of Amplify (notifications, the worker) about a story, after commit."""
    events.emit(s, name, post_id=post.id, actor_id=actor.id, author_id=post.author_id, **extra)


# --------------------------------------------------------------------------- helpers


@contextmanager
def _stale_is_conflict() -> Iterator[None]:
    try:
        yield
    except StaleDataError:
        raise Conflict(CONFLICT_MESSAGE) from None


def _flush(s: Session) -> None:
    with _stale_is_conflict():
        s.flush()


def get_post(s: Session, post_id: int) -> Post:
    post = s.get(Post, post_id)
    if post is None:
        raise NotFound(f"There is no story #{post_id}; it may have been deleted. Reload the page.")
    return post


def _deliveries(s: Session, post: Post) -> list[Delivery]:
    """The story's deliveries as the database has them now (not a stale loaded list)."""
    _flush(s)
    stmt = select(Delivery).where(Delivery.post_id == post.id).order_by(Delivery.id)
    return list(s.scalars(stmt))


def _check_version(post: Post, expected_version: int | None) -> None:
    if expected_version is not None and post.version != expected_version:
        raise Conflict(CONFLICT_MESSAGE)


def _platforms() -> tuple[str, ...]:
    from connectors import registry

    return registry.platforms()


def _platform_name(platform: str) -> str:
    """The platform as a sentence names it: its label, "the sandbox" for a practice one."""
    from connectors import registry

    try:
        info = registry.info(platform)
    except ValueError:
        return platform
    return f"the {platform}" if info.practice else info.label


def _aware(value: datetime, what: str) -> list[str]:
    if value.tzinfo is None or value.utcoffset() is None:
        return [f"Give the {what} with its time zone (it was given without one)."]
    return []


def _link_problems(link: str | None) -> list[str]:
    if link is None or link == "":
        return []
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [
            "The link must start with http:// or https:// (for example https://example.org/story)."
        ]
    if len(link) > MAX_LINK_LENGTH:
        return [f"The link is longer than {MAX_LINK_LENGTH} characters; use a shorter one."]
    if any(ch.isspace() for ch in link):
        return ["The link contains spaces; paste it again without them."]
    return []


def _media_problems(media: Sequence[MediaInput]) -> list[str]:
    problems: list[str] = []
    if len(media) > MAX_MEDIA:
        problems.append(f"Attach at most {MAX_MEDIA} images (there are {len(media)}).")
    for n, item in enumerate(media, start=1):
        path = (item.path or "").strip()
        if not path:
            problems.append(f"Image {n} has no file; upload it again.")
        elif PurePath(path).is_absolute() or ".." in PurePath(path).parts or "\\" in path:
            # Media paths are relative to the data dir; anything else could publish any file.
            problems.append(f"Image {n} must be uploaded through Amplify; upload it again.")
        if not (item.alt_text or "").strip():
            problems.append(f"Image {n} needs alt text: describe it for people who cannot see it.")
        if not (item.mime_type or "").startswith("image/"):
            problems.append(
                f"Attachment {n} is not an image ({item.mime_type}); attach images only."
            )
    return problems


def _clean_fields(
    s: Session, fields: dict[str, Any], current: Post | None = None
) -> dict[str, Any]:
    """Validate editable story fields; return them normalised, or raise ValidationFailed."""
    problems: list[str] = []
    out: dict[str, Any] = {}
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        problems.append(f"These cannot be edited here: {', '.join(sorted(unknown))}.")
    if "body" in fields:
        body = (fields["body"] or "").strip()
        if not body:
            problems.append("Write the story: the text is empty.")
        out["body"] = body
    if "link" in fields:
        link = (fields["link"] or "").strip() or None
        problems.extend(_link_problems(link))
        out["link"] = link
    if "campaign_id" in fields:
        campaign_id = fields["campaign_id"]
        campaign = s.get(Campaign, campaign_id) if campaign_id is not None else None
        if campaign_id is not None and campaign is None:
            problems.append("That campaign does not exist any more; choose another.")
        elif (
            campaign is not None
            and campaign.archived
            and (current is None or current.campaign_id != campaign_id)
        ):
            problems.append(f"The campaign {campaign.name} is archived; choose another.")
        out["campaign_id"] = campaign_id
    if "target_platforms" in fields:
        targets = list(dict.fromkeys(fields["target_platforms"] or ()))
        bad = [p for p in targets if p not in _platforms()]
        if bad:
            problems.append(
                f"Unknown platform(s): {', '.join(map(str, bad))}; "
                f"choose from {', '.join(_platforms())}."
            )
        out["target_platforms"] = targets
    if "preferred_time" in fields:
        preferred = fields["preferred_time"]
        if preferred is not None:
            # A wish for the lead, not a schedule: a past one is shown as passed, not refused
            # (imports carry old dates); approve is where a past time needs "publish now".
            problems.extend(_aware(preferred, "preferred time"))
        out["preferred_time"] = preferred
    if "thread_cap" in fields:
        cap = fields["thread_cap"]
        if cap is not None and (
            isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_THREAD_CAP
        ):
            problems.append(
                f"The thread cap must be a whole number of posts from 1 to {MAX_THREAD_CAP}, "
                "or empty for no cap."
            )
        out["thread_cap"] = cap
    if "overrides" in fields:
        overrides = {k: (v or "").strip() for k, v in (fields["overrides"] or {}).items()}
        overrides = {k: v for k, v in overrides.items() if v}
        bad = [k for k in overrides if k not in _platforms()]
        if bad:
            problems.append(f"Per-platform text for unknown platform(s): {', '.join(bad)}.")
        out["overrides"] = overrides
    if "media" in fields:
        media = [m if isinstance(m, MediaInput) else MediaInput(**m) for m in fields["media"] or ()]
        problems.extend(_media_problems(media))
        out["media"] = media
    if problems:
        raise ValidationFailed(problems)
    return out


def _apply(post: Post, fields: dict[str, Any]) -> list[str]:
    changed: list[str] = []
    for name, value in fields.items():
        if name == "media":
            current = [(m.path, m.alt_text, m.mime_type) for m in post.media]
            wanted = [(m.path, m.alt_text.strip(), m.mime_type) for m in value]
            if current != wanted:
                post.media = [
                    PostMedia(position=i, path=p, alt_text=a, mime_type=t)
                    for i, (p, a, t) in enumerate(wanted)
                ]
                changed.append(name)
        elif getattr(post, name) != value:
            setattr(post, name, value)
            changed.append(name)
    return changed


def _local(s: Session, value: datetime) -> str:
    """A time as the team reads it (workspace zone), for messages."""
    from amplify.workspace import workspace_tz  # workspace imports this module

    return value.astimezone(workspace_tz(s)).strftime("%H:%M")


def _local_day(s: Session, value: datetime) -> str:
    from amplify.workspace import workspace_tz

    return value.astimezone(workspace_tz(s)).strftime("%a %d %b %Y %H:%M")


ContentKey = tuple[str, str | None, int | None, tuple[str, ...], tuple[tuple[str, str], ...]]


def _content_key(
    body: str | None,
    link: str | None,
    campaign_id: int | None,
    target_platforms: Iterable[str] | None,
    overrides: dict[str, Any] | None,
) -> ContentKey:
    """What makes two stories "the same story" for the double-send check."""
    texts = {k: str(v).strip() for k, v in (overrides or {}).items() if str(v or "").strip()}
    return (
        " ".join((body or "").split()),
        (link or "").strip() or None,
        campaign_id,
        tuple(sorted(set(target_platforms or ()))),
        tuple(sorted(texts.items())),
    )


def story_key(post: Post) -> ContentKey:
    """What makes two stories "the same story" for the double-send check."""
    return _content_key(
        post.body, post.link, post.campaign_id, post.target_platforms, post.overrides
    )


def _fields_key(fields: dict[str, Any]) -> ContentKey:
    return _content_key(
        fields["body"],
        fields.get("link"),
        fields.get("campaign_id"),
        fields.get("target_platforms"),
        fields.get("overrides"),
    )


def recent_stories(
    s: Session, author_id: int, *, sent: bool = False, exclude_id: int | None = None
) -> Sequence[Post]:
    """The author's stories saved (``sent``: sent for review) within ``DUPLICATE_WINDOW``,
    newest first. Autosaved copies and cancelled stories do not count: they are not a
    decision to share."""
    since = utcnow() - DUPLICATE_WINDOW
    stmt = select(Post).where(
        Post.author_id == author_id,
        Post.autosaved.is_(False),
        Post.state != PostState.CANCELLED,
    )
    if sent:
        stmt = stmt.where(Post.submitted_at.is_not(None), Post.submitted_at >= since)
    else:
        stmt = stmt.where(Post.created_at >= since)
    if exclude_id is not None:
        stmt = stmt.where(Post.id != exclude_id)
    return s.scalars(stmt.order_by(Post.id.desc())).all()


def _refuse_twin(
    s: Session, author_id: int, key: ContentKey, *, exclude_id: int | None, sent: bool
) -> None:
    """Refuse a story its author already saved (``sent``: sent for review) a moment ago."""
    for twin in recent_stories(s, author_id, sent=sent, exclude_id=exclude_id):
        if story_key(twin) != key:
            continue
        if twin.submitted_at is not None and twin.state != PostState.DRAFT:
            raise ValidationFailed(
                [
                    f"You already sent this story for review at {_local(s, twin.submitted_at)} "
                    f"(#{twin.id}); it is in My stories."
                ]
            )
        raise ValidationFailed(
            [
                f"You already saved this story as a draft at {_local(s, twin.created_at)} "
                f"(#{twin.id}); it is in My stories."
            ]
        )


_STATE_WORDS = {
    PostState.DRAFT: "is still a draft",
    PostState.SUBMITTED: "is waiting for review",
    PostState.APPROVED: "is already approved",
    PostState.PUBLISHED: "is already published",
    PostState.CANCELLED: "was cancelled",
}


def _illegal(post: Post, advice: str) -> IllegalTransition:
    words = _STATE_WORDS.get(PostState(post.state), f"is {post.state}")
    return IllegalTransition(f"This story {words}; {advice}")


# --------------------------------------------------------------------------- drafting


def create_draft(
    s: Session,
    actor: User,
    *,
    body: str,
    campaign_id: int | None = None,
    link: str | None = None,
    target_platforms: Iterable[str] = (),
    preferred_time: datetime | None = None,
    overrides: dict[str, str] | None = None,
    media: Sequence[MediaInput] = (),
) -> Post:
    require(actor, Action.CREATE_DRAFT)
    fields, key, _ = check_new_story(
        s,
        {
            "body": body,
            "campaign_id": campaign_id,
            "link": link,
            "target_platforms": list(target_platforms),
            "preferred_time": preferred_time,
            "overrides": overrides or {},
            "media": list(media),
        },
    )
    _refuse_twin(s, actor.id, key, exclude_id=None, sent=False)
    return _new_draft(s, actor, fields, "post.created")


def _new_draft(
    s: Session, actor: User, fields: dict[str, Any], action: str, *, autosaved: bool = False
) -> Post:
    fields = dict(fields)
    post = Post(
        author_id=actor.id,
        state=PostState.DRAFT,
        body=fields.pop("body", ""),
        autosaved=autosaved,
    )
    s.add(post)
    _apply(post, fields)
    _flush(s)
    audit(s, actor, action, "post", post.id)
    _flush(s)
    return post


def edit(
    s: Session, actor: User, post_id: int, *, expected_version: int | None = None, **fields: Any
) -> Post:
    """Change a story's content. Authors edit their drafts; leads also edit submitted stories."""
    post = get_post(s, post_id)
    own = post.author_id == actor.id
    require(actor, Action.EDIT_OWN_DRAFT if own else Action.EDIT_ANY, post)
    state = PostState(post.state)
    lead = can(actor, Action.EDIT_ANY)
    if state == PostState.APPROVED:
        raise _illegal(post, "cancel it first to edit.")
    if state == PostState.PUBLISHED:
        raise _illegal(post, "it can no longer be edited; write a new story instead.")
    if state == PostState.SUBMITTED and not lead:
        raise _illegal(post, "withdraw it first to edit.")
    if state == PostState.CANCELLED and not lead:
        raise _illegal(post, "ask a lead to edit and approve it again.")
    _check_version(post, expected_version)
    if LEAD_ONLY_FIELDS & set(fields) and not lead:
        raise NotAllowed("Only leads and admins can cap a thread.")
    cleaned = _clean_fields(s, fields, post)
    changed = _apply(post, cleaned)
    if post.autosaved and own:
        # Saved on purpose now: no longer a copy kept while typing.
        _refuse_twin(s, actor.id, story_key(post), exclude_id=post.id, sent=False)
        post.autosaved = False
        changed.append("autosaved")
    if changed:
        post.updated_at = utcnow()
        audit(s, actor, "post.edited", "post", post.id, fields=changed)
    _flush(s)
    return post


def submit(s: Session, actor: User, post_id: int, *, expected_version: int | None = None) -> Post:
    post = get_post(s, post_id)
    require(actor, Action.SUBMIT, post)
    if post.state != PostState.DRAFT:
        advice = {
            PostState.SUBMITTED: "a lead will review it.",
            PostState.CANCELLED: "ask a lead to approve it again.",
        }.get(PostState(post.state), "there is nothing to submit.")
        raise _illegal(post, advice)
    _check_version(post, expected_version)
    # An autosaved draft holds what was typed, checked or not: check it all before review.
    _clean_fields(s, {"body": post.body, "link": post.link})
    _refuse_twin(s, post.author_id, story_key(post), exclude_id=post.id, sent=True)
    post.autosaved = False
    post.state = PostState.SUBMITTED
    post.submitted_at = utcnow()
    audit(s, actor, "post.submitted", "post", post.id)
    _flush(s)
    _story_event(s, "story.submitted", post, actor)
    return post


def withdraw(s: Session, actor: User, post_id: int, *, expected_version: int | None = None) -> Post:
    """Take a submitted story back to draft before a lead acts on it."""
    post = get_post(s, post_id)
    require(actor, Action.WITHDRAW, post)
    if post.state != PostState.SUBMITTED:
        advice = {
            PostState.DRAFT: "there is nothing to withdraw.",
            PostState.APPROVED: "ask a lead to cancel it.",
        }.get(PostState(post.state), "it can no longer be withdrawn.")
        raise _illegal(post, advice)
    _check_version(post, expected_version)
    post.state = PostState.DRAFT
    post.submitted_at = None
    audit(s, actor, "post.withdrawn", "post", post.id)
    _flush(s)
    return post


# --------------------------------------------------------------------------- autosave


def _lenient_fields(s: Session, fields: dict[str, Any]) -> dict[str, Any]:
    """What was typed, kept as it is where it can be stored (an autosave never refuses):
    unknown platforms, a vanished campaign or a time without zone are left out; the
    full checks run when the story is saved or submitted on purpose."""
    out: dict[str, Any] = {}
    if "body" in fields:
        out["body"] = (fields["body"] or "").strip()
    if "link" in fields:
        out["link"] = (fields["link"] or "").strip()[:MAX_LINK_LENGTH] or None
    if "campaign_id" in fields:
        cid = fields["campaign_id"]
        out["campaign_id"] = cid if cid is not None and s.get(Campaign, cid) is not None else None
    if "target_platforms" in fields:
        known = _platforms()
        out["target_platforms"] = [
            p for p in dict.fromkeys(fields["target_platforms"] or ()) if p in known
        ]
    if "preferred_time" in fields:
        when = fields["preferred_time"]
        out["preferred_time"] = when if when is not None and not _aware(when, "time") else None
    if "overrides" in fields:
        texts = {k: (v or "").strip() for k, v in (fields["overrides"] or {}).items()}
        out["overrides"] = {k: v for k, v in texts.items() if v and k in _platforms()}
    return out


AUTOSAVE_FIELDS = frozenset(
    {"body", "campaign_id", "link", "target_platforms", "preferred_time", "overrides"}
)


def autosave(
    s: Session,
    actor: User,
    post_id: int | None = None,
    *,
    expected_version: int | None = None,
    **fields: Any,
) -> Post:
    """Keep what the author is typing as a draft marked ``autosaved`` (new, or the draft they
    are editing), so a reload or a lost connection loses nothing. Images are not autosaved.

    Not audited on every keystroke: the log gets the draft's creation and, later, the save
    or submit made on purpose (which clears the flag).
    """
    require(actor, Action.CREATE_DRAFT)
    unknown = set(fields) - AUTOSAVE_FIELDS
    if unknown:
        raise ValidationFailed([f"These cannot be autosaved: {', '.join(sorted(unknown))}."])
    cleaned = _lenient_fields(s, fields)
    if post_id is None:
        return _new_draft(s, actor, cleaned, "post.autosaved", autosaved=True)
    post = get_post(s, post_id)
    if post.author_id != actor.id:
        raise NotAllowed("Only the author's own drafts are kept while typing.")
    if post.state != PostState.DRAFT:
        raise _illegal(post, "what you type now is not saved into it; start a new story.")
    _check_version(post, expected_version)
    if _apply(post, cleaned):  # opening a draft without changing it does not mark it
        post.autosaved = True
        post.updated_at = utcnow()
    _flush(s)
    return post


def latest_autosave(s: Session, actor: User) -> Post | None:
    """The author's newest draft kept while typing (not saved on purpose since)."""
    stmt = (
        select(Post)
        .where(
            Post.author_id == actor.id,
            Post.autosaved.is_(True),
            Post.state == PostState.DRAFT,
        )
        .order_by(Post.updated_at.desc(), Post.id.desc())
        .limit(1)
    )
    return s.scalars(stmt).first()


def delete_draft(
    s: Session, actor: User, post_id: int, *, expected_version: int | None = None
) -> None:
    """Delete one of your own drafts (one never sent, or sent back). Its images stay on disk:
    an upload may be shared by several stories."""
    post = get_post(s, post_id)
    require(actor, Action.EDIT_OWN_DRAFT, post)
    if post.author_id != actor.id:
        raise NotAllowed("You can only delete stories you wrote.")
    if post.state != PostState.DRAFT:
        raise _illegal(post, "only drafts can be deleted; withdraw it first.")
    _check_version(post, expected_version)
    if _deliveries(s, post):
        raise _illegal(post, "it has sends on record, so it is kept; ask a lead to cancel it.")
    audit(s, actor, "post.deleted", "post", post.id, autosaved=post.autosaved)
    s.delete(post)
    _flush(s)


# --------------------------------------------------------------------------- review


def _render_problems(post: Post, accounts: Sequence[Account]) -> list[str]:
    """Does the text fit each platform (threads allowed)?"""
    render = textrules.render
    known = textrules.PLATFORM_LIMITS
    campaign = post.campaign
    problems: list[str] = []
    for platform in dict.fromkeys(a.platform for a in accounts):
        if platform not in known:  # a test-only platform textrules does not know
            continue
        try:
            parts = render(
                platform,
                post.body,
                link=post.link,
                campaign_slug=campaign.utm_campaign if campaign else None,
                utm=bool(campaign.utm_enabled) if campaign else False,
                hashtags=campaign.hashtags if campaign else "",
                override=(post.overrides or {}).get(platform),
            )
        except ValueError as exc:
            problems.append(f"The text does not fit {platform}: {exc}")
            continue
        if not parts or not any(p.strip() for p in parts):
            problems.append(f"The text for {platform} came out empty; write the story first.")
        elif post.thread_cap is not None and len(parts) > post.thread_cap:
            name = _platform_name(platform)
            problems.append(
                f"On {name} the text needs {len(parts)} posts, but the thread is capped at "
                f"{post.thread_cap}: shorten it (or give {name} a shorter custom text), "
                "or raise the cap."
            )
    return problems


def _past(s: Session, when: datetime, publish_now: bool, what: str) -> list[str]:
    """A time already past needs an explicit "publish now"."""
    if publish_now or when >= utcnow() - PAST_GRACE:
        return []
    return [
        f"The {what} ({_local_day(s, when)}) has already passed; pick a later time, "
        'or choose "Publish now" to send it at once.'
    ]


def usable_accounts(s: Session, account_ids: Iterable[int]) -> tuple[list[Account], list[str]]:
    """The accounts a story may go out from, and why each of the others may not."""
    ids = list(dict.fromkeys(account_ids))
    if not ids:
        return [], ["Choose at least one account to publish from."]
    found = {a.id: a for a in s.scalars(select(Account).where(Account.id.in_(ids)))}
    problems: list[str] = []
    accounts: list[Account] = []
    for account_id in ids:
        account = found.get(account_id)
        if account is None:
            problems.append(f"Account #{account_id} does not exist any more; choose another.")
        elif account.status == AccountStatus.NEEDS_ATTENTION:
            problems.append(
                f"{account.label} needs attention ({account.last_error or 'reconnect it'}); "
                "an admin must reconnect it first."
            )
        elif account.status != AccountStatus.OK:
            problems.append(f"{account.label} is disabled; choose another account.")
        else:
            accounts.append(account)
    return accounts, problems


def check_new_story(
    s: Session, fields: dict[str, Any], accounts: Sequence[Account] | None = None
) -> tuple[dict[str, Any], ContentKey, list[str]]:
    """The checks ``create_draft`` (and, given the ``accounts``, ``approve``) make of a new
    story, without writing it: its fields normalised (ValidationFailed when one is wrong),
    its key for the double-send check, and where its text does not fit an account's
    platform."""
    cleaned = _clean_fields(s, fields)
    key = _fields_key(cleaned)
    if accounts is None:
        return cleaned, key, []
    campaign_id = cleaned.get("campaign_id")
    draft = Post(
        body=cleaned["body"], link=cleaned.get("link"), overrides=cleaned.get("overrides") or {}
    )
    draft.campaign = s.get(Campaign, campaign_id) if campaign_id else None
    return cleaned, key, _render_problems(draft, accounts)


def approve(
    s: Session,
    actor: User,
    post_id: int,
    *,
    account_ids: Iterable[int],
    scheduled_for: datetime,
    amplify: bool = False,
    expected_version: int | None = None,
    publish_now: bool = False,
) -> Post:
    """Schedule a story: one delivery per account at ``scheduled_for``.

    A time already past is refused unless ``publish_now`` says so (then it goes out at once):
    a stale time picked on a page must not publish a story by surprise.

    Approving a cancelled story again re-arms its deliveries; an account that already
    published it is never sent it twice (its delivery row and idempotency key are kept).
    """
    post = get_post(s, post_id)
    require(actor, Action.APPROVE, post)
    if amplify:
        require(actor, Action.AMPLIFY, post)
    if post.state not in (PostState.SUBMITTED, PostState.CANCELLED):
        advice = {
            PostState.DRAFT: "the author must submit it for review first.",
            PostState.APPROVED: "reschedule it instead, or cancel it first to change it.",
        }.get(PostState(post.state), "it can no longer be approved.")
        raise _illegal(post, advice)
    _check_version(post, expected_version)

    problems = _aware(scheduled_for, "publishing time") or _past(
        s, scheduled_for, publish_now, "publishing time"
    )
    accounts, account_problems = usable_accounts(s, account_ids)
    problems.extend(account_problems)
    if not (post.body or "").strip():
        problems.append("The story has no text; send it back to the author.")
    elif accounts:
        problems.extend(_render_problems(post, accounts))
    problems.extend(
        _media_problems([MediaInput(m.path, m.alt_text, m.mime_type) for m in post.media])
    )
    if problems:
        raise ValidationFailed(problems)

    existing = {(d.account_id, d.kind): d for d in _deliveries(s, post)}
    created = reused = kept = 0
    for account in accounts:
        delivery = existing.get((account.id, DeliveryKind.POST))
        if delivery is None:
            s.add(
                queue.new_delivery(
                    post=post,
                    account=account,
                    kind=DeliveryKind.POST,
                    next_attempt_at=scheduled_for,
                    idempotency_key=uuid.uuid4().hex,
                )
            )
            created += 1
        elif delivery.status in (DeliveryStatus.CANCELLED, DeliveryStatus.FAILED):
            # Same row, same idempotency key: if an earlier attempt did land, the platform
            # (or reconciliation) recognises it instead of publishing a second copy.
            queue.rearm(delivery, scheduled_for)
            reused += 1
        else:  # published, or still in flight from before the cancel: leave it alone
            kept += 1

    post.state = PostState.APPROVED
    post.scheduled_for = scheduled_for
    post.amplify = amplify
    post.review_note = None
    post.updated_at = utcnow()
    audit(
        s,
        actor,
        "post.approved",
        "post",
        post.id,
        account_ids=[a.id for a in accounts],
        scheduled_for=scheduled_for,
        publish_now=publish_now,
        amplify=amplify,
        created=created,
        rearmed=reused,
        kept=kept,
    )
    _flush(s)
    refresh_post_state(s, post)
    _story_event(s, "story.approved", post, actor, scheduled_for=scheduled_for)
    return post


def reject(
    s: Session, actor: User, post_id: int, note: str, expected_version: int | None = None
) -> Post:
    """Send a submitted story back to its author as a draft, with a note saying why."""
    post = get_post(s, post_id)
    require(actor, Action.REJECT, post)
    if post.state != PostState.SUBMITTED:
        raise _illegal(post, "only stories waiting for review can be sent back.")
    _check_version(post, expected_version)
    note = (note or "").strip()
    if not note:
        raise ValidationFailed(["Write a note so the author knows what to change."])
    post.state = PostState.DRAFT
    post.review_note = note
    post.submitted_at = None
    audit(s, actor, "post.rejected", "post", post.id, note=note)
    _flush(s)
    _story_event(s, "story.rejected", post, actor, note=note)
    return post


def reschedule(
    s: Session,
    actor: User,
    post_id: int,
    scheduled_for: datetime,
    *,
    expected_version: int | None = None,
    publish_now: bool = False,
) -> Post:
    """Move an approved story; sends already under way or done are not touched.
    A time already past is refused unless ``publish_now`` (as in ``approve``)."""
    post = get_post(s, post_id)
    require(actor, Action.RESCHEDULE, post)
    if post.state != PostState.APPROVED:
        raise _illegal(post, "only approved stories can be rescheduled.")
    _check_version(post, expected_version)
    problems = _aware(scheduled_for, "new time") or _past(s, scheduled_for, publish_now, "new time")
    if problems:
        raise ValidationFailed(problems)
    moved = 0
    for delivery in _deliveries(s, post):
        if delivery.kind == DeliveryKind.POST and delivery.status == DeliveryStatus.PENDING:
            delivery.next_attempt_at = scheduled_for
            moved += 1
    before = post.scheduled_for
    post.scheduled_for = scheduled_for
    post.updated_at = utcnow()
    audit(
        s,
        actor,
        "post.rescheduled",
        "post",
        post.id,
        before=before,
        after=scheduled_for,
        moved=moved,
    )
    _flush(s)
    _story_event(s, "story.rescheduled", post, actor, scheduled_for=scheduled_for)
    return post


def cancel(
    s: Session, actor: User, post_id: int, *, expected_version: int | None = None
) -> CancelResult:
    """Stop a story. Sends being published right now are left to finish (never cut mid-air)."""
    post = get_post(s, post_id)
    require(actor, Action.CANCEL, post)
    if post.state not in (PostState.DRAFT, PostState.SUBMITTED, PostState.APPROVED):
        advice = {
            PostState.PUBLISHED: "delete it on the platforms if it must go.",
            PostState.CANCELLED: "there is nothing more to cancel.",
        }.get(PostState(post.state), "it cannot be cancelled.")
        raise _illegal(post, advice)
    _check_version(post, expected_version)
    cancelled = in_flight = published = 0
    for delivery in _deliveries(s, post):
        if delivery.status in queue.CANCELLABLE:
            queue.cancel(delivery)
            cancelled += 1
        elif delivery.status in (DeliveryStatus.CLAIMED, DeliveryStatus.RECONCILE):
            in_flight += 1
        elif delivery.status == DeliveryStatus.PUBLISHED:
            published += 1
    post.state = PostState.CANCELLED
    post.updated_at = utcnow()
    audit(
        s,
        actor,
        "post.cancelled",
        "post",
        post.id,
        cancelled=cancelled,
        in_flight=in_flight,
        already_published=published,
    )
    _flush(s)
    _story_event(s, "story.cancelled", post, actor)
    return CancelResult(post, cancelled, in_flight, published)


def retry_delivery(s: Session, actor: User, delivery_id: int) -> Delivery:
    """Send a failed delivery again now (its attempts count is kept)."""
    delivery = s.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"There is no delivery #{delivery_id}; reload the page.")
    post = delivery.post
    require(actor, Action.RETRY_DELIVERY, post)
    if delivery.status != DeliveryStatus.FAILED:
        raise IllegalTransition(f"Only failed sends can be retried; this one is {delivery.status}.")
    if post.state not in (PostState.APPROVED, PostState.PUBLISHED):
        raise _illegal(post, "approve it again to send it.")
    account = delivery.account
    if account.status != AccountStatus.OK:
        raise ValidationFailed(
            [
                f"{account.label} needs attention ({account.last_error or 'reconnect it'}); "
                "an admin must reconnect it before retrying."
            ]
        )
    queue.rearm(delivery, utcnow())
    audit(
        s,
        actor,
        "delivery.retried",
        "post",
        post.id,
        delivery_id=delivery.id,
        account_id=delivery.account_id,
        attempts=delivery.attempts,
    )
    _flush(s)
    events.emit(s, "delivery.retried", post_id=post.id, delivery_id=delivery.id, actor_id=actor.id)
    return delivery


def refresh_post_state(s: Session, post: Post) -> str:
    """Settle an approved story from its ``kind="post"`` deliveries.

    Published (``published_at`` = the last landing) once every delivery still meant to
    go out has published; cancelled sends (an account left out of a re-approval, or
    removed) do not hold it back. If every send was cancelled and none landed, the story
    is cancelled too, so it never waits forever for nothing.
    """
    if post.state != PostState.APPROVED:
        return post.state
    _flush(s)
    rows = s.execute(
        select(Delivery.status, Delivery.published_at).where(
            Delivery.post_id == post.id, Delivery.kind == DeliveryKind.POST
        )
    ).all()
    live = [(status, at) for status, at in rows if status != DeliveryStatus.CANCELLED]
    if not rows:
        return post.state
    if not live:
        post.state = PostState.CANCELLED
        post.updated_at = utcnow()
        audit(s, None, "post.cancelled", "post", post.id, reason="every send was cancelled")
        _flush(s)
        return post.state
    if any(status != DeliveryStatus.PUBLISHED for status, _ in live):
        return post.state
    times = [at for _, at in live if at is not None]
    post.state = PostState.PUBLISHED
    post.published_at = max(times) if times else utcnow()
    audit(s, None, "post.published", "post", post.id, deliveries=len(live))
    _flush(s)
    return post.state


# --------------------------------------------------------------------------- reading


def post_history(s: Session, post_id: int) -> list[AuditEvent]:
    """Everything that happened to a story, oldest first."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.subject_type == "post", AuditEvent.subject_id == post_id)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return list(s.scalars(stmt))


def posts_for(
    s: Session,
    actor: User,
    *,
    states: Iterable[str] | None = None,
    author_id: int | None = None,
) -> list[Post]:
    """Stories this person may see, newest change first.

    Leads and admins see every story; volunteers see their own and the team's
    approved and published ones.
    """
    stmt = select(Post).order_by(Post.updated_at.desc(), Post.id.desc())
    if states is not None:
        stmt = stmt.where(Post.state.in_([str(x) for x in states]))
    if author_id is not None:
        stmt = stmt.where(Post.author_id == author_id)
    if not actor.active:
        return []
    if actor.role not in LEADS:
        stmt = stmt.where(
            or_(
                Post.author_id == actor.id,
                Post.state.in_([PostState.APPROVED, PostState.PUBLISHED]),
            )
        )
    return list(s.scalars(stmt))
