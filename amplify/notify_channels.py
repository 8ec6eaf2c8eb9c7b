"""Notification channels (apprise URLs) an admin manages from the dashboard.

The URL usually embeds a token, so it is stored encrypted and only ever shown masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from amplify.crypto import decrypt, encrypt
from amplify.errors import NotFound, ValidationFailed
from amplify.models import NotificationChannel, User
from amplify.permissions import Action, require
from amplify.workflow import audit

AUDIENCES = ("leads", "admins", "authors", "advocates")


def _check_url(url: str) -> list[str]:
    url = (url or "").strip()
    if not url:
        return ["Paste the notification URL (for example mailto://… or ntfy://…)."]
    if "://" not in url:
        return ["A notification URL looks like scheme://…; see the apprise list of services."]
    try:
        import apprise

        if apprise.Apprise().add(url) is False:
            return [
                "apprise does not recognise that URL; check it against the apprise list of "
                "services (for example mailtos://user:pass@example.org)."
            ]
    except ImportError:  # apprise is a dependency; without it only the shape is checked
        pass
    return []


def masked(url: str) -> str:
    """scheme://host/… with everything secret hidden."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}/…" if host else f"{parts.scheme}://…"


def add_channel(
    s: Session,
    actor: User,
    *,
    label: str,
    url: str,
    audiences: Iterable[str] = ("leads",),
    user_id: int | None = None,
) -> NotificationChannel:
    """Add an apprise URL (encrypted at rest) that receives the given audiences' messages."""
    require(actor, Action.MANAGE_SETTINGS)
    chosen = list(dict.fromkeys(audiences))
    problems = []
    if not (label or "").strip():
        problems.append("Give the channel a name people recognise (e.g. 'Leads on Signal').")
    problems.extend(_check_url(url))
    bad = [a for a in chosen if a not in AUDIENCES]
    if bad:
        problems.append(
            f"Unknown audience(s) {', '.join(bad)}; choose from {', '.join(AUDIENCES)}."
        )
    if not chosen and user_id is None:
        problems.append("Choose who this channel is for (leads, admins, authors or advocates).")
    if problems:
        raise ValidationFailed(problems)
    channel = NotificationChannel(
        label=label.strip(),
        url_enc=encrypt(url.strip()),
        audiences=chosen,
        user_id=user_id,
        active=True,
    )
    s.add(channel)
    s.flush()
    audit(
        s,
        actor,
        "channel.added",
        "notification_channel",
        channel.id,
        label=channel.label,
        audiences=chosen,
    )
    return channel


def list_channels(s: Session) -> Sequence[NotificationChannel]:
    return s.scalars(select(NotificationChannel).order_by(NotificationChannel.id)).all()


def describe(channel: NotificationChannel) -> str:
    """A safe one-line description: label, masked URL, audiences."""
    try:
        where = masked(decrypt(channel.url_enc))
    except Exception:  # an undecryptable URL: say so rather than fail the page
        where = "(cannot be decrypted with this key; remove and add it again)"
    who = ", ".join(str(a) for a in channel.audiences or []) or "one person"
    return f"{channel.label} — {where} — for {who}"


def set_channel_active(s: Session, actor: User, channel_id: int, active: bool) -> None:
    require(actor, Action.MANAGE_SETTINGS)
    channel = s.get(NotificationChannel, channel_id)
    if channel is None:
        raise NotFound(f"There is no notification channel #{channel_id}; reload the page.")
    channel.active = active
    audit(
        s,
        actor,
        "channel.enabled" if active else "channel.disabled",
        "notification_channel",
        channel_id,
    )


def remove_channel(s: Session, actor: User, channel_id: int) -> None:
    require(actor, Action.MANAGE_SETTINGS)
    channel = s.get(NotificationChannel, channel_id)
    if channel is None:
        raise NotFound(f"There is no notification channel #{channel_id}; reload the page.")
    s.delete(channel)
    audit(s, actor, "channel.removed", "notification_channel", channel_id, label=channel.label)
