"""X (Twitter) connector, on tweepy's v2 ``Client`` and X's v2 media endpoints.

One ``XConnector`` acts as one account, with either OAuth 1.0a user context (API key and
secret + access token and secret) or an OAuth 2 user token (``bearer``). Every request
goes to ``ConnectorContext.service_url`` (default ``https://api.x.com``) with a 10 s
timeout; rate limits are reported, never slept on.

Exactly once: X has no idempotency key, so a post whose outcome is unknown is found again
by scanning the account's posts since ``post.not_before`` (the delivery's first claim less
the clock-skew allowance: ``start_time`` on the timeline, and each post's own date
checked again here) for the exact text of each part, in thread order. A post dated
earlier is the same words posted before, never this one. A "duplicate content" refusal
triggers that scan instead of a failure.

Rate limits: a 429 names up to three limits in its headers, the 15-minute window
(``x-rate-limit-*``) and the 24-hour caps per user and per app
(``x-user-limit-24hour-*``, ``x-app-limit-24hour-*``). ``RateLimited.retry_at`` is the
latest reset among those the answer says are used up, and ``RateLimited.limits`` carries
every one it reported, so the shared budgets (``amplify.ratelimit``) can follow X's own
count. The limits seen on the last post are kept in ``limits_seen`` for the same reason.

Answers that are not what X documents (an HTML page with status 200, truncated JSON, a
201 without ``data``, an upload answer without a media id) are reported as
``TransientError`` with a plain reason, never as the parser's exception.

Reposts are not automated on X: its automation rules forbid coordinated automatic
reposts, so ``repost`` refuses and :func:`share_url` gives the advocate a link to click.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import os
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
import tweepy

from amplify import textrules
from connectors.base import (
    MAX_SPREADERS_PER_SWEEP,
    AuthError,
    ConnectorContext,
    ConnectorError,
    CredentialField,
    Identity,
    LimitReading,
    Media,
    Metrics,
    OutgoingPost,
    PartCallback,
    PermanentError,
    PlatformInfo,
    RateLimited,
    Receipt,
    Reshare,
    SpreaderInfo,
    TransientError,
    describe_body,
    image_problems,
    recent_enough,
    unreadable_answer,
)

log = logging.getLogger(__name__)

_SHAPE = "a field is missing or has the wrong type"

DEFAULT_BASE_URL = "https://api.x.com"
TIMEOUT_SECONDS = 10.0
MAX_WEIGHTED_LENGTH = 280
MAX_IMAGES = 4
MAX_ALT_TEXT = 1000
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/pjpeg", "image/png", "image/webp", "image/bmp", "image/tiff"}
)
DUPLICATE_CONTENT = "duplicate content"
# Snowflake ids carry their creation time: milliseconds since this epoch, shifted by 22 bits.
_SNOWFLAKE_EPOCH_MS = 1288834974657
# non_public_metrics are served for the author's own posts during their first 30 days.
_NON_PUBLIC_MAX_AGE = timedelta(days=29, hours=12)
_MAX_RETWEETER_PAGES = MAX_SPREADERS_PER_SWEEP // 100  # 100 a page
_TIMELINE_FIELDS = ["created_at", "entities", "referenced_tweets", "conversation_id"]

REPOST_REFUSAL = (
    "X's automation rules forbid automatic reposts from advocate accounts; share the post "
    "with the advocate's own click instead (intent link)"
)


def share_url(receipt: Receipt) -> str:
    """The link an advocate clicks to repost ``receipt`` from their own X account."""
    return f"https://x.com/intent/retweet?tweet_id={receipt.remote_id}"


def status_url(handle: str, tweet_id: str) -> str:
    return f"https://x.com/{handle.lstrip('@')}/status/{tweet_id}"


def weighted_length(text: str) -> int:
    """X's weighted length (URLs 23, CJK and emoji 2, after NFC), as textrules counts it."""
    return textrules.length("x", text)


_LIMIT_HEADERS = (
    # (header prefix, scope, window)
    ("x-rate-limit", "account", timedelta(minutes=15)),
    ("x-user-limit-24hour", "account", timedelta(hours=24)),
    ("x-app-limit-24hour", "app", timedelta(hours=24)),
)


def _header_int(headers: Any, name: str) -> int | None:
    value = str(headers.get(name) or "").strip()
    return int(value) if value.isdigit() else None


def limits_from_headers(headers: Any, action: str = "post") -> list[LimitReading]:
    """Every limit an X answer reports in its headers (unreadable ones left out).
    ``action``: what the request was (``post`` or ``read``); the 24-hour caps are X's
    limits on posting whatever answered."""
    readings: list[LimitReading] = []
    for prefix, scope, window in _LIMIT_HEADERS:
        remaining = _header_int(headers, f"{prefix}-remaining")
        if remaining is None:
            continue
        reset = _header_int(headers, f"{prefix}-reset")
        readings.append(
            LimitReading(
                scope=scope,
                window=window,
                remaining=remaining,
                limit=_header_int(headers, f"{prefix}-limit"),
                reset_at=datetime.fromtimestamp(reset, UTC) if reset else None,
                action=action if prefix == "x-rate-limit" else "post",
            )
        )
    return readings


def retry_at_of(readings: Sequence[LimitReading]) -> datetime | None:
    """The latest reset among the limits used up (any reset if none says so)."""
    resets = [r.reset_at for r in readings if r.exhausted and r.reset_at is not None]
    if not resets:
        resets = [r.reset_at for r in readings if r.reset_at is not None]
    return max(resets) if resets else None


def created_at_from_id(tweet_id: str) -> datetime | None:
    """When a post was created, read from its snowflake id (None if it is not one)."""
    try:
        ms = (int(tweet_id) >> 22) + _SNOWFLAKE_EPOCH_MS
    except ValueError:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


class _XClient(tweepy.Client):
    """tweepy's v2 client sending to a configurable base URL, with a timeout on every call.

    ``BaseClient.request`` hard-codes the host and logs request headers (the bearer token)
    at DEBUG; this override does neither and maps statuses to the same tweepy exceptions.
    """

    def __init__(self, *, base_url: str, timeout: float, **kwargs: Any) -> None:
        super().__init__(wait_on_rate_limit=False, **kwargs)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.limits_seen: list[LimitReading] = []  # from the last write's answer

    def auth_for(self, user_auth: bool) -> tuple[dict[str, str], Any]:
        headers = {"User-Agent": self.user_agent}
        if user_auth:
            handler = tweepy.OAuth1UserHandler(
                self.consumer_key,
                self.consumer_secret,
                self.access_token,
                self.access_token_secret,
            )
            return headers, handler.apply_auth()
        headers["Authorization"] = f"Bearer {self.bearer_token}"
        return headers, None

    def request(
        self,
        method: str,
        route: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        user_auth: bool = False,
    ) -> requests.Response:
        headers, auth = self.auth_for(user_auth)
        log.debug("X API request: %s %s", method, route)
        with self.session.request(
            method,
            self.base_url + route,
            params=params,
            json=json,
            headers=headers,
            auth=auth,
            timeout=self.timeout,
        ) as response:
            log.debug("X API response: %s %s", response.status_code, route)
            if method == "POST" and route == "/2/tweets":
                self.limits_seen = limits_from_headers(response.headers)
            raise_for_status(response)
            return response


def raise_for_status(response: requests.Response) -> None:
    """Raise the tweepy exception tweepy itself would raise for this response (no waiting)."""
    status = response.status_code
    if status == 400:
        raise tweepy.BadRequest(response)
    if status == 401:
        raise tweepy.Unauthorized(response)
    if status == 403:
        raise tweepy.Forbidden(response)
    if status == 404:
        raise tweepy.NotFound(response)
    if status == 429:
        reset = response.headers.get("x-rate-limit-reset")
        reset_time = int(reset) if reset and reset.strip().isdigit() else None
        raise tweepy.TooManyRequests(response, reset_time=reset_time)
    if status >= 500:
        raise tweepy.TwitterServerError(response)
    if not 200 <= status < 300:
        raise tweepy.HTTPException(response)


def _detail(exc: tweepy.HTTPException) -> str:
    messages = [str(m) for m in exc.api_messages if m]
    if messages:
        return "; ".join(dict.fromkeys(messages))
    return str(exc).replace("\n", " ")


def _problem_type(exc: tweepy.HTTPException) -> str:
    """The problem ``type`` URI of an error answer ("" if it has none)."""
    try:
        body = exc.response.json()
    except ValueError:
        return ""
    return str(body.get("type") or "") if isinstance(body, dict) else ""


def _is_duplicate(exc: tweepy.HTTPException) -> bool:
    return isinstance(exc, tweepy.Forbidden) and DUPLICATE_CONTENT in _detail(exc).lower()


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _visible_text(tweet: Any) -> str:
    """A post's text as its author wrote it: t.co links expanded, media links dropped,
    HTML entities (&amp; &lt; &gt;) decoded."""
    text = str(tweet.text or "")
    entities = getattr(tweet, "entities", None) or {}
    for url in entities.get("urls", []) or []:
        short = url.get("url")
        if not short:
            continue
        if url.get("media_key"):
            replacement = ""
        else:
            replacement = url.get("unwound_url") or url.get("expanded_url") or short
        text = text.replace(short, replacement)
    return _normalise(html.unescape(text))


def _replied_to(tweet: Any) -> str | None:
    for ref in getattr(tweet, "referenced_tweets", None) or []:
        kind = ref.get("type") if isinstance(ref, dict) else getattr(ref, "type", None)
        if kind == "replied_to":
            ref_id = ref.get("id") if isinstance(ref, dict) else getattr(ref, "id", None)
            return str(ref_id)
    return None


class XConnector:
    platform: ClassVar[str] = "x"
    metrics_batch_size: ClassVar[int] = 100
    supports_repost: ClassVar[bool] = False
    #: also read quote posts (one extra read per spreader sweep)
    fetch_quotes: ClassVar[bool] = True

    def __init__(self, context: ConnectorContext, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.context = context
        self.handle = context.handle.lstrip("@")
        self.base_url = (context.service_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        creds = context.credentials
        oauth1 = ("api_key", "api_secret", "access_token", "access_token_secret")
        if all(creds.get(k) for k in oauth1):
            self.user_auth = True
            self.client = _XClient(
                base_url=self.base_url,
                timeout=timeout,
                consumer_key=creds["api_key"],
                consumer_secret=creds["api_secret"],
                access_token=creds["access_token"],
                access_token_secret=creds["access_token_secret"],
            )
        elif creds.get("bearer"):
            self.user_auth = False
            self.client = _XClient(
                base_url=self.base_url, timeout=timeout, bearer_token=creds["bearer"]
            )
        else:
            missing = [k for k in oauth1 if not creds.get(k)]
            raise AuthError(
                f"The X account @{self.handle} has incomplete credentials (missing "
                f"{', '.join(missing)}): paste the API Key and Secret and the Access Token "
                "and Secret from the developer portal, or an OAuth 2 user token as 'bearer'"
            )
        self._user_id: str | None = None

    def __repr__(self) -> str:  # never show credentials
        return f"XConnector(@{self.handle}, {self.base_url})"

    # ------------------------------------------------------------------ errors

    def _translate(self, exc: Exception, doing: str = "talk to it") -> ConnectorError:
        host = urlsplit(self.base_url).netloc or self.base_url
        if isinstance(exc, tweepy.TooManyRequests):
            return self._rate_limited(exc)
        if isinstance(exc, tweepy.Unauthorized):
            if self.user_auth:
                return AuthError(
                    f"X refused the access token for @{self.handle}: regenerate the Access "
                    "Token and Secret in the developer portal (Read and write) and reconnect"
                )
            return AuthError(
                f"X refused the OAuth 2 token for @{self.handle}: it has expired or was "
                "revoked; reconnect the account to get a fresh token"
            )
        if isinstance(exc, tweepy.Forbidden):
            detail = _detail(exc)
            kind = _problem_type(exc)
            if "permission" in detail.lower() or kind.endswith(
                ("oauth1-permissions", "client-forbidden")
            ):
                return AuthError(
                    f"X says the app behind @{self.handle} may not do this ({detail}): set the "
                    "app to Read and write in the developer portal, regenerate the Access "
                    "Token and Secret, and reconnect"
                )
            return PermanentError(f"X refused this for @{self.handle}: {detail}")
        if isinstance(exc, tweepy.TwitterServerError):
            return TransientError(
                f"X had a server error ({exc.response.status_code}); will retry: {_detail(exc)}"
            )
        if isinstance(exc, tweepy.HTTPException):
            return PermanentError(f"X refused this for @{self.handle}: {_detail(exc)}")
        if isinstance(exc, requests.Timeout):
            return TransientError(
                f"X at {host} did not answer within {self.timeout:g} s; will retry"
            )
        if isinstance(exc, requests.ConnectionError):
            return TransientError(f"Could not connect to X at {host}; will retry")
        if isinstance(exc, requests.JSONDecodeError):
            return unreadable_answer(f"X ({host})", doing, describe_body(exc.doc))
        if isinstance(exc, requests.RequestException | ValueError):
            return unreadable_answer(f"X ({host})", doing)
        return unreadable_answer(f"X ({host})", doing, type(exc).__name__)

    def _rate_limited(self, exc: tweepy.TooManyRequests) -> RateLimited:
        request = exc.response.request
        posting = (
            request is not None
            and request.method == "POST"
            and str(request.url or "").endswith("/2/tweets")
        )
        readings = limits_from_headers(exc.response.headers, "post" if posting else "read")
        retry_at = retry_at_of(readings)
        if retry_at is None and exc.reset_time:
            retry_at = datetime.fromtimestamp(exc.reset_time, UTC)
        when = f"{retry_at:%H:%M} UTC" if retry_at else "once X allows it"
        daily = [r for r in readings if r.exhausted and r.window >= timedelta(hours=24)]
        if daily:
            cap = max(daily, key=lambda r: r.reset_at or datetime.min.replace(tzinfo=UTC))
            who = "for this account" if cap.scope == "account" else "for your X app"
            count = f"{cap.limit:,} posts" if cap.limit is not None else "a limited number of posts"
            message = f"X allows {count} a day {who} on your plan; the next goes out at {when}"
        else:
            message = f"X rate limit reached for @{self.handle}; the next try is at {when}"
        return RateLimited(message, retry_at=retry_at, limits=readings)

    @property
    def limits_seen(self) -> list[LimitReading]:
        """The limits X reported with the last post (empty before any)."""
        return list(self.client.limits_seen)

    @contextmanager
    def _api(self, doing: str = "talk to it") -> Iterator[None]:
        try:
            yield
        except ConnectorError:
            raise
        except (tweepy.TweepyException, requests.RequestException, ValueError) as exc:
            raise self._translate(exc, doing) from None
        except (LookupError, TypeError, AttributeError):
            # JSON, but not shaped as X documents (a missing or mistyped field).
            host = urlsplit(self.base_url).netloc or self.base_url
            raise unreadable_answer(f"X ({host})", doing, _SHAPE) from None

    # ------------------------------------------------------------------ identity

    def whoami(self) -> Identity:
        with self._api("say who the account is"):
            me = self.client.get_me(user_fields=["public_metrics"], user_auth=self.user_auth)
            user = me.data
            if user is None:  # 200 without data and without errors: not an X answer
                raise unreadable_answer("X", "say who the account is", "no account in it")
            user_id = _id(user.id, "the account")
            metrics = getattr(user, "public_metrics", None) or {}
            followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
            identity = Identity(
                remote_user_id=user_id,
                handle=str(user.username),
                display_name=str(user.name or ""),
                followers_count=followers if isinstance(followers, int) else None,
            )
        self._user_id = user_id
        return identity

    def _my_id(self) -> str:
        if self._user_id is None:
            self.whoami()
        assert self._user_id is not None
        return self._user_id

    # ------------------------------------------------------------------ validation

    def text_limit(self) -> int | None:
        return None  # X has one limit for every account

    def validate(self, post: OutgoingPost) -> list[str]:
        problems: list[str] = []
        if not post.parts:
            problems.append("The post has no text for X: write something to publish")
        many = len(post.parts) > 1
        for index, part in enumerate(post.parts):
            label = f"Part {index + 1} of {len(post.parts)}" if many else "The post"
            if not part.strip():
                problems.append(f"{label} is empty on X: write text or remove it")
                continue
            length = weighted_length(part)
            if length > MAX_WEIGHTED_LENGTH:
                problems.append(
                    f"{label} is {length}/{MAX_WEIGHTED_LENGTH} characters on X (links count "
                    f"23, emoji and CJK characters 2): shorten it by {length - MAX_WEIGHTED_LENGTH}"
                )
        problems += image_problems(
            post.media, platform="X", max_images=MAX_IMAGES, max_alt=MAX_ALT_TEXT
        )
        for number, media in enumerate(post.media, start=1):
            name = os.path.basename(media.path) or f"image {number}"
            if _mime(media) not in IMAGE_TYPES:
                problems.append(
                    f"Image {number} ({name}) is {_mime(media)}; X accepts JPEG, PNG, WebP, "
                    "BMP or TIFF images here: convert it"
                )
            try:
                size = os.path.getsize(media.path)
            except OSError:
                continue  # reported above
            if size > MAX_IMAGE_BYTES:
                problems.append(
                    f"Image {number} ({name}) is {size / 1048576:.1f} MB; X accepts up to "
                    "5 MB: resize it"
                )
        return problems

    # ------------------------------------------------------------------ publishing

    def publish(self, post: OutgoingPost, on_part: PartCallback | None = None) -> list[Receipt]:
        receipts = list(post.landed[: len(post.parts)])
        for index in range(len(receipts), len(post.parts)):
            text = post.parts[index]
            reply_to = receipts[index - 1].remote_id if index else None
            media_ids = self._upload_media(post.media) if index == 0 and post.media else None
            with self._api("publish the post"):
                try:
                    response = self.client.create_tweet(
                        text=text,
                        in_reply_to_tweet_id=reply_to,
                        media_ids=media_ids,
                        user_auth=self.user_auth,
                    )
                except tweepy.Forbidden as exc:
                    if not _is_duplicate(exc):
                        raise
                    found = self._find_part(text, reply_to, self._timeline(post), post)
                    if found is None:
                        raise PermanentError(
                            f"X refused part {index + 1} for @{self.handle} as a duplicate "
                            "of a post the account made before this story was sent: "
                            "change the wording and approve it again"
                        ) from exc
                    receipt = found
                else:
                    data = response.data
                    tweet_id = _id(data.get("id") if isinstance(data, dict) else None, "the post")
                    receipt = Receipt(remote_id=tweet_id, url=status_url(self.handle, tweet_id))
            receipts.append(receipt)
            if on_part is not None:
                on_part(index, receipt)
        return receipts

    def _media_session(self) -> tuple[requests.Session, dict[str, str], Any]:
        headers, auth = self.client.auth_for(self.user_auth)
        return self.client.session, headers, auth

    def _upload_media(self, media: Sequence[Media]) -> list[str]:
        session, headers, auth = self._media_session()
        ids: list[str] = []
        for item in media[:MAX_IMAGES]:
            mime = _mime(item)
            try:
                with open(item.path, "rb") as fh:
                    content = fh.read()
            except OSError as exc:
                raise PermanentError(
                    f"The image {os.path.basename(item.path)} is missing on disk: upload it again"
                ) from exc
            with self._api("upload the images"):
                response = session.post(
                    f"{self.base_url}/2/media/upload",
                    files={"media": (os.path.basename(item.path), content, mime)},
                    data={"media_category": "tweet_image", "media_type": mime},
                    headers=headers,
                    auth=auth,
                    timeout=self.timeout,
                )
                raise_for_status(response)
                data = response.json().get("data")
                media_id = _id(data.get("id") if isinstance(data, dict) else None, "the image")
                if item.alt_text.strip():
                    meta = session.post(
                        f"{self.base_url}/2/media/metadata",
                        json={"id": media_id, "metadata": {"alt_text": {"text": item.alt_text}}},
                        headers=headers,
                        auth=auth,
                        timeout=self.timeout,
                    )
                    raise_for_status(meta)
            ids.append(media_id)
        return ids

    # ------------------------------------------------------------------ reconciling

    def _timeline(self, post: OutgoingPost) -> list[Any]:
        """The account's most recent posts since ``post.not_before`` (one read, up to 100),
        oldest first."""
        user_id = self._my_id()
        with self._api("look for the post"):
            response = self.client.get_users_tweets(
                user_id,
                max_results=100,
                tweet_fields=_TIMELINE_FIELDS,
                start_time=_start_time(post.not_before),
                user_auth=self.user_auth,
            )
            tweets = response.data or []
            if not isinstance(tweets, list):
                raise TypeError("timeline is not a list")
            return list(reversed(tweets))

    def _find_part(
        self, text: str, reply_to: str | None, timeline: list[Any], post: OutgoingPost
    ) -> Receipt | None:
        wanted = _normalise(text)
        match = None
        for tweet in timeline:  # oldest first: the newest match wins
            # Dated before the first claim: the same words posted earlier, never this post.
            if not recent_enough(post, _created_at(tweet)):
                continue
            if _visible_text(tweet) != wanted:
                continue
            if reply_to is not None and _replied_to(tweet) != reply_to:
                continue
            match = tweet
        if match is None:
            return None
        with self._api("look for the post"):
            tweet_id = _id(match.id, "the post")
        return Receipt(remote_id=tweet_id, url=status_url(self.handle, tweet_id))

    def find_published(self, post: OutgoingPost) -> list[Receipt] | None:
        receipts = list(post.landed[: len(post.parts)])
        if len(receipts) < len(post.parts):
            timeline = self._timeline(post)
            for index in range(len(receipts), len(post.parts)):
                reply_to = receipts[index - 1].remote_id if index else None
                with self._api("look for the post"):
                    found = self._find_part(post.parts[index], reply_to, timeline, post)
                if found is None:
                    break
                receipts.append(found)
        return receipts or None

    # ------------------------------------------------------------------ amplification

    def repost(self, target: Receipt, idempotency_key: str) -> Receipt:
        raise PermanentError(REPOST_REFUSAL)

    def delete(self, target: Receipt) -> None:
        with self._api():
            try:
                self.client.delete_tweet(target.remote_id, user_auth=self.user_auth)
            except tweepy.NotFound:
                return  # already gone: deleting is idempotent

    # ------------------------------------------------------------------ reading

    def fetch_metrics(self, targets: Sequence[Receipt]) -> list[Metrics]:
        results: list[Metrics] = []
        size = self.metrics_batch_size
        for start in range(0, len(targets), size):
            results.extend(self._metrics_batch(targets[start : start + size]))
        return results

    def _metrics_batch(self, targets: Sequence[Receipt]) -> list[Metrics]:
        ids = list(dict.fromkeys(t.remote_id for t in targets))
        if not ids:
            return []
        now = datetime.now(UTC)
        ages = [created_at_from_id(i) for i in ids]
        private = all(a is not None and now - a < _NON_PUBLIC_MAX_AGE for a in ages)
        fields = ["public_metrics", "created_at"]
        tweets: list[Any] = []
        if private:
            response: Any = None
            with self._api():
                try:
                    response = self.client.get_tweets(
                        ids,
                        tweet_fields=[*fields, "non_public_metrics"],
                        user_auth=self.user_auth,
                    )
                except (tweepy.BadRequest, tweepy.Forbidden):
                    response = None  # the API refused non-public fields: public only
            if response is not None:
                tweets = list(response.data or [])
                if _refused_field(response.errors) and len(tweets) < len(ids):
                    tweets = []  # refused for some posts: read them all public-only
        if not tweets:
            with self._api():
                response = self.client.get_tweets(
                    ids, tweet_fields=fields, user_auth=self.user_auth
                )
            tweets = list(response.data or [])
        return [_metrics_of(tweet) for tweet in tweets]

    def fetch_spreaders(
        self, target: Receipt, limit: int = MAX_SPREADERS_PER_SWEEP
    ) -> list[SpreaderInfo]:
        """Retweeters page after page (100 a page, ``pagination_token``) to the end or
        ``limit``; quoters too where the access tier allows."""
        spreaders: dict[tuple[str, str], SpreaderInfo] = {}
        token: str | None = None
        with self._api():
            for _ in range(_MAX_RETWEETER_PAGES):
                response = self.client.get_retweeters(
                    target.remote_id,
                    max_results=100,
                    user_fields=["public_metrics"],
                    pagination_token=token,
                    user_auth=self.user_auth,
                )
                for user in response.data or []:
                    info = _spreader(user, "repost")
                    spreaders[(info.remote_user_id, info.kind)] = info
                token = (response.meta or {}).get("next_token")
                if not token or len(spreaders) >= limit:
                    break
        if self.fetch_quotes and len(spreaders) < limit:
            for info in self._quoters(target, limit - len(spreaders)):
                spreaders[(info.remote_user_id, info.kind)] = info
        return list(spreaders.values())[:limit]

    def fetch_profiles(self, accounts: Sequence[Identity]) -> list[Identity]:
        """Follower counts through the users lookup: 100 ids (or usernames) a call."""
        ids = list(dict.fromkeys(a.remote_user_id for a in accounts if a.remote_user_id))
        names = list(dict.fromkeys(a.handle.lstrip("@") for a in accounts if not a.remote_user_id))
        out: list[Identity] = []
        with self._api():
            for field_name, values in (("ids", ids), ("usernames", names)):
                for start in range(0, len(values), 100):
                    chunk = values[start : start + 100]
                    response = self.client.get_users(
                        **{field_name: chunk},
                        user_fields=["public_metrics"],
                        user_auth=self.user_auth,
                    )
                    for user in response.data or []:
                        info = _spreader(user, "repost")
                        out.append(
                            Identity(
                                info.remote_user_id,
                                info.handle,
                                info.display_name,
                                info.followers_count,
                            )
                        )
        return out

    def _quoters(self, target: Receipt, limit: int = MAX_SPREADERS_PER_SWEEP) -> list[SpreaderInfo]:
        """Authors of quote posts, 100 a page (``pagination_token``) up to ``limit``."""
        found: dict[str, SpreaderInfo] = {}
        token: str | None = None
        with self._api():
            for _ in range(_MAX_RETWEETER_PAGES):
                try:
                    response = self.client.get_quote_tweets(
                        target.remote_id,
                        max_results=100,
                        expansions=["author_id"],
                        user_fields=["public_metrics"],
                        pagination_token=token,
                        user_auth=self.user_auth,
                    )
                except (tweepy.Forbidden, tweepy.NotFound):
                    break  # quotes are optional: not on this access tier
                for user in (response.includes or {}).get("users", []):
                    info = _spreader(user, "quote")
                    found.setdefault(info.remote_user_id, info)
                token = (response.meta or {}).get("next_token")
                if not token or len(found) >= limit:
                    break
        return list(found.values())[:limit]


def _id(value: Any, what: str) -> str:
    """An id X sent (digits); anything else is an answer X does not document."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    raise unreadable_answer("X", f"read the id of {what}", f"no usable id for {what}")


def _created_at(tweet: Any) -> datetime | None:
    """When X says a post was created (``created_at``, asked for on every timeline read)."""
    value = getattr(tweet, "created_at", None)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def _start_time(not_before: datetime | None) -> str | None:
    """``start_time`` for a timeline read (ISO 8601, seconds, UTC); None: no bound."""
    if not_before is None:
        return None
    return not_before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mime(media: Media) -> str:
    if media.mime_type:
        return media.mime_type
    guessed, _ = mimetypes.guess_type(media.path)
    return guessed or "application/octet-stream"


def _refused_field(errors: list[dict[str, Any]] | None) -> bool:
    for error in errors or []:
        text = f"{error.get('type', '')} {error.get('field', '')} {error.get('detail', '')}"
        if "non_public_metrics" in text or "not-authorized-for-field" in text:
            return True
    return False


def _metrics_of(tweet: Any) -> Metrics:
    public = getattr(tweet, "public_metrics", None) or {}
    private = getattr(tweet, "non_public_metrics", None) or {}
    impressions = private.get("impression_count", public.get("impression_count"))
    return Metrics(
        remote_id=str(tweet.id),
        likes=int(public.get("like_count", 0)),
        reposts=int(public.get("retweet_count", 0)),
        replies=int(public.get("reply_count", 0)),
        quotes=int(public.get("quote_count", 0)),
        impressions=int(impressions) if impressions is not None else None,
        bookmarks=int(public["bookmark_count"]) if "bookmark_count" in public else None,
    )


def _spreader(user: Any, kind: str) -> SpreaderInfo:
    metrics = getattr(user, "public_metrics", None) or {}
    followers = metrics.get("followers_count")
    return SpreaderInfo(
        remote_user_id=str(user.id),
        handle=str(user.username),
        display_name=str(getattr(user, "name", "") or ""),
        followers_count=int(followers) if followers is not None else None,
        kind=kind,
    )


INFO = PlatformInfo(
    name="x",
    label="X",
    steps=(
        "1. Open the X developer portal and create a Project and App with **Read and write** "
        "permission.\n2. Under *Keys and tokens*, copy the **API Key and Secret** and generate "
        "an **Access Token and Secret** for the account that will post.\n3. Paste all four "
        "below."
    ),
    how_to=(
        "Paste four lines from the X developer portal (Keys and tokens), in this order: "
        "API Key, API Key Secret, Access Token, Access Token Secret. Or paste one line "
        "bearer=<OAuth 2 user token>."
    ),
    handle_label="Account handle (without @)",
    credentials=(
        CredentialField("api_key", "API Key", "API key (or bearer=<OAuth 2 user token>)"),
        CredentialField("api_secret", "API Key Secret", "API secret"),
        CredentialField("access_token", "Access Token", "Access token"),
        CredentialField("access_token_secret", "Access Token Secret", "Access token secret"),
    ),
    service_label="API base URL (leave as it is unless you use a proxy)",
    default_service_url=DEFAULT_BASE_URL,
    token_alternative="bearer",  # an OAuth 2 user token instead of the four OAuth 1 keys
    reshare=Reshare.SHARE_LINK,
    share_link=share_url,
    # Write budgets come from the account's X API plan (amplify.ratelimit.X_PLANS).
)
