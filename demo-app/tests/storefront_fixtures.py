"""A storefront served for real (shop and payments on loopback) for the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from demo_support import Spans, ThreadedServer, payments_settings, shop_settings
from lookout_demo.payments.app import create_app as create_payments_app
from lookout_demo.shop.app import create_app as create_shop_app
from lookout_demo.storefront.settings import StorefrontSettings

__all__ = ["served_storefront"]


@contextmanager
def served_storefront(
    workdir: Path, spans: Spans | None = None, **storefront: Any
) -> Iterator[tuple[str, Spans]]:
    """Run payments and a shop whose storefront has the given settings; yield the shop's URL."""
    spans = spans or Spans()
    payments = create_payments_app(
        payments_settings(workdir), registry=CollectorRegistry(), telemetry=spans.telemetry
    )
    with ThreadedServer(payments) as paying:
        app = create_shop_app(
            shop_settings(workdir, payments_url=paying.url),
            registry=CollectorRegistry(),
            telemetry=spans.telemetry,
        )
        app.state.storefront = StorefrontSettings(**storefront)
        with ThreadedServer(app) as shop:
            yield shop.url, spans
