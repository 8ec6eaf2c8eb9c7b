"""Campaigns: a name, hashtags, a UTM slug for links, and an optional date range."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from slugify import slugify
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from amplify.errors import NotFound, ValidationFailed
from amplify.models import Campaign, User
from amplify.permissions import Action, require
from amplify.workflow import audit

MAX_NAME = 200
MAX_SLUG = 100
_TAG = re.compile(r"^[^\W_]\w*$")  # letters/digits first, then word characters (Unicode)
UPDATABLE = frozenset(
    {"name", "description", "hashtags", "utm_campaign", "utm_enabled", "starts_on", "ends_on"}
)


def utm_slug(text: str) -> str:
    """A UTM-safe slug: lower-case ASCII words and hyphens ("Médicaid Wins" → medicaid-wins)."""
    return slugify(text or "", max_length=MAX_SLUG, word_boundary=True)


def normalise_hashtags(text: str) -> tuple[str, list[str]]:
    """Space-separated ``#tags`` from any of "a, #b c"; returns (tags, problems)."""
    tags: list[str] = []
    problems: list[str] = []
    for raw in re.split(r"[\s,;]+", text or ""):
        word = raw.strip().lstrip("#＃")
        if not word:
            continue
        if not _TAG.match(word):
            problems.append(
                f"#{word} is not a hashtag platforms recognise; use letters, digits and _ only."
            )
            continue
        if word.lower() not in {t.lower() for t in tags}:
            tags.append(word)
    return " ".join(f"#{t}" for t in tags), problems


def get_campaign(s: Session, campaign_id: int) -> Campaign:
    campaign = s.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"There is no campaign #{campaign_id}; reload the page.")
    return campaign


def list_campaigns(
    s: Session, *, include_archived: bool = False, active_on: date | None = None
) -> Sequence[Campaign]:
    """Campaigns by name; archived ones only when asked; ``active_on``: running that day."""
    stmt = select(Campaign).order_by(func.lower(Campaign.name), Campaign.id)
    if not include_archived:
        stmt = stmt.where(Campaign.archived.is_(False))
    if active_on is not None:
        stmt = stmt.where(
            (Campaign.starts_on.is_(None)) | (Campaign.starts_on <= active_on),
            (Campaign.ends_on.is_(None)) | (Campaign.ends_on >= active_on),
        )
    return s.scalars(stmt).all()


def _clean(s: Session, fields: dict[str, Any], current: Campaign | None) -> dict[str, Any]:
    problems: list[str] = []
    out: dict[str, Any] = {}
    unknown = set(fields) - UPDATABLE
    if unknown:
        problems.append(f"These cannot be changed here: {', '.join(sorted(unknown))}.")
    if "name" in fields:
        name = " ".join((fields["name"] or "").split())
        if not name:
            problems.append("Give the campaign a name.")
        elif len(name) > MAX_NAME:
            problems.append(f"Keep the name under {MAX_NAME} characters.")
        else:
            clash = s.scalar(select(Campaign).where(func.lower(Campaign.name) == name.lower()))
            if clash is not None and clash is not current:
                problems.append(
                    f"There is already a campaign called {clash.name}; choose another name."
                )
        out["name"] = name
    if "description" in fields:
        out["description"] = (fields["description"] or "").strip()
    if "hashtags" in fields:
        tags, tag_problems = normalise_hashtags(fields["hashtags"] or "")
        problems.extend(tag_problems)
        out["hashtags"] = tags
    if "utm_campaign" in fields:
        source = fields["utm_campaign"]
        if source is None or not str(source).strip():
            source = out.get("name") or (current.name if current else "")
        slug = utm_slug(str(source))
        if not slug:
            problems.append(
                "The UTM campaign needs letters or digits (for example spring-drive-2026)."
            )
        out["utm_campaign"] = slug
    if "utm_enabled" in fields:
        out["utm_enabled"] = bool(fields["utm_enabled"])
    for key in ("starts_on", "ends_on"):
        if key in fields:
            value = fields[key]
            if value is not None and not isinstance(value, date):
                problems.append(f"Give {key.replace('_', ' ')} as a date.")
            out[key] = value
    starts = out.get("starts_on", current.starts_on if current else None)
    ends = out.get("ends_on", current.ends_on if current else None)
    if isinstance(starts, date) and isinstance(ends, date) and ends < starts:
        problems.append(
            f"The campaign ends ({ends:%d %b %Y}) before it starts ({starts:%d %b %Y}); "
            "swap the dates."
        )
    if problems:
        raise ValidationFailed(problems)
    return out


def create_campaign(
    s: Session,
    actor: User,
    *,
    name: str,
    description: str = "",
    hashtags: str = "",
    utm_campaign: str | None = None,
    utm_enabled: bool = True,
    starts_on: date | None = None,
    ends_on: date | None = None,
) -> Campaign:
    require(actor, Action.MANAGE_CAMPAIGNS)
    fields = _clean(
        s,
        {
            "name": name,
            "description": description,
            "hashtags": hashtags,
            "utm_campaign": utm_campaign,
            "utm_enabled": utm_enabled,
            "starts_on": starts_on,
            "ends_on": ends_on,
        },
        None,
    )
    campaign = Campaign(**fields, archived=False)
    s.add(campaign)
    s.flush()
    audit(s, actor, "campaign.created", "campaign", campaign.id, name=campaign.name)
    return campaign


def update_campaign(s: Session, actor: User, campaign_id: int, **fields: Any) -> Campaign:
    require(actor, Action.MANAGE_CAMPAIGNS)
    campaign = get_campaign(s, campaign_id)
    cleaned = _clean(s, fields, campaign)
    changed = [k for k, v in cleaned.items() if getattr(campaign, k) != v]
    for key in changed:
        setattr(campaign, key, cleaned[key])
    if changed:
        audit(s, actor, "campaign.updated", "campaign", campaign.id, fields=changed)
    s.flush()
    return campaign


def archive_campaign(s: Session, actor: User, campaign_id: int, archived: bool = True) -> Campaign:
    """Hide a campaign from new stories (stories already in it keep it); ``False`` restores."""
    require(actor, Action.MANAGE_CAMPAIGNS)
    campaign = get_campaign(s, campaign_id)
    if campaign.archived != archived:
        campaign.archived = archived
        action = "campaign.archived" if archived else "campaign.restored"
        audit(s, actor, action, "campaign", campaign.id)
        s.flush()
    return campaign
