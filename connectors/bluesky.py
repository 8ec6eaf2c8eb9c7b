"""Bluesky connector, on the atproto SDK (0.0.73).

One ``BlueskyConnector`` acts as one account: its handle and an app password, on the PDS
at ``ConnectorContext.service_url`` (default ``https://bsky.social``). Sessions are
reused: a stored session string is imported instead of calling createSession (limited to
30 per 5 minutes per account), and every new or refreshed session is handed to
``ConnectorContext.on_session_change`` to be stored.

Exactly once: each part of a post is created with ``com.atproto.repo.createRecord`` under
a record key derived from the delivery's idempotency key and the part's index (a valid
TID, see :func:`record_key`). A retry after a crash therefore names the same record; the
PDS refuses to create it twice, and the connector reads the existing record back and
returns its receipt. ``find_published`` reads those keys to see which parts landed. The
contract's time bound (``OutgoingPost.not_before``: nothing older than the first claim)
holds by construction here: a record key derived from this delivery's idempotency key
names this delivery's record and no other, so an older post with the same words is never
looked at.

An answer the SDK cannot read (empty, an HTML page, cut-off JSON, a record without its
``uri``/``cid``) is reported as ``TransientError`` in plain words, never as the parser's
exception.

Rate limits are reported with the platform's reset time, never slept on.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mimetypes
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar

import httpx
from atproto import Client, models
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import (
    BadRequestError,
    InvokeTimeoutError,
    LoginRequiredError,
    ModelError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    RequestException,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.request import Request
from atproto_core.exceptions import AtProtocolError
from PIL import Image, ImageOps, UnidentifiedImageError

from amplify import textrules
from amplify.media import ImageRefused, publishable_bytes
from connectors import linkcard
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
    image_problems,
    unreadable_answer,
)

log = logging.getLogger(__name__)

DEFAULT_SERVICE_URL = "https://bsky.social"
TIMEOUT_SECONDS = 15.0
MAX_GRAPHEMES = 300
MAX_BYTES = 3000
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000
MAX_ALT_GRAPHEMES = 2000
POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
PROFILES_PAGE = 25  # actors per app.bsky.actor.getProfiles call
SPREADERS_PAGE = 100  # the most getRepostedBy and getQuotes return in one page
_AUTH_ERRORS = frozenset(
    {"AuthenticationRequired", "ExpiredToken", "InvalidToken", "AuthMissing", "InvalidEmail"}
)
_ACCOUNT_ERRORS = frozenset({"AccountTakedown", "AccountDeactivated", "AccountSuspended"})
_NOT_FOUND = frozenset({"RecordNotFound", "NotFound"})
_SHAPE = "a field is missing or has the wrong type"


def _not_json(exc: ValueError) -> str:
    """A few words on a body the SDK could not parse (never the body itself)."""
    text = str(exc)
    if "EOF while parsing a value at line 1 column 0" in text:
        return "an empty answer"
    if "EOF while parsing" in text:
        return "incomplete data"
    return "something that is not data"


# ----------------------------------------------------------------------------- record keys

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
# TIDs carry microseconds since 1970 in their top bits: keep derived ones in a plausible
# window (2023-01-01 plus up to ~8.9 years) so they sort like ordinary record keys.
_TID_BASE_MICROS = 1_672_531_200_000_000
_TID_SPAN_MICROS = 1 << 48


def record_key(idempotency_key: str, part: int | str) -> str:
    """The record key of part ``part`` of the delivery with ``idempotency_key``.

    A TID (13 characters of base32-sortable, first one in ``2-j``) as the
    ``app.bsky.feed.post`` and ``app.bsky.feed.repost`` lexicons require, derived from a
    SHA-256 of the key and part, so the same delivery always names the same records."""
    digest = hashlib.sha256(f"amplify:{idempotency_key}:{part}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    micros = _TID_BASE_MICROS + (number >> 10) % _TID_SPAN_MICROS
    value = (micros << 10) | (number & 0x3FF)  # < 2**63: the top bit stays 0
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def post_url(handle: str, uri: str) -> str:
    """The bsky.app link to the record at ``uri``."""
    return f"https://bsky.app/profile/{handle.lstrip('@')}/post/{uri.rsplit('/', 1)[-1]}"


def _split_uri(uri: str) -> tuple[str, str, str]:
    """``at://did/collection/rkey`` → (did, collection, rkey)."""
    if not uri.startswith("at://"):
        raise PermanentError(f"{uri!r} is not a Bluesky record address (at://…)")
    parts = uri[len("at://") :].split("/")
    if len(parts) != 3 or not all(parts):
        raise PermanentError(f"{uri!r} is not a Bluesky record address (at://did/collection/key)")
    return parts[0], parts[1], parts[2]


# ----------------------------------------------------------------------------- images


def prepare_image(data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[bytes, int, int]:
    """``data`` as an image Bluesky accepts: under ``max_bytes`` (re-encoded as JPEG and
    downscaled step by step when larger), with its width and height."""
    try:  # checked first: never decode a bomb or a stranger's huge original here
        data = publishable_bytes(data)
    except ImageRefused as exc:
        raise PermanentError(f"the image cannot be read: {exc}") from None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened)
            width, height = image.size
            if len(data) <= max_bytes and opened.format in ("JPEG", "PNG", "WEBP", "GIF"):
                return data, width, height
            image = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PermanentError(f"the image cannot be read ({exc}); attach a JPEG or PNG") from exc
    scale = 1.0
    longest = max(width, height)
    if longest > 2000:
        scale = 2000 / longest
    for _ in range(12):
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        resized = image.resize(size, Image.Resampling.LANCZOS) if scale < 1.0 else image
        for quality in (85, 70):
            out = io.BytesIO()
            resized.save(out, format="JPEG", quality=quality, optimize=True)
            if out.tell() <= max_bytes:
                return out.getvalue(), size[0], size[1]
        scale *= 0.75
    raise PermanentError("the image cannot be made smaller than 1 MB; attach a smaller one")


# ----------------------------------------------------------------------------- errors


def _xrpc(exc: RequestErrorBase) -> tuple[str, str]:
    """(error name, message) from the server's answer, both possibly empty."""
    content = exc.response.content if exc.response is not None else None
    if isinstance(content, XrpcError):
        return content.error or "", content.message or ""
    if isinstance(content, dict):
        return str(content.get("error") or ""), str(content.get("message") or "")
    return "", ""


def _status(exc: RequestErrorBase) -> int | None:
    return exc.response.status_code if exc.response is not None else None


class BlueskyConnector:
    platform: ClassVar[str] = "bluesky"
    metrics_batch_size: ClassVar[int] = 25
    supports_repost: ClassVar[bool] = True

    def __init__(
        self,
        context: ConnectorContext,
        *,
        timeout: float = TIMEOUT_SECONDS,
        fetch_card: Callable[[str], linkcard.LinkCard | None] = linkcard.fetch_card,
        fetch_image: Callable[[str], bytes | None] = linkcard.fetch_image,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.context = context
        self.handle = context.handle.lstrip("@")
        self.service_url = (context.service_url or DEFAULT_SERVICE_URL).rstrip("/")
        self._timeout = timeout
        self._fetch_card = fetch_card
        self._fetch_image = fetch_image
        self._transport = transport  # tests only: an httpx transport standing in for the PDS
        self._client: Client | None = None
        self._did: str | None = None
        self._from_stored_session = False

    def __repr__(self) -> str:  # never show credentials or sessions
        return f"BlueskyConnector(handle={self.handle!r}, service_url={self.service_url!r})"

    # ------------------------------------------------------------------ sessions

    def _auth_message(self) -> str:
        return (
            f"Bluesky refused the app password for @{self.handle}: create a new app password "
            "in Settings → Privacy and security → App passwords and reconnect"
        )

    def _new_client(self) -> Client:
        options: dict[str, Any] = {"timeout": self._timeout}
        if self._transport is not None:
            options["transport"] = self._transport
        client = Client(base_url=self.service_url, request=Request(**options))
        client.on_session_change(self._session_changed)
        return client

    def _session_changed(self, event: SessionEvent, session: Session) -> None:
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH) and self.context.on_session_change:
            try:
                self.context.on_session_change(session.encode())
            except Exception:  # storing the session must never fail a publish
                log.exception("bluesky: could not store the refreshed session of @%s", self.handle)

    def _stored_session(self) -> Session | None:
        if not self.context.session:
            return None
        try:
            session = Session.decode(self.context.session)
        except Exception:
            log.warning("bluesky: the stored session of @%s is unreadable; logging in", self.handle)
            return None
        if session.handle.lower() != self.handle.lower() or not session.refresh_jwt:
            return None
        try:
            payload = session.refresh_jwt_payload
            _ = session.access_jwt_payload
        except Exception:  # tokens that do not decode: start over with the app password
            log.warning("bluesky: the stored session of @%s is unreadable; logging in", self.handle)
            return None
        if payload.exp is not None and payload.exp <= datetime.now(UTC).timestamp() + 60:
            return None  # the refresh token itself expired: a new session is needed
        return session

    def _login(self) -> Client:
        if self._client is not None:
            return self._client
        client = self._new_client()
        stored = self._stored_session()
        if stored is not None:
            client.login(session_string=stored.encode(), fetch_bsky_profile=False)
            self._did = stored.did
            self._from_stored_session = True
        else:
            self._create_session(client)
        self._client = client
        return client

    def _create_session(self, client: Client) -> None:
        password = self.context.credentials.get("app_password") or self.context.credentials.get(
            "password"
        )
        if not password:
            raise AuthError(
                f"No app password is stored for @{self.handle}: create one in Settings → "
                "Privacy and security → App passwords and reconnect the account"
            )
        try:
            client.login(self.handle, password, fetch_bsky_profile=False)
        except (UnauthorizedError, BadRequestError) as exc:
            name, message = _xrpc(exc)
            if isinstance(exc, BadRequestError) and name in _ACCOUNT_ERRORS:
                raise AuthError(f"Bluesky says @{self.handle}: {message or name}") from None
            if isinstance(exc, BadRequestError) and name not in _AUTH_ERRORS | {""}:
                raise self._translate(exc, "log in") from None
            raise AuthError(self._auth_message()) from None
        except AtProtocolError as exc:
            raise self._translate(exc, "log in") from None
        self._did = Session.decode(client.export_session_string()).did
        self._from_stored_session = False

    def _is_auth_failure(self, exc: Exception) -> bool:
        if isinstance(exc, UnauthorizedError | LoginRequiredError):
            return True
        return isinstance(exc, BadRequestError) and _xrpc(exc)[0] in _AUTH_ERRORS

    @contextmanager
    def _api(self, action: str) -> Iterator[None]:
        """Translate every SDK error raised inside into a connector error."""
        try:
            yield
        except ConnectorError:
            raise
        except AtProtocolError as exc:
            raise self._translate(exc, action) from None
        except httpx.HTTPError as exc:
            raise TransientError(f"Bluesky could not be reached to {action}: {exc}") from None
        except ValueError as exc:  # the SDK's JSON parser: an empty, cut or HTML body
            raise unreadable_answer("Bluesky", action, _not_json(exc)) from None
        except (LookupError, TypeError, AttributeError):
            raise unreadable_answer("Bluesky", action, _SHAPE) from None

    def _call(self, action: str, fn: Callable[[Client], Any]) -> Any:
        """Run ``fn(client)``; a stored session the server no longer accepts is replaced by
        a new one (app password) and ``fn`` runs once more. Every call made this way is
        safe to repeat (record keys are deterministic; reads are reads)."""
        with self._api(action):
            client = self._login()
            try:
                return fn(client)
            except AtProtocolError as exc:
                if not (self._from_stored_session and self._is_auth_failure(exc)):
                    raise
                log.info("bluesky: stored session of @%s refused; logging in again", self.handle)
                self._client = None
                client = self._new_client()
                self._create_session(client)
                self._client = client
                return fn(client)

    def _translate(self, exc: Exception, action: str) -> ConnectorError:
        if isinstance(exc, RateLimitExceededError):
            retry_at = exc.reset_at
            if retry_at is None and exc.retry_after is not None:
                retry_at = datetime.fromtimestamp(
                    datetime.now(UTC).timestamp() + exc.retry_after, tz=UTC
                )
            when = f" until {retry_at:%H:%M} UTC" if retry_at else ""
            return RateLimited(
                f"Bluesky rate limit reached for @{self.handle} ({action}); waiting{when}",
                retry_at=retry_at,
            )
        if isinstance(exc, LoginRequiredError):
            return AuthError(self._auth_message())
        if isinstance(exc, RequestErrorBase):
            name, message = _xrpc(exc)
            detail = f"{name}: {message}" if name and message else (message or name)
            status = _status(exc)
            if isinstance(exc, UnauthorizedError):
                if status == 403 and name not in _AUTH_ERRORS:
                    return PermanentError(f"Bluesky refused to {action}: {detail or 'forbidden'}")
                return AuthError(self._auth_message())
            if isinstance(exc, BadRequestError):
                if name in _AUTH_ERRORS:
                    return AuthError(self._auth_message())
                if name in _ACCOUNT_ERRORS:
                    return AuthError(f"Bluesky says @{self.handle}: {message or name}")
                return PermanentError(f"Bluesky refused to {action}: {detail or 'bad request'}")
            if isinstance(exc, InvokeTimeoutError):
                return TransientError(f"Bluesky did not answer in time to {action}")
            if isinstance(exc, NetworkError):
                if status == 413:
                    return PermanentError(f"Bluesky refused to {action}: the upload is too large")
                where = f"HTTP {status}" if status else "network error"
                return TransientError(f"Bluesky could not {action} ({where}): {detail or exc}")
            if isinstance(exc, RequestException) and status is not None and status < 500:
                return PermanentError(f"Bluesky refused to {action} (HTTP {status}): {detail}")
            return TransientError(
                f"Bluesky failed to {action} (HTTP {status or '?'}): {detail or 'server error'}"
            )
        if isinstance(exc, ModelError):  # JSON, but not the shape the lexicon says
            return unreadable_answer("Bluesky", action, _SHAPE)
        return unreadable_answer("Bluesky", action)

    @property
    def did(self) -> str:
        self._call("log in", lambda client: None)
        assert self._did is not None
        return self._did

    # ------------------------------------------------------------------ validate

    def text_limit(self) -> int | None:
        return None  # every PDS counts the same

    def validate(self, post: OutgoingPost) -> list[str]:
        problems: list[str] = []
        if not post.parts or not any(p.strip() for p in post.parts):
            problems.append("The post is empty: write the text to publish")
        many = len(post.parts) > 1
        for index, part in enumerate(post.parts, start=1):
            label = f"Part {index} of the thread" if many else "The post"
            count = textrules.length("bluesky", part)
            size = textrules.utf8_bytes(part)
            if count > MAX_GRAPHEMES:
                problems.append(
                    f"{label} is {count} characters; Bluesky allows {MAX_GRAPHEMES}: "
                    "shorten it or split it into a thread"
                )
            elif size > MAX_BYTES:
                problems.append(
                    f"{label} is {size} bytes; Bluesky allows {MAX_BYTES} bytes: shorten it "
                    "(emoji and non-Latin letters take several bytes each)"
                )
            if index > 1 and not part.strip():
                problems.append(f"{label} is empty: remove it or write it")
        problems += image_problems(
            post.media,
            platform="Bluesky",
            max_images=MAX_IMAGES,
            max_alt=MAX_ALT_GRAPHEMES,
            alt_length=textrules.graphemes,
        )
        for number, media in enumerate(post.media, start=1):
            name = os.path.basename(media.path) or f"image {number}"
            if not os.path.isfile(media.path):
                continue  # reported above
            elif not (media.mime_type or mimetypes.guess_type(media.path)[0] or "").startswith(
                "image/"
            ):
                problems.append(f"Attachment {number} ({name}) is not an image")
        return problems

    # ------------------------------------------------------------------ records

    def _get_record(self, collection: str, rkey: str, repo: str | None = None) -> Receipt | None:
        """The receipt of an existing record, or None when there is no such record."""
        did = repo or self.did

        def read(client: Client) -> Receipt | None:
            try:
                found = client.com.atproto.repo.get_record(
                    models.ComAtprotoRepoGetRecord.Params(
                        repo=did, collection=collection, rkey=rkey
                    )
                )
            except BadRequestError as exc:
                if _xrpc(exc)[0] in _NOT_FOUND:
                    return None
                raise
            except RequestException as exc:
                if _status(exc) == 404:
                    return None
                raise
            return self._receipt(found.uri, found.cid or "")

        result: Receipt | None = self._call("read a record", read)
        return result

    def _receipt(self, uri: str, cid: str) -> Receipt:
        url = post_url(self.handle, uri) if f"/{POST}/" in uri else None
        return Receipt(remote_id=uri, uri=uri, cid=cid, url=url)

    def _create(self, collection: str, rkey: str, record: Any, action: str) -> Receipt:
        """Create the record under ``rkey``; if it already exists (an earlier attempt
        landed), return the existing one instead of failing or duplicating it."""
        did = self.did

        def create(client: Client) -> Receipt:
            response = client.com.atproto.repo.create_record(
                models.ComAtprotoRepoCreateRecord.Data(
                    repo=did, collection=collection, rkey=rkey, record=record
                )
            )
            return self._receipt(response.uri, response.cid)

        try:
            result: Receipt = self._call(action, create)
            return result
        except (TransientError, PermanentError) as exc:
            # "Record already exists" (the PDS answers 500 or 400), or a timeout after
            # the write landed: read the record back before reporting a failure.
            try:
                existing = self._get_record(collection, rkey, did)
            except ConnectorError:
                existing = None
            if existing is not None:
                log.info("bluesky: %s/%s already existed; reusing it", collection, rkey)
                return existing
            raise exc from None

    # ------------------------------------------------------------------ embeds

    def _upload(self, data: bytes) -> Any:
        def upload(client: Client) -> Any:
            return client.upload_blob(data).blob

        return self._call("upload an image", upload)

    def _images_embed(self, post: OutgoingPost) -> models.AppBskyEmbedImages.Main:
        images = []
        for media in post.media[:MAX_IMAGES]:
            try:
                with open(media.path, "rb") as fh:
                    raw = fh.read()
            except OSError as exc:
                raise PermanentError(
                    f"The image {os.path.basename(media.path)} cannot be read ({exc.strerror}); "
                    "attach it again"
                ) from None
            data, width, height = prepare_image(raw)
            images.append(
                models.AppBskyEmbedImages.Image(
                    alt=media.alt_text,
                    image=self._upload(data),
                    aspect_ratio=models.AppBskyEmbedDefs.AspectRatio(width=width, height=height),
                )
            )
        return models.AppBskyEmbedImages.Main(images=images)

    def _card_embed(self, link: str) -> models.AppBskyEmbedExternal.Main | None:
        try:
            card = self._fetch_card(link)
        except Exception:  # a link card is a nicety: never fail a post over it
            log.info("bluesky: no link card for %s", link, exc_info=True)
            return None
        if card is None:
            return None
        thumb = None
        if card.image_url:
            try:
                raw = self._fetch_image(card.image_url)
                if raw:
                    data, _, _ = prepare_image(raw)
                    thumb = self._upload(data)
            except Exception:  # a card's picture is a nicety too: the card goes without it
                log.info("bluesky: link card image of %s skipped", link, exc_info=True)
        return models.AppBskyEmbedExternal.Main(
            external=models.AppBskyEmbedExternal.External(
                uri=link, title=card.title, description=card.description, thumb=thumb
            )
        )

    def _embed(self, post: OutgoingPost) -> Any:
        if post.media:
            return self._images_embed(post)
        if post.link:
            return self._card_embed(post.link)
        return None

    # ------------------------------------------------------------------ publish

    def _facets(self, text: str) -> list[models.AppBskyRichtextFacet.Main] | None:
        """Links, hashtags and mentions with UTF-8 byte offsets; a mention whose handle
        does not resolve stays plain text."""
        facets: list[models.AppBskyRichtextFacet.Main] = self._call(
            "resolve mentions", lambda client: client.detect_facets(text)
        )
        return facets or None

    def publish(self, post: OutgoingPost, on_part: PartCallback | None = None) -> list[Receipt]:
        problems = self.validate(post)
        if problems:
            raise PermanentError("; ".join(problems))
        receipts = [self._complete(r) for r in post.landed[: len(post.parts)]]
        for index in range(len(receipts), len(post.parts)):
            rkey = record_key(post.idempotency_key, index)
            reply = None
            if receipts:
                reply = models.AppBskyFeedPost.ReplyRef(
                    root=self._strong_ref(receipts[0]), parent=self._strong_ref(receipts[-1])
                )
            embed = None
            if index == 0 and (post.media or post.link):
                # Uploading blobs or reading the card again is wasted work if it landed.
                existing = self._get_record(POST, rkey)
                if existing is not None:
                    receipts.append(existing)
                    if on_part:
                        on_part(index, existing)
                    continue
                embed = self._embed(post)
            text = post.parts[index]
            record = models.AppBskyFeedPost.Record(
                text=text,
                facets=self._facets(text),
                embed=embed,
                reply=reply,
                created_at=_now_iso(),
            )
            receipt = self._create(POST, rkey, record, "publish the post")
            receipts.append(receipt)
            if on_part:
                on_part(index, receipt)
        return receipts

    def _complete(self, receipt: Receipt) -> Receipt:
        """A landed receipt with its cid (needed for reply references)."""
        if receipt.cid and receipt.uri:
            return receipt
        did, collection, rkey = _split_uri(receipt.uri or receipt.remote_id)
        found = self._get_record(collection, rkey, did)
        if found is None:
            raise PermanentError(
                f"The earlier part {receipt.remote_id} is gone from Bluesky; the thread cannot "
                "continue under it"
            )
        return found

    @staticmethod
    def _strong_ref(receipt: Receipt) -> models.ComAtprotoRepoStrongRef.Main:
        return models.ComAtprotoRepoStrongRef.Main(
            uri=receipt.uri or receipt.remote_id, cid=receipt.cid or ""
        )

    def find_published(self, post: OutgoingPost) -> list[Receipt] | None:
        found: list[Receipt] = []
        for index in range(len(post.parts)):
            receipt = self._get_record(POST, record_key(post.idempotency_key, index))
            if receipt is None:
                break  # parts are published in order: nothing after a gap landed
            found.append(receipt)
        return found or None

    # ------------------------------------------------------------------ repost, delete

    def repost(self, target: Receipt, idempotency_key: str) -> Receipt:
        subject = self._strong_ref(self._complete(target))
        record = models.AppBskyFeedRepost.Record(subject=subject, created_at=_now_iso())
        rkey = record_key(idempotency_key, "repost")
        return self._create(REPOST, rkey, record, "repost")

    def delete(self, target: Receipt) -> None:
        did, collection, rkey = _split_uri(target.uri or target.remote_id)

        def remove(client: Client) -> None:
            client.com.atproto.repo.delete_record(
                models.ComAtprotoRepoDeleteRecord.Data(repo=did, collection=collection, rkey=rkey)
            )

        self._call("delete the post", remove)

    # ------------------------------------------------------------------ reads

    def whoami(self) -> Identity:
        did = self.did

        def profile(client: Client) -> Identity:
            try:
                found = client.get_profile(did)
            except BadRequestError as exc:
                if "not found" not in _xrpc(exc)[1].lower():
                    raise
                # A brand-new account the AppView has not indexed yet.
                return Identity(remote_user_id=did, handle=self.handle)
            return Identity(
                remote_user_id=found.did,
                handle=found.handle,
                display_name=found.display_name or "",
                followers_count=found.followers_count,
            )

        result: Identity = self._call("read the profile", profile)
        return result

    def fetch_metrics(self, targets: Sequence[Receipt]) -> list[Metrics]:
        results: list[Metrics] = []
        for start in range(0, len(targets), self.metrics_batch_size):
            batch = targets[start : start + self.metrics_batch_size]
            uris = [t.uri or t.remote_id for t in batch]
            response = self._call("read the counts", partial(_get_posts, uris=uris))
            by_uri = {p.uri: p for p in response.posts}
            for target, uri in zip(batch, uris, strict=True):
                view = by_uri.get(uri)
                if view is None:
                    continue  # deleted or hidden: no counts to report
                results.append(
                    Metrics(
                        remote_id=target.remote_id,
                        likes=view.like_count or 0,
                        reposts=view.repost_count or 0,
                        replies=view.reply_count or 0,
                        quotes=view.quote_count or 0,
                    )
                )
        return results

    def fetch_spreaders(
        self, target: Receipt, limit: int = MAX_SPREADERS_PER_SWEEP
    ) -> list[SpreaderInfo]:
        """Reposters, then quoters, 100 a page following ``cursor`` to the end or ``limit``,
        then their follower counts (getProfiles, 25 a call)."""
        uri = target.uri or target.remote_id
        found: dict[str, tuple[Any, str]] = {}
        sources: tuple[tuple[str, Callable[..., Any], Callable[[Any], list[Any]], str], ...] = (
            ("read who reposted", _reposted_by, lambda page: list(page.reposted_by), "repost"),
            (
                "read who quoted",
                _quotes,
                lambda page: [view.author for view in page.posts],
                "quote",
            ),
        )
        for doing, read, people, kind in sources:
            cursor: str | None = None
            while len(found) < limit:
                page = self._call(doing, partial(read, uri=uri, cursor=cursor))
                before = len(found)
                for profile in people(page):
                    found.setdefault(profile.did, (profile, kind))
                cursor = page.cursor
                if not cursor or len(found) == before:
                    break  # the last page (or a server repeating itself)
        chosen = list(found.items())[:limit]
        followers = {
            p.remote_user_id: p.followers_count
            for p in self.fetch_profiles([Identity(did, "") for did, _ in chosen])
        }
        return [
            SpreaderInfo(
                remote_user_id=did,
                handle=profile.handle,
                display_name=profile.display_name or "",
                followers_count=followers.get(did),
                kind=kind,
            )
            for did, (profile, kind) in chosen
        ]

    def fetch_profiles(self, accounts: Sequence[Identity]) -> list[Identity]:
        """Follower counts through getProfiles, 25 actors a call (a DID, or the handle of an
        account whose DID is not known yet)."""
        actors = list(dict.fromkeys(a.remote_user_id or a.handle.lstrip("@") for a in accounts))
        out: list[Identity] = []
        for start in range(0, len(actors), PROFILES_PAGE):
            chunk = [a for a in actors[start : start + PROFILES_PAGE] if a]
            if not chunk:
                continue
            profiles = self._call("read follower counts", partial(_get_profiles, actors=chunk))
            out.extend(
                Identity(p.did, p.handle, p.display_name or "", p.followers_count)
                for p in profiles.profiles
            )
        return out


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _get_posts(client: Client, uris: list[str]) -> Any:
    return client.get_posts(uris)


def _reposted_by(client: Client, uri: str, cursor: str | None) -> Any:
    return client.get_reposted_by(uri, cursor=cursor, limit=SPREADERS_PAGE)


def _quotes(client: Client, uri: str, cursor: str | None) -> Any:
    return client.app.bsky.feed.get_quotes(
        models.AppBskyFeedGetQuotes.Params(uri=uri, cursor=cursor, limit=SPREADERS_PAGE)
    )


def _get_profiles(client: Client, actors: list[str]) -> Any:
    return client.get_profiles(actors)


INFO = PlatformInfo(
    name="bluesky",
    label="Bluesky",
    steps=(
        "1. In Bluesky open *Settings → Privacy and security → App passwords*.\n2. Add an app "
        "password named `Amplify` (never use the account's main password).\n3. Paste the "
        "handle and app password below. Self-hosted PDS: change the service URL."
    ),
    how_to=(
        "Paste one line: the app password from Bluesky's Settings → Privacy and security → "
        "App passwords (it looks like abcd-efgh-ijkl-mnop)."
    ),
    handle_label="Handle (e.g. team.bsky.social)",
    credentials=(
        CredentialField(
            "app_password",
            "App password",
            "App password (Settings → Privacy and security → App passwords)",
        ),
    ),
    service_label="Service (PDS) URL",
    default_service_url=DEFAULT_SERVICE_URL,
    # A PDS allows 5,000 points an hour per account; creating a record costs 3.
    write_budgets=(WriteBudget("account", 5_000, timedelta(hours=1), unit_cost=3, what="points"),),
)
