"""The one contract every platform connector implements, and the errors it may raise.

A connector is built for one account (``ConnectorContext``) and speaks to one platform.
The queue only ever sees these dataclasses and these error kinds. Nothing else may leave a
connector: an answer it cannot read (an empty body, an HTML page with status 200,
truncated JSON, a missing id, a field of the wrong type) is reported as one of these with
a message a lead can act on, never as ``KeyError``/``TypeError``/``ValueError``.

Exception tree::

    ConnectorError            every failure a connector reports (``.kind``, ``.permanent``)
    ├── RateLimited           the platform said "wait": retry at ``.retry_at``;
    │                         ``.limits`` are the limits its answer reported
    ├── TransientError        retry with backoff: 5xx, timeout, reset, an unreadable answer
    ├── PermanentError        retrying cannot help: refused content, a gone record
    └── AuthError             the credentials were refused: the account needs an admin

Reconciliation is bounded in time: ``OutgoingPost.not_before`` is the delivery's first
claim less :data:`CLOCK_SKEW_ALLOWANCE`, and ``find_published`` never returns a record
the platform dated earlier (see :func:`recent_enough`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, Protocol, runtime_checkable

from amplify.media import problem as media_problem

# --------------------------------------------------------------------------- time bound

#: How far a platform's clock may run behind this machine's. ``not_before`` is the first
#: claim less this, so a post that landed at once is still found even if the platform
#: dates it a little "before" the claim; five minutes is far beyond the drift of an
#: NTP-synchronised host, and far shorter than the days between two posts with the
#: same words that made the bound necessary.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)


def not_before_for(first_claimed_at: datetime | None) -> datetime | None:
    """The earliest time a record of a delivery first claimed at ``first_claimed_at`` can
    carry on the platform (None: unknown, so no bound)."""
    return None if first_claimed_at is None else first_claimed_at - CLOCK_SKEW_ALLOWANCE


def recent_enough(post: OutgoingPost, created_at: datetime | None) -> bool:
    """Whether a record the platform dated ``created_at`` can be part of ``post``.

    A record dated before ``post.not_before`` was sent before this delivery was ever
    claimed: it is an older post with the same words, never this one. A record whose date
    cannot be read is judged by its text alone, as before the bound existed."""
    if post.not_before is None or created_at is None:
        return True
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=post.not_before.tzinfo)
    return created_at >= post.not_before


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
    # The earliest moment any part could have been sent (first claim less the clock-skew
    # allowance): reconciliation ignores records the platform dated before it.
    not_before: datetime | None = None

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


#: Most resharers read per delivery per metrics sweep (all platforms). Past it the platform's
#: own reshare count tells how many were not listed: they show as "and N more" and the
#: potential reach is marked partial, instead of silently low. 1,000 keeps one sweep of a
#: widely shared post to about a dozen calls (Mastodon 80 a page, X and Bluesky 100).
MAX_SPREADERS_PER_SWEEP = 1000


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


# --------------------------------------------------------------------------- description


@dataclass(frozen=True)
class CredentialField:
    """One secret a person pastes to connect an account (a form field, a CLI prompt line)."""

    key: str  # the key in ``ConnectorContext.credentials``
    label: str
    prompt: str = ""  # the CLI's prompt; the label when empty


@dataclass(frozen=True)
class WriteBudget:
    """A platform's default write limit: ``count`` units per ``window`` (one write costs
    ``unit_cost`` units), shared by one ``scope`` (``account`` or ``app``)."""

    scope: str
    count: int
    window: timedelta
    unit_cost: int = 1
    what: str = "posts"


class Reshare:
    """How an advocate's account reshares a story on a platform."""

    AUTOMATIC = "automatic"  # Amplify reposts from the advocate's connected account
    SHARE_LINK = "share_link"  # the advocate clicks a link and shares it themselves
    NONE = "none"  # not at all


@dataclass(frozen=True)
class PlatformInfo:
    """What the rest of the product needs to know about one platform, said once by its
    connector module (``INFO``) and read through ``connectors.registry.info``."""

    name: str  # the stored platform key, e.g. "bluesky"
    label: str  # what people read, e.g. "Bluesky"
    steps: str  # Markdown: how to get the credentials (the Accounts page)
    how_to: str  # one paragraph: what to paste (CLI, error messages)
    handle_label: str
    description: str = ""  # a longer name where it matters (the sandbox: nothing is posted)
    credentials: tuple[CredentialField, ...] = ()
    service_label: str | None = None  # None: no server to choose
    default_service_url: str = ""  # used when none is given ("" : none, so one is required)
    suggested_service_url: str = ""  # what the form starts with (the default when empty)
    https_only: bool = True  # the service URL receives the account's token
    # Federated: a handle may name its server (user@server); handles and ids are per server.
    server_in_handle: bool = False
    token_alternative: str = ""  # one line "<key>=<token>" may replace every credential
    reshare: str = Reshare.AUTOMATIC
    share_link: Callable[[Receipt], str] | None = None  # when ``reshare`` is SHARE_LINK
    write_budgets: tuple[WriteBudget, ...] = ()
    practice: bool = False  # nothing posted there leaves this machine

    @property
    def service_url_required(self) -> bool:
        return self.service_label is not None and not self.default_service_url

    @property
    def form_service_url(self) -> str:
        return self.suggested_service_url or self.default_service_url


# --------------------------------------------------------------------------- errors


class ConnectorError(Exception):
    """Base of every error a connector raises. ``permanent`` says whether retrying can help.

    Messages are for a lead to read: what happened and what to do, never a secret.
    """

    permanent: ClassVar[bool] = False
    kind: ClassVar[str] = "error"


@dataclass(frozen=True)
class LimitReading:
    """One limit as a platform's answer reported it (e.g. X's ``x-user-limit-24hour-*``).

    ``scope``: ``account`` (this user) or ``app`` (every account of the developer app);
    ``window``: the limit's length; ``reset_at``: when it starts over."""

    scope: str
    window: timedelta
    remaining: int
    limit: int | None = None
    reset_at: datetime | None = None
    action: str = "post"  # what the limit counts: "post" (writes) or "read"

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0


class RateLimited(ConnectorError):
    """The platform asked us to wait; retry at ``retry_at`` (the platform's reset time:
    the latest reset among the limits its answer says are used up)."""

    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        retry_at: datetime | None = None,
        limits: Sequence[LimitReading] = (),
    ) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.limits = tuple(limits)


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


def unreadable_answer(platform: str, what: str, detail: str = "") -> TransientError:
    """An answer that is not what the platform documents (HTML, truncated JSON, a missing
    id): a proxy or an outage page, usually passing. Transient, so it is retried; after a
    write the retry finds what landed (idempotency key, record key or text) before sending."""
    extra = f" ({detail})" if detail else ""
    return TransientError(
        f"{platform} sent an answer Amplify cannot read while trying to {what}{extra}; "
        "it will try again. If this keeps happening, check the service's status page."
    )


def describe_body(body: bytes | str | None) -> str:
    """A few words on what came back instead of the expected data, never its content
    (which may echo a token or hold a whole web page)."""
    if body is None:
        return "no body"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if not stripped:
        return "an empty answer"
    if stripped[:1] == "<":
        return "a web page instead of data"
    if stripped[:1] in "[{":
        return "incomplete or unexpected data"
    return "something that is not data"


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
        elif (refused := media_problem(item.path)) is not None:  # by content, header only
            problems.append(f"Image {number}: {refused}")
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

    def text_limit(self) -> int | None:
        """This account's own post length limit when it differs from the platform's usual one
        (a Mastodon instance's), from memory only, never a request; None: the usual one."""
        ...

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

    def fetch_spreaders(
        self, target: Receipt, limit: int = MAX_SPREADERS_PER_SWEEP
    ) -> list[SpreaderInfo]:
        """Accounts that reshared ``target``, with follower counts where the platform has them,
        following the platform's pages until the end or ``limit`` accounts."""
        ...

    def fetch_profiles(self, accounts: Sequence[Identity]) -> list[Identity]:
        """Current follower counts of these accounts (by ``remote_user_id``, or by ``handle``
        where the id is unknown), in as few calls as the platform allows. Accounts the
        platform no longer knows are left out."""
        ...

    def delete(self, target: Receipt) -> None: ...

    def whoami(self) -> Identity:
        """Log in and say who this account is; raises AuthError with a plain reason."""
        ...
