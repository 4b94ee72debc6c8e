"""The storefront end to end: a real browser's click, through the shop and payments, is one trace.

Headless Debian Chromium drives the storefront of a native shop and payments (the compose
services, tests/stack_support/native.py) whose spans go to the real Tempo 3.0.3, started from
tempo/tempo.yaml: the browser posts its own spans to Tempo's OTLP/HTTP receiver across origins
(CORS: the shop's address, substituted from the file's default like every other address).
The one setting the native run cannot derive: the browser's OTLP URL (in compose, the
collector's published port) points at Tempo's receiver here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from stack_support import poll_until, require_binary, require_listening
from stack_support.browser import browser, console_errors, require_bundle, screenshot, wait_for
from stack_support.native import NativeStack
from stack_support.receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SERVICES = ["tempo", "payments", "shop"]
#: Apps' logs would go to Loki, which this test does not run.
NO_LOGS = {"OTEL_LOGS_EXPORTER": "none", "DEMO_SHUTDOWN_DELAY_SECONDS": "0"}
#: A Redis database of its own: the machine's database 0 is the other native runs', whose
#: failed-login tests trip the shop's brute-force guard for every client on 127.0.0.1.
REDIS_URL = "redis://127.0.0.1:6379/13"
LOGIN_FAILED = "document.getElementById('login-status').classList.contains('error')"
VITALS = ("web_vitals.lcp_ms", "web_vitals.cls", "web_vitals.ttfb_ms", "web_vitals.inp_ms")
#: How long an image the early-click journey adds to the checkout page holds its load event
#: back: the telemetry (loaded after that event) is then not there when Pay is clicked.
LOAD_HELD_SECONDS = 8.0


@dataclass
class Journey:
    """What the browser did: the checkout page's trace id and the order it placed."""

    trace_id: str
    order_id: str
    stack: NativeStack


def _add_to_cart_and_log_in(driver: Any, shop: str) -> None:
    """From the product page just opened: add it to the cart, then log in as the demo user."""
    driver.find_element("id", "add-to-cart").click()
    wait_for(driver, "location.pathname === '/cart'")
    driver.get(f"{shop}/login")
    driver.find_element("id", "email").send_keys("alice@example.com")
    driver.find_element("id", "password").send_keys("lookout-demo")
    driver.find_element("id", "log-in").click()
    wait_for(driver, f"location.pathname === '/' || {LOGIN_FAILED}", timeout=20)
    if driver.execute_script("return location.pathname") != "/":
        pytest.fail(f"login failed: {driver.find_element('id', 'login-status').text}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    """Run Tempo, payments and the shop natively; the browser's spans go to Tempo."""
    require_binary("tempo")
    require_listening("PostgreSQL", "127.0.0.1", 5432)
    require_listening("Redis", "127.0.0.1", 6379)
    require_bundle()
    with WebhookReceiver() as prometheus:  # stands in for remote write: not under test here
        native = NativeStack(
            tmp_path_factory.mktemp("storefront-native"),
            SERVICES,
            endpoints={"prometheus:9090": prometheus.hostport},
        )
        native.extra_env = {
            "shop": {
                **NO_LOGS,
                "REDIS_URL": REDIS_URL,
                "DEMO_STOREFRONT_OTLP_TRACES_URL": native.url("tempo", 4318, "/v1/traces"),
            },
            "payments": NO_LOGS,
        }
        native.start()
        try:
            yield native
        finally:
            native.stop(grace=3.0)


@pytest.fixture(scope="module")
def journey(stack: NativeStack) -> Journey:
    """Browse, add to cart, log in, pay: return the checkout page's trace id and the order."""
    shop = stack.url("shop", 8000)
    with browser() as driver:
        driver.get(f"{shop}/products/1")
        driver.find_element("id", "quantity").click()
        _add_to_cart_and_log_in(driver, shop)
        driver.get(f"{shop}/checkout")
        trace_id = wait_for(driver, "window.lookoutTelemetry && window.lookoutTelemetry.traceId")
        driver.find_element("id", "cardholder").send_keys("Alice Example")
        driver.find_element("id", "card-number").send_keys("4242 4242 4242 4242")
        driver.find_element("id", "pay").click()
        wait_for(driver, "location.pathname.startsWith('/orders/')", timeout=20)
        order_id = driver.current_url.rsplit("/", 1)[1]
        wait_for(driver, "document.getElementById('order-status').textContent.startsWith('Status')")
        screenshot(driver, "e2e-order")
        errors = [e for e in console_errors(driver) if "favicon" not in e]
        assert not errors, f"browser console errors: {errors}"
    return Journey(trace_id=str(trace_id), order_id=order_id, stack=stack)


@contextmanager
def _slow_image_server() -> Iterator[str]:
    """Serve an image that takes LOAD_HELD_SECONDS to arrive; yield its URL."""

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(LOAD_HELD_SECONDS)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slow.png"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def early_journey(stack: NativeStack, journey: Journey) -> Journey:
    """Log in and pay before the pages' telemetry is there: return the checkout's trace id.

    Chromium returns from each navigation at DOMContentLoaded; on the checkout page an image
    that takes LOAD_HELD_SECONDS holds the load event back, so the telemetry (asked for after
    that event) has not even been requested when Pay is clicked: the inline bootstrap holds the
    click, loads the telemetry at once and replays the click once app.js's listeners are in.
    """
    shop = stack.url("shop", 8000)
    with _slow_image_server() as slow, browser(page_load_strategy="eager") as driver:
        driver.get(f"{shop}/products/2")
        _add_to_cart_and_log_in(driver, shop)
        held = driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument",
            {
                "source": "document.addEventListener('DOMContentLoaded', () => {"
                f" const img = new Image(); img.alt = ''; img.src = {json.dumps(slow)};"
                " document.body.append(img); });"
            },
        )
        driver.get(f"{shop}/checkout")
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", held)
        config = json.loads(
            driver.find_element("id", "lookout-config").get_attribute("textContent") or "{}"
        )
        driver.find_element("id", "cardholder").send_keys("Alice Example")
        driver.find_element("id", "card-number").send_keys("4242 4242 4242 4242")
        state = driver.execute_script(
            "return {loaded: performance.getEntriesByType('navigation')[0].loadEventEnd > 0,"
            " telemetry: Boolean(window.lookoutTelemetry)};"
        )
        assert state == {"loaded": False, "telemetry": False}, state
        driver.find_element("id", "pay").click()
        wait_for(driver, "location.pathname.startsWith('/orders/')", timeout=20)
        order_id = driver.current_url.rsplit("/", 1)[1]
    return Journey(trace_id=config["traceparent"].split("-")[1], order_id=order_id, stack=stack)


def _spans(stack: NativeStack, trace_id: str) -> list[dict[str, Any]]:
    """Return the trace's spans from Tempo, each with its service and attributes flattened."""
    response = httpx.get(stack.url("tempo", 3200, f"/api/v2/traces/{trace_id}"), timeout=5)
    response.raise_for_status()
    spans = []
    for batch in response.json().get("trace", {}).get("resourceSpans", []):
        resource = {a["key"]: a["value"] for a in batch.get("resource", {}).get("attributes", [])}
        service = resource.get("service.name", {}).get("stringValue", "?")
        for scope in batch.get("scopeSpans", []):
            for span in scope.get("spans", []):
                attributes = {
                    a["key"]: next(iter(a["value"].values()), None)
                    for a in span.get("attributes", [])
                }
                spans.append({"service": service, "name": span["name"], "attributes": attributes})
    return spans


def _complete(stack: NativeStack, trace_id: str, page_load: bool = True) -> list[dict[str, Any]]:
    spans = _spans(stack, trace_id)
    names = {(s["service"], s["name"]) for s in spans}
    wanted = [
        *([("storefront", "documentLoad")] if page_load else []),
        ("storefront", "click"),
        ("storefront", "POST"),  # the fetch: a CLIENT span named by its method
        ("shop", "POST /api/checkout"),
    ]
    missing = [w for w in wanted if w not in names]
    if not missing and any(s["service"] == "payments" for s in spans):
        return spans
    msg = f"missing {missing or 'payments spans'}; the trace has {sorted(names)}"
    raise AssertionError(msg)


def test_checkout_is_one_trace_from_the_browser_to_payments(journey: Journey) -> None:
    """The page's load, the Pay click, its fetch, the shop's and payments' spans: one trace."""
    spans = poll_until(
        lambda: _complete(journey.stack, journey.trace_id),
        f"trace {journey.trace_id} with browser, shop and payments spans in Tempo",
        timeout=30,
    )
    services = {s["service"] for s in spans}
    assert {"storefront", "shop", "payments"} <= services
    fetch = next(s for s in spans if s["name"] == "POST" and s["service"] == "storefront")
    assert str(fetch["attributes"].get("url.full", "")).endswith("/api/checkout"), fetch
    # The database is in it too: the shop's SQLAlchemy spans under the checkout.
    assert any(s["attributes"].get("db.system") for s in spans if s["service"] == "shop"), sorted(
        {s["name"] for s in spans}
    )
    print(f"trace {journey.trace_id}: {len(spans)} spans from {sorted(services)}")


def test_page_load_span_carries_the_web_vitals(journey: Journey) -> None:
    """The checkout page's document-load span has LCP, CLS, TTFB and INP as attributes."""
    spans = poll_until(
        lambda: _complete(journey.stack, journey.trace_id),
        f"trace {journey.trace_id} in Tempo",
        timeout=30,
    )
    load = next(s for s in spans if s["name"] == "documentLoad")
    missing = [v for v in VITALS if v not in load["attributes"]]
    assert not missing, f"documentLoad lacks {missing}: {load['attributes']}"
    # Tempo's JSON spells 64-bit integers as strings; every vital is a non-negative number.
    assert all(float(load["attributes"][v]) >= 0 for v in VITALS), load["attributes"]
    print({k: v for k, v in load["attributes"].items() if k.startswith("web_vitals.")})


def test_a_click_before_the_telemetry_is_there_is_still_one_trace(early_journey: Journey) -> None:
    """Pay clicked before the telemetry loaded: the held, replayed click and its fetch are traced.

    The page is left before its (held back) load event, so it has no documentLoad span.
    """
    spans = poll_until(
        lambda: _complete(early_journey.stack, early_journey.trace_id, page_load=False),
        f"trace {early_journey.trace_id} with the click, the fetch, shop and payments spans",
        timeout=30,
    )
    fetch = next(s for s in spans if s["name"] == "POST" and s["service"] == "storefront")
    assert str(fetch["attributes"].get("url.full", "")).endswith("/api/checkout"), fetch
    assert early_journey.order_id
