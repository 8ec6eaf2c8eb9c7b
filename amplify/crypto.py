"""Encryption at rest for credentials, sessions and notification URLs (Fernet)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from amplify.config import get_settings
from amplify.errors import ConfigError


def _fernet() -> Fernet:
    try:
        return Fernet(get_settings().fernet_key())
    except ValueError as exc:
        raise ConfigError(
            "AMPLIFY_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes); "
            "generate one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        ) from exc


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        # Never echo the token: say what to fix instead.
        raise ConfigError(
            "stored credentials cannot be decrypted with this secret key; "
            "restore the original AMPLIFY_SECRET_KEY or data/secret.key, or reconnect the account"
        ) from exc


def encrypt_json(data: dict[str, Any]) -> str:
    return encrypt(json.dumps(data))


def decrypt_json(token: str) -> dict[str, Any]:
    value = json.loads(decrypt(token))
    if not isinstance(value, dict):
        raise ConfigError("stored credentials are not a mapping; reconnect the account")
    return value
