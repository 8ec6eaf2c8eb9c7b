"""Typed settings, read from the environment (prefix ``AMPLIFY_``) and ``.env``."""

from __future__ import annotations

import logging
import os
import stat
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from amplify.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AMPLIFY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///data/amplify.db"
    secret_key: SecretStr | None = None
    timezone: str = "America/Chicago"
    embedded_worker: bool = True
    data_dir: Path = Field(default=ROOT / "data")
    # How long a claimed delivery stays leased before another worker may reconcile it.
    lease_seconds: int = 120
    # Snapshot ages after publishing, in minutes: 15 min, 1 h, 3 h, 6 h, 24 h, 3 d, 7 d, 30 d.
    metrics_schedule_minutes: list[int] = [15, 60, 180, 360, 1440, 4320, 10080, 43200]
    # Amplification waves: reposts are staggered at random across this window.
    amplify_window_minutes: tuple[int, int] = (15, 90)
    # Mastodon/X/Bluesky service URLs must be https; plain http only to 127.0.0.1/::1/localhost
    # when this is true (the test servers and the local atproto network).
    allow_insecure_loopback: bool = False
    # A folder CSV imports may also take images from (besides the CSV file's own folder).
    import_media_dir: Path | None = None
    # Where people open the dashboard (password reset links start with it).
    public_url: str = "http://localhost:8501"
    # Amplify's own log level; libraries (the scheduler, HTTP clients) stay at WARNING.
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        name = value.strip().upper()
        if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(
                f"AMPLIFY_LOG_LEVEL={value!r} is not a log level; use DEBUG, INFO, WARNING or ERROR"
            )
        return name

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as exc:  # ZoneInfoNotFoundError or a malformed key
            raise ValueError(
                f"AMPLIFY_TIMEZONE={value!r} is not a known time zone; use an IANA name "
                "such as 'America/Chicago'"
            ) from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        """The database URL with a relative SQLite path anchored at the project root."""
        url = self.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(ROOT / url[len(prefix) :])
        return url

    @property
    def key_file(self) -> Path:
        """Where the generated Fernet key lives (back it up with the database)."""
        return self.data_dir / "secret.key"

    def fernet_key(self) -> bytes | None:
        """The Fernet key: AMPLIFY_SECRET_KEY, else data/secret.key; None when neither exists.

        Never generates one: ``amplify.crypto`` decides, because a new key is only safe while
        the database holds nothing sealed with the old one.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        return read_key_file(self.key_file)


def private_dir(path: Path) -> None:
    """Create ``path`` (0700), or tighten it to 0700 when other users may enter it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)


def tighten_file(path: Path) -> None:
    """Make a private file 0600 when other users may read it (warns in the log)."""
    _tighten(path, 0o600)


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077 == 0:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise ConfigError(
            f"{path} can be read by other users on this machine and Amplify cannot change "
            f"that ({exc.strerror}); as its owner run: chmod {mode:o} {path}"
        ) from None
    log.warning("tightened %s from %o to %o: it was readable by other users", path, current, mode)


def read_key_file(path: Path) -> bytes | None:
    """The key in ``path`` (tightened to 0600 first), or None when there is no such file."""
    try:
        _tighten(path, 0o600)
        key = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    except PermissionError:
        raise ConfigError(
            f"the key file {path} cannot be read by this user; run Amplify as the user who "
            "owns it"
        ) from None
    try:
        Fernet(key)
    except ValueError:
        raise ConfigError(
            f"the key file {path} is damaged (it does not hold a valid key); put back the copy "
            "from your backup (the one taken with this database); if there is none, delete it "
            "and run `amplify accounts reset-credentials`"
        ) from None
    return key


def create_key_file(path: Path) -> bytes:
    """Write a new key to ``path`` (0600) unless one is there already; return the key."""
    private_dir(path.parent)
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = read_key_file(path)
        assert key is not None
        return key
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment)."""
    get_settings.cache_clear()
