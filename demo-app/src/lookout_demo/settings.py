"""Settings for the shop and payments services, read from the environment.

Every value comes from a ``DEMO_``-prefixed variable (``DEMO_LOG_LEVEL``), except the two
that every platform names the same way: ``DATABASE_URL`` and ``REDIS_URL``. Standard
``OTEL_*`` variables are read by the OpenTelemetry SDK itself, not here. A bad value stops
start-up with a message that names the variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from lookout_telemetry.errortracking import check_dsn
from lookout_telemetry.scrub import shown_setting

__all__ = [
    "CommonSettings",
    "PaymentsSettings",
    "SettingsError",
    "ShopSettings",
    "get_payments_settings",
    "get_shop_settings",
    "load_settings",
]

ENV_PREFIX = "DEMO_"

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveSeconds = Annotated[float, Field(gt=0.0)]


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class CommonSettings(BaseSettings):
    """Settings that both services share."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: str = "shop"
    environment: str = "development"
    #: Revision (git sha) of the build; shown in the build-info metric.
    revision: str = "unknown"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Share of successful access-log lines written (errors and security events: always).
    log_success_sample_rate: Fraction = 1.0
    #: Master switch for traces, OTLP logs and request metrics (the overhead benchmark's "off").
    telemetry_enabled: bool = True

    database_url: str = Field(
        default="sqlite+aiosqlite:///./lookout-demo.db",
        validation_alias=AliasChoices("DATABASE_URL", "DEMO_DATABASE_URL"),
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "DEMO_REDIS_URL")
    )
    db_pool_size: Annotated[int, Field(ge=1)] = 5
    db_max_overflow: Annotated[int, Field(ge=0)] = 10
    db_pool_timeout_seconds: PositiveSeconds = 5.0
    #: A query slower than this is logged as a warning with its operation and duration.
    db_slow_query_seconds: PositiveSeconds = 0.5

    #: /health/live fails when the process's resident memory exceeds this many bytes.
    health_max_rss_bytes: Annotated[int, Field(gt=0)] = 768 * 1024 * 1024
    #: /health/ready reuses its dependency checks for this long (probes hit it often).
    health_cache_ttl_seconds: Annotated[float, Field(ge=0.0)] = 2.0
    #: Each readiness check (DB, cache, payments) gives up after this long.
    health_check_timeout_seconds: PositiveSeconds = 1.0

    #: After SIGTERM, readiness reads 503 for this long while requests are still served,
    #: so load balancers stop sending before the listener closes.
    shutdown_delay_seconds: Annotated[float, Field(ge=0.0)] = 5.0
    #: Then in-flight requests get this long to finish before they are cut.
    graceful_timeout_seconds: PositiveSeconds = 20.0

    #: Header a trusted proxy sets to the client's region (e.g. CloudFront-Viewer-Country);
    #: unset: every request's region is "unknown". Only a label: never trust it for more.
    region_header: str | None = None
    #: Region label values (comma-separated, lowercase); any other value is "other".
    regions: str = "eu,us,apac,latam,africa"

    #: Request bodies larger than this are refused with 413.
    max_body_bytes: Annotated[int, Field(gt=0)] = 64 * 1024
    #: Token that unlocks the fault-injection API; unset means the API is off (404).
    fault_token: SecretStr | None = None

    #: DSN of the Sentry-compatible error tracker (Bugsink); unset means error tracking is
    #: off, silently. Read from SENTRY_DSN, the name every Sentry SDK uses.
    sentry_dsn: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "DEMO_SENTRY_DSN")
    )

    @field_validator("fault_token")
    @classmethod
    def _empty_token_is_none(cls, token: SecretStr | None) -> SecretStr | None:
        """Treat an empty DEMO_FAULT_TOKEN as unset: empty unlocks nothing."""
        if token is not None and not token.get_secret_value().strip():
            return None
        return token

    @field_validator("sentry_dsn")
    @classmethod
    def _dsn(cls, dsn: SecretStr | None) -> SecretStr | None:
        """Blank (compose passes ``${VAR:-}`` through) is off; anything else must be a DSN."""
        value = None if dsn is None else check_dsn(dsn.get_secret_value())
        return None if value is None else SecretStr(value)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the URLs platforms hand out and pick the async driver for them."""
        for plain, async_scheme in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return async_scheme + url[len(plain) :]
        if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            msg = "must be a postgresql:// or sqlite:// URL"
            raise ValueError(msg)
        return url


S = TypeVar("S", bound="CommonSettings")


class ShopSettings(CommonSettings):
    """Settings of the shop service."""

    service_name: str = "shop"
    payments_url: str = "http://127.0.0.1:8001"
    payments_timeout_seconds: PositiveSeconds = 3.0
    catalog_cache_ttl_seconds: PositiveSeconds = 30.0
    session_ttl_seconds: Annotated[int, Field(gt=0)] = 3600
    #: PBKDF2 rounds for the demo users' passwords (kept moderate: load tests log in a lot).
    password_hash_iterations: Annotated[int, Field(ge=1000)] = 60_000
    #: Failed logins for one account or client address within the window that count as
    #: a brute-force attempt.
    bruteforce_max_failures: Annotated[int, Field(ge=1)] = 5
    bruteforce_window_seconds: PositiveSeconds = 300.0

    #: A product with this many units or fewer counts as low on stock.
    low_stock_threshold: Annotated[int, Field(ge=0)] = 10
    #: How often the restock task brings products at or below the low-stock threshold back
    #: up to ``restock_level``; 0 turns restocking off (tests that need stock to stay put).
    #: 300 s: a low product shows on the business dashboard (gauge refreshed every 15 s) for
    #: up to about 5.5 minutes (interval, gauge refresh, scrape), then is restocked: well
    #: inside ShopLowStock's ``for: 15m``, so the alert stays quiet in normal compose
    #: operation (the synthetic checkout and Locust buy all day) and fires only when
    #: restocks stop (two or three failed rounds in a row).
    restock_interval_seconds: Annotated[float, Field(ge=0.0)] = 300.0
    #: The stock a restocked product is brought back to; must be above the threshold. 100:
    #: the synthetic checkout alone (one unit a minute of the first product) takes 90 minutes
    #: to bring it back to the threshold, so low stock is seen now and then, not constantly.
    restock_level: Annotated[int, Field(ge=1)] = 100
    #: Feature flags file (flagd-style JSON, re-read when it changes); unset: the packaged
    #: defaults (lookout_demo/flags/default.json).
    flags_file: Path | None = None
    #: How often the inventory gauges (stock, reservations, low stock) are recomputed.
    inventory_refresh_seconds: PositiveSeconds = 15.0
    #: Where order confirmations go: smtp://host:port of a mail relay (compose: a local
    #: SMTP sink); unset means they are only logged (delivered to the log).
    smtp_url: str | None = None
    smtp_sender: str = "shop@lookout.example"
    #: How often the outbox worker looks for messages to deliver, and how many per round.
    outbox_poll_seconds: PositiveSeconds = 1.0
    outbox_batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    #: Failed deliveries are retried after this long, doubling per attempt (capped at 1 h).
    outbox_retry_seconds: PositiveSeconds = 5.0

    @field_validator("restock_level")
    @classmethod
    def _above_threshold(cls, level: int, info: ValidationInfo) -> int:
        """A restock must leave the product above the low-stock threshold."""
        threshold = info.data.get("low_stock_threshold")
        if threshold is not None and level <= threshold:
            msg = f"must be above DEMO_LOW_STOCK_THRESHOLD ({threshold})"
            raise ValueError(msg)
        return level


class PaymentsSettings(CommonSettings):
    """Settings of the payments service."""

    service_name: str = "payments"
    #: Share of authorisations declined at random (on top of the test decline card).
    failure_rate: Fraction = 0.0
    #: Added latency per authorisation, and its random spread, in milliseconds.
    latency_ms: Annotated[float, Field(ge=0.0)] = 20.0
    latency_jitter_ms: Annotated[float, Field(ge=0.0)] = 30.0


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build ``cls`` from the environment, raising SettingsError that names each variable."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            info = cls.model_fields.get(field)
            alias = info.validation_alias if info else None
            if info is None:  # pydantic reports an aliased field by the alias it read
                variable = field
            elif isinstance(alias, AliasChoices):
                variable = str(alias.choices[0])
            else:
                variable = ENV_PREFIX + field.upper()
            value = err.get("input")
            shown = shown_setting(cls, field, value)
            problems.append(f"{variable}={shown}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@lru_cache
def get_shop_settings() -> ShopSettings:
    """Return the shop's settings (cached; tests override the FastAPI dependency)."""
    return load_settings(ShopSettings)


@lru_cache
def get_payments_settings() -> PaymentsSettings:
    """Return the payments service's settings (cached)."""
    return load_settings(PaymentsSettings)
