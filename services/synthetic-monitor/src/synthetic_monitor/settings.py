"""Settings for ``synthetic-monitor serve``, read from ``MONITOR_``-prefixed variables.

``MONITOR_CONFIG_PATH`` (a journeys file or directory) is required. ``DATABASE_URL`` is not
read (the shop's), so history is ``MONITOR_DATABASE_URL``. Standard ``OTEL_*`` variables are
read by the OpenTelemetry SDK. A bad value stops start-up with a message naming the variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lookout_telemetry.errortracking import check_dsn
from lookout_telemetry.scrub import shown_setting

__all__ = ["ENV_PREFIX", "MonitorSettings", "SettingsError", "get_settings", "load_settings"]

ENV_PREFIX = "MONITOR_"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class MonitorSettings(BaseSettings):
    """Everything ``serve`` needs; each field is ``MONITOR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    #: A journeys file or a directory of them (required: there is nothing to do without).
    config_path: Path
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8090
    service_name: str = "synthetic-monitor"
    environment: str = "development"
    #: The build's git revision: part of the release error reports are filed under.
    revision: str = "unknown"
    #: DSN of the Sentry-compatible error tracker (Bugsink); unset or empty means error
    #: tracking is off, silently. Read from SENTRY_DSN, the name every Sentry SDK uses.
    sentry_dsn: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "MONITOR_SENTRY_DSN")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: History: sqlite+aiosqlite:///path.db (default) or postgresql+asyncpg://user@host/db.
    database_url: str = "sqlite+aiosqlite:///./synthetic-monitor.db"
    #: Runs older than this are deleted (30-day uptime needs at least 30).
    history_retention_days: Annotated[int, Field(ge=30)] = 35
    #: Link to a trace on the status page; ``{trace_id}`` is replaced. Grafana Explore/Tempo.
    trace_url_template: str = (
        "http://localhost:3000/explore?schemaVersion=1&panes=%7B%22t%22:%7B%22datasource%22:"
        "%22tempo%22,%22queries%22:%5B%7B%22refId%22:%22A%22,%22datasource%22:%7B%22type%22:"
        "%22tempo%22,%22uid%22:%22tempo%22%7D,%22queryType%22:%22traceql%22,%22query%22:"
        "%22{trace_id}%22%7D%5D,%22range%22:%7B%22from%22:%22now-1h%22,%22to%22:%22now%22%7D%7D%7D"
    )
    #: Also reload when a journeys file changes (seconds between looks; 0 = SIGHUP only).
    reload_poll_seconds: Annotated[float, Field(ge=0.0)] = 0.0
    #: On SIGTERM, runs in progress get this long to finish before they are cancelled.
    shutdown_grace_seconds: Annotated[float, Field(ge=0.0)] = 10.0

    @field_validator("sentry_dsn")
    @classmethod
    def _dsn(cls, dsn: SecretStr | None) -> SecretStr | None:
        """Blank (compose passes ``${VAR:-}`` through) is off; anything else must be a DSN."""
        value = None if dsn is None else check_dsn(dsn.get_secret_value())
        return None if value is None else SecretStr(value)


def load_settings(**overrides: object) -> MonitorSettings:
    """Read the settings; raise SettingsError naming each bad or missing variable."""
    try:
        return MonitorSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            field = str(item["loc"][0]) if item["loc"] else "?"
            name = ENV_PREFIX + field.upper()
            if item["type"] == "missing":
                problems.append(f"{name} is required but not set")
            else:
                shown = shown_setting(MonitorSettings, field, item.get("input"))
                problems.append(f"{name}={shown}: {item['msg']}")
        raise SettingsError("; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> MonitorSettings:
    """Return the process's settings (cached; tests build their own)."""
    return load_settings()
