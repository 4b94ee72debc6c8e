"""The storefront: server-rendered pages (Jinja2) over the shop's own API, with browser telemetry.

Browsing (catalog, product, cart) works without JavaScript; login and checkout call the shop's
JSON API with ``fetch``. The browser bundle (``demo-app/web``, built with esbuild into the
git-ignored ``static/dist``) adds OpenTelemetry JS, web-vitals and the Sentry browser SDK, all
configured from :mod:`lookout_demo.storefront.settings` through each page.
"""

from __future__ import annotations

from fastapi import FastAPI

from lookout_demo.storefront.pages import STATIC_DIR, STATIC_PREFIX, StorefrontStatic, router
from lookout_demo.storefront.settings import StorefrontSettings, get_storefront_settings

__all__ = ["mount_storefront"]


def mount_storefront(app: FastAPI, settings: StorefrontSettings | None = None) -> None:
    """Add the pages and their static files to the shop app (nothing when disabled)."""
    settings = settings or get_storefront_settings()
    if not settings.enabled:
        return
    app.state.storefront = settings
    app.include_router(router)
    app.mount(STATIC_PREFIX, StorefrontStatic(directory=STATIC_DIR), name="storefront-static")
