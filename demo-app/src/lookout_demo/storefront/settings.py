"""The storefront's settings: where the browser sends its telemetry, read from the environment.

Every value comes from a ``DEMO_STOREFRONT_``-prefixed variable and is rendered into each
page (``<script type="application/json" id="lookout-config">``), so the browser bundle holds
no address of its own. All of it is public by nature: a browser sees whatever a page holds.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lookout_demo.settings import SettingsError

__all__ = ["StorefrontSettings", "get_storefront_settings", "load_storefront_settings"]

ENV_PREFIX = "DEMO_STOREFRONT_"


class StorefrontSettings(BaseSettings):
    """Settings of the storefront pages and their browser telemetry."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    #: Pages and browser telemetry at all; off: the shop serves its JSON API only.
    enabled: bool = True
    #: The browser bundle (OpenTelemetry JS, web-vitals, Sentry) on each page; off: the pages
    #: work the same without it (the overhead benchmark's "off").
    telemetry_enabled: bool = True
    #: Where the browser posts its spans (OTLP/HTTP JSON), as the browser reaches it: compose,
    #: the collector's published port; the native run, Tempo. Unset: no spans are exported.
    otlp_traces_url: str | None = None
    #: The storefront project's DSN in the Sentry-compatible tracker (Bugsink), as the browser
    #: reaches it. Unset: browser errors are not reported. A DSN's key is public by design.
    sentry_dsn: str | None = None
    #: Share of page views whose browser spans are recorded (the shop's own sampler decides
    #: for the server spans; a page view inherits the server's decision when it has one).
    trace_sample_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0

    @field_validator("otlp_traces_url", "sentry_dsn")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """Treat empty as unset; anything else must be an http(s) URL a browser can reach."""
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            msg = "must be an http:// or https:// URL the browser can reach"
            raise ValueError(msg)
        return value.strip()


def load_storefront_settings(**overrides: object) -> StorefrontSettings:
    """Build the settings from the environment; SettingsError names each bad variable."""
    try:
        return StorefrontSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{str(err['loc'][0]).upper() if err['loc'] else '?'}"
            f"={err.get('input')!r}: {err['msg']}"
            for err in exc.errors()
        ]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@lru_cache
def get_storefront_settings() -> StorefrontSettings:
    """Return the storefront's settings (cached; a bad value names its variable)."""
    return load_storefront_settings()
