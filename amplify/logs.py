"""Logging set-up for the worker, the CLI and the dashboard: quiet, and secrets never logged.

Quiet by default: Amplify's own loggers (``amplify``, ``connectors``) log at
``AMPLIFY_LOG_LEVEL`` (INFO unless set); everything else — the scheduler, which logs every
timer tick at INFO, and the HTTP and OAuth libraries, which print tokens at DEBUG — stays at
WARNING whatever that setting says. A filter masks anything that still looks like a credential.
"""

from __future__ import annotations

import logging
import re

# Our own loggers: these follow AMPLIFY_LOG_LEVEL.
OWN = ("amplify", "connectors")

# Libraries held at WARNING even when AMPLIFY_LOG_LEVEL=DEBUG: the scheduler logs two lines
# per timer tick at INFO; the HTTP/OAuth libraries echo tokens at DEBUG.
NOISY = (
    "apscheduler",
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
    # The web server's access log: a line per page asset (hundreds a minute), and the
    # sign-in handoff (/auth/session?h=...) carries a one-time credential in its address.
    "uvicorn.access",
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


def level_from_settings() -> int:
    """AMPLIFY_LOG_LEVEL as a logging level (INFO when the settings cannot be read)."""
    try:
        from amplify.config import get_settings

        name = get_settings().log_level
    except Exception:  # a broken setting elsewhere must not silence the log that says so
        return logging.INFO
    return logging.getLevelNamesMapping().get(name, logging.INFO)


def configure(level: int | None = None) -> None:
    """Idempotent: safe to call from every entry point. ``level`` (default: the setting)
    applies to Amplify's own loggers; other libraries log warnings and errors only."""
    own_level = level_from_settings() if level is None else level
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    root.setLevel(max(own_level, logging.WARNING))
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    for name in OWN:
        logging.getLogger(name).setLevel(own_level)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(own_level, logging.WARNING))
