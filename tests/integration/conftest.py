"""Integration helpers: the Bluesky accounts and a link page on 127.0.0.1.

The session-scoped ``atproto_network`` fixture itself lives in
tests/atproto_net/network.py and is imported by tests/conftest.py, so the contract suite
can use the same network; it starts only when a test asks for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from atproto_net.network import AtprotoNetwork, TestAccount
from bluesky_helpers import BlueskyAccounts, ConnectorFactory, LinkPage, png_bytes

from connectors import linkcard
from connectors.base import ConnectorContext
from connectors.bluesky import BlueskyConnector


@pytest.fixture(scope="module")
def bsky_accounts(atproto_network: AtprotoNetwork) -> BlueskyAccounts:
    return BlueskyAccounts(
        team=atproto_network.create_account("team"),
        bob=atproto_network.create_account("bob"),
        carol=atproto_network.create_account("carol"),
    )


@pytest.fixture
def bsky_connector(atproto_network: AtprotoNetwork) -> ConnectorFactory:
    """``bsky_connector(account, session=None, on_session_change=None, password=None)``."""

    def make(
        account: TestAccount,
        *,
        session: str | None = None,
        on_session_change: Callable[[str], None] | None = None,
        password: str | None = None,
    ) -> BlueskyConnector:
        context = ConnectorContext(
            handle=account.handle,
            service_url=atproto_network.pds_url,
            credentials={"app_password": password or account.app_password},
            session=session,
            on_session_change=on_session_change,
        )
        # The link pages of these tests live on 127.0.0.1, which cards refuse by default.
        return BlueskyConnector(
            context,
            fetch_card=partial(linkcard.fetch_card, allow_private=True),
            fetch_image=partial(linkcard.fetch_image, allow_private=True),
        )

    return make


PAGES: dict[str, tuple[str, bytes]] = {
    "/story": (
        "text/html; charset=utf-8",
        (
            b"<!doctype html><html><head><title>Fallback title</title>"
            b'<meta property="og:title" content="Clinic cuts ER waits by 40%">'
            b'<meta property="og:description" content="How a rural clinic changed triage.">'
            b'<meta property="og:image" content="/thumb.png">'
            b"</head><body><p>The story.</p></body></html>"
        ),
    ),
    "/thumb.png": ("image/png", png_bytes((120, 63))),
    "/plain": ("text/plain", b"no html here"),
}


@pytest.fixture
def link_page() -> Iterator[LinkPage]:
    """A tiny web server on 127.0.0.1 serving a page with Open Graph tags and its image."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            page = PAGES.get(self.path.split("?", 1)[0])
            if page is None:
                self.send_error(404)
                return
            kind, body = page
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LinkPage(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
