"""Link cards: read a page's Open Graph title, description and image.

Shared by every connector that shows a preview card for a link (Bluesky builds its
``app.bsky.embed.external`` from it). Reading a page is best effort: any page that
cannot be read quickly and safely gives ``None``, and the post goes out without a card.

Limits (the caps, in one place):

- ``http``/``https`` only; at most ``MAX_REDIRECTS`` (5) redirects, each one checked;
- ``DEADLINE`` (5 s) for the whole fetch, every hop, name lookup and TLS handshake
  included, and ``timeout`` (2 s) for any single connect or read: a server dribbling a
  byte a second is cut at the deadline, not after a minute;
- at most ``MAX_HTML_BYTES`` of a page (512 KB: its ``<head>`` is at the start) and
  ``MAX_IMAGE_BYTES`` of an image (5 MB, refused beyond); no compressed transfer is asked
  for, so the caps count what is really read.

Only public addresses are fetched unless ``allow_private=True`` (tests): a link in a story
must not make the server read its own network (loopback, private ranges, cloud metadata)
and publish what it found there. Each host name is looked up once, every address it gives
must be public (IPv4 and IPv6, including IPv4 written inside IPv6), and the connection goes
to exactly the address that was checked, so a name that answers differently the second time
(DNS rebinding) cannot slip through. TLS still checks the certificate against the link's
host name. Environment proxies are ignored for the same reason.

The image bytes are not trusted: connectors pass them through ``amplify.media.check``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore
import httpx

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0  # seconds for one connect or one read
DEADLINE = 5.0  # seconds for the whole fetch, all hops included
MAX_REDIRECTS = 5
MAX_HTML_BYTES = 512 * 1024
MAX_IMAGE_BYTES = 5 * 1024 * 1024
USER_AGENT = "AmplifyLinkCard/1.0 (+link preview for a scheduled post)"
_TITLE_MAX = 300
_DESCRIPTION_MAX = 1000
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TIMEOUTS = ("connect", "read", "write", "pool")

#: ``resolve(host, port) -> [address, …]``; tests pass a stub.
Resolver = Callable[[str, int], list[str]]


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


# --------------------------------------------------------------------------- parsing


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


# --------------------------------------------------------------------------- addresses


class RefusedHost(Exception):
    """The link points at an address that is not on the public internet."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public_address(address: _IP) -> bool:
    """Whether ``address`` is on the public internet: not loopback, private, shared,
    link-local, multicast, reserved or unspecified, in IPv4 or IPv6, nor an IPv6 address
    wrapping such an IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded:
            return all(is_public_address(inner) for inner in embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_private
    )


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="linkcard-dns")


def _checked_addresses(
    host: str, port: int, resolve: Resolver, allow_private: bool, wait: float
) -> list[str]:
    """``host``'s addresses, looked up once (``wait`` seconds at most); RefusedHost when
    any of them is not public (unless ``allow_private``)."""
    try:
        literal = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = _lookups.submit(resolve, host, port).result(timeout=max(0.0, wait))
        except FutureTimeout:
            raise httpcore.ConnectTimeout(f"looking up {host} took too long") from None
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot look up {host}: {exc}") from None
    if not found:
        raise httpcore.ConnectError(f"{host} has no address")
    if not allow_private:
        for text in found:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise RefusedHost(host) from None
            if not is_public_address(address):
                raise RefusedHost(host)
    return found


def is_public_host(host: str, resolve: Resolver = system_resolve) -> bool:
    """Whether every address ``host`` resolves to is a public one."""
    try:
        _checked_addresses(host, 0, resolve, False, DEADLINE)
    except (RefusedHost, httpcore.ConnectError, httpcore.ConnectTimeout):
        return False
    return True


# --------------------------------------------------------------------------- connecting


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, guard: _Guard) -> None:
        self._inner = inner
        self._guard = guard

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._guard.wait(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._guard.wait(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = self._guard.wait(timeout, httpcore.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, wait)
        return _DeadlineStream(inner, self._guard)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Guard(httpcore.NetworkBackend):
    """Connects to checked addresses only, within one deadline for the whole fetch.

    httpcore hands ``connect_tcp`` the link's host name; the name is resolved here, once,
    and the socket is opened to that exact address. The TLS layer above still receives the
    host name, so the certificate is verified for it."""

    def __init__(self, resolve: Resolver, allow_private: bool, deadline: float) -> None:
        self._resolve = resolve
        self._allow_private = allow_private
        self._deadline = time.monotonic() + deadline
        self._backend = httpcore.SyncBackend()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._expired = False

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def wait(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.remaining()
        if left <= 0 or self._expired:
            raise error("the link card's time is up")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        wait = self.wait(timeout, httpcore.ConnectTimeout)
        addresses = _checked_addresses(host, port, self._resolve, self._allow_private, wait)
        last: Exception | None = None
        for address in addresses:  # every one was checked; take the first that answers
            try:
                stream = self._backend.connect_tcp(
                    address,
                    port,
                    timeout=self.wait(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            sock = stream.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets.append(sock)
            return _DeadlineStream(stream, self)
        raise last or httpcore.ConnectError(f"cannot connect to {host}")

    def expire(self) -> None:
        """The deadline passed: cut every connection (wakes a read blocked in a TLS
        handshake, which per-read timeouts alone would not bound)."""
        self._expired = True
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = ssl.create_default_context(cafile=certifi.where())
    return _SSL_CONTEXT


# --------------------------------------------------------------------------- fetching

_FETCH_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpx.InvalidURL,
    OSError,
    UnicodeError,
    ValueError,
)


@dataclass(frozen=True)
class _Fetched:
    url: str  # after redirects
    content_type: str
    body: bytes


def _fetch(
    url: str,
    *,
    accept: str,
    wanted: Callable[[str], bool],
    limit: int,
    truncate: bool,
    timeout: float,
    deadline: float,
    allow_private: bool,
    resolve: Resolver,
) -> _Fetched | None:
    """GET ``url``, following up to MAX_REDIRECTS redirects by hand (each hop connects
    through the guard). None for any status but 200, a content type ``wanted`` refuses,
    or a body over ``limit`` (unless ``truncate``: then its first ``limit`` bytes)."""
    guard = _Guard(resolve, allow_private, deadline)
    timer = threading.Timer(deadline, guard.expire)
    timer.daemon = True
    timer.start()
    try:
        with httpcore.ConnectionPool(
            ssl_context=_ssl_context(), network_backend=guard, max_connections=2, retries=0
        ) as pool:
            current = url
            for _ in range(MAX_REDIRECTS + 1):
                if not is_web_url(current):
                    return None
                target = httpx.URL(current)  # IDNA and percent-encoding done as httpx does
                with pool.stream(
                    "GET",
                    httpcore.URL(
                        scheme=target.raw_scheme,
                        host=target.raw_host,
                        port=target.port,
                        target=target.raw_path,
                    ),
                    headers=[
                        (b"Host", target.netloc),
                        (b"User-Agent", USER_AGENT.encode()),
                        (b"Accept", accept.encode()),
                        (b"Accept-Encoding", b"identity"),
                    ],
                    extensions={"timeout": dict.fromkeys(_TIMEOUTS, timeout)},
                ) as response:
                    headers = {
                        k.decode("latin-1").lower(): v.decode("latin-1")
                        for k, v in response.headers
                    }
                    if response.status in _REDIRECTS and headers.get("location"):
                        current = urljoin(current, headers["location"].strip())
                        continue
                    if response.status != 200:
                        return None
                    kind = headers.get("content-type", "").lower()
                    if not wanted(kind):
                        return None
                    body = _read_capped(response, headers, limit, truncate)
                    return None if body is None else _Fetched(current, kind, body)
            return None  # too many redirects
    finally:
        timer.cancel()


def _read_capped(
    response: httpcore.Response, headers: dict[str, str], limit: int, truncate: bool
) -> bytes | None:
    """The body; past ``limit`` bytes, its first ``limit`` bytes if ``truncate`` else None."""
    declared = headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_stream():
        if size + len(chunk) > limit:
            if not truncate:
                return None
            chunks.append(chunk[: limit - size])
            break
        size += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


def _charset(content_type: str) -> str:
    found = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type)
    return found[1] if found else "utf-8"


def fetch_card(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_HTML_BYTES,
    allow_private: bool = False,
    deadline: float = DEADLINE,
    resolve: Resolver = system_resolve,
) -> LinkCard | None:
    """Read ``url`` and return its card, or None if the page cannot be read (wrong scheme,
    non-public address, past the deadline, error status, not HTML, no title or description).
    Only the first ``max_bytes`` of a page are read."""
    if not is_web_url(url):
        return None
    try:
        page = _fetch(
            url,
            accept="text/html,application/xhtml+xml",
            wanted=lambda kind: "html" in kind,
            limit=max_bytes,
            truncate=True,  # a page larger than the cap: its <head> is in the first bytes
            timeout=timeout,
            deadline=deadline,
            allow_private=allow_private,
            resolve=resolve,
        )
    except RefusedHost as exc:
        log.warning("link card: %s is not a public address; no card for %s", exc, url)
        return None
    except _FETCH_ERRORS as exc:
        log.info("link card: could not read %s (%s)", url, type(exc).__name__)
        return None
    if page is None:
        return None
    try:
        html = page.body.decode(_charset(page.content_type), errors="replace")
    except LookupError:
        html = page.body.decode("utf-8", errors="replace")
    return parse_card(html, url, base_url=page.url)


def fetch_image(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_IMAGE_BYTES,
    allow_private: bool = False,
    deadline: float = DEADLINE,
    resolve: Resolver = system_resolve,
) -> bytes | None:
    """The bytes of the card's image (unchecked: pass them through ``amplify.media``), or
    None when they cannot be read, are not an image or are over ``max_bytes``."""
    if not is_web_url(url):
        return None
    try:
        found = _fetch(
            url,
            accept="image/*",
            wanted=lambda kind: kind.startswith("image/"),
            limit=max_bytes,
            truncate=False,
            timeout=timeout,
            deadline=deadline,
            allow_private=allow_private,
            resolve=resolve,
        )
    except RefusedHost as exc:
        log.warning("link card: %s is not a public address; no image from %s", exc, url)
        return None
    except _FETCH_ERRORS as exc:
        log.info("link card: could not read image %s (%s)", url, type(exc).__name__)
        return None
    return found.body if found is not None else None
