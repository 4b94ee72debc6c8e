"""The long tail of shop metrics: API versions, inventory gauges, the outbox and its worker."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry

from demo_support import ShopFactory, Spans, login, new_cart
from lookout_demo.flags import FeatureFlags
from lookout_demo.shop import experiments
from lookout_demo.web.clients import classify_user_agent
from stack_support.backends import free_port

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
    port = free_port()
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
        smtp_url=f"smtp://127.0.0.1:{free_port()}",
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


# --- feature flags, experiments, client classes ----------------------------------------------

FLAGS = {
    "flags": {
        "order_confirmation_email": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        "catalog_banner": {
            "state": "ENABLED",
            "variants": {"none": "", "sale": "Sale!"},
            "defaultVariant": "none",
        },
    }
}


def _write_flags(path: Path, banner: str, email: str = "on") -> None:
    document = json.loads(json.dumps(FLAGS))
    document["flags"]["catalog_banner"]["defaultVariant"] = banner
    document["flags"]["order_confirmation_email"]["defaultVariant"] = email
    path.write_text(json.dumps(document), encoding="utf-8")
    # Move the mtime forward explicitly: two writes within one clock tick look unchanged.
    stamp = time.time() + len(banner)
    os.utime(path, (stamp, stamp))


def test_flags_hot_reload_and_are_counted_and_traced(
    tmp_path: Path, spans: Spans, registry: CollectorRegistry
) -> None:
    """A changed flags file takes effect; evaluations are counted and put on the span."""
    path = tmp_path / "flags.json"
    _write_flags(path, "none")
    flags = FeatureFlags(path, registry, check_interval_seconds=0.0)
    tracer = spans.telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        assert flags.text("catalog_banner", "x", user_id="7") == ""
        _write_flags(path, "sale")
        assert flags.text("catalog_banner", "x", user_id="7") == "Sale!"
        path.write_text("{not json", encoding="utf-8")
        os.utime(path, (time.time() + 100, time.time() + 100))
        assert flags.text("catalog_banner", "x", user_id="7") == "Sale!"  # bad file: kept
        assert flags.text("no_such_flag", "fallback") == "fallback"
    value = registry.get_sample_value
    for variant in ("none", "sale"):
        labels = {"flag": "catalog_banner", "variant": variant}
        assert value("feature_flag_evaluations_total", labels) >= 1
    assert value("feature_flag_evaluations_total", {"flag": "other", "variant": "error"}) == 1
    (span,) = spans.finished()
    events = [e for e in span.events if e.name == "feature_flag.evaluation"]
    assert events[1].attributes["feature_flag.key"] == "catalog_banner"
    assert events[1].attributes["feature_flag.result.variant"] == "sale"
    assert events[1].attributes["feature_flag.provider.name"] == "lookout-file"
    assert events[1].attributes["feature_flag.context.id"] == "7"


def test_confirmation_email_flag_off_queues_nothing(make_shop: ShopFactory, tmp_path: Path) -> None:
    """With order_confirmation_email off in the flags file, a paid order queues no e-mail."""
    path = tmp_path / "flags.json"
    _write_flags(path, "none", email="off")
    registry = CollectorRegistry()
    shop = make_shop(registry, flags_file=path, outbox_poll_seconds=0.05)
    _checkout(shop)
    assert shop.app.state.outbox.delivered == 0  # type: ignore[attr-defined]
    _wait(lambda: registry.get_sample_value("outbox_pending_messages") == 0, "no message pending")
    labels = {"flag": "order_confirmation_email", "variant": "off"}
    assert registry.get_sample_value("feature_flag_evaluations_total", labels) == 1


def test_experiment_assignment_is_stable_and_balanced() -> None:
    """A user always gets the same variant; over many users the split follows the weights."""
    assert {experiments.assign("checkout_button", "42") for _ in range(5)} == {
        experiments.assign("checkout_button", "42")
    }
    split = Counter(experiments.assign("free_shipping_banner", str(n)) for n in range(4000))
    assert 0.17 < split["banner"] / 4000 < 0.23


def test_assignments_and_conversions_per_variant(shop: Any, registry: CollectorRegistry) -> None:
    """Showing a user their variants counts assignments; their paid order counts conversions."""
    auth = login(shop)
    shown = shop.get("/api/experiments", headers=auth).json()
    assert set(shown["experiments"]) == set(experiments.EXPERIMENTS)
    _checkout(shop)
    for name, variant in shown["experiments"].items():
        labels = {"experiment": name, "variant": variant}
        assert registry.get_sample_value("experiment_assignments_total", labels) == 1
        assert registry.get_sample_value("experiment_conversions_total", labels) == 1


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (IPHONE, ("safari", "ios", "mobile")),
        (WINDOWS_CHROME, ("chrome", "windows", "desktop")),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            ("other", "other", "bot"),
        ),
        ("made-up-client/9 " + "x" * 5000, ("other", "other", "other")),
        ("", ("other", "other", "other")),
    ],
    ids=["iphone", "windows-chrome", "bot", "made-up", "none"],
)
def test_user_agents_map_onto_allow_lists(user_agent: str, expected: tuple[str, str, str]) -> None:
    """Each User-Agent lands on allow-listed browser, OS and device labels, else other."""
    client = classify_user_agent(user_agent)
    assert (client.browser, client.os, client.device) == expected


def test_requests_are_counted_by_client_class_and_region(make_shop: ShopFactory) -> None:
    """Requests count by client class and trusted-header region; errors are segmented too."""
    registry = CollectorRegistry()
    shop = make_shop(registry, region_header="X-Region", regions="eu,us")
    shop.get("/api/products", headers={"User-Agent": IPHONE, "X-Region": "EU"})
    shop.get("/api/products/999", headers={"User-Agent": WINDOWS_CHROME, "X-Region": "mars"})
    shop.get("/api/products", headers={"User-Agent": WINDOWS_CHROME})
    value = registry.get_sample_value
    iphone = {"browser": "safari", "os": "ios", "device": "mobile", "outcome": "success"}
    assert value("http_server_requests_by_client_total", iphone) == 1
    chrome_404 = {
        "browser": "chrome",
        "os": "windows",
        "device": "desktop",
        "outcome": "client_error",
    }
    assert value("http_server_requests_by_client_total", chrome_404) == 1
    assert (
        value("http_server_requests_by_region_total", {"region": "eu", "outcome": "success"}) == 1
    )
    assert (
        value(
            "http_server_requests_by_region_total", {"region": "other", "outcome": "client_error"}
        )
        == 1
    )
    assert (
        value("http_server_requests_by_region_total", {"region": "unknown", "outcome": "success"})
        == 1
    )
