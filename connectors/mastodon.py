"""Mastodon connector, on mastodon-py, for one account on one instance.

The account is ``ConnectorContext.service_url`` (the instance, e.g.
``https://mastodon.social``) plus ``credentials["access_token"]`` (an application token
with the ``read``, ``write:statuses`` and ``write:media`` scopes). Requests time out after
10 s; rate limits are reported as :class:`RateLimited` with the server's reset time, never
slept on (``ratelimit_method="throw"``).

Exactly once:

- Every status is posted with an ``Idempotency-Key``: the delivery's key for the first
  part, ``<key>:<n>`` for thread part ``n``. Mastodon keeps a key for one hour per
  account and answers a repeat with the status it already created, so within that hour
  publishing again with the same key *is* the reconciliation: nothing is posted twice.
- ``find_published`` (used after a lease expired mid-publish, possibly more than an hour
  later) scans the account's statuses created since ``post.not_before`` (the first claim
  less the clock-skew allowance; 40 a page, at most 5 pages) for the text of each part in
  thread order (part ``n`` must reply to part ``n-1``). A status dated earlier is the same
  words posted before, never this post. Mastodon returns HTML, so both sides are
  compared as plain text with whitespace collapsed and ``@user@domain`` mentions shortened
  to ``@user`` (as Mastodon displays them).

Metrics: ``GET /api/v1/statuses?id[]=`` reads up to 20 statuses in one call on Mastodon
4.3 and later (``metrics_batch_size``); on older instances (version from
``/api/v2/instance``) each status is read with its own call. A status that no longer
exists (deleted) is left out of the result.

Instance facts (``/api/v2/instance``, falling back to ``/api/v1/instance``): character
limit, media limits and version are cached per instance URL for an hour in this process,
so ``validate`` costs one request per instance per hour.

Media: each image is uploaded with its alt text as ``description``. If the server answers
202 (still processing) the upload is checked once more; if it is still not ready the
publish fails as transient (retried later) instead of sleeping.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import urlsplit

import regex
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonIOError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from amplify import textrules
from connectors.base import (
    MAX_SPREADERS_PER_SWEEP,
    AuthError,
    ConnectorContext,
    ConnectorError,
    CredentialField,
    Identity,
    Metrics,
    OutgoingPost,
    PartCallback,
    PermanentError,
    PlatformInfo,
    RateLimited,
    Receipt,
    SpreaderInfo,
    TransientError,
    WriteBudget,
    describe_body,
    image_problems,
    recent_enough,
    unreadable_answer,
)

log = logging.getLogger(__name__)

_SHAPE = "a field is missing or has the wrong type"

TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_CHARACTERS = 500
DEFAULT_MAX_MEDIA = 4
MAX_ALT_TEXT = 1500  # Mastodon's MediaAttachment::MAX_DESCRIPTION_LENGTH
DEFAULT_IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
INSTANCE_TTL_SECONDS = 3600.0
BATCH_STATUSES_SINCE = (4, 3, 0)
RECENT_STATUSES = 40  # the most account_statuses returns in one page
REBLOGGED_BY_PAGE = 80  # the most reblogged_by returns in one page (40 by default)
PROFILES_PAGE = 40  # ids per GET /api/v1/accounts?id[]= (Mastodon 4.3+)
RECONCILE_PAGES = 5  # 200 statuses since the first claim is more than any chapter posts
SCOPES_HINT = "create a new application token with write:statuses, write:media, read scopes"


# --------------------------------------------------------------------------- instance facts


@dataclass(frozen=True)
class InstanceInfo:
    version: tuple[int, int, int]
    max_characters: int = DEFAULT_MAX_CHARACTERS
    max_media: int = DEFAULT_MAX_MEDIA
    image_size_limit: int = DEFAULT_IMAGE_SIZE_LIMIT

    @property
    def has_batch_statuses(self) -> bool:
        return self.version >= BATCH_STATUSES_SINCE


_instance_cache: dict[str, tuple[float, InstanceInfo]] = {}
_instance_lock = threading.Lock()


def clear_instance_cache() -> None:
    """Forget every cached instance (tests; an admin changing an instance's limit)."""
    with _instance_lock:
        _instance_cache.clear()


def _instance_key(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _parse_version(text: str) -> tuple[int, int, int]:
    match = regex.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if match is None:
        return (0, 0, 0)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for name in path:
        if obj is None:
            return default
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return default if obj is None else obj


def _instance_info(raw: Any) -> InstanceInfo:
    statuses = _get(raw, "configuration", "statuses")
    max_chars = _get(statuses, "max_characters") or _get(raw, "max_toot_chars")
    return InstanceInfo(
        version=_parse_version(str(_get(raw, "version", default=""))),
        max_characters=int(max_chars or DEFAULT_MAX_CHARACTERS),
        max_media=int(_get(statuses, "max_media_attachments") or DEFAULT_MAX_MEDIA),
        image_size_limit=int(
            _get(raw, "configuration", "media_attachments", "image_size_limit")
            or DEFAULT_IMAGE_SIZE_LIMIT
        ),
    )


# --------------------------------------------------------------------------- text


class _TextOf(HTMLParser):
    """Mastodon status HTML → the plain text a person typed (paragraphs, line breaks)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.paragraphs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.out.append("\n")
        elif tag == "p":
            if self.paragraphs:
                self.out.append("\n\n")
            self.paragraphs += 1

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def html_to_text(content: str) -> str:
    parser = _TextOf()
    parser.feed(content or "")
    parser.close()
    return "".join(parser.out)


_MENTION = regex.compile(r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+\w", regex.I)


def _comparable(text: str) -> str:
    return " ".join(_MENTION.sub(r"@\1", text).split())


def _created_at(status: Any) -> datetime | None:
    """When the server says the status was created (aware UTC), None if unreadable."""
    value = _get(status, "created_at")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _status_text(status: Any) -> str:
    text = _get(status, "text")  # present on some servers and in delete responses
    return str(text) if text else html_to_text(str(_get(status, "content", default="")))


# --------------------------------------------------------------------------- connector


class MastodonConnector:
    platform: ClassVar[str] = "mastodon"
    metrics_batch_size: ClassVar[int] = 20
    supports_repost: ClassVar[bool] = True

    def __init__(
        self,
        context: ConnectorContext,
        *,
        timeout: float = TIMEOUT_SECONDS,
        session: Any = None,
    ) -> None:
        if not context.service_url.strip():
            raise ValueError(
                "a Mastodon account needs its instance URL, e.g. https://mastodon.social"
            )
        url = context.service_url.strip().rstrip("/")
        if "://" not in url:
            url = f"https://{url}"
        self.context = context
        self.base_url = url
        self.instance_host = urlsplit(url).netloc
        token = context.credentials.get("access_token") or context.credentials.get("token")
        if not token:
            raise ValueError(
                f"the Mastodon account @{self._handle} has no access token: {SCOPES_HINT} "
                "and paste it when connecting the account"
            )
        kwargs: dict[str, Any] = {}
        if session is not None:
            kwargs["session"] = session
        self.client = Mastodon(
            access_token=token,
            api_base_url=url,
            ratelimit_method="throw",
            request_timeout=timeout,
            version_check_mode="none",
            # marks the version as known (so the SDK makes no extra instance requests);
            # the real version is set from /api/v2/instance when a call depends on it
            mastodon_version="1.0.0",
            **kwargs,
        )
        self._me: Any = None

    def __repr__(self) -> str:  # never show the token
        return f"MastodonConnector(@{self._handle} on {self.instance_host})"

    @property
    def _handle(self) -> str:
        return self.context.handle.lstrip("@")

    # ------------------------------------------------------------------ errors

    def _translate(self, exc: Exception, doing: str = "talk to it") -> ConnectorError:
        where = f"@{self._handle} on {self.instance_host}"
        if isinstance(exc, MastodonRatelimitError):
            reset = self.client.ratelimit_reset
            retry_at = datetime.fromtimestamp(reset, UTC) if reset else None
            when = f" until {retry_at:%H:%M:%S} UTC" if retry_at else ""
            return RateLimited(
                f"Mastodon ({self.instance_host}) is rate-limiting {where}{when}; "
                "Amplify will retry then",
                retry_at=retry_at,
            )
        if isinstance(exc, MastodonUnauthorizedError):
            return AuthError(
                f"Mastodon refused the access token for {where}: {SCOPES_HINT} and reconnect"
            )
        if isinstance(exc, MastodonNetworkError):
            return TransientError(f"could not reach Mastodon at {self.instance_host}: {exc}")
        if isinstance(exc, MastodonIOError):
            return PermanentError(f"could not read the media file to upload: {exc}")
        if isinstance(exc, MastodonServerError):
            return TransientError(
                f"Mastodon at {self.instance_host} had a server error "
                f"({_status_code(exc)}): {_detail(exc)}; Amplify will retry"
            )
        if isinstance(exc, MastodonAPIError):
            code = _status_code(exc)
            detail = _detail(exc)
            if code is None:  # e.g. an HTML page from a proxy instead of JSON
                return unreadable_answer(f"Mastodon ({self.instance_host})", doing, _unparsed(exc))
            if code == 403 and "scope" in detail.lower():
                return AuthError(
                    f"Mastodon refused {where}: the token lacks a needed scope ({detail}); "
                    f"{SCOPES_HINT} and reconnect"
                )
            if code == 422 and "processing" in detail.lower():
                return TransientError(
                    f"Mastodon is still processing the media for {where}; Amplify will retry"
                )
            if code in (408, 409, 425):
                return TransientError(f"Mastodon asked {where} to try again ({code}): {detail}")
            if code == 404 or isinstance(exc, MastodonNotFoundError):
                return PermanentError(f"Mastodon could not find that status ({detail})")
            return PermanentError(f"Mastodon refused this for {where} ({code}): {detail}")
        if isinstance(exc, MastodonError):
            return TransientError(f"Mastodon client error: {exc}")
        return TransientError(f"unexpected error talking to Mastodon: {exc!r}")

    @contextmanager
    def _api(self, doing: str = "talk to it") -> Iterator[None]:
        try:
            yield
        except ConnectorError:
            raise
        except MastodonError as exc:
            raise self._translate(exc, doing) from None
        except (LookupError, TypeError, AttributeError, ValueError):
            # The answer was JSON, but not shaped as Mastodon documents (a missing or
            # mistyped field): report it, never the parser's own exception.
            raise unreadable_answer(f"Mastodon ({self.instance_host})", doing, _SHAPE) from None

    # ------------------------------------------------------------------ instance

    def instance(self) -> InstanceInfo:
        """This instance's limits and version (cached per instance URL for an hour)."""
        key = _instance_key(self.base_url)
        now = time.monotonic()
        with _instance_lock:
            hit = _instance_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._api():
            try:
                raw = self.client.instance_v2()
            except MastodonNotFoundError:  # before 4.0, or another server implementation
                raw = self.client.instance_v1()
        info = _instance_info(raw)
        with _instance_lock:
            _instance_cache[key] = (now + INSTANCE_TTL_SECONDS, info)
        return info

    def text_limit(self) -> int | None:
        """The instance's character limit if already known (cache only, never a request):
        the publisher asks while it holds a database transaction."""
        with _instance_lock:
            hit = _instance_cache.get(_instance_key(self.base_url))
        return hit[1].max_characters if hit is not None else None

    def _instance_or_default(self) -> InstanceInfo:
        try:
            return self.instance()
        except ConnectorError as exc:
            log.warning("using Mastodon defaults for %s: %s", self.instance_host, exc)
            return InstanceInfo(version=(0, 0, 0))

    def _tell_sdk_version(self, info: InstanceInfo) -> None:
        # The client was made with a placeholder version so the SDK never fetches
        # /api/v1/instance on its own; give it the real one before version-dependent calls
        # (media_post picks /api/v2/media from 3.1.4 on).
        client: Any = self.client
        client.mastodon_major, client.mastodon_minor, client.mastodon_patch = info.version

    # ------------------------------------------------------------------ identity

    def whoami(self) -> Identity:
        where = f"Mastodon ({self.instance_host})"
        with self._api("say who the account is"):
            me = self.client.account_verify_credentials()
            remote_id = _id_of(me, where, "the account")
            acct = _get(me, "acct")
            if not isinstance(acct, str) or not acct:
                raise unreadable_answer(where, "say who the account is", "no account name")
            followers = _get(me, "followers_count")
        self._me = me
        return Identity(
            remote_user_id=remote_id,
            handle=acct,
            display_name=str(_get(me, "display_name", default="")),
            followers_count=followers if isinstance(followers, int) else None,
        )

    def _my_id(self) -> str:
        if self._me is None:
            self.whoami()
        return _id_of(self._me, f"Mastodon ({self.instance_host})", "the account")

    # ------------------------------------------------------------------ validate

    def validate(self, post: OutgoingPost) -> list[str]:
        info = self._instance_or_default()
        problems: list[str] = []
        if not post.parts or not any(p.strip() for p in post.parts):
            problems.append("The post has no text.")
        many = len(post.parts) > 1
        for i, part in enumerate(post.parts, start=1):
            n = textrules.length("mastodon", part)
            if n > info.max_characters:
                which = f"Part {i} of the thread" if many else "The text"
                problems.append(
                    f"{which} is {n} characters; {self.instance_host} allows "
                    f"{info.max_characters}. Shorten it or split it into a thread."
                )
        problems += image_problems(
            post.media,
            platform=self.instance_host,
            max_images=info.max_media,
            max_alt=MAX_ALT_TEXT,
        )
        for i, media in enumerate(post.media, start=1):
            name = os.path.basename(media.path) or f"image {i}"
            if not os.path.isfile(media.path):
                continue  # reported above
            if os.path.getsize(media.path) > info.image_size_limit:
                problems.append(
                    f"Image {i} ({name}) is larger than the {info.image_size_limit // 1_000_000}"
                    f" MB {self.instance_host} accepts. Use a smaller image."
                )
        return problems

    # ------------------------------------------------------------------ publish

    def _receipt(self, status: Any) -> Receipt:
        uri, url = _get(status, "uri"), _get(status, "url")
        return Receipt(
            remote_id=_id_of(status, f"Mastodon ({self.instance_host})", "a status"),
            uri=uri if isinstance(uri, str) else None,
            url=(url if isinstance(url, str) else None) or (uri if isinstance(uri, str) else None),
        )

    @staticmethod
    def part_key(idempotency_key: str, index: int) -> str:
        """The Idempotency-Key of thread part ``index``: the delivery's key for the first."""
        return idempotency_key if index == 0 else f"{idempotency_key}:{index}"

    def _upload_media(self, post: OutgoingPost) -> list[str]:
        if not post.media:
            return []
        self._tell_sdk_version(self._instance_or_default())
        ids: list[str] = []
        where = f"Mastodon ({self.instance_host})"
        with self._api("upload the images"):
            for media in post.media:
                attachment = self.client.media_post(
                    media.path, mime_type=media.mime_type, description=media.alt_text
                )
                if _get(attachment, "url") is None:  # 202: processing; look once more
                    attachment = self.client.media(_id_of(attachment, where, "an upload"))
                    if _get(attachment, "url") is None:
                        raise TransientError(
                            f"Mastodon is still processing {os.path.basename(media.path)}; "
                            "Amplify will retry the post shortly"
                        )
                ids.append(_id_of(attachment, where, "an upload"))
        return ids

    def publish(self, post: OutgoingPost, on_part: PartCallback | None = None) -> list[Receipt]:
        receipts = list(post.landed)
        if len(receipts) >= len(post.parts):
            return receipts[: len(post.parts)]
        media_ids = self._upload_media(post) if not receipts else []
        for index in range(len(receipts), len(post.parts)):
            reply_to = receipts[-1].remote_id if receipts else None
            with self._api("publish the post"):
                status = self.client.status_post(
                    post.parts[index],
                    in_reply_to_id=reply_to,
                    media_ids=(media_ids or None) if index == 0 else None,
                    idempotency_key=self.part_key(post.idempotency_key, index),
                )
                receipt = self._receipt(status)
            receipts.append(receipt)
            if on_part is not None:
                on_part(index, receipt)
        return receipts

    def _recent_statuses(self, post: OutgoingPost) -> list[Any]:
        """The account's statuses, newest first: one page of 40, and further pages (at most
        ``RECONCILE_PAGES``) only while the page still reaches past ``post.not_before``."""
        statuses: list[Any] = []
        max_id: str | None = None
        with self._api("look for the post"):
            me = self._my_id()
            for _ in range(RECONCILE_PAGES):
                page = self.client.account_statuses(
                    me, limit=RECENT_STATUSES, exclude_reblogs=True, max_id=max_id
                )
                if not isinstance(page, list):
                    raise unreadable_answer(
                        f"Mastodon ({self.instance_host})", "look for the post", "not a list"
                    )
                statuses.extend(page)
                if post.not_before is None or len(page) < RECENT_STATUSES:
                    break
                oldest = page[-1]
                created = _created_at(oldest)
                if created is None or created < post.not_before:
                    break
                max_id = str(_get(oldest, "id", default="")) or None
                if max_id is None:
                    break
        return statuses

    def find_published(self, post: OutgoingPost) -> list[Receipt] | None:
        by_text: dict[str, list[Any]] = {}
        for status in self._recent_statuses(post):
            # Older than the first claim: the same words posted earlier, never this post.
            if not recent_enough(post, _created_at(status)):
                continue
            by_text.setdefault(_comparable(_status_text(status)), []).append(status)
        found = list(post.landed)
        for index in range(len(found), len(post.parts)):
            want = _comparable(post.parts[index])
            parent = found[-1].remote_id if found else None
            candidates = [
                s
                for s in by_text.get(want, [])
                if parent is None or str(_get(s, "in_reply_to_id", default="")) == parent
            ]
            if not candidates:
                break
            with self._api("look for the post"):
                found.append(self._receipt(candidates[0]))  # newest first
        return found or None

    # ------------------------------------------------------------------ the rest

    def repost(self, target: Receipt, idempotency_key: str) -> Receipt:
        # Reblogging is idempotent on Mastodon: a second reblog returns the existing one.
        with self._api():
            status = self.client.status_reblog(target.remote_id)
        return self._receipt(status)

    def delete(self, target: Receipt) -> None:
        with self._api():
            try:
                self.client.status_delete(target.remote_id)
            except MastodonNotFoundError:
                return  # already gone: that is what was asked

    def fetch_metrics(self, targets: Sequence[Receipt]) -> list[Metrics]:
        if not targets:
            return []
        info = self._instance_or_default()
        out: list[Metrics] = []
        with self._api():
            if info.has_batch_statuses and len(targets) > 1:
                for start in range(0, len(targets), self.metrics_batch_size):
                    chunk = targets[start : start + self.metrics_batch_size]
                    out.extend(
                        _metrics_of(s) for s in self.client.statuses([t.remote_id for t in chunk])
                    )
            else:
                for target in targets:
                    try:
                        out.append(_metrics_of(self.client.status(target.remote_id)))
                    except MastodonNotFoundError:
                        log.info("status %s on %s is gone", target.remote_id, self.instance_host)
        return out

    def fetch_spreaders(
        self, target: Receipt, limit: int = MAX_SPREADERS_PER_SWEEP
    ) -> list[SpreaderInfo]:
        """Who reblogged ``target``: reblogged_by page after page (40 on the first, then the
        most Mastodon gives, 80), following its ``Link`` header to the end or ``limit``."""
        found: dict[str, SpreaderInfo] = {}
        with self._api("read who reblogged the post"):
            page = self.client.status_reblogged_by(target.remote_id)
            while page and len(found) < limit:
                before = len(found)
                for a in page:
                    info = _spreader_of(a)
                    found.setdefault(info.remote_user_id, info)
                following = getattr(page, "_pagination_next", None)
                if not following or len(found) == before:
                    break  # the last page (or a server repeating itself)
                following["limit"] = REBLOGGED_BY_PAGE
                page = self.client.fetch_next(following)
        return list(found.values())[:limit]

    def fetch_profiles(self, accounts: Sequence[Identity]) -> list[Identity]:
        """Follower counts by id: 40 accounts a call on Mastodon 4.3 and later (one call each
        before); an account known only by its handle is looked up by it."""
        ids = list(dict.fromkeys(a.remote_user_id for a in accounts if a.remote_user_id))
        out: list[Identity] = []
        batch = self._instance_or_default().has_batch_statuses
        with self._api("read follower counts"):
            if batch:
                for start in range(0, len(ids), PROFILES_PAGE):
                    chunk = ids[start : start + PROFILES_PAGE]
                    out.extend(_identity_of(a) for a in self.client.accounts(chunk))
            else:
                for remote_id in ids:
                    with suppress(MastodonNotFoundError):
                        out.append(_identity_of(self.client.account(remote_id)))
            for a in accounts:
                if not a.remote_user_id and a.handle:
                    with suppress(MastodonNotFoundError):
                        out.append(_identity_of(self.client.account_lookup(a.handle.lstrip("@"))))
        return out


def _spreader_of(a: Any) -> SpreaderInfo:
    return SpreaderInfo(
        remote_user_id=str(a["id"]),
        handle=str(a["acct"]),
        display_name=str(_get(a, "display_name", default="")),
        followers_count=_get(a, "followers_count"),
        kind="repost",
    )


def _identity_of(a: Any) -> Identity:
    followers = _get(a, "followers_count")
    return Identity(
        remote_user_id=str(a["id"]),
        handle=str(a["acct"]),
        display_name=str(_get(a, "display_name", default="")),
        followers_count=int(followers) if followers is not None else None,
    )


def _id_of(obj: Any, where: str, what: str) -> str:
    """The ``id`` of a JSON object Mastodon sent; an unreadable answer if there is none."""
    value = _get(obj, "id") if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise unreadable_answer(where, f"read {what}", f"no id for {what}")
    return str(value)


def _unparsed(exc: MastodonError) -> str:
    """What came back instead of JSON, in a few words (never the body itself)."""
    text = str(exc.args[0]) if exc.args else ""
    marker = "content was b"
    if marker in text:
        rest = text.split(marker, 1)[1]  # the repr of the bytes: 'body' or "body"
        return describe_body(rest[1 : max(1, rest.rfind(rest[:1]))])
    return "not JSON"


def _status_code(exc: MastodonError) -> int | None:
    args = exc.args
    if len(args) >= 2 and isinstance(args[1], int):
        return args[1]
    return None


def _detail(exc: MastodonError) -> str:
    args = exc.args
    if len(args) >= 4 and args[3]:
        return str(args[3])
    if len(args) >= 3 and args[2]:
        return str(args[2])
    return str(exc)


def _metrics_of(status: Any) -> Metrics:
    return Metrics(
        remote_id=str(status["id"]),
        likes=int(_get(status, "favourites_count", default=0)),
        reposts=int(_get(status, "reblogs_count", default=0)),
        replies=int(_get(status, "replies_count", default=0)),
        quotes=int(_get(status, "quotes_count", default=0)),
    )


INFO = PlatformInfo(
    name="mastodon",
    label="Mastodon",
    steps=(
        "1. On your instance open *Preferences → Development → New application*.\n2. Name it "
        "`Amplify`, tick `read` and `write`, save.\n3. Open the application and copy **Your "
        "access token**; paste it below with the instance URL."
    ),
    how_to=(
        "Paste one line: the access token from your instance's Preferences → Development → "
        "your application (“Your access token”)."
    ),
    handle_label="Account (e.g. team)",
    credentials=(
        CredentialField(
            "access_token",
            "Access token",
            "Access token (Preferences → Development → your application)",
        ),
    ),
    service_label="Instance URL",
    suggested_service_url="https://mastodon.social",
    server_in_handle=True,
    # Mastodon's default: 300 requests every 5 minutes per account.
    write_budgets=(WriteBudget("account", 300, timedelta(minutes=5), what="requests"),),
)
