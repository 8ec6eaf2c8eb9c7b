"""Link cards: Open Graph parsing, and reading pages safely (only from 127.0.0.1 here)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors import linkcard
from connectors.linkcard import LinkCard, fetch_card, fetch_image, is_public_host, parse_card

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


def test_it_checks_every_redirect_hop(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link on an allowed host that redirects to a refused one is not followed."""
    monkeypatch.setattr(linkcard, "is_public_host", lambda host: host == "localhost")
    SEEN.clear()
    port = site.rsplit(":", 1)[1]
    assert fetch_card(f"http://localhost:{port}/redirect-inside") is None
    assert SEEN == ["/redirect-inside"]  # the hop to 127.0.0.1 was never requested
