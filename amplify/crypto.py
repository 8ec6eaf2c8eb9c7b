"""Encryption at rest for credentials, sessions and notification URLs (Fernet).

The key is AMPLIFY_SECRET_KEY or the file data/secret.key. A key is generated only while the
database holds nothing sealed: regenerating it silently would lock the connected accounts
away for good (and seal new ones with a key that turns wrong once the original is restored).
``verify_key`` runs when the dashboard, the worker and the CLI start and refuses to go on
with a missing or wrong key; a check value sealed with the key (setting ``secret_key_check``)
tells "wrong key" apart from "nothing stored yet".
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from amplify.config import create_key_file, get_settings, private_dir
from amplify.errors import ConfigError
from amplify.models import (
    Account,
    AccountStatus,
    AuditEvent,
    NotificationChannel,
    Setting,
    utcnow,
)

log = logging.getLogger(__name__)

#: Settings row holding a value sealed with the key, to recognise the right key.
CHECK_SETTING = "secret_key_check"
_CHECK_TEXT = "amplify secret key check"
RESET_COMMAND = "amplify accounts reset-credentials"
# (database URL, key) pairs already verified in this process: the dashboard checks on
# every rerun, and a right key stays right.
_verified: set[tuple[str, bytes]] = set()


def _where() -> str:
    settings = get_settings()
    if settings.secret_key is not None:
        return "AMPLIFY_SECRET_KEY"
    return f"the key file {settings.key_file}"


def _lost_key_help() -> str:
    return (
        f"If the key is lost for good, run `{RESET_COMMAND}`: it forgets the sealed "
        "credentials so you can reconnect each account (Accounts page → Reconnect, or "
        "`amplify accounts add` again) and re-enter notification channels."
    )


def _missing_key_message(sealed: int) -> str:
    path = get_settings().key_file
    return (
        f"the database holds {sealed} connected account(s) or notification channel(s) whose "
        f"credentials are sealed with a secret key, but the key file {path} is missing. "
        f"Restore secret.key from your backup (the one taken with this database) to {path}; "
        "Amplify will not make a new key, because that would lock those credentials away. "
        + _lost_key_help()
    )


def _wrong_key_message() -> str:
    return (
        f"{_where()} is not the key the stored credentials were sealed with. Put back the "
        f"original key ({get_settings().key_file}, or AMPLIFY_SECRET_KEY if you set one) from "
        "the backup taken with this database. " + _lost_key_help()
    )


def _fernet_of(key: bytes) -> Fernet:
    try:
        return Fernet(key)
    except ValueError as exc:  # only AMPLIFY_SECRET_KEY gets here: the file is checked on read
        raise ConfigError(
            "AMPLIFY_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes); "
            "generate one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        ) from exc


def _fernet() -> Fernet:
    settings = get_settings()
    key = settings.fernet_key()
    if key is None:
        key = _first_key()
    return _fernet_of(key)


def derived_fernet(purpose: str) -> Fernet:
    """A Fernet key for one purpose, derived (HKDF-SHA256) from the workspace key: what is
    sealed for one purpose cannot be opened as another, nor with the credentials' key."""
    base = get_settings().fernet_key() or _first_key()
    _fernet_of(base)  # a malformed AMPLIFY_SECRET_KEY: say so
    raw = base64.urlsafe_b64decode(base)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(raw)))


def _first_key() -> bytes:
    """A new key file, only if nothing in the database is sealed with an earlier key."""
    from amplify.db import session_scope

    try:
        with session_scope(readonly=True) as s:
            sealed = sealed_count(s)
    except (OperationalError, ProgrammingError):
        sealed = 0  # no tables yet: nothing can be sealed
    if sealed:
        raise ConfigError(_missing_key_message(sealed))
    return create_key_file(get_settings().key_file)


def sealed_count(s: Session) -> int:
    """How many rows hold values sealed with the key (accounts, notification channels)."""
    accounts = s.scalar(select(func.count()).select_from(Account)) or 0
    channels = s.scalar(select(func.count()).select_from(NotificationChannel)) or 0
    return int(accounts) + int(channels)


def _sample(s: Session) -> str | None:
    token = s.scalar(select(Account.credentials_enc).order_by(Account.id).limit(1))
    if token is None:
        token = s.scalar(
            select(NotificationChannel.url_enc).order_by(NotificationChannel.id).limit(1)
        )
    return token


def _opens(fernet: Fernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def verify_key(url: str | None = None) -> None:
    """Refuse to start when the stored credentials cannot be opened with the configured key.

    Missing key + sealed values: ConfigError naming the path. Wrong key: ConfigError. A
    workspace without the check value gets one, once the key is known to be right. A
    database without tables yet is left to ``amplify db upgrade``.
    """
    from amplify.db import database_url, session_scope

    data_dir = get_settings().data_dir
    if data_dir.exists():  # media, the key and maybe the database: only its owner enters
        private_dir(data_dir)
    url = url or database_url()
    key = get_settings().fernet_key()
    if key is not None and (url, key) in _verified:
        return
    try:
        with session_scope(url, readonly=True) as s:
            sealed = sealed_count(s)
            row = s.get(Setting, CHECK_SETTING)
            check = (row.value or {}).get("value") if row is not None else None
            sample = _sample(s)
    except (OperationalError, ProgrammingError):
        return  # no tables yet
    if key is None:
        if sealed:
            raise ConfigError(_missing_key_message(sealed))
        return  # the first credential saved makes the key
    fernet = _fernet_of(key)
    if not (isinstance(check, str) and _opens(fernet, check)):
        if sealed and (check is not None or (sample is not None and not _opens(fernet, sample))):
            raise ConfigError(_wrong_key_message())
        # Right key (it opens what is stored) or nothing stored yet: remember this key.
        with session_scope(url) as s:
            _save_check(s, fernet)
    _verified.add((url, key))


def _save_check(s: Session, fernet: Fernet) -> None:
    token = fernet.encrypt(_CHECK_TEXT.encode()).decode()
    row = s.get(Setting, CHECK_SETTING)
    if row is None:
        s.add(Setting(key=CHECK_SETTING, value={"value": token}))
    else:
        row.value = {"value": token}


def reset_credentials(s: Session) -> tuple[int, int]:
    """After a lost key: forget every sealed value so accounts can be reconnected.

    Accounts keep their history and need attention (Reconnect); notification channels, whose
    whole content is the sealed URL, are removed. Makes a key if there is none. Returns
    (accounts, channels). The caller's transaction; nothing here can be undone.
    """
    settings = get_settings()
    key = settings.fernet_key() or create_key_file(settings.key_file)
    fernet = _fernet_of(key)
    empty = fernet.encrypt(b"{}").decode()
    accounts = list(s.scalars(select(Account)))
    for account in accounts:
        account.credentials_enc = empty
        account.session_enc = None
        if account.status != AccountStatus.DISABLED:
            account.status = AccountStatus.NEEDS_ATTENTION
            account.last_error = (
                "The secret key was lost and its credentials were reset; reconnect this account."
            )
    channels = list(s.scalars(select(NotificationChannel)))
    for channel in channels:
        s.delete(channel)
    _save_check(s, fernet)
    s.add(
        AuditEvent(
            actor_id=None,
            at=utcnow(),
            action="credentials.reset",
            subject_type="account",
            subject_id=None,
            detail={"accounts": len(accounts), "channels_removed": len(channels)},
        )
    )
    s.flush()
    log.warning(
        "credentials reset after a lost key: %d account(s) need reconnecting, %d channel(s) "
        "removed",
        len(accounts),
        len(channels),
    )
    return len(accounts), len(channels)


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        # Never echo the token: say what to fix instead.
        raise ConfigError(
            "stored credentials cannot be decrypted with this secret key; "
            f"restore the original key ({get_settings().key_file} or AMPLIFY_SECRET_KEY) from "
            "your backup, or reconnect the account"
        ) from exc


def encrypt_json(data: dict[str, Any]) -> str:
    return encrypt(json.dumps(data))


def decrypt_json(token: str) -> dict[str, Any]:
    value = json.loads(decrypt(token))
    if not isinstance(value, dict):
        raise ConfigError("stored credentials are not a mapping; reconnect the account")
    return value
