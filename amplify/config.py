"""Typed settings, read from the environment (prefix ``AMPLIFY_``) and ``.env``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


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

    def fernet_key(self) -> bytes:
        """The Fernet key: from settings, else generated once into data/secret.key (0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not each write a different key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return path.read_bytes().strip()
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return path.read_bytes().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment)."""
    get_settings.cache_clear()
