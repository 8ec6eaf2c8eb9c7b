"""A local, threaded HTTP server speaking the subset of the X API v2 that Amplify uses.

Bodies, status codes and headers are shaped as docs.x.com shows them: ``{"data": …}`` on
success, RFC 7807 problem details (``title``, ``detail``, ``type``, ``status``, sometimes
``errors``) on failure, ``x-rate-limit-limit/-remaining/-reset`` on every API response.
Text comes back the way X renders it: ``&``, ``<``, ``>`` escaped, links replaced by
``https://t.co/…`` with ``entities.urls``, a media link appended when images are attached.

Nothing is persisted. In a test::

    with XFakeServer() as server:
        connector = XConnector(ConnectorContext(handle="team", service_url=server.url, ...))
        server.inject("server_error", endpoint="POST /2/tweets")
        ...
        assert len(server.posts) == 3

Shared by several worker processes: run it in its own process and talk to it over HTTP::

    python -m tests.fakes.x_server --port 8123         # prints the URL, serves until SIGTERM
    GET  /_fake/stats      {"posts": n, "posts_created": n, "calls": {...}, "faults_pending": n}
    GET  /_fake/posts      every live post
    POST /_fake/inject     {"kind": "hang", "endpoint": "POST /2/tweets", "count": 1, ...}
    POST /_fake/users      {"username": "...", "followers": 10, "token": "..."}
    POST /_fake/retweet    {"post_id": "...", "user_id": "..."}
    POST /_fake/reset      forget everything

Fault kinds (each consumed by the next matching request): ``server_error`` (5xx, default
503), ``rate_limit`` (429 with ``x-rate-limit-reset`` ``reset_in`` seconds ahead; with
``daily="user"`` or ``"app"`` the answer also says that 24-hour cap is used up,
``x-…-limit-24hour-remaining: 0`` with its reset ``daily_reset_in`` seconds ahead),
``hang`` (no answer for ``hang_seconds``, then the connection closes), ``reset``
(TCP reset), ``unauthorized`` (401), ``garbage`` (the request takes effect, then a 200
or 201 whose body X never sends: ``body="empty" | "html" | "truncated" | "missing_ids" |
"wrong_types" | "no_data"``). With ``after=True`` the request takes effect first and only
the answer is lost: the case exactly-once publishing must survive.

Daily caps: ``XFakeServer(user_day_limit=17, app_day_limit=17)`` counts posts per user and
for the whole app over 24 hours, reports them on every ``POST /2/tweets`` answer
(``x-user-limit-24hour-limit|remaining|reset``, ``x-app-limit-24hour-…``) and answers 429
once one is used up, as X does on its smaller plans.

Older posts: ``add_post(username, text, created_at=…)`` puts a post from the past in place
(its id carries that time, as X's snowflakes do). X refuses a post whose text equals one
of the account's posts from the last ``duplicate_window_seconds`` (X does not document
how far back it looks; a day here). ``GET /2/users/:id/tweets`` honours ``start_time``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import twitter_text
from oauthlib.oauth1.rfc5849 import signature as oauth_signature

SNOWFLAKE_EPOCH_MS = 1288834974657
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
PROBLEMS = "https://api.twitter.com/2/problems"
MEDIA_CATEGORIES = {"tweet_image", "dm_image", "subtitles"}
GARBAGE = ("empty", "html", "truncated", "missing_ids", "wrong_types", "no_data")
DAY_SECONDS = 86400
FAULT_ALIASES = {
    "garbage": "garbage",
    "5xx": "server_error",
    "500": "server_error",
    "503": "server_error",
    "server_error": "server_error",
    "429": "rate_limit",
    "rate_limit": "rate_limit",
    "timeout": "hang",
    "hang": "hang",
    "reset": "reset",
    "connection_reset": "reset",
    "401": "unauthorized",
    "unauthorized": "unauthorized",
}
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/2/tweets$"), "POST /2/tweets"),
    ("DELETE", re.compile(r"^/2/tweets/(\d+)$"), "DELETE /2/tweets/:id"),
    ("GET", re.compile(r"^/2/users/me$"), "GET /2/users/me"),
    ("GET", re.compile(r"^/2/users$"), "GET /2/users"),
    ("GET", re.compile(r"^/2/users/by$"), "GET /2/users/by"),
    ("GET", re.compile(r"^/2/users/(\d+)/tweets$"), "GET /2/users/:id/tweets"),
    ("GET", re.compile(r"^/2/tweets$"), "GET /2/tweets"),
    ("GET", re.compile(r"^/2/tweets/(\d+)/retweeted_by$"), "GET /2/tweets/:id/retweeted_by"),
    ("GET", re.compile(r"^/2/tweets/(\d+)/quote_tweets$"), "GET /2/tweets/:id/quote_tweets"),
    ("POST", re.compile(r"^/2/media/upload$"), "POST /2/media/upload"),
    ("POST", re.compile(r"^/2/media/metadata$"), "POST /2/media/metadata"),
]


class ApiError(Exception):
    """An X error answer: status plus a problem-details body."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers


def problem(status: int, title: str, detail: str, type_: str = "about:blank") -> ApiError:
    return ApiError(status, {"title": title, "detail": detail, "type": type_, "status": status})


def invalid_request(parameter: str, value: Any, message: str) -> ApiError:
    return ApiError(
        400,
        {
            "errors": [{"parameters": {parameter: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": f"{PROBLEMS}/invalid-request",
        },
    )


def partial_answer(data: list[Any], errors: list[Any]) -> dict[str, Any]:
    """A lookup's body as X sends it: ``data`` for what was found, ``errors`` for the rest
    (each key only when it has something)."""
    out: dict[str, Any] = {}
    if data:
        out["data"] = data
    if errors:
        out["errors"] = errors
    return out


def not_found(resource_type: str, parameter: str, value: str) -> dict[str, Any]:
    return {
        "value": value,
        "detail": f"Could not find {resource_type} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": f"{PROBLEMS}/resource-not-found",
    }


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass
class Fault:
    kind: str
    endpoint: str | None = None  # e.g. "POST /2/tweets"; None = any API endpoint
    count: int = 1
    status: int = 503
    reset_in: int = 60
    after: bool = False  # apply the request first, lose only the answer
    hang_seconds: float | None = None
    skip: int = 0  # let this many matching requests through first
    daily: str | None = None  # rate_limit: "user" or "app" 24-hour cap used up
    daily_reset_in: int = DAY_SECONDS
    body: str = "html"  # garbage: which kind (GARBAGE)


@dataclass
class FakeUser:
    id: str
    username: str
    name: str
    followers: int = 0
    tokens: set[str] = field(default_factory=set)
    token_secret: str | None = None
    consumer_secret: str | None = None


class _State:
    """Everything the server knows; every access holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.users: dict[str, FakeUser] = {}
        self.tokens: dict[str, str] = {}  # access token (or bearer) -> user id
        self.revoked: set[str] = set()
        self.posts: dict[str, dict[str, Any]] = {}  # insertion order = creation order
        self.deleted: set[str] = set()
        self.posts_created = 0
        self.media: dict[str, dict[str, Any]] = {}
        self.retweets: dict[str, list[str]] = {}  # post id -> user ids in order
        self.calls: Counter[str] = Counter()
        self.faults: deque[Fault] = deque()
        self.windows: dict[tuple[str, str], tuple[float, int]] = {}
        self.day_windows: dict[str, tuple[float, int]] = {}  # user id or "app" -> (start, used)
        self.texts: set[tuple[str, str]] = set()  # (author id, text) of live posts
        self._seq = 0
        self._last_id = 0
        self._next_user = 1000

    def snowflake(self, at: float | None = None) -> str:
        """A fresh id carrying the current time (or ``at``), as X's ids do; strictly
        increasing unless ``at`` is in the past."""
        self._seq = (self._seq + 1) % 4096
        ms = int((time.time() if at is None else at) * 1000) - SNOWFLAKE_EPOCH_MS
        if at is not None:
            return str((ms << 22) | (1 << 12) | self._seq)
        self._last_id = max((ms << 22) | (1 << 12) | self._seq, self._last_id + 1)
        return str(self._last_id)

    def add_user(
        self,
        username: str,
        *,
        followers: int = 0,
        token: str | None = None,
        name: str | None = None,
        user_id: str | None = None,
        token_secret: str | None = None,
        consumer_secret: str | None = None,
    ) -> FakeUser:
        if user_id is None:
            self._next_user += 1
            user_id = str(self._next_user)
        user = FakeUser(
            id=user_id,
            username=username,
            name=name or username.replace("_", " ").title(),
            followers=followers,
            token_secret=token_secret,
            consumer_secret=consumer_secret,
        )
        self.users[user.id] = user
        if token:
            user.tokens.add(token)
            self.tokens[token] = user.id
        return user

    def user_for_token(self, token: str) -> FakeUser:
        if token not in self.tokens:
            # A token never seen before belongs to a new account (one per token).
            self.add_user(f"user_{len(self.users) + 1}", token=token)
        return self.users[self.tokens[token]]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # many workers connect at once; the default backlog is 5


class XFakeServer:
    """The server; ``url`` is where to point ``ConnectorContext.service_url``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        post_limit: int = 100,
        read_limit: int = 900,
        window_seconds: int = 900,
        hang_seconds: float = 30.0,
        user_day_limit: int | None = None,
        app_day_limit: int | None = None,
        duplicate_window_seconds: int = DAY_SECONDS,
    ) -> None:
        self.user_day_limit = user_day_limit
        self.app_day_limit = app_day_limit
        self.duplicate_window_seconds = duplicate_window_seconds
        self.latency = latency
        self.post_limit = post_limit
        self.read_limit = read_limit
        self.window_seconds = window_seconds
        self.hang_seconds = hang_seconds
        self.state = _State()
        self.stopping = threading.Event()
        self.httpd = _HTTPServer((host, port), _Handler)
        self.httpd.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> XFakeServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="x-fake-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> XFakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection

    @property
    def posts(self) -> list[dict[str, Any]]:
        """Every live post, oldest first (copies)."""
        with self.state.lock:
            return [dict(p) for p in self.state.posts.values()]

    @property
    def calls(self) -> dict[str, int]:
        """How many requests each endpoint received, e.g. ``calls["POST /2/tweets"]``."""
        with self.state.lock:
            return dict(self.state.calls)

    @property
    def media(self) -> dict[str, dict[str, Any]]:
        with self.state.lock:
            return {k: dict(v) for k, v in self.state.media.items()}

    def count_posts(self, username: str | None = None) -> int:
        with self.state.lock:
            if username is None:
                return len(self.state.posts)
            ids = {u.id for u in self.state.users.values() if u.username == username}
            return sum(1 for p in self.state.posts.values() if p["author_id"] in ids)

    def stats(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "posts": len(self.state.posts),
                "posts_created": self.state.posts_created,
                "calls": dict(self.state.calls),
                "faults_pending": sum(f.count for f in self.state.faults),
            }

    # ------------------------------------------------------------------ arranging

    def inject(
        self,
        kind: str,
        *,
        endpoint: str | None = None,
        count: int = 1,
        status: int | None = None,
        reset_in: int = 60,
        after: bool = False,
        hang_seconds: float | None = None,
        skip: int = 0,
        daily: str | None = None,
        daily_reset_in: int = DAY_SECONDS,
        body: str = "html",
    ) -> None:
        """Queue a fault for the next ``count`` requests matching ``endpoint`` (after letting
        ``skip`` of them through)."""
        try:
            canonical = FAULT_ALIASES[str(kind)]
        except KeyError:
            raise ValueError(
                f"unknown fault {kind!r}; use one of {sorted(FAULT_ALIASES)}"
            ) from None
        if body not in GARBAGE:
            raise ValueError(f"unknown garbage {body!r}; use one of {GARBAGE}")
        if daily not in (None, "user", "app"):
            raise ValueError(f"daily must be 'user' or 'app', not {daily!r}")
        default_status = int(kind) if str(kind).isdigit() and canonical == "server_error" else 503
        fault = Fault(
            canonical,
            endpoint=endpoint,
            count=count,
            status=status or default_status,
            reset_in=reset_in,
            after=after,
            hang_seconds=hang_seconds,
            skip=skip,
            daily=daily,
            daily_reset_in=daily_reset_in,
            body=body,
        )
        with self.state.lock:
            self.state.faults.append(fault)

    def add_user(self, username: str, **kwargs: Any) -> FakeUser:
        with self.state.lock:
            return self.state.add_user(username, **kwargs)

    def add_post(
        self,
        username: str,
        text: str,
        *,
        created_at: datetime,
        in_reply_to: str | None = None,
    ) -> str:
        """A post the account made at ``created_at`` (e.g. last week), not through the API;
        its id."""
        with self.state.lock:
            state = self.state
            user = next(u for u in state.users.values() if u.username == username)
            tweet_id = state.snowflake(at=created_at.timestamp())
            conversation = state.posts[in_reply_to]["conversation_id"] if in_reply_to else tweet_id
            state.posts[tweet_id] = _new_post(
                tweet_id, user.id, text, created_at, in_reply_to, None, conversation, []
            )
            # Keep creation order (timelines are read newest first).
            state.posts = dict(sorted(state.posts.items(), key=lambda item: int(item[0])))
            return tweet_id

    def quote(self, username: str, post_id: str, text: str = "Worth reading") -> str:
        """``username`` quotes a post (set-up for tests, no API round trip); the quote's id."""
        with self.state.lock:
            state = self.state
            user = next(u for u in state.users.values() if u.username == username)
            now = datetime.now(UTC)
            tweet_id = state.snowflake(at=now.timestamp())
            state.posts[tweet_id] = _new_post(
                tweet_id, user.id, text, now, None, post_id, tweet_id, []
            )
            state.posts[post_id]["public_metrics"]["quote_count"] += 1
            return tweet_id

    def revoke(self, token: str) -> None:
        with self.state.lock:
            self.state.revoked.add(token)

    def retweet(self, post_id: str, user_id: str) -> None:
        with self.state.lock:
            if post_id not in self.state.posts:
                raise KeyError(post_id)
            users = self.state.retweets.setdefault(post_id, [])
            if user_id not in users:
                users.append(user_id)
                self.state.posts[post_id]["public_metrics"]["retweet_count"] += 1

    def engage(self, post_id: str, **counts: int) -> None:
        """Add to a post's counts: ``engage(id, like_count=3, impression_count=120)``."""
        with self.state.lock:
            metrics = self.state.posts[post_id]["public_metrics"]
            for name, value in counts.items():
                metrics[name] = metrics.get(name, 0) + value

    def reset(self) -> None:
        with self.state.lock:
            self.state.reset()


# ---------------------------------------------------------------------------- handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "x-fake/1.0"

    @property
    def fake(self) -> XFakeServer:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes: without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        ctype = "application/problem+json" if status >= 400 else "application/json"
        self.send_response(status, REASONS.get(status))
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reset_connection(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _hang(self, fault: Fault) -> None:
        self.fake.stopping.wait(fault.hang_seconds or self.fake.hang_seconds)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._read_body()
        if path.startswith("/_fake/"):
            self._control(method, path, body)
            return
        route = next(
            ((name, m) for verb, rx, name in ROUTES if verb == method and (m := rx.match(path))),
            None,
        )
        if route is None:
            self._send(
                404, {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}
            )
            return
        name, match = route
        fake = self.fake
        if fake.latency:
            fake.stopping.wait(fake.latency)
        state = fake.state
        with state.lock:
            state.calls[name] += 1
            fault = self._take_fault(name)
        if (
            fault is not None
            and not fault.after
            and fault.kind != "garbage"
            and self._apply_fault(fault, name, None)
        ):
            return
        try:
            user = self._authenticate(method, path, query, body)
            with state.lock:
                limit_headers = self._count_rate(user, name)
                status, answer = self._route(name, match, user, query, body)
        except ApiError as exc:
            headers = exc.headers or self._idle_headers(name)
            if fault is not None and fault.after and self._apply_fault(fault, name, None):
                return
            self._send(exc.status, exc.body, headers)
            return
        self._answer = answer
        if fault is not None and fault.kind == "garbage":
            self._apply_fault(fault, name, limit_headers)
            return
        if fault is not None and fault.after and self._apply_fault(fault, name, limit_headers):
            return
        self._send(status, answer, limit_headers)

    def _take_fault(self, name: str) -> Fault | None:
        for fault in self.fake.state.faults:
            if fault.endpoint in (None, name):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.count -= 1
                if fault.count <= 0:
                    self.fake.state.faults.remove(fault)
                return fault
        return None

    def _apply_fault(self, fault: Fault, name: str, headers: dict[str, str] | None) -> bool:
        """Answer (or not) as the fault says; True when the request is finished."""
        if fault.kind == "hang":
            self._hang(fault)
            return True
        if fault.kind == "reset":
            self._reset_connection()
            return True
        if fault.kind == "server_error":
            status = fault.status
            self._send(
                status,
                problem(
                    status, REASONS.get(status, "Server Error"), REASONS.get(status, "Server Error")
                ).body,
                headers or self._idle_headers(name),
            )
            return True
        if fault.kind == "rate_limit":
            reset = int(time.time()) + fault.reset_in
            limit = self._limit_for(name)
            limit_headers = {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": "0" if fault.daily is None else str(limit - 1),
                "x-rate-limit-reset": str(reset),
            }
            if fault.daily is not None:
                cap = self.fake.user_day_limit if fault.daily == "user" else self.fake.app_day_limit
                prefix = "x-user-limit-24hour" if fault.daily == "user" else "x-app-limit-24hour"
                limit_headers |= {
                    f"{prefix}-limit": str(cap or 17),
                    f"{prefix}-remaining": "0",
                    f"{prefix}-reset": str(int(time.time()) + fault.daily_reset_in),
                }
            self._send(
                429, problem(429, "Too Many Requests", "Too Many Requests").body, limit_headers
            )
            return True
        if fault.kind == "garbage":
            self._send_garbage(fault.body, headers or self._idle_headers(name))
            return True
        if fault.kind == "unauthorized":
            self._send(
                401, problem(401, "Unauthorized", "Unauthorized").body, self._idle_headers(name)
            )
            return True
        return False

    def _send_garbage(self, kind: str, headers: dict[str, str]) -> None:
        """A 200/201 whose body X never sends, in place of ``self._answer``."""
        answer = getattr(self, "_answer", None)
        as_json = "application/json; charset=utf-8"
        status = 201 if kind == "no_data" else 200
        if kind == "empty":
            payload, ctype = b"", as_json
        elif kind == "html":
            page = "<!DOCTYPE html><html><body><h1>Something went wrong</h1></body></html>"
            payload, ctype = page.encode(), "text/html; charset=utf-8"
        elif kind == "truncated":
            whole = json.dumps(answer if answer is not None else {"data": {"id": "1"}}).encode()
            payload, ctype = whole[: max(1, len(whole) // 2)], as_json
        elif kind == "no_data":
            payload, ctype = b"{}", as_json
        else:
            payload, ctype = json.dumps(_spoil(answer, kind)).encode(), as_json
        self.send_response(status, REASONS.get(status))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for header, value in headers.items():
            self.send_header(header, value)
        self.end_headers()
        self.wfile.write(payload)

    def _limit_for(self, name: str) -> int:
        return self.fake.post_limit if name == "POST /2/tweets" else self.fake.read_limit

    def _idle_headers(self, name: str) -> dict[str, str]:
        limit = self._limit_for(name)
        reset = int(time.time()) + self.fake.window_seconds
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(limit),
            "x-rate-limit-reset": str(reset),
        }

    def _count_rate(self, user: FakeUser, name: str) -> dict[str, str]:
        """Count this request against the user's 15-minute window; 429 past the limit."""
        now = time.time()
        limit = self._limit_for(name)
        key = (user.id, name)
        start, used = self.fake.state.windows.get(key, (now, 0))
        if now - start >= self.fake.window_seconds:
            start, used = now, 0
        reset = int(start + self.fake.window_seconds)
        if used >= limit:
            exc = problem(429, "Too Many Requests", "Too Many Requests")
            exc.headers = {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            }
            raise exc
        daily = self._count_day(user) if name == "POST /2/tweets" else {}
        used += 1
        self.fake.state.windows[key] = (start, used)
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(limit - used),
            "x-rate-limit-reset": str(reset),
            **daily,
        }

    def _count_day(self, user: FakeUser) -> dict[str, str]:
        """Count a post against the 24-hour caps that are set; 429 once one is used up."""
        fake, now = self.fake, time.time()
        caps = [
            ("x-user-limit-24hour", user.id, fake.user_day_limit),
            ("x-app-limit-24hour", "app", fake.app_day_limit),
        ]
        headers: dict[str, str] = {}
        counted: list[tuple[str, float, int]] = []
        for prefix, key, cap in caps:
            if cap is None:
                continue
            start, used = fake.state.day_windows.get(key, (now, 0))
            if now - start >= DAY_SECONDS:
                start, used = now, 0
            reset = str(int(start + DAY_SECONDS))
            if used >= cap:
                exc = problem(429, "Too Many Requests", "Too Many Requests")
                exc.headers = {
                    f"{prefix}-limit": str(cap),
                    f"{prefix}-remaining": "0",
                    f"{prefix}-reset": reset,
                    **self._idle_headers("POST /2/tweets"),
                }
                raise exc
            counted.append((key, start, used + 1))
            headers |= {
                f"{prefix}-limit": str(cap),
                f"{prefix}-remaining": str(cap - used - 1),
                f"{prefix}-reset": reset,
            }
        for key, start, used in counted:
            fake.state.day_windows[key] = (start, used)
        return headers

    def _authenticate(self, method: str, path: str, query: dict[str, str], body: bytes) -> FakeUser:
        header = self.headers.get("Authorization", "")
        unauthorized = problem(401, "Unauthorized", "Unauthorized")
        if header.startswith("Bearer "):
            token = header[len("Bearer ") :].strip()
            if not token:
                raise unauthorized
        elif header.startswith("OAuth "):
            params = {
                k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header[len("OAuth ") :])
            }
            required = (
                "oauth_consumer_key",
                "oauth_token",
                "oauth_signature",
                "oauth_nonce",
                "oauth_timestamp",
                "oauth_signature_method",
            )
            if any(not params.get(k) for k in required):
                raise unauthorized
            token = params["oauth_token"]
            with self.fake.state.lock:
                known = self.fake.state.users.get(self.fake.state.tokens.get(token, ""))
            if known and known.token_secret is not None and known.consumer_secret is not None:
                self._verify_signature(method, path, query, body, header, known)
        else:
            raise unauthorized
        with self.fake.state.lock:
            if token in self.fake.state.revoked:
                raise unauthorized
            return self.fake.state.user_for_token(token)

    def _verify_signature(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        header: str,
        user: FakeUser,
    ) -> None:
        host = self.headers.get("Host", "")
        uri = f"http://{host}{self.path}"
        headers = {"Authorization": header}
        ctype = self.headers.get("Content-Type", "")
        form_body = body.decode() if ctype.startswith("application/x-www-form-urlencoded") else None
        params = oauth_signature.collect_parameters(
            uri_query=urlsplit(uri).query,
            body=form_body,
            headers=headers,
            exclude_oauth_signature=True,
        )
        normalized = oauth_signature.normalize_parameters(params)
        base = oauth_signature.signature_base_string(
            method, oauth_signature.base_string_uri(uri), normalized
        )
        secrets = SimpleNamespace(
            client_secret=user.consumer_secret or "", resource_owner_secret=user.token_secret or ""
        )
        expected = oauth_signature.sign_hmac_sha1_with_client(base, secrets)
        sent = unquote(dict(re.findall(r'(\w+)="([^"]*)"', header))["oauth_signature"])
        if sent != expected:
            raise problem(401, "Unauthorized", "Unauthorized")

    # ------------------------------------------------------------------ control plane

    def _control(self, method: str, path: str, body: bytes) -> None:
        fake = self.fake
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            self._send(400, {"error": "body must be JSON"})
            return
        if method == "GET" and path == "/_fake/stats":
            self._send(200, fake.stats())
        elif method == "GET" and path == "/_fake/posts":
            self._send(200, {"posts": fake.posts})
        elif method == "POST" and path == "/_fake/inject":
            try:
                fake.inject(data.pop("kind"), **data)
            except (KeyError, TypeError, ValueError) as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(200, fake.stats())
        elif method == "POST" and path == "/_fake/users":
            user = fake.add_user(data.pop("username"), **data)
            self._send(200, {"id": user.id, "username": user.username})
        elif method == "POST" and path == "/_fake/retweet":
            fake.retweet(str(data["post_id"]), str(data["user_id"]))
            self._send(200, {"ok": True})
        elif method == "POST" and path == "/_fake/reset":
            fake.reset()
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": f"no control endpoint {method} {path}"})

    # ------------------------------------------------------------------ API

    def _route(
        self, name: str, match: re.Match[str], user: FakeUser, query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        handlers: dict[str, Callable[..., tuple[int, Any]]] = {
            "POST /2/tweets": self._create_tweet,
            "DELETE /2/tweets/:id": self._delete_tweet,
            "GET /2/users/me": self._me,
            "GET /2/users": self._users_by_id,
            "GET /2/users/by": self._users_by_name,
            "GET /2/users/:id/tweets": self._user_tweets,
            "GET /2/tweets": self._lookup,
            "GET /2/tweets/:id/retweeted_by": self._retweeted_by,
            "GET /2/tweets/:id/quote_tweets": self._quote_tweets,
            "POST /2/media/upload": self._media_upload,
            "POST /2/media/metadata": self._media_metadata,
        }
        args = match.groups()
        return handlers[name](user, query, body, *args)

    def _json(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise problem(
                400,
                "Invalid Request",
                "The request body is not valid JSON.",
                f"{PROBLEMS}/invalid-request",
            ) from None
        if not isinstance(data, dict):
            raise problem(
                400,
                "Invalid Request",
                "The request body must be a JSON object.",
                f"{PROBLEMS}/invalid-request",
            )
        return data

    def _create_tweet(self, user: FakeUser, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        state = self.fake.state
        data = self._json(body)
        text = data.get("text")
        media_ids = [str(m) for m in (data.get("media") or {}).get("media_ids", [])]
        if not text and not media_ids:
            raise invalid_request("text", text, "Tweet text or media is required.")
        text = str(text or "")
        if twitter_text.parse_tweet(text).weightedLength > 280:
            raise invalid_request("text", text, "Tweet text is too long.")
        reply_to = (data.get("reply") or {}).get("in_reply_to_tweet_id")
        if reply_to is not None and str(reply_to) not in state.posts:
            raise invalid_request(
                "reply.in_reply_to_tweet_id",
                str(reply_to),
                "The `in_reply_to_tweet_id` value does not match a Tweet you can reply to.",
            )
        quote = data.get("quote_tweet_id")
        if quote is not None and str(quote) not in state.posts:
            raise invalid_request("quote_tweet_id", str(quote), "The quoted Tweet does not exist.")
        for media_id in media_ids:
            media = state.media.get(media_id)
            if media is None or media["owner"] != user.id:
                raise invalid_request("media.media_ids", media_id, "Your media IDs are invalid.")
        if len(media_ids) > 4:
            raise invalid_request("media.media_ids", media_ids, "Too many media IDs (4 at most).")
        now = datetime.now(UTC)
        recent = now - timedelta(seconds=self.fake.duplicate_window_seconds)
        if any(
            p["author_id"] == user.id and p["text"] == text and _parse_iso(p["created_at"]) > recent
            for p in state.posts.values()
        ):
            raise problem(403, "Forbidden", DUPLICATE_DETAIL)
        tweet_id = state.snowflake()
        conversation = state.posts[str(reply_to)]["conversation_id"] if reply_to else tweet_id
        state.posts[tweet_id] = _new_post(
            tweet_id,
            user.id,
            text,
            now,
            str(reply_to) if reply_to else None,
            str(quote) if quote else None,
            conversation,
            media_ids,
        )
        state.posts_created += 1
        state.texts.add((user.id, text))
        if reply_to:
            state.posts[str(reply_to)]["public_metrics"]["reply_count"] += 1
        if quote:
            state.posts[str(quote)]["public_metrics"]["quote_count"] += 1
        return 201, {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}}

    def _delete_tweet(
        self, user: FakeUser, query: dict[str, str], body: bytes, tweet_id: str
    ) -> tuple[int, Any]:
        state = self.fake.state
        post = state.posts.get(tweet_id)
        if post is None:
            raise ApiError(404, {**not_found("tweet", "id", tweet_id), "status": 404})
        if post["author_id"] != user.id:
            raise problem(
                403, "Forbidden", "You are not allowed to delete a Tweet you did not author."
            )
        del state.posts[tweet_id]
        state.texts.discard((user.id, post["text"]))
        state.deleted.add(tweet_id)
        return 200, {"data": {"deleted": True}}

    def _users_by_id(self, user: FakeUser, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        """``GET /2/users?ids=`` (1 to 100 ids); unknown ids come back as errors."""
        users = self.fake.state.users
        return self._user_lookup(query, "ids", lambda v: users.get(v))

    def _users_by_name(self, user: FakeUser, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        """``GET /2/users/by?usernames=`` (1 to 100 usernames, case-insensitive)."""
        by_name = {u.username.lower(): u for u in self.fake.state.users.values()}
        return self._user_lookup(query, "usernames", lambda v: by_name.get(v.lower()))

    def _user_lookup(
        self, query: dict[str, str], name: str, find: Callable[[str], FakeUser | None]
    ) -> tuple[int, Any]:
        values = [v for v in query.get(name, "").split(",") if v]
        if not 1 <= len(values) <= 100:
            raise invalid_request(
                name,
                query.get(name, ""),
                f"The number of values in the `{name}` query parameter list [{len(values)}] "
                "is not between 1 and 100",
            )
        fields = self._fields(query, "user.fields")
        data, errors = [], []
        for value in values:
            found = find(value)
            if found is None:
                errors.append(not_found("user", name, value))
            else:
                data.append(self._render_user(found, fields))
        return 200, partial_answer(data, errors)

    def _render_user(self, user: FakeUser, fields: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
        if "public_metrics" in fields:
            mine = sum(1 for p in self.fake.state.posts.values() if p["author_id"] == user.id)
            out["public_metrics"] = {
                "followers_count": user.followers,
                "following_count": 0,
                "tweet_count": mine,
                "listed_count": 0,
                "like_count": 0,
            }
        return out

    def _render_tweet(
        self, post: dict[str, Any], fields: set[str], requester: FakeUser
    ) -> dict[str, Any]:
        text, urls = _x_text(post)
        out: dict[str, Any] = {
            "id": post["id"],
            "text": text,
            "edit_history_tweet_ids": [post["id"]],
        }
        if "created_at" in fields:
            out["created_at"] = post["created_at"]
        if "author_id" in fields:
            out["author_id"] = post["author_id"]
        if "conversation_id" in fields:
            out["conversation_id"] = post["conversation_id"]
        if "referenced_tweets" in fields:
            refs = []
            if post["in_reply_to"]:
                refs.append({"type": "replied_to", "id": post["in_reply_to"]})
            if post["quote_of"]:
                refs.append({"type": "quoted", "id": post["quote_of"]})
            if refs:
                out["referenced_tweets"] = refs
        if "entities" in fields and urls:
            out["entities"] = {"urls": urls}
        if "attachments" in fields and post["media_ids"]:
            out["attachments"] = {"media_keys": [f"3_{m}" for m in post["media_ids"]]}
        if "public_metrics" in fields:
            out["public_metrics"] = dict(post["public_metrics"])
        if "non_public_metrics" in fields:
            out["non_public_metrics"] = {
                "impression_count": post["public_metrics"].get("impression_count", 0),
                "url_link_clicks": 0,
                "user_profile_clicks": 0,
            }
        return out

    def _private_refusal(self, post: dict[str, Any], requester: FakeUser) -> dict[str, Any] | None:
        created = datetime.strptime(post["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        if post["author_id"] == requester.id and datetime.now(UTC) - created < timedelta(days=30):
            return None
        return {
            "value": post["id"],
            "resource_id": post["id"],
            "field": "non_public_metrics",
            "title": "Field Authorization Error",
            "resource_type": "tweet",
            "section": "data",
            "detail": "Sorry, you are not authorized to access non_public_metrics on a Tweet "
            f"[{post['id']}].",
            "type": f"{PROBLEMS}/not-authorized-for-field",
        }

    def _fields(self, query: dict[str, str], name: str) -> set[str]:
        return {f for f in query.get(name, "").split(",") if f}

    def _max_results(self, query: dict[str, str], low: int, high: int, default: int) -> int:
        raw = query.get("max_results")
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise invalid_request(
                "max_results",
                raw,
                f"The `max_results` query parameter value [{raw}] is not between {low} and {high}",
            )
        return int(raw)

    def _page(
        self, items: list[Any], query: dict[str, str], size: int
    ) -> tuple[list[Any], str | None]:
        token = query.get("pagination_token")
        offset = 0
        if token:
            try:
                offset = int(token.removeprefix("7140dibdnow9c7btw4"), 36)
            except ValueError:
                raise invalid_request(
                    "pagination_token",
                    token,
                    "The `pagination_token` query parameter value is not valid.",
                ) from None
        page = items[offset : offset + size]
        more = offset + size < len(items)
        return page, (f"7140dibdnow9c7btw4{_base36(offset + size)}" if more else None)

    def _me(self, user: FakeUser, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        return 200, {"data": self._render_user(user, self._fields(query, "user.fields"))}

    def _user_tweets(
        self, user: FakeUser, query: dict[str, str], body: bytes, user_id: str
    ) -> tuple[int, Any]:
        state = self.fake.state
        if user_id not in state.users:
            return 200, {"errors": [not_found("user", "id", user_id)]}
        size = self._max_results(query, 5, 100, 10)
        exclude = set(query.get("exclude", "").split(","))
        start_time = query.get("start_time")
        since = _parse_iso(start_time) if start_time else None
        posts = [
            p
            for p in reversed(list(state.posts.values()))
            if p["author_id"] == user_id
            and not ("replies" in exclude and p["in_reply_to"])
            and (since is None or _parse_iso(p["created_at"]) >= since)
        ]
        page, next_token = self._page(posts, query, size)
        fields = self._fields(query, "tweet.fields")
        if not page:
            return 200, {"meta": {"result_count": 0}}
        meta: dict[str, Any] = {
            "result_count": len(page),
            "newest_id": page[0]["id"],
            "oldest_id": page[-1]["id"],
        }
        if next_token:
            meta["next_token"] = next_token
        return 200, {"data": [self._render_tweet(p, fields, user) for p in page], "meta": meta}

    def _lookup(self, user: FakeUser, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        state = self.fake.state
        ids = [i for i in query.get("ids", "").split(",") if i]
        if not 1 <= len(ids) <= 100:
            raise invalid_request(
                "ids",
                query.get("ids", ""),
                f"The number of values in the `ids` query parameter list [{len(ids)}] "
                "is not between 1 and 100",
            )
        fields = self._fields(query, "tweet.fields")
        data, errors = [], []
        for tweet_id in ids:
            post = state.posts.get(tweet_id)
            if post is None:
                errors.append(not_found("tweet", "ids", tweet_id))
                continue
            if "non_public_metrics" in fields:
                refusal = self._private_refusal(post, user)
                if refusal is not None:
                    errors.append(refusal)
                    continue
            data.append(self._render_tweet(post, fields, user))
        return 200, partial_answer(data, errors)

    def _retweeted_by(
        self, user: FakeUser, query: dict[str, str], body: bytes, tweet_id: str
    ) -> tuple[int, Any]:
        state = self.fake.state
        if tweet_id not in state.posts:
            return 200, {
                "errors": [not_found("tweet", "id", tweet_id)],
                "meta": {"result_count": 0},
            }
        size = self._max_results(query, 1, 100, 100)
        users = [state.users[u] for u in state.retweets.get(tweet_id, []) if u in state.users]
        page, next_token = self._page(users, query, size)
        fields = self._fields(query, "user.fields")
        meta: dict[str, Any] = {"result_count": len(page)}
        if next_token:
            meta["next_token"] = next_token
        if not page:
            return 200, {"meta": meta}
        return 200, {"data": [self._render_user(u, fields) for u in page], "meta": meta}

    def _quote_tweets(
        self, user: FakeUser, query: dict[str, str], body: bytes, tweet_id: str
    ) -> tuple[int, Any]:
        state = self.fake.state
        size = self._max_results(query, 10, 100, 10)
        quotes = [p for p in reversed(list(state.posts.values())) if p["quote_of"] == tweet_id]
        page, next_token = self._page(quotes, query, size)
        meta: dict[str, Any] = {"result_count": len(page)}
        if next_token:
            meta["next_token"] = next_token
        if not page:
            return 200, {"meta": meta}
        fields = self._fields(query, "tweet.fields")
        if "author_id" in set(query.get("expansions", "").split(",")):
            fields.add("author_id")
        out: dict[str, Any] = {
            "data": [self._render_tweet(p, fields, user) for p in page],
            "meta": meta,
        }
        if "author_id" in fields:
            user_fields = self._fields(query, "user.fields")
            authors = dict.fromkeys(p["author_id"] for p in page)
            out["includes"] = {
                "users": [
                    self._render_user(state.users[a], user_fields)
                    for a in authors
                    if a in state.users
                ]
            }
        return 200, out

    def _media_upload(self, user: FakeUser, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            raise invalid_request("media", None, "Send the media as multipart/form-data.")
        message = BytesParser(policy=email_policy).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body
        )
        parts = {
            part.get_param("name", header="content-disposition"): part
            for part in message.iter_parts()
        }
        if "media" not in parts:
            raise invalid_request("media", None, "The `media` field is required.")
        category = (
            parts["media_category"].get_content().strip() if "media_category" in parts else None
        )
        if category not in MEDIA_CATEGORIES:
            raise invalid_request(
                "media_category",
                category,
                "The `media_category` field must be one of tweet_image, dm_image, subtitles.",
            )
        payload = parts["media"].get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        if len(content) > 5 * 1024 * 1024:
            raise invalid_request("media", len(content), "Images must be 5 MB or less.")
        media_type = (
            parts["media_type"].get_content().strip()
            if "media_type" in parts
            else parts["media"].get_content_type()
        )
        state = self.fake.state
        media_id = state.snowflake()
        state.media[media_id] = {
            "owner": user.id,
            "size": len(content),
            "media_type": media_type,
            "media_category": category,
            "filename": parts["media"].get_filename(),
            "sha1": hashlib.sha1(content).hexdigest(),
            "alt_text": None,
        }
        return 200, {
            "data": {
                "id": media_id,
                "media_key": f"3_{media_id}",
                "size": len(content),
                "expires_after_secs": 86400,
                "processing_info": {"state": "succeeded", "progress_percent": 100},
            }
        }

    def _media_metadata(
        self, user: FakeUser, query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        data = self._json(body)
        media_id = str(data.get("id", ""))
        state = self.fake.state
        media = state.media.get(media_id)
        if media is None or media["owner"] != user.id:
            raise invalid_request("id", media_id, "The media id is not valid.")
        alt = ((data.get("metadata") or {}).get("alt_text") or {}).get("text")
        if alt is not None:
            if len(alt) > 1000:
                raise invalid_request(
                    "metadata.alt_text.text", alt, "Alt text must be 1000 characters or less."
                )
            media["alt_text"] = alt
        return 200, {"data": {"id": media_id, "associated_metadata": data.get("metadata") or {}}}


def _new_post(
    tweet_id: str,
    author_id: str,
    text: str,
    created_at: datetime,
    reply_to: str | None,
    quote: str | None,
    conversation: str,
    media_ids: list[str],
) -> dict[str, Any]:
    return {
        "id": tweet_id,
        "author_id": author_id,
        "text": text,
        "created_at": _iso(created_at),
        "in_reply_to": reply_to,
        "quote_of": quote,
        "conversation_id": conversation,
        "media_ids": media_ids,
        "public_metrics": {
            "retweet_count": 0,
            "reply_count": 0,
            "like_count": 0,
            "quote_count": 0,
            "bookmark_count": 0,
            "impression_count": 0,
        },
    }


def _parse_iso(value: str) -> datetime:
    """X's ISO 8601 times ("2024-05-01T12:00:00.000Z" or without fraction) as aware UTC."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _spoil(answer: Any, kind: str) -> Any:
    """``answer`` with its ids removed (``missing_ids``) or of the wrong type (``wrong_types``)."""

    def spoil(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        if kind == "missing_ids":
            return {k: v for k, v in item.items() if k != "id"}
        return {**item, "id": {"value": item.get("id")}, "created_at": 7}

    if not isinstance(answer, dict):
        return {"data": "unexpected"}
    data = answer.get("data")
    shaped = [spoil(d) for d in data] if isinstance(data, list) else spoil(data)
    return {**answer, "data": shaped}


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _tco(seed: str) -> str:
    return "https://t.co/" + hashlib.sha1(seed.encode()).hexdigest()[:10]


def _x_text(post: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text as X serves it: HTML-escaped, links as t.co with url entities, media link last."""
    source = post["text"]
    out = ""
    entities: list[dict[str, Any]] = []
    cursor = 0
    for found in twitter_text.extract_urls_with_indices(source):
        start, end = found["indices"]
        out += html.escape(source[cursor:start], quote=False)
        url = found["url"]
        short = _tco(post["id"] + url)
        expanded = url if "://" in url else f"http://{url}"
        display = re.sub(r"^https?://(www\.)?", "", expanded)
        entities.append(
            {
                "start": len(out),
                "end": len(out) + len(short),
                "url": short,
                "expanded_url": expanded,
                "display_url": display if len(display) <= 26 else display[:25] + "…",
            }
        )
        out += short
        cursor = end
    out += html.escape(source[cursor:], quote=False)
    if post["media_ids"]:
        short = _tco(post["id"] + "/photo")
        out = f"{out} " if out else out
        entities.append(
            {
                "start": len(out),
                "end": len(out) + len(short),
                "url": short,
                "expanded_url": f"https://x.com/i/status/{post['id']}/photo/1",
                "display_url": "pic.x.com/" + short.rsplit("/", 1)[-1],
                "media_key": f"3_{post['media_ids'][0]}",
            }
        )
        out += short
    return out, entities


# ---------------------------------------------------------------------------- remote helpers


def remote_stats(url: str) -> dict[str, Any]:
    """``GET /_fake/stats`` of a server running in another process."""
    with urllib.request.urlopen(f"{url.rstrip('/')}/_fake/stats", timeout=5) as response:
        return dict(json.loads(response.read()))


def remote_inject(url: str, kind: str, **fault: Any) -> dict[str, Any]:
    """Queue a fault on a server running in another process."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/_fake/inject",
        data=json.dumps({"kind": kind, **fault}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local X API v2 stand-in for Amplify's tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--post-limit", type=int, default=100, help="posts per user per window")
    parser.add_argument("--read-limit", type=int, default=900, help="reads per user per window")
    parser.add_argument("--window", type=int, default=900, help="rate-limit window in seconds")
    args = parser.parse_args(argv)
    server = XFakeServer(
        host=args.host,
        port=args.port,
        latency=args.latency,
        post_limit=args.post_limit,
        read_limit=args.read_limit,
        window_seconds=args.window,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    print(server.url, flush=True)
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
