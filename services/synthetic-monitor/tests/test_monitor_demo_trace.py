"""The demo shop's server spans join the journey's trace (W3C traceparent end to end)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor_support import SERVICE, demo_support
from synthetic_monitor.config import load_config
from synthetic_monitor.runner import JourneyRunner


def test_the_shop_server_span_carries_the_journeys_trace_id(tmp_path: Path) -> None:
    """Run the example journeys against a real shop and payments; the shop's spans share ids."""
    support = demo_support()
    from lookout_demo.payments.app import create_app as create_payments_app
    from lookout_demo.shop.app import create_app as create_shop_app
    from lookout_demo.shop.seed import DEMO_PASSWORD

    spans = support.Spans()
    payments = create_payments_app(
        support.payments_settings(tmp_path), registry=CollectorRegistry(), telemetry=spans.telemetry
    )
    with support.ThreadedServer(payments) as payments_server:
        shop = create_shop_app(
            support.shop_settings(tmp_path, payments_url=payments_server.url),
            registry=CollectorRegistry(),
            telemetry=spans.telemetry,
        )
        with support.ThreadedServer(shop) as shop_server:
            config = load_config(
                SERVICE / "journeys",
                {"SHOP_URL": shop_server.url, "PAYMENTS_HOST": "127.0.0.1"},
            )
            runner = JourneyRunner(environ={"SHOP_DEMO_PASSWORD": DEMO_PASSWORD})

            async def run_all() -> dict[str, object]:
                names = ("shop-browse", "shop-login", "shop-checkout", "shop-ready")
                results = await asyncio.gather(*(runner.run(config.journeys[n]) for n in names))
                return {r.journey: r for r in results}

            results = asyncio.run(run_all())
    for name, result in results.items():
        assert result.success, f"{name}: {result.failure_reason()}"  # type: ignore[attr-defined]
    checkout = results["shop-checkout"]
    trace_id = int(checkout.trace_id, 16)  # type: ignore[attr-defined]
    server_spans = [
        s for s in spans.finished() if s.kind.name == "SERVER" and s.context.trace_id == trace_id
    ]
    routes = {s.attributes.get("http.route") for s in server_spans}
    assert {"/api/login", "/api/carts", "/api/checkout"} <= routes, routes
    step_span_ids = {step.span_id for step in checkout.steps}  # type: ignore[attr-defined]
    shop_spans = [s for s in server_spans if s.attributes.get("http.route", "").startswith("/api/")]
    # The shop's server spans are children of the journey's step spans (payments' server
    # spans are children of the shop's client spans, deeper in the same trace).
    assert all(format(s.parent.span_id, "016x") in step_span_ids for s in shop_spans), [
        (s.name, s.attributes.get("http.route")) for s in shop_spans
    ]
