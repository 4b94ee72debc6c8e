"""Settings of the relay, read from ``RELAY_``-prefixed environment variables.

A bad or missing value stops start-up with a message that names the variable
(``RELAY_ROUTING_FILE: field required``). Standard ``OTEL_*`` variables are read by the
OpenTelemetry SDK itself, not here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from lookout_telemetry.errortracking import check_dsn
from webhook_relay.errors import SettingsError

__all__ = ["ENV_PREFIX", "Settings", "get_settings", "load_settings"]

ENV_PREFIX = "RELAY_"

PositiveSeconds = Annotated[float, Field(gt=0.0)]


def _read_secret_file(path: Path, variable: str) -> str:
    """Return the stripped content of a secret file, or fail naming the variable."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        msg = f"{variable}={path}: cannot read the file ({error.strerror})"
        raise SettingsError(msg) from error
    if not value:
        msg = f"{variable}={path}: the file is empty; it must hold the secret"
        raise SettingsError(msg)
    return value


class Settings(BaseSettings):
    """Every setting of the relay; required ones have no default."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    #: The routing YAML (targets and rules). Required: a relay without routes delivers nothing.
    routing_file: Path

    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    service_name: str = "webhook-relay"
    environment: str = "development"
    revision: str = "unknown"
    #: DSN of the Sentry-compatible error tracker (Bugsink); unset or empty means error
    #: tracking is off, silently. Read from SENTRY_DSN, the name every Sentry SDK uses.
    sentry_dsn: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "RELAY_SENTRY_DSN")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    #: sqlite:///path (WAL, zero set-up) or postgresql://... (several replicas share one queue).
    database_url: str = "sqlite:///./webhook-relay.db"

    #: Inbound authentication: bearer (default), basic, hmac, or none (explicit opt-out).
    auth_mode: Literal["bearer", "basic", "hmac", "none"] = "bearer"
    token: SecretStr | None = None
    token_file: Path | None = None
    basic_username: str | None = None
    basic_password: SecretStr | None = None
    basic_password_file: Path | None = None
    hmac_secret: SecretStr | None = None
    hmac_secret_file: Path | None = None
    #: An HMAC-signed request older or newer than this is refused (replay window).
    hmac_window_seconds: PositiveSeconds = 300.0

    #: Bodies larger than this are refused with 413 (Alertmanager caps a group at its
    #: max_alerts; 1 MiB holds a few thousand alerts).
    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    #: A notification with the same idempotency key within this window is acknowledged and
    #: not delivered again: the copy an Alertmanager HA peer sends (the second waits 15 s
    #: per position for the first's gossip) and Alertmanager's retries of one it did not see
    #: acknowledged. Keep it below the shortest repeat_interval, or repeats (the Watchdog
    #: heartbeat's, every 2m in alertmanager/alertmanager.yml) are swallowed as duplicates.
    #: 90 s: covers the peers of a pair twice over, and stays below 2m.
    dedup_window_seconds: PositiveSeconds = 90.0

    #: Concurrent deliveries per process; 0 makes an accept-only replica.
    workers: Annotated[int, Field(ge=0)] = 8
    delivery_timeout_seconds: PositiveSeconds = 10.0
    max_attempts: Annotated[int, Field(ge=1)] = 10
    backoff_base_seconds: PositiveSeconds = 1.0
    backoff_max_seconds: PositiveSeconds = 300.0
    #: A Retry-After longer than this is capped (a misbehaving target must not park a queue).
    retry_after_max_seconds: PositiveSeconds = 3600.0
    #: A claimed delivery whose worker vanished (kill -9) is taken again after this long.
    lease_seconds: PositiveSeconds = 30.0
    poll_interval_seconds: PositiveSeconds = 0.5
    breaker_failure_threshold: Annotated[int, Field(ge=1)] = 5
    breaker_cooldown_seconds: PositiveSeconds = 30.0

    #: Audit records and finished deliveries older than this are deleted.
    retention_days: Annotated[float, Field(gt=0.0)] = 30.0
    maintenance_interval_seconds: PositiveSeconds = 5.0

    #: After SIGTERM, in-flight deliveries get this long; the rest return to the queue.
    graceful_timeout_seconds: PositiveSeconds = 10.0

    @field_validator("sentry_dsn")
    @classmethod
    def _dsn(cls, dsn: SecretStr | None) -> SecretStr | None:
        """Blank (compose passes ``${VAR:-}`` through) is off; anything else must be a DSN."""
        value = None if dsn is None else check_dsn(dsn.get_secret_value())
        return None if value is None else SecretStr(value)

    @model_validator(mode="after")
    def _auth_configured(self) -> Settings:
        """Require the secret that the chosen auth mode needs."""
        if self.auth_mode == "bearer" and self.token is None and self.token_file is None:
            msg = (
                "RELAY_AUTH_MODE=bearer needs RELAY_TOKEN_FILE or RELAY_TOKEN "
                "(or set RELAY_AUTH_MODE=none to accept unauthenticated webhooks)"
            )
            raise ValueError(msg)
        if self.auth_mode == "basic" and (
            not self.basic_username
            or (self.basic_password is None and self.basic_password_file is None)
        ):
            msg = (
                "RELAY_AUTH_MODE=basic needs RELAY_BASIC_USERNAME and RELAY_BASIC_PASSWORD "
                "or RELAY_BASIC_PASSWORD_FILE"
            )
            raise ValueError(msg)
        if self.auth_mode == "hmac" and self.hmac_secret is None and self.hmac_secret_file is None:
            msg = "RELAY_AUTH_MODE=hmac needs RELAY_HMAC_SECRET_FILE or RELAY_HMAC_SECRET"
            raise ValueError(msg)
        if not self.database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            msg = "RELAY_DATABASE_URL must be a sqlite:///path or postgresql://... URL"
            raise ValueError(msg)
        return self

    def secret(self, kind: Literal["token", "basic_password", "hmac_secret"]) -> str:
        """Return a secret from its ``*_FILE`` (preferred) or its variable."""
        path: Path | None = getattr(self, f"{kind}_file")
        if path is not None:
            return _read_secret_file(path, f"{ENV_PREFIX}{kind.upper()}_FILE")
        value: SecretStr | None = getattr(self, kind)
        if value is None or not value.get_secret_value().strip():
            msg = f"{ENV_PREFIX}{kind.upper()} is empty"
            raise SettingsError(msg)
        return value.get_secret_value().strip()


def load_settings() -> Settings:
    """Read the settings, turning validation errors into one message naming each variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"])
            name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
            problems.append(f"{name}: {item['msg']}")
        raise SettingsError("; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings, read once (tests override the dependency)."""
    return load_settings()
