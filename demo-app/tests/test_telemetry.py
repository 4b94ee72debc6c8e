"""Traces, metrics and logs of the shop and payments, as a dashboard or an on-call reads them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from demo_support import ShopFactory, Spans, ThreadedServer, login, new_cart
from lookout_telemetry.logs import capture_json_logs

CARD = "4242 4242 4242 4242"


def _checkout(shop: TestClient, method: str = "card") -> httpx.Response:
    auth = login(shop)
    cart_id = new_cart(shop, (1, 1), (2, 2))
    payment = {"method": method, "card_number": CARD} if method == "card" else {"method": method}
    response = shop.post(
        "/api/checkout", json={"cart_id": cart_id, "payment": payment}, headers=auth
    )
    assert response.status_code == 201, response.text
    return response


def test_checkout_is_one_trace_across_shop_payments_and_db(shop: TestClient, spans: Spans) -> None:
    """A checkout's spans in shop, payments and the database share one trace, properly nested."""
    _checkout(shop)
    finished = spans.finished()
    server = next(
        s for s in finished if s.kind == SpanKind.SERVER and s.name == "POST /api/checkout"
    )
    trace_spans = [s for s in finished if s.context.trace_id == server.context.trace_id]
    names = {s.name for s in trace_spans}
    payments_server = next(
        s for s in trace_spans if s.kind == SpanKind.SERVER and s.name == "POST /v1/authorizations"
    )
    client = next(s for s in trace_spans if s.context.span_id == payments_server.parent.span_id)
    assert client.kind == SpanKind.CLIENT
    assert client.parent.span_id == server.context.span_id
    assert (
        client.attributes.get("http.request.method", client.attributes.get("http.method")) == "POST"
    )
    assert any(
        s.attributes.get("db.system") == "sqlite" or s.attributes.get("db.system.name") == "sqlite"
        for s in trace_spans
    )
    assert "POST /v1/authorizations/{payment_id}/capture" in names


def test_red_metrics_use_route_templates(shop: TestClient, registry: CollectorRegistry) -> None:
    """Request counts and durations are labelled by route template, never by raw path."""
    for product_id in (1, 2, 3):
        assert shop.get(f"/api/products/{product_id}").status_code == 200
    shop.get("/api/does-not-exist/123")
    shop.request("BREW", "/api/products/1")
    count = registry.get_sample_value(
        "http_server_requests_total",
        {"method": "GET", "route": "/api/products/{product_id}", "status_code": "200"},
    )
    unmatched = registry.get_sample_value(
        "http_server_requests_total",
        {"method": "GET", "route": "unmatched", "status_code": "404"},
    )
    duration_count = registry.get_sample_value(
        "http_server_request_duration_seconds_count",
        {"method": "GET", "route": "/api/products/{product_id}"},
    )
    made_up = registry.get_sample_value(
        "http_server_requests_total",
        {"method": "_OTHER", "route": "/api/products/{product_id}", "status_code": "405"},
    )
    assert (count, unmatched, duration_count, made_up) == (3.0, 1.0, 3.0, 1.0)
    routes = {
        s.labels.get("route")
        for m in registry.collect()
        for s in m.samples
        if s.name.startswith("http_server")
    }
    assert not any(r and re.search(r"/\d+$", r) for r in routes)


def test_latency_histogram_carries_trace_exemplars(shop: TestClient, spans: Spans) -> None:
    """The OpenMetrics scrape shows trace-id exemplars that name real traces."""
    shop.get("/api/products/4")
    response = shop.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    exemplars = [
        s.exemplar
        for family in text_string_to_metric_families(response.text)
        if family.name == "http_server_request_duration_seconds"
        for s in family.samples
        if s.exemplar is not None and s.labels.get("route") == "/api/products/{product_id}"
    ]
    trace_ids = {format(s.context.trace_id, "032x") for s in spans.finished()}
    assert exemplars
    assert all(e.labels["trace_id"] in trace_ids for e in exemplars)


def test_business_db_and_pool_metrics(shop: TestClient, registry: CollectorRegistry) -> None:
    """A paid order moves orders, revenue, order value, DB query and pool metrics."""
    _checkout(shop)
    value = registry.get_sample_value
    assert value("shop_orders_total", {"status": "paid"}) == 1.0
    assert value("shop_revenue_usd_total") == pytest.approx(189.0 + 2 * 15.0)
    assert value("shop_order_value_usd_count") == 1.0
    assert value("shop_items_sold_total", {"category": "optics"}) == 3.0
    assert (value("db_query_duration_seconds_count", {"operation": "SELECT"}) or 0) > 0
    assert (value("db_query_duration_seconds_count", {"operation": "UPDATE"}) or 0) >= 2
    assert (value("db_pool_wait_seconds_count") or 0) > 0
    assert value("db_pool_checked_out_connections") == 0.0
    assert (
        value(
            "lookout_demo_build_info",
            {"service": "shop", "version": "0.1.0", "revision": "unknown"},
        )
        == 1.0
    )


def test_payments_metrics_by_method_and_outcome(
    shop: TestClient, payments_server: ThreadedServer
) -> None:
    """The payments service counts authorisations and captures by method and outcome."""
    _checkout(shop, method="paypal")
    text = httpx.get(f"{payments_server.url}/metrics").text
    assert (
        'payments_transactions_total{method="paypal",operation="authorize",outcome="approved"} 1.0'
        in text
    )
    assert (
        'payments_transactions_total{method="paypal",operation="capture",outcome="captured"} 1.0'
        in text
    )


def test_cache_hits_and_misses(
    make_shop: ShopFactory, registry: CollectorRegistry, spans: Spans
) -> None:
    """The second read of a product is a cache hit: its request makes no database call."""
    shop = make_shop()
    # Judged by each request's own trace, not the pool's counters: the shop's background
    # tasks (outbox, inventory gauges) take pooled connections whenever they run.
    first = _database_calls(spans, lambda: shop.get("/api/products/6"))
    second = _database_calls(spans, lambda: shop.get("/api/products/6"))
    assert registry.get_sample_value("cache_misses_total", {"cache": "catalog"}) == 1.0
    assert registry.get_sample_value("cache_hits_total", {"cache": "catalog"}) == 1.0
    assert first, "the first read (a miss) made no database call: the spans are not recorded"
    assert not second, f"the cached read still queried the database: {second}"


def _database_calls(spans: Spans, request: Callable[[], object]) -> list[str]:
    """Make one request; return the names of the database spans in its own trace."""
    before = {span.context.span_id for span in spans.finished()}
    request()
    new = [span for span in spans.finished() if span.context.span_id not in before]
    (server,) = [span for span in new if span.kind == SpanKind.SERVER and span.parent is None]
    return [
        span.name
        for span in new
        if span.context.trace_id == server.context.trace_id
        and {"db.system", "db.system.name"} & set(span.attributes or {})
    ]


def test_bruteforce_is_detected_counted_and_blocked(
    make_shop: ShopFactory, registry: CollectorRegistry
) -> None:
    """Repeated failed logins are counted by reason, detected once, then refused with 429."""
    shop = make_shop(bruteforce_max_failures=3)
    with capture_json_logs(level="INFO") as lines:
        statuses = [
            shop.post(
                "/api/login", json={"email": "alice@example.com", "password": f"guess{n}"}
            ).status_code
            for n in range(4)
        ]
        shop.post("/api/login", json={"email": "mallory@example.com", "password": "x"})
    assert statuses == [401, 401, 401, 429]
    value = registry.get_sample_value
    assert value("auth_login_failures_total", {"reason": "bad_password"}) == 3.0
    assert value("auth_login_failures_total", {"reason": "blocked"}) == 2.0
    assert value("auth_bruteforce_detections_total", {"scope": "account"}) == 1.0
    assert value("auth_bruteforce_detections_total", {"scope": "client"}) == 1.0
    detections = [line for line in lines if line.get("event") == "bruteforce_detected"]
    assert len(detections) == 2
    assert all(line["security"] is True for line in detections)
    assert "alice@example.com" not in json.dumps(lines)


def test_logs_carry_trace_request_and_user_ids(shop: TestClient, spans: Spans) -> None:
    """Every line of a request, access log included, has its trace, span, request and user id."""
    auth = login(shop)
    with capture_json_logs(service="shop") as lines:
        response = shop.get("/api/me", headers={**auth, "X-Request-ID": "req-abc-123"})
    assert response.headers["x-request-id"] == "req-abc-123"
    access = next(line for line in lines if line["logger"] == "lookout_demo.access")
    server = next(s for s in spans.finished() if s.name == "GET /api/me")
    assert access["trace_id"] == format(server.context.trace_id, "032x")
    assert access["span_id"]
    assert access["request_id"] == "req-abc-123"
    assert access["route"] == "/api/me"
    assert access["user_id"] == "1"


def test_request_id_is_generated_when_missing_or_unsafe(shop: TestClient) -> None:
    """A missing or unsafe X-Request-ID is replaced by a generated one."""
    generated = shop.get("/api/products/1").headers["x-request-id"]
    unsafe = shop.get("/api/products/1", headers={"X-Request-ID": "bad id\nforged"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])


def test_secrets_never_reach_the_logs(shop: TestClient) -> None:
    """Passwords, tokens and card numbers sent to the shop appear in no log line."""
    with capture_json_logs(level="INFO") as lines:
        auth = login(shop)
        cart_id = new_cart(shop, (1, 1))
        shop.post(
            "/api/checkout",
            json={"cart_id": cart_id, "payment": {"method": "card", "card_number": CARD}},
            headers=auth,
        )
        shop.post("/api/login", json={"email": "alice@example.com", "password": "hunter2-secret"})
    written = json.dumps(lines)
    token = auth["Authorization"].split()[1]
    assert lines
    for secret in ("lookout-demo", "hunter2-secret", token, "4242424242424242", CARD):
        assert secret not in written


def test_health_and_metrics_requests_are_not_logged(shop: TestClient) -> None:
    """Probe and scrape requests write no access line; API requests do."""
    with capture_json_logs() as lines:
        shop.get("/health/live")
        shop.get("/health/ready")
        shop.get("/metrics")
        shop.get("/api/products/1")
    paths = [line.get("path") for line in lines if line["logger"] == "lookout_demo.access"]
    assert paths == ["/api/products/1"]


def test_unhandled_error_is_json_500_logged_and_on_the_span(shop: TestClient, spans: Spans) -> None:
    """An unhandled error answers JSON 500 with the request id, logs its stack, marks the span."""

    async def boom() -> None:
        msg = "kaboom in handler"
        raise RuntimeError(msg)

    shop.app.add_api_route("/api/boom", boom)  # type: ignore[attr-defined]
    with capture_json_logs() as lines:
        response = shop.get("/api/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": response.json()["message"],
        "request_id": "boom-1",
    }
    error = next(line for line in lines if line["logger"] == "lookout_demo.errors")
    assert error["exception"]["type"] == "RuntimeError"
    assert "kaboom in handler" in error["exception"]["stack"]
    assert error["request_id"] == "boom-1"
    span = next(s for s in spans.finished() if s.name == "GET /api/boom")
    assert span.status.status_code == StatusCode.ERROR
    assert any(event.name == "exception" for event in span.events)


def test_telemetry_off_means_no_metrics_and_no_spans(make_shop: ShopFactory, spans: Spans) -> None:
    """With DEMO_TELEMETRY_ENABLED=false the app serves but records no spans or metrics."""
    shop = make_shop(telemetry_enabled=False)
    assert shop.get("/api/products/1").status_code == 200
    assert shop.get("/metrics").status_code == 404
    assert not [s for s in spans.finished() if s.name.startswith("GET /api/products")]
