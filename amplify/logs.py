"""Logging set-up for the worker, the CLI and the dashboard: secrets never reach a log.

Two layers: the HTTP and OAuth libraries that print tokens at DEBUG (oauthlib signs
requests in the open, urllib3/httpx echo URLs with query tokens) are held at WARNING, and a
filter masks anything that still looks like a credential.
"""

from __future__ import annotations

import logging
import re

NOISY = (
    "oauthlib",
    "requests_oauthlib",
    "urllib3",
    "httpx",
    "httpcore",
    "atproto",
    "atproto_client",
    "mastodon",
    "tweepy",
    "apprise",
)

_PATTERNS = [
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|oauth)\s+)[^\s\"',]+"),
    re.compile(
        r"(?i)((?:access_?token|oauth_token|oauth_signature|api_?key|api_?secret|"
        r"password|app_password|refresh_?jwt|access_?jwt|token_secret)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"'&,}]+"
    ),
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure(level: int = logging.INFO) -> None:
    """Idempotent: safe to call from every entry point."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    for name in NOISY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
