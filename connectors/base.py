"""The one contract every platform connector implements, and the errors it may raise.

A connector is built for one account (``ConnectorContext``) and speaks to one platform.
The queue only ever sees these dataclasses and these four error kinds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable

# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Media:
    """An image to attach; ``alt_text`` is required (accessibility is not optional)."""

    path: str  # absolute path on disk
    alt_text: str
    mime_type: str = "image/jpeg"


@dataclass(frozen=True)
class OutgoingPost:
    """What to publish. ``parts`` has more than one entry for a thread."""

    parts: tuple[str, ...]
    idempotency_key: str
    media: tuple[Media, ...] = ()  # attached to the first part
    link: str | None = None  # already UTM-tagged; used for a link card where supported
    # Thread parts that already landed in an earlier attempt: publish continues after them.
    landed: tuple[Receipt, ...] = ()

    @property
    def text(self) -> str:
        return self.parts[0] if self.parts else ""


@dataclass(frozen=True)
class Receipt:
    """Where a published record lives on the platform."""

    remote_id: str
    uri: str | None = None  # at:// URI on Bluesky
    cid: str | None = None  # content id on Bluesky
    url: str | None = None  # a link a person can open


@dataclass(frozen=True)
class Metrics:
    remote_id: str
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    impressions: int | None = None
    bookmarks: int | None = None
    simulated: bool = False  # True only for the sandbox's modelled numbers


@dataclass(frozen=True)
class SpreaderInfo:
    remote_user_id: str
    handle: str
    display_name: str = ""
    followers_count: int | None = None
    kind: str = "repost"  # repost | quote


@dataclass(frozen=True)
class Identity:
    remote_user_id: str
    handle: str
    display_name: str = ""
    followers_count: int | None = None


@dataclass
class ConnectorContext:
    """Everything a connector needs to act as one account. Holds secrets: never log it."""

    handle: str
    service_url: str
    credentials: dict[str, str] = field(repr=False)
    session: str | None = field(default=None, repr=False)
    # Called with a new session string whenever the platform refreshes it, so it is stored.
    on_session_change: Callable[[str], None] | None = field(default=None, repr=False)
    account_id: int | None = None


# --------------------------------------------------------------------------- errors


class ConnectorError(Exception):
    """Base of every error a connector raises. ``permanent`` says whether retrying can help.

    Messages are for a lead to read: what happened and what to do, never a secret.
    """

    permanent: ClassVar[bool] = False
    kind: ClassVar[str] = "error"


class RateLimited(ConnectorError):
    """The platform asked us to wait; retry at ``retry_at`` (the platform's reset time)."""

    kind = "rate_limited"

    def __init__(self, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class TransientError(ConnectorError):
    """A passing failure (5xx, timeout, connection reset): retry with backoff."""

    kind = "transient"


class PermanentError(ConnectorError):
    """The platform refused this content for good (validation, duplicate, forbidden)."""

    permanent = True
    kind = "permanent"


class AuthError(ConnectorError):
    """The credentials were refused (revoked, expired): the account needs an admin."""

    permanent = True
    kind = "auth"


# --------------------------------------------------------------------------- validation


def image_problems(
    media: Sequence[Media],
    *,
    platform: str,
    max_images: int,
    max_alt: int,
    alt_length: Callable[[str], int] = len,
) -> list[str]:
    """What every platform asks of attached images, in words a volunteer can act on:
    how many, alt text present and not too long, the file still on disk. Connectors add
    their own checks (types, sizes) after these."""
    problems: list[str] = []
    if len(media) > max_images:
        problems.append(
            f"{len(media)} images are attached; {platform} allows at most {max_images} "
            f"images per post: remove {len(media) - max_images}"
        )
    for number, item in enumerate(media, start=1):
        name = os.path.basename(item.path) or f"image {number}"
        if not item.alt_text.strip():
            problems.append(
                f"Image {number} ({name}) needs alt text: describe it for people using "
                "screen readers"
            )
        elif alt_length(item.alt_text) > max_alt:
            problems.append(
                f"The alt text of image {number} ({name}) is {alt_length(item.alt_text)} "
                f"characters; {platform} allows {max_alt:,}: shorten it"
            )
        if not os.path.isfile(item.path):
            problems.append(f"Image {number} ({name}) is missing on disk: attach it again")
    return problems


# --------------------------------------------------------------------------- contract


PartCallback = Callable[[int, Receipt], None]


@runtime_checkable
class Connector(Protocol):
    """One account on one platform."""

    platform: ClassVar[str]
    #: most records ``fetch_metrics`` can read in one API call
    metrics_batch_size: ClassVar[int]
    #: whether ``repost`` is allowed by the platform's automation rules
    supports_repost: ClassVar[bool]

    def validate(self, post: OutgoingPost) -> list[str]:
        """Problems a person can fix before approval (too long, missing alt text); [] if fine."""
        ...

    def publish(self, post: OutgoingPost, on_part: PartCallback | None = None) -> list[Receipt]:
        """Publish every part not yet in ``post.landed``; call ``on_part(index, receipt)`` as
        each lands. Returns receipts for all parts, first part first."""
        ...

    def repost(self, target: Receipt, idempotency_key: str) -> Receipt:
        """Reshare ``target`` from this account."""
        ...

    def find_published(self, post: OutgoingPost) -> list[Receipt] | None:
        """After a crash mid-publish: the parts that did land, or None if nothing did."""
        ...

    def fetch_metrics(self, targets: Sequence[Receipt]) -> list[Metrics]:
        """Counts for up to ``metrics_batch_size`` records in one call."""
        ...

    def fetch_spreaders(self, target: Receipt) -> list[SpreaderInfo]:
        """Accounts that reshared ``target``, with follower counts where the platform has them."""
        ...

    def delete(self, target: Receipt) -> None: ...

    def whoami(self) -> Identity:
        """Log in and say who this account is; raises AuthError with a plain reason."""
        ...
