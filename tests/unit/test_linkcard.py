"""Link cards: Open Graph parsing, and reading pages safely (only from 127.0.0.1 here)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from connectors import linkcard
from connectors.base import ConnectorContext, OutgoingPost
from connectors.bluesky import BlueskyConnector
from connectors.linkcard import (
    LinkCard,
    fetch_card,
    fetch_image,
    is_public_address,
    is_public_host,
    parse_card,
)
from tests.unit.test_bluesky_unit import DID, HANDLE, fake_jwt

URL = "https://example.org/story"


def test_it_prefers_open_graph_tags() -> None:
    html = (
        "<html><head><title>Page title</title>"
        '<meta name="description" content="plain description">'
        '<meta property="og:title" content="  OG   title ">'
        '<meta property="og:description" content="OG description">'
        '<meta property="og:image" content="https://cdn.example.org/a.png">'
        "</head><body></body></html>"
    )
    assert parse_card(html, URL) == LinkCard(
        URL, "OG title", "OG description", "https://cdn.example.org/a.png"
    )


def test_it_falls_back_to_twitter_cards_then_title_and_description() -> None:
    twitter = '<meta name="twitter:title" content="T"><meta name="twitter:description" content="D">'
    assert parse_card(twitter, URL) == LinkCard(URL, "T", "D", None)
    plain = '<title>Just a title</title><meta name="description" content="Desc">'
    assert parse_card(plain, URL) == LinkCard(URL, "Just a title", "Desc", None)


def test_it_resolves_a_relative_image_against_the_page() -> None:
    card = parse_card(
        '<meta property="og:title" content="x"><meta property="og:image" content="/i.png">',
        URL,
        base_url="https://example.org/final/page",
    )
    assert card is not None and card.image_url == "https://example.org/i.png"


def test_it_drops_an_image_that_is_not_on_the_web() -> None:
    html = (
        '<meta property="og:title" content="x">'
        '<meta property="og:image" content="javascript:alert(1)">'
    )
    card = parse_card(html, URL)
    assert card is not None and card.image_url is None


def test_it_gives_no_card_for_a_page_without_title_or_description() -> None:
    assert parse_card("<html><body><h1>Hello</h1></body></html>", URL) is None


def test_it_ignores_meta_tags_in_the_body() -> None:
    html = '<head><title>Head</title></head><body><meta property="og:title" content="Body"></body>'
    card = parse_card(html, URL)
    assert card is not None and card.title == "Head"


def test_it_refuses_urls_that_are_not_http_or_https() -> None:
    assert fetch_card("ftp://example.org/x") is None
    assert fetch_card("file:///etc/passwd") is None
    assert fetch_card("not a url") is None
    assert fetch_image("data:image/png;base64,AAAA") is None


# --------------------------------------------------------------------------- over HTTP

PAGE = b'<html><head><meta property="og:title" content="Local story"></head></html>'
SEEN: list[str] = []
ROUTES: dict[str, tuple[int, str, bytes]] = {
    "/ok": (200, "text/html; charset=utf-8", PAGE),
    "/text": (200, "text/plain", b"plain"),
    "/error": (500, "text/html", PAGE),
    "/big": (
        200,
        "text/html",
        b'<head><meta property="og:title" content="Big page"></head><body>' + b"x" * 2_000_000,
    ),
    "/img": (200, "image/png", b"\x89PNG fake"),
    "/bigimg": (200, "image/png", b"0" * 100_000),
}


@pytest.fixture
def site() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/slow":
                time.sleep(1.5)
            SEEN.append(self.path)
            if self.path == "/redirect-inside":
                self.send_response(302)
                port = self.server.server_address[1]  # type: ignore[index]
                self.send_header("Location", f"http://127.0.0.1:{port}/ok")
                self.end_headers()
                return
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/ok")
                self.end_headers()
                return
            status, kind, body = ROUTES.get(self.path, (404, "text/html", b"missing"))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_it_reads_the_card_of_a_page(site: str) -> None:
    assert fetch_card(f"{site}/ok", allow_private=True) == LinkCard(f"{site}/ok", "Local story")


def test_it_follows_a_redirect_but_keeps_the_posted_link(site: str) -> None:
    card = fetch_card(f"{site}/redirect", allow_private=True)
    assert card is not None and card.url == f"{site}/redirect" and card.title == "Local story"


def test_it_gives_up_on_pages_that_are_not_readable_html(site: str) -> None:
    assert fetch_card(f"{site}/text", allow_private=True) is None
    assert fetch_card(f"{site}/error", allow_private=True) is None
    assert fetch_card(f"{site}/nothing-here", allow_private=True) is None


def test_it_gives_up_on_a_slow_page_within_its_timeout(site: str) -> None:
    started = time.monotonic()
    assert fetch_card(f"{site}/slow", allow_private=True, timeout=0.3) is None
    assert time.monotonic() - started < 1.4


def test_it_reads_only_the_head_of_a_huge_page(site: str) -> None:
    card = fetch_card(f"{site}/big", allow_private=True, max_bytes=64 * 1024)
    assert card is not None and card.title == "Big page"


def test_it_fetches_images_only_when_they_are_images_under_the_cap(site: str) -> None:
    assert fetch_image(f"{site}/img", allow_private=True) == b"\x89PNG fake"
    assert fetch_image(f"{site}/ok", allow_private=True) is None
    assert fetch_image(f"{site}/bigimg", allow_private=True, max_bytes=10_000) is None


def test_it_refuses_to_read_the_servers_own_network_by_default(site: str) -> None:
    assert fetch_card(f"{site}/ok") is None  # 127.0.0.1
    assert fetch_image(f"{site}/img") is None


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "[::1]", "localhost"]
)
def test_it_knows_private_and_local_addresses_are_not_public(host: str) -> None:
    assert not is_public_host(host.strip("[]"))


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
        "fe80::1",
        "fc00::1",
        "ff02::1",  # multicast
        "224.0.0.1",  # multicast (Python calls it global)
        "240.0.0.1",  # reserved
        "0.0.0.0",
        "100.64.0.1",  # carrier-grade NAT
    ],
)
def test_it_refuses_addresses_that_are_not_on_the_public_internet(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_it_accepts_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def _server(handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_it_checks_every_redirect_hop(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link on an allowed address that redirects to a refused one is not followed: here
    127.0.0.2 stands for a public server and 127.0.0.1 for the inside."""
    target = f"{site}/ok"

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    outside = _server(Redirect, "127.0.0.2")
    monkeypatch.setattr(linkcard, "is_public_address", lambda a: str(a) == "127.0.0.2")
    SEEN.clear()
    try:
        assert fetch_card(f"http://127.0.0.2:{outside.server_address[1]}/go") is None
        assert fetch_card(f"http://127.0.0.2:{outside.server_address[1]}/go", allow_private=True)
    finally:
        outside.shutdown()
        outside.server_close()
    assert SEEN == ["/ok"]  # reached only when private addresses were allowed


def test_it_connects_to_the_address_it_checked_when_the_name_rebinds(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address first, then 127.0.0.1. The fetch
    must connect to the address it checked, never look the name up again."""
    port = int(site.rsplit(":", 1)[1])
    answers = iter(["93.184.215.14"] + ["127.0.0.1"] * 10)
    real_lookup, real_connect = socket.getaddrinfo, socket.create_connection
    connected: list[str] = []

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            family = socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (next(answers), args[0] if args else 0))]
        return real_lookup(host, *args, **kwargs)

    def offline(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        """Connect only on this machine; record where each connection went."""
        host, where = address[0], address[1]
        ip = str(socket.getaddrinfo(host, where, type=socket.SOCK_STREAM)[0][4][0])
        connected.append(ip)
        if not ipaddress.ip_address(ip).is_loopback:
            raise ConnectionRefusedError("no internet in tests")
        return real_connect((ip, where), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket, "create_connection", offline)
    SEEN.clear()
    assert fetch_card(f"http://rebind.test:{port}/ok") is None
    assert SEEN == []  # the 127.0.0.1 server was never reached
    assert connected == ["93.184.215.14"]


@pytest.fixture
def dribbler() -> Iterator[str]:
    """A server that sends its headers, then one byte of the page every 1.5 s."""
    stop = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "60")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(60):
                    self.wfile.write(b"<")
                    self.wfile.flush()
                    if stop.wait(1.5):
                        return

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = _server(Slow)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_it_cuts_a_dribbling_server_at_the_deadline(dribbler: str) -> None:
    started = time.monotonic()
    assert fetch_card(f"{dribbler}/page", allow_private=True, timeout=2.0, deadline=2.5) is None
    elapsed = time.monotonic() - started
    assert 2.4 < elapsed < 3.5  # each read came within its 2 s, but the whole fetch is capped


def test_it_cuts_a_tls_handshake_that_dribbles_at_the_deadline() -> None:
    """Per-read timeouts do not bound a handshake fed a byte at a time; the deadline does."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def dribble() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):
            while not stop.wait(0.5):
                conn.send(b"\x16")  # the first byte of a TLS record, again and again

    threading.Thread(target=dribble, daemon=True).start()
    started = time.monotonic()
    try:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/"
        assert fetch_card(url, allow_private=True, deadline=1.5) is None
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - started < 2.5


def test_it_has_a_five_second_deadline_and_size_caps_by_default() -> None:
    assert linkcard.DEADLINE == 5.0
    assert linkcard.MAX_HTML_BYTES <= 1024 * 1024 and linkcard.MAX_IMAGE_BYTES == 5 * 1024 * 1024


# --------------------------------------------------------------------------- card images


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG header announcing ``width``×``height`` pixels, with a few rows of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width * 4 + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def test_it_publishes_the_card_without_a_picture_that_is_a_decompression_bomb() -> None:
    calls: list[str] = []
    records: list[dict[str, Any]] = []

    def pds(request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.removeprefix("/xrpc/")
        calls.append(nsid)
        if nsid == "com.atproto.server.createSession":
            jwt = fake_jwt()
            return httpx.Response(
                200, json={"accessJwt": jwt, "refreshJwt": jwt, "handle": HANDLE, "did": DID}
            )
        if nsid == "com.atproto.repo.getRecord":
            return httpx.Response(400, json={"error": "RecordNotFound", "message": "none"})
        if nsid == "com.atproto.repo.createRecord":
            body = json.loads(request.content)
            records.append(body)
            return httpx.Response(
                200, json={"uri": f"at://{DID}/app.bsky.feed.post/{body['rkey']}", "cid": "bafyok"}
            )
        return httpx.Response(501, json={"error": "MethodNotImplemented", "message": nsid})

    page = "https://example.org/story"
    bluesky = BlueskyConnector(
        ConnectorContext(HANDLE, "http://pds.invalid", {"app_password": "abcd-efgh-ijkl-mnop"}),
        transport=httpx.MockTransport(pds),
        fetch_card=lambda url: LinkCard(url, "Our story", "What happened", f"{url}/bomb.png"),
        fetch_image=lambda url: bomb_png(),
    )
    [receipt] = bluesky.publish(OutgoingPost(parts=("Read it",), idempotency_key="k", link=page))
    assert receipt.cid == "bafyok"
    external = records[0]["record"]["embed"]["external"]
    assert external["title"] == "Our story" and "thumb" not in external
    assert "com.atproto.repo.uploadBlob" not in calls
