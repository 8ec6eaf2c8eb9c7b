"""Link cards: read a page's Open Graph title, description and image.

Shared by every connector that shows a preview card for a link (Bluesky builds its
``app.bsky.embed.external`` from it). Reading a page is best effort: any page that
cannot be read quickly and safely gives ``None``, and the post goes out without a card.

Limits: only ``http``/``https``; ``timeout`` seconds per request (2 s by default);
at most ``max_bytes`` of the page (512 KB) or of the image (5 MB) are read; at most 5
redirects. Only public addresses are fetched unless ``allow_private=True``: a link in a
story must not make the server read its own network (loopback, private ranges, cloud
metadata) and publish what it found there. Every redirect hop is checked too.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0
MAX_HTML_BYTES = 512 * 1024
MAX_IMAGE_BYTES = 5 * 1024 * 1024
USER_AGENT = "AmplifyLinkCard/1.0 (+link preview for a scheduled post)"
_TITLE_MAX = 300
_DESCRIPTION_MAX = 1000


@dataclass(frozen=True)
class LinkCard:
    url: str  # the link as posted (not the page's canonical URL)
    title: str
    description: str = ""
    image_url: str | None = None


def is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class _MetaParser(HTMLParser):
    """Collects <meta property/name=… content=…> and the first <title> inside <head>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        if tag == "meta":
            values = {k.lower(): (v or "") for k, v in attrs}
            key = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content", "").strip()
            if key and content and key not in self.meta:
                self.meta[key] = content
        elif tag == "title" and not self.title:
            self._in_title = True
        elif tag == "body":
            self._done = True  # metadata lives in <head>

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "head":
            self._done = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse_card(html: str, url: str, base_url: str | None = None) -> LinkCard | None:
    """The card described by ``html`` (Open Graph first, then Twitter cards, then
    ``<title>``/``description``); None when the page names no title and no description."""
    parser = _MetaParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # malformed markup: keep whatever was read
        log.debug("link card: unparsable HTML at %s", url)
    meta = parser.meta

    def first(*keys: str) -> str:
        for key in keys:
            if meta.get(key):
                return " ".join(meta[key].split())
        return ""

    title = first("og:title", "twitter:title") or " ".join(parser.title.split())
    description = first("og:description", "twitter:description", "description")
    if not title and not description:
        return None
    image = first("og:image:secure_url", "og:image", "og:image:url", "twitter:image")
    image_url = urljoin(base_url or url, image) if image else None
    if image_url and not is_web_url(image_url):
        image_url = None
    return LinkCard(
        url=url,
        title=title[:_TITLE_MAX],
        description=description[:_DESCRIPTION_MAX],
        image_url=image_url,
    )


def _read_capped(response: httpx.Response, limit: int, *, truncate: bool = False) -> bytes | None:
    """The body; past ``limit`` bytes, its first ``limit`` bytes if ``truncate`` else None."""
    declared = response.headers.get("content-length")
    if not truncate and declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if size + len(chunk) > limit:
            if not truncate:
                return None
            chunks.append(chunk[: limit - size])
            break
        size += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


class RefusedHost(Exception):
    """The link points at an address that is not on the public internet."""


def is_public_host(host: str) -> bool:
    """Whether every address ``host`` resolves to is a global (public) one."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            return False
        if not address.is_global:
            return False
    return bool(infos)


def _guard(request: httpx.Request) -> None:
    if not is_public_host(request.url.host):
        raise RefusedHost(request.url.host)


def _client(timeout: float, allow_private: bool) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=5,
        headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"},
        event_hooks={"request": [] if allow_private else [_guard]},
    )


def fetch_card(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_HTML_BYTES,
    allow_private: bool = False,
) -> LinkCard | None:
    """Read ``url`` and return its card, or None if the page cannot be read (wrong scheme,
    non-public address, timeout, error status, not HTML, no title or description). Only the first
    ``max_bytes`` of a page are read."""
    if not is_web_url(url):
        return None
    try:
        with _client(timeout, allow_private) as client, client.stream("GET", url) as response:
            if response.status_code != 200:
                return None
            kind = response.headers.get("content-type", "").lower()
            if "html" not in kind:
                return None
            if not is_web_url(str(response.url)):
                return None
            # A page larger than the cap: its <head> is in the first bytes anyway.
            body = _read_capped(response, max_bytes, truncate=True) or b""
            encoding = response.encoding or "utf-8"
    except RefusedHost as exc:
        log.warning("link card: %s is not a public address; no card for %s", exc, url)
        return None
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError) as exc:
        log.info("link card: could not read %s (%s)", url, type(exc).__name__)
        return None
    try:
        html = body.decode(encoding, errors="replace")
    except LookupError:
        html = body.decode("utf-8", errors="replace")
    return parse_card(html, url, base_url=str(response.url))


def fetch_image(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_IMAGE_BYTES,
    allow_private: bool = False,
) -> bytes | None:
    """The bytes of the card's image, or None when it cannot be read or is not an image."""
    if not is_web_url(url):
        return None
    try:
        with _client(timeout, allow_private) as client, client.stream("GET", url) as response:
            if response.status_code != 200:
                return None
            if not response.headers.get("content-type", "").lower().startswith("image/"):
                return None
            return _read_capped(response, max_bytes)
    except RefusedHost as exc:
        log.warning("link card: %s is not a public address; no image from %s", exc, url)
        return None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        log.info("link card: could not read image %s (%s)", url, type(exc).__name__)
        return None
