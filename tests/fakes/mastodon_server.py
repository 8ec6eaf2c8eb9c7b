"""A local Mastodon-compatible HTTP server for tests: 127.0.0.1, a free port, real sockets.

It answers with the JSON bodies and headers Mastodon documents (docs.joinmastodon.org),
so mastodon-py runs unmodified against it:

- ``POST /api/v1/statuses`` (form or JSON; ``Idempotency-Key`` honoured per account for
  one hour of the server's clock: the same key returns the same status),
  ``GET``/``DELETE /api/v1/statuses/:id``, ``GET /api/v1/statuses?id[]=`` (4.3+),
  ``POST /api/v1/statuses/:id/reblog``, ``GET /api/v1/statuses/:id/reblogged_by`` (40 a
  page, ``limit`` up to 80, ``Link`` header with ``max_id``)
- ``POST /api/v2/media`` (multipart, ``description``; 200, or 202 while "processing"),
  ``GET /api/v1/media/:id``
- ``GET /api/v1/accounts/verify_credentials``, ``GET /api/v1/accounts/:id/statuses``,
  ``GET /api/v1/accounts?id[]=`` (4.3+), ``/api/v1/accounts/:id``, ``/api/v1/accounts/lookup``
- ``GET /api/v2/instance``, ``GET /api/v1/instance``

Every answer carries ``X-RateLimit-Limit/Remaining/Reset`` (ISO 8601, as Mastodon sends).
Status text is rendered to HTML the way Mastodon does (paragraphs, ``<br />``, links split
into invisible/ellipsis spans, mentions showing only ``@user``).

Faults: ``server.inject(status=503)`` (next matching request answers that), 429 with a
reset, 401, 422 with an error text, ``hang=seconds`` (answer late: a client timeout),
``reset=True`` (connection reset, nothing processed), ``reset_after=True`` (processed,
then the connection is reset: the response is lost), ``garbage="html"`` (processed, then
a 200 whose body is not what Mastodon sends: ``empty``, ``html``, ``truncated``,
``missing_ids``, ``wrong_types``). ``latency`` delays every answer.
``add_status(username, text, created_at=…)`` puts an older status in place (a post from
last week with the same words).
``.calls`` lists (method, path) of every request; ``.statuses`` holds the statuses.
"""

from __future__ import annotations

import email.parser
import email.policy
import html
import io
import itertools
import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import regex

IDEMPOTENCY_SECONDS = 3600
RATE_LIMIT = 300
RATE_WINDOW = timedelta(minutes=5)

_URL = regex.compile(r"https?://[^\s<>\"]+", regex.I)
_MENTION = regex.compile(
    r"(?<![=/\w])@(([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@([\w.-]+\w))?)", regex.I
)
_TAG = regex.compile(r"(?<![\w#])#(\w+)")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass
class Fault:
    status: int | None = None
    error: str | None = None
    method: str | None = None
    path: str | None = None  # prefix of the request path
    times: int = 1
    reset_in: float = 60.0  # 429: seconds until X-RateLimit-Reset
    hang: float = 0.0
    reset: bool = False
    reset_after: bool = False
    # Answer 200 with a body Mastodon never sends, after processing the request: "empty",
    # "html" (a proxy's page), "truncated" (JSON cut short), "missing_ids", "wrong_types".
    garbage: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or path.startswith(self.path)
        )


@dataclass
class FakeAccount:
    id: str
    username: str
    token: str
    display_name: str = ""
    followers_count: int = 0


@dataclass
class FakeStatus:
    id: str
    account_id: str
    text: str
    created_at: datetime
    in_reply_to_id: str | None = None
    reblog_of: str | None = None
    media_ids: list[str] = field(default_factory=list)
    visibility: str = "public"
    language: str | None = None
    favourites_count: int = 0
    replies_count: int = 0
    quotes_count: int = 0


class FakeMastodonServer:
    def __init__(
        self,
        *,
        version: str = "4.3.2",
        max_characters: int = 500,
        latency: float = 0.0,
        media_processing: bool = False,
    ) -> None:
        self.version = version
        self.max_characters = max_characters
        self.latency = latency
        self.media_processing = media_processing  # answer uploads 202 with url null
        self.calls: list[tuple[str, str]] = []
        self.statuses: dict[str, FakeStatus] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, FakeAccount] = {}
        self.faults: list[Fault] = []
        self.clock_offset = timedelta(0)
        self._ids = itertools.count(110_000_000_000_000_001)
        self._idempotency: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._remaining = RATE_LIMIT
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_account("amplify", "test-token", display_name="Amplify Team", followers=120)

    # ------------------------------------------------------------------ control

    def __enter__(self) -> FakeMastodonServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first (use it as a context manager)"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the server's clock (idempotency keys expire after an hour of it)."""
        self.clock_offset += timedelta(seconds=seconds)

    def add_account(
        self, username: str, token: str, *, display_name: str = "", followers: int = 0
    ) -> FakeAccount:
        with self._lock:
            account = FakeAccount(
                str(next(self._ids)), username, token, display_name or username, followers
            )
            self.accounts[account.id] = account
            return account

    def add_status(
        self,
        username: str,
        text: str,
        *,
        created_at: datetime,
        in_reply_to_id: str | None = None,
    ) -> FakeStatus:
        """A status the account posted at ``created_at`` (e.g. last week), not through the API."""
        with self._lock:
            status = FakeStatus(
                id=str(next(self._ids)),
                account_id=self.account(username).id,
                text=text,
                created_at=created_at,
                in_reply_to_id=in_reply_to_id,
            )
            self.statuses[status.id] = status
            return status

    def account(self, username: str) -> FakeAccount:
        return next(a for a in self.accounts.values() if a.username == username)

    def inject(self, **fault: Any) -> Fault:
        """Make the next matching request(s) fail; see the module docstring."""
        f = Fault(**fault)
        with self._lock:
            self.faults.append(f)
        return f

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for m, p in self.calls if m == method and p.startswith(path_prefix))

    def posts_of(self, username: str) -> list[FakeStatus]:
        """The statuses (not reblogs) an account has, oldest first."""
        acct = self.account(username)
        return [
            s for s in self.statuses.values() if s.account_id == acct.id and s.reblog_of is None
        ]

    # ------------------------------------------------------------------ rendering

    def _account_json(self, a: FakeAccount) -> dict[str, Any]:
        return {
            "id": a.id,
            "username": a.username,
            "acct": a.username,
            "display_name": a.display_name,
            "locked": False,
            "bot": False,
            "discoverable": True,
            "group": False,
            "created_at": "2024-01-01T00:00:00.000Z",
            "note": "",
            "url": f"{self.url}/@{a.username}",
            "uri": f"{self.url}/users/{a.username}",
            "avatar": f"{self.url}/avatars/original/missing.png",
            "avatar_static": f"{self.url}/avatars/original/missing.png",
            "header": f"{self.url}/headers/original/missing.png",
            "header_static": f"{self.url}/headers/original/missing.png",
            "followers_count": a.followers_count,
            "following_count": 3,
            "statuses_count": sum(1 for s in self.statuses.values() if s.account_id == a.id),
            "last_status_at": None,
            "emojis": [],
            "fields": [],
        }

    def _content_html(self, text: str) -> str:
        def inline(chunk: str) -> str:
            out: list[str] = []
            pos = 0
            spans = [(m.start(), m.end(), "url", m) for m in _URL.finditer(chunk)]
            taken = [(s, e) for s, e, _, _ in spans]
            for m in _MENTION.finditer(chunk):
                if not any(s <= m.start() < e for s, e in taken):
                    spans.append((m.start(), m.end(), "mention", m))
            for m in _TAG.finditer(chunk):
                if not any(s <= m.start() < e for s, e in taken):
                    spans.append((m.start(), m.end(), "tag", m))
            for start, end, kind, m in sorted(spans, key=lambda x: x[0]):
                if start < pos:
                    continue
                out.append(html.escape(chunk[pos:start], quote=False))
                if kind == "url":
                    url = m.group(0)
                    scheme, _, rest = url.partition("://")
                    shown, hidden = rest[:30], rest[30:]
                    out.append(
                        f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener">'
                        f'<span class="invisible">{scheme}://</span>'
                        f'<span class="{"ellipsis" if hidden else ""}">{html.escape(shown)}</span>'
                        f'<span class="invisible">{html.escape(hidden)}</span></a>'
                    )
                elif kind == "mention":
                    user = m.group(2)
                    out.append(
                        f'<span class="h-card" translate="no"><a href="{self.url}/@{user}" '
                        f'class="u-url mention">@<span>{html.escape(user)}</span></a></span>'
                    )
                else:
                    tag = m.group(1)
                    out.append(
                        f'<a href="{self.url}/tags/{tag.lower()}" class="mention hashtag" '
                        f'rel="tag">#<span>{html.escape(tag)}</span></a>'
                    )
                pos = end
            out.append(html.escape(chunk[pos:], quote=False))
            return "".join(out)

        paragraphs = regex.split(r"\n\s*\n", text.strip())
        return "".join(
            "<p>" + "<br />".join(inline(line) for line in p.split("\n")) + "</p>"
            for p in paragraphs
        )

    def _countable_length(self, text: str) -> int:
        text = _URL.sub("x" * 23, text)
        text = _MENTION.sub(lambda m: "@" + m.group(2), text)
        return len(regex.findall(r"\X", text))

    def _status_json(self, s: FakeStatus) -> dict[str, Any]:
        account = self.accounts[s.account_id]
        reblog = self.statuses.get(s.reblog_of) if s.reblog_of else None
        reply_account = None
        if s.in_reply_to_id and s.in_reply_to_id in self.statuses:
            reply_account = self.statuses[s.in_reply_to_id].account_id
        return {
            "id": s.id,
            "created_at": iso(s.created_at),
            "in_reply_to_id": s.in_reply_to_id,
            "in_reply_to_account_id": reply_account,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": s.visibility,
            "language": s.language or "en",
            "uri": f"{self.url}/users/{account.username}/statuses/{s.id}",
            "url": f"{self.url}/@{account.username}/{s.id}" if not reblog else None,
            "replies_count": s.replies_count,
            "reblogs_count": sum(1 for r in self.statuses.values() if r.reblog_of == s.id),
            "favourites_count": s.favourites_count,
            "quotes_count": s.quotes_count,
            "edited_at": None,
            "favourited": False,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "pinned": False,
            "content": "" if reblog else self._content_html(s.text),
            "filtered": [],
            "reblog": self._status_json(reblog) if reblog else None,
            "application": {"name": "Amplify", "website": None},
            "account": self._account_json(account),
            "media_attachments": [self.media[m] for m in s.media_ids if m in self.media],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _instance_v2(self) -> dict[str, Any]:
        return {
            "domain": self.host,
            "title": "Fake Mastodon",
            "version": self.version,
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "A local Mastodon-compatible server for tests",
            "usage": {"users": {"active_month": len(self.accounts)}},
            "thumbnail": {"url": f"{self.url}/thumb.png"},
            "languages": ["en"],
            "configuration": {
                "urls": {"streaming": self.url.replace("http", "ws")},
                "accounts": {"max_featured_tags": 10},
                "statuses": {
                    "max_characters": self.max_characters,
                    "max_media_attachments": 4,
                    "characters_reserved_per_url": 23,
                },
                "media_attachments": {
                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif"],
                    "image_size_limit": 16777216,
                    "image_matrix_limit": 33177600,
                    "video_size_limit": 103809024,
                    "video_frame_rate_limit": 120,
                    "video_matrix_limit": 8294400,
                },
                "polls": {"max_options": 4},
                "translation": {"enabled": False},
            },
            "registrations": {"enabled": False, "approval_required": False, "message": None},
            "contact": {"email": "admin@example.org", "account": None},
            "rules": [],
            "api_versions": {"mastodon": 2},
        }

    def _instance_v1(self) -> dict[str, Any]:
        return {
            "uri": self.host,
            "title": "Fake Mastodon",
            "short_description": "",
            "description": "",
            "email": "admin@example.org",
            "version": self.version,
            "urls": {"streaming_api": self.url.replace("http", "ws")},
            "stats": {"user_count": len(self.accounts), "status_count": len(self.statuses)},
            "languages": ["en"],
            "registrations": False,
            "approval_required": False,
            "invites_enabled": False,
            "configuration": {
                "statuses": {"max_characters": self.max_characters, "max_media_attachments": 4}
            },
            "contact_account": None,
            "rules": [],
        }

    # ------------------------------------------------------------------ routing

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, extra headers) for one request; called with the lock held."""
        path = path.rstrip("/") or "/"  # Rails routes ignore a trailing slash
        if path in ("/api/v2/instance", "/api/v1/instance"):
            return (
                200,
                self._instance_v2() if path.startswith("/api/v2") else self._instance_v1(),
                {},
            )
        auth = headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        me = next((a for a in self.accounts.values() if a.token == token), None)
        if me is None:
            return 401, {"error": "The access token is invalid"}, {}
        form = _parse_body(headers.get("Content-Type", ""), body)
        parts = path.rstrip("/").split("/")[1:]  # ["api", "v1", ...]
        route = "/".join(parts[:3])
        if path == "/api/v1/accounts/verify_credentials" and method == "GET":
            data = self._account_json(me)
            data["source"] = {"privacy": "public", "sensitive": False, "language": "en", "note": ""}
            return 200, data, {}
        if route == "api/v1/accounts" and len(parts) == 5 and parts[4] == "statuses":
            return self._account_statuses(parts[3], query)
        if route == "api/v1/accounts" and method == "GET" and len(parts) <= 4:
            return self._accounts(parts, query)
        if route == "api/v1/statuses":
            if len(parts) == 3 and method == "POST":
                return self._post_status(me, form, headers)
            if len(parts) == 3 and method == "GET":
                ids = query.get("id[]", [])
                found = [self.statuses[i] for i in ids if i in self.statuses]
                return 200, [self._status_json(s) for s in found], {}
            sid = parts[3]
            status = self.statuses.get(sid)
            if status is None:
                return 404, {"error": "Record not found"}, {}
            if len(parts) == 4 and method == "GET":
                return 200, self._status_json(status), {}
            if len(parts) == 4 and method == "DELETE":
                if status.account_id != me.id:
                    return 403, {"error": "This action is not allowed"}, {}
                data = self._status_json(status)
                data["text"] = status.text
                del self.statuses[sid]
                return 200, data, {}
            if len(parts) == 5 and parts[4] == "reblog" and method == "POST":
                return self._reblog(me, status)
            if len(parts) == 5 and parts[4] == "reblogged_by" and method == "GET":
                return self._reblogged_by(path, sid, query)
        if path == "/api/v2/media" and method == "POST":
            return self._post_media(form)
        if route == "api/v1/media" and len(parts) == 4 and method == "GET":
            media = self.media.get(parts[3])
            if media is None:
                return 404, {"error": "Record not found"}, {}
            return (206 if media["url"] is None else 200), media, {}
        return 404, {"error": "Record not found"}, {}

    def _post_status(
        self, me: FakeAccount, form: dict[str, Any], headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        key = headers.get("Idempotency-Key")
        now = self.now()
        if key:
            seen = self._idempotency.get((me.id, key))
            fresh = seen and (now - seen[1]).total_seconds() < IDEMPOTENCY_SECONDS
            if seen and fresh and seen[0] in self.statuses:
                return 200, self._status_json(self.statuses[seen[0]]), {}
        text = str(form.get("status", ""))
        media_ids = [str(m) for m in _as_list(form.get("media_ids[]", form.get("media_ids")))]
        if not text.strip() and not media_ids:
            return 422, {"error": "Validation failed: Text can't be blank"}, {}
        if self._countable_length(text) > self.max_characters:
            return (
                422,
                {
                    "error": "Validation failed: Text character limit of "
                    f"{self.max_characters} exceeded"
                },
                {},
            )
        for m in media_ids:
            if m not in self.media:
                return 422, {"error": "Validation failed: Media could not be found"}, {}
            if self.media[m]["url"] is None:
                return (
                    422,
                    {
                        "error": "Cannot attach files that have not finished processing. "
                        "Try again in a moment!"
                    },
                    {},
                )
        reply_to = form.get("in_reply_to_id") or None
        if reply_to is not None and str(reply_to) not in self.statuses:
            return 404, {"error": "Record not found"}, {}
        status = FakeStatus(
            id=str(next(self._ids)),
            account_id=me.id,
            text=text,
            created_at=now,
            in_reply_to_id=str(reply_to) if reply_to else None,
            media_ids=media_ids,
            visibility=str(form.get("visibility") or "public"),
            language=form.get("language"),
        )
        self.statuses[status.id] = status
        if status.in_reply_to_id:
            self.statuses[status.in_reply_to_id].replies_count += 1
        if key:
            self._idempotency[(me.id, key)] = (status.id, now)
        return 200, self._status_json(status), {}

    def _reblog(self, me: FakeAccount, status: FakeStatus) -> tuple[int, Any, dict[str, str]]:
        for r in self.statuses.values():
            if r.reblog_of == status.id and r.account_id == me.id:
                return 200, self._status_json(r), {}
        reblog = FakeStatus(str(next(self._ids)), me.id, "", self.now(), reblog_of=status.id)
        self.statuses[reblog.id] = reblog
        return 200, self._status_json(reblog), {}

    def _reblogged_by(
        self, path: str, sid: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        """Newest reblog first, 40 a page by default and 80 at most, paged by the reblogs'
        own ids with a ``Link`` header, as Mastodon does."""
        limit = min(int((query.get("limit") or ["40"])[0]), 80)
        max_id = (query.get("max_id") or [None])[0]
        reblogs = sorted(
            (r for r in self.statuses.values() if r.reblog_of == sid),
            key=lambda r: int(r.id),
            reverse=True,
        )
        if max_id is not None:
            reblogs = [r for r in reblogs if int(r.id) < int(max_id)]
        page = reblogs[:limit]
        headers: dict[str, str] = {}
        if page:
            links = []
            if len(reblogs) > limit:
                links.append(f'<{self.url}{path}?max_id={page[-1].id}>; rel="next"')
            links.append(f'<{self.url}{path}?since_id={page[0].id}>; rel="prev"')
            headers["Link"] = ", ".join(links)
        return 200, [self._account_json(self.accounts[r.account_id]) for r in page], headers

    def _accounts(
        self, parts: list[str], query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        """``GET /api/v1/accounts?id[]=`` (4.3+), ``/accounts/:id``, ``/accounts/lookup``."""
        if len(parts) == 3:
            found_all = [self.accounts[i] for i in query.get("id[]", []) if i in self.accounts]
            return 200, [self._account_json(a) for a in found_all], {}
        if parts[3] == "lookup":
            acct = (query.get("acct") or [""])[0].lstrip("@").split("@")[0]
            found = next((a for a in self.accounts.values() if a.username == acct), None)
        else:
            found = self.accounts.get(parts[3])
        if found is None:
            return 404, {"error": "Record not found"}, {}
        return 200, self._account_json(found), {}

    def reblog_as(self, username: str, status_id: str) -> None:
        """``username`` reblogs a status (set-up for tests, without an HTTP round trip)."""
        with self._lock:
            self._reblog(self.account(username), self.statuses[status_id])

    def _account_statuses(
        self, account_id: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        if account_id not in self.accounts:
            return 404, {"error": "Record not found"}, {}
        limit = min(int((query.get("limit") or ["20"])[0]), 40)
        exclude_reblogs = (query.get("exclude_reblogs") or ["false"])[0] in ("1", "true", "True")
        mine = [
            s
            for s in self.statuses.values()
            if s.account_id == account_id and not (exclude_reblogs and s.reblog_of)
        ]
        mine.sort(key=lambda s: int(s.id), reverse=True)
        max_id = (query.get("max_id") or [""])[0]
        if max_id:
            mine = [s for s in mine if int(s.id) < int(max_id)]
        return 200, [self._status_json(s) for s in mine[:limit]], {}

    def _post_media(self, form: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        file = form.get("file")
        if not isinstance(file, tuple):
            return 422, {"error": "Validation failed: File can't be blank"}, {}
        filename, content_type, data = file
        if not str(content_type).startswith("image/"):
            return (
                422,
                {
                    "error": "Validation failed: File has contents that are not what they "
                    "are reported to be"
                },
                {},
            )
        mid = str(next(self._ids))
        url = None if self.media_processing else f"{self.url}/system/media/{mid}/original.png"
        self.media[mid] = {
            "id": mid,
            "type": "image",
            "url": url,
            "preview_url": f"{self.url}/system/media/{mid}/small.png",
            "remote_url": None,
            "text_url": None,
            "meta": {"original": {"width": 8, "height": 8, "size": "8x8", "aspect": 1.0}},
            "description": form.get("description"),
            "blurhash": "UFBWY:8_0Jxv",
            "_bytes": len(data),
            "_filename": filename,
        }
        public = {k: v for k, v in self.media[mid].items() if not k.startswith("_")}
        return (202 if url is None else 200), public, {}

    def finish_processing(self) -> None:
        """Every uploaded media is processed now (answers 200 with a url)."""
        with self._lock:
            for mid, m in self.media.items():
                m["url"] = f"{self.url}/system/media/{mid}/original.png"

    def rate_headers(self) -> dict[str, str]:
        reset = self.now() + RATE_WINDOW
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(self._remaining, 0)),
            "X-RateLimit-Reset": iso(reset),
        }


GARBAGE = ("empty", "html", "truncated", "missing_ids", "wrong_types")


def _garbage(kind: str, data: Any) -> tuple[bytes, str]:
    """(body, content type) of a 200 that is not what Mastodon sends in place of ``data``."""
    as_json = "application/json; charset=utf-8"
    if kind == "empty":
        return b"", as_json
    if kind == "html":
        page = b"<!DOCTYPE html><html><body><h1>We'll be back soon</h1></body></html>"
        return page, "text/html; charset=utf-8"
    if kind == "truncated":
        whole = json.dumps(data).encode()
        return whole[: max(1, len(whole) // 2)], as_json
    if kind in ("missing_ids", "wrong_types"):

        def spoil(d: Any) -> Any:
            if not isinstance(d, dict):
                return d
            if kind == "missing_ids":
                return {k: v for k, v in d.items() if k != "id"}
            return {**d, "id": {"value": d.get("id")}, "created_at": 7}

        shaped = [spoil(d) for d in data] if isinstance(data, list) else spoil(data)
        return json.dumps(shaped).encode(), as_json
    raise ValueError(f"unknown garbage {kind!r}; use one of {GARBAGE}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Form, JSON or multipart request body → {name: value | [values] | (filename, type, bytes)}."""
    if not body:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(body)
        return data if isinstance(data, dict) else {}
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        out: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True)
            payload = payload if isinstance(payload, bytes) else b""
            if filename is not None:
                out[str(name)] = (filename, part.get_content_type(), payload)
            else:
                out[str(name)] = payload.decode()
        return out
    parsed = parse_qs(body.decode(), keep_blank_values=True)
    return {k: (v if k.endswith("[]") else v[-1]) for k, v in parsed.items()}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeMastodonServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        path = split.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with fake._lock:
            fake.calls.append((method, path))
            fault = next((f for f in fake.faults if f.matches(method, path)), None)
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    fake.faults.remove(fault)
        if fake.latency:
            fake._stop.wait(fake.latency)
        if fault is not None and fault.hang:
            fake._stop.wait(fault.hang)
        if fault is not None and fault.reset:
            return self._reset()
        if fault is not None and fault.status is not None:
            with fake._lock:
                headers = fake.rate_headers()
            if fault.status == 429:
                headers["X-RateLimit-Remaining"] = "0"
                headers["X-RateLimit-Reset"] = iso(fake.now() + timedelta(seconds=fault.reset_in))
            default = {
                401: "The access token is invalid",
                403: "This action is not allowed",
                404: "Record not found",
                422: "Validation failed",
                429: "Too many requests",
            }.get(fault.status, "We're sorry, but something went wrong on our end.")
            return self._send(fault.status, {"error": fault.error or default}, headers)
        with fake._lock:
            fake._remaining -= 1
            query = parse_qs(split.query, keep_blank_values=True)
            status, data, extra = fake.handle(method, path, query, self.headers, body)
            headers = fake.rate_headers()
        headers.update(extra)
        if fault is not None and fault.reset_after:
            return self._reset()
        if fault is not None and fault.garbage:
            return self._send_raw(200, *_garbage(fault.garbage, data), headers)
        self._send(status, data, headers)

    def _send_raw(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send(self, status: int, data: Any, headers: dict[str, str]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        """Close with RST: the client sees 'connection reset by peer'."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()
        self.wfile = io.BytesIO()  # finish() flushes this instead of the closed socket

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")
