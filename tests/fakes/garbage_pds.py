"""A local HTTP server standing in for a Bluesky PDS that answers garbage.

Logging in works (``com.atproto.server.createSession`` answers a well-formed session);
every other XRPC method answers 200 with a body no PDS sends, chosen by ``garbage``:
``empty``, ``html`` (a proxy's error page), ``truncated`` (JSON cut short),
``missing_ids`` (a record answer without ``uri``/``cid``), ``wrong_types`` (``uri`` a
number, lists where objects belong). Used by the contract suite's "garbage answers" case
so the real atproto SDK meets these answers over real sockets.

    with GarbagePDS() as pds:
        pds.garbage = "html"
        connector = BlueskyConnector(ConnectorContext(handle=pds.handle, service_url=pds.url, …))
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

GARBAGE = ("empty", "html", "truncated", "missing_ids", "wrong_types")
DID = "did:plc:garbagepds0000000000000"
HANDLE = "garbage.test"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _jwt(exp_in: int) -> str:
    now = int(time.time())
    payload = {"sub": DID, "scope": "com.atproto.appPass", "iat": now, "exp": now + exp_in}
    return f"{_b64({'alg': 'HS256'})}.{_b64(payload)}.c2lnbmF0dXJl"


def _session() -> dict[str, Any]:
    return {
        "accessJwt": _jwt(7200),
        "refreshJwt": _jwt(86400),
        "handle": HANDLE,
        "did": DID,
        "active": True,
    }


def _shaped(kind: str, method: str) -> Any:
    """A JSON answer of the right outline with the identifying fields spoiled."""
    if method.endswith("createRecord") or method.endswith("getRecord"):
        if kind == "missing_ids":
            return {"value": {"text": "hello"}}
        return {"uri": 12345, "cid": ["not", "a", "cid"], "value": "text"}
    if method.endswith("uploadBlob"):
        return {"blob": {}} if kind == "missing_ids" else {"blob": "not-a-blob"}
    if method.endswith("getProfile"):
        return {"handle": HANDLE} if kind == "missing_ids" else {"did": 7, "handle": ["x"]}
    if method.endswith("getPosts"):
        return {"posts": [{}]} if kind == "missing_ids" else {"posts": "none"}
    return {} if kind == "missing_ids" else []


class GarbagePDS:
    def __init__(self, garbage: str = "html") -> None:
        self.garbage = garbage
        self.handle = HANDLE
        self.did = DID
        self.calls: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.pds = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> GarbagePDS:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def answer(self, method: str) -> tuple[bytes, str]:
        """(body, content type) for an XRPC ``method``."""
        as_json = "application/json; charset=utf-8"
        if method == "com.atproto.server.createSession":
            return json.dumps(_session()).encode(), as_json
        kind = self.garbage
        if kind not in GARBAGE:
            raise ValueError(f"unknown garbage {kind!r}; use one of {GARBAGE}")
        if kind == "empty":
            return b"", as_json
        if kind == "html":
            page = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
            return page, "text/html; charset=utf-8"
        if kind == "truncated":
            whole = json.dumps({"uri": f"at://{DID}/app.bsky.feed.post/x", "cid": "bafy"})
            return whole[: len(whole) // 2].encode(), as_json
        return json.dumps(_shaped(kind, method)).encode(), as_json


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _serve(self) -> None:
        pds: GarbagePDS = self.server.pds  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        method = urlsplit(self.path).path.removeprefix("/xrpc/")
        pds.calls.append(method)
        body, ctype = pds.answer(method)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()
