"""The long tail of shop metrics: API versions, inventory gauges, the outbox and its worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry

from demo_support import ShopFactory, free_loopback_port, login, new_cart

CARD = "4242 4242 4242 4242"


def _wait(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll until check() is truthy; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout:g} s (last: {last!r})")


def test_v1_is_deprecated_with_headers_and_v2_pages(shop: Any, registry: CollectorRegistry) -> None:
    """v1 answers its old shape with Deprecation, Sunset and successor Link; v2 pages."""
    v1 = shop.get("/api/v1/products?limit=2")
    assert v1.status_code == 200
    assert v1.headers["deprecation"].startswith("@")
    assert v1.headers["sunset"].endswith("GMT")
    assert 'rel="successor-version"' in v1.headers["link"]
    assert set(v1.json()[0]) == {"id", "sku", "name", "category", "price", "in_stock"}
    v2 = shop.get("/api/v2/products?limit=5&offset=10")
    assert v2.status_code == 200
    assert "deprecation" not in v2.headers
    page = v2.json()
    assert (len(page["items"]), page["next_offset"]) == (3, None)
    shop.get("/api/v2/products")
    count = registry.get_sample_value
    assert count("api_version_requests_total", {"version": "v1", "deprecated": "true"}) == 1
    assert count("api_version_requests_total", {"version": "v2", "deprecated": "false"}) == 2


def test_inventory_gauges_follow_stock_and_carts(make_shop: ShopFactory) -> None:
    """Stock per category, low-stock products and units held in carts are gauged."""
    registry = CollectorRegistry()
    shop = make_shop(registry, inventory_refresh_seconds=0.05, low_stock_threshold=50)
    value = registry.get_sample_value
    _wait(lambda: value("shop_inventory_stock_units", {"category": "optics"}), "stock gauged")
    assert value("shop_inventory_stock_units", {"category": "optics"}) == 40 + 500 + 80
    assert value("shop_inventory_low_stock_items", {"category": "optics"}) == 1
    assert value("shop_inventory_low_stock_items", {"category": "navigation"}) == 1
    assert value("shop_inventory_stock_units", {"category": "other"}) == 0
    new_cart(shop, (2, 3), (7, 2))
    _wait(lambda: value("shop_inventory_reserved_units") == 5, "5 units reserved in carts")


class _Inbox:
    """An aiosmtpd handler that keeps each message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
        """Keep the message; answer 250."""
        from email import message_from_bytes

        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[str, _Inbox]]:
    """Run a real SMTP server (aiosmtpd) on a loopback port; yield its URL and inbox."""
    inbox = _Inbox()
    port = free_loopback_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()


def _checkout(shop: Any) -> str:
    auth = login(shop)
    cart_id = new_cart(shop, (2, 1))
    response = shop.post(
        "/api/checkout",
        json={"cart_id": cart_id, "payment": {"method": "card", "card_number": CARD}},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_paid_order_confirmation_goes_through_the_outbox_to_smtp(
    make_shop: ShopFactory, registry: CollectorRegistry, smtp_sink: tuple[str, _Inbox]
) -> None:
    """A paid order queues its confirmation; the worker sends it over SMTP and counts it."""
    url, inbox = smtp_sink
    shop = make_shop(smtp_url=url, outbox_poll_seconds=0.05)
    order_id = _checkout(shop)
    message = _wait(lambda: inbox.messages, "confirmation e-mail received")[0]
    assert order_id in message["Subject"]
    assert message["To"] == "alice@example.com"
    labels = {"topic": "order_paid", "outcome": "delivered"}
    _wait(lambda: registry.get_sample_value("outbox_deliveries_total", labels), "counted")
    _wait(lambda: registry.get_sample_value("outbox_pending_messages") == 0, "backlog empty")


def test_undeliverable_confirmation_stays_queued_and_ages(
    make_shop: ShopFactory, registry: CollectorRegistry
) -> None:
    """With the SMTP relay down, the message stays pending, is retried, and its age shows."""
    shop = make_shop(
        smtp_url=f"smtp://127.0.0.1:{free_loopback_port()}",
        outbox_poll_seconds=0.05,
        outbox_retry_seconds=0.05,
    )
    _checkout(shop)
    failed = {"topic": "order_paid", "outcome": "failed"}
    _wait(
        lambda: (registry.get_sample_value("outbox_deliveries_total", failed) or 0) >= 2,
        "two failed attempts",
    )
    assert registry.get_sample_value("outbox_pending_messages") == 1
    assert (registry.get_sample_value("outbox_oldest_pending_age_seconds") or 0) > 0


LAMP_OIL = 13  # the seeded age-restricted product


@pytest.mark.parametrize(
    ("verification", "status", "outcome"),
    [
        (None, 403, "missing"),
        ({"method": "id_document", "date_of_birth": "2015-05-01"}, 403, "failed"),
        ({"method": "credit_check", "date_of_birth": "1980-05-01"}, 201, "passed"),
    ],
    ids=["missing", "under-age", "adult"],
)
def test_age_restricted_checkout_needs_a_passing_verification(
    shop: Any,
    registry: CollectorRegistry,
    verification: dict[str, str] | None,
    status: int,
    outcome: str,
) -> None:
    """A cart with lamp oil checks out only with a passing age verification, counted."""
    assert shop.get(f"/api/products/{LAMP_OIL}").json()["age_restricted"] is True
    auth = login(shop)
    cart_id = new_cart(shop, (LAMP_OIL, 1))
    body: dict[str, Any] = {"cart_id": cart_id, "payment": {"method": "paypal"}}
    if verification is not None:
        body["age_verification"] = verification
    response = shop.post("/api/checkout", json=body, headers=auth)
    assert response.status_code == status, response.text
    value = registry.get_sample_value
    assert value("compliance_age_restricted_checkouts_total", {"verification": outcome}) == 1
    if verification is not None:
        labels = {"method": verification["method"], "outcome": outcome}
        assert value("compliance_age_verifications_total", labels) == 1
    if status == 403:
        assert response.json()["error"].startswith("age_verification_")
        # Refused before anything was reserved: the stock is untouched.
        assert shop.get(f"/api/products/{LAMP_OIL}").json()["stock"] == 120
