"""`lookout check` end to end: the native stack, traffic from the demo shop, every dashboard.

The native stack's Prometheus, Loki and Tempo (from the compose config files) and the shop
and payments; a few shoppers browse and check out while Prometheus scrapes. Then the real
command runs over every committed dashboard (grafana/dashboards/*.json) plus a small shop
dashboard of the check's own tests (services/lookout/tests/fixtures/shop.json, so the run
proves a Prometheus, a Loki and a Tempo panel over the shop whatever the committed ones hold).

Asserted: the report is produced; the shop's Prometheus, Loki and Tempo panels report data;
committed panels over the shop's HTTP metrics include data. Not every panel must have data
here (that is the end-to-end issue, with Locust load and the synthetic monitor): the summary
is printed (LOOKOUT_CHECK_VERBOSE=1 prints every panel without data, and why).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stack_support import poll_until, require_binary, require_listening
from stack_support.native import NativeStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parent.parent
SHOP_FIXTURE = ROOT / "services" / "lookout" / "tests" / "fixtures" / "shop.json"
SERVICES = ["prometheus", "loki", "tempo", "payments", "shop"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    """Start the backends and the shop natively; keep shoppers busy while the module runs."""
    for binary in ("prometheus", "loki", "tempo"):
        require_binary(binary)
    require_listening("PostgreSQL", "127.0.0.1", 5432)
    require_listening("Redis", "127.0.0.1", 6379)
    native = NativeStack(tmp_path_factory.mktemp("check"), SERVICES)
    native.start()
    stop = threading.Event()

    def shop() -> None:
        token = ""
        with httpx.Client(base_url=native.url("shop", 8000), timeout=10) as client:
            while not stop.wait(0.3):
                try:
                    if not token:
                        token = client.post(
                            "/api/login",
                            json={"email": "bob@example.com", "password": "lookout-demo"},
                        ).json()["token"]
                    client.get("/api/products")
                    cart = client.post("/api/carts").json()["id"]
                    client.post(f"/api/carts/{cart}/items", json={"product_id": 1, "quantity": 1})
                    client.post(
                        "/api/checkout",
                        json={"cart_id": cart, "payment": {"method": "card",
                              "card_number": "4242424242424242"}},
                        headers={"Authorization": f"Bearer {token}"},
                    )  # fmt: skip
                except (httpx.HTTPError, KeyError, ValueError):
                    continue  # a failed request is traffic too; the check reads the backends

    worker = threading.Thread(target=shop, name="shoppers", daemon=True)
    worker.start()
    try:
        yield native
    finally:
        stop.set()
        worker.join(timeout=15)
        native.stop()


def _shop_rate_visible(stack: NativeStack) -> bool:
    response = httpx.get(
        stack.url("prometheus", 9090, "/api/v1/query"),
        params={"query": 'sum(rate(http_server_requests_total{job="shop"}[1m])) > 0'},
        timeout=5,
    )
    return bool(response.json()["data"]["result"])


def test_check_reports_every_dashboard_with_shop_panels_having_data(stack: NativeStack) -> None:
    """The command checks all dashboards; the shop's metric, log and trace panels have data."""
    poll_until(lambda: _shop_rate_visible(stack), "a rate of the shop's requests", timeout=90)
    committed = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    command = [
        sys.executable, "-m", "lookout_stack", "check", *map(str, committed), str(SHOP_FIXTURE),
        "--prometheus", stack.url("prometheus", 9090), "--loki", stack.url("loki", 3100),
        "--tempo", stack.url("tempo", 3200), "--from", "now-10m", "--var", "service=shop",
        "--json",
    ]  # fmt: skip

    def run() -> dict[str, object] | None:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode in {0, 1}, done.stderr[-2000:]
        report = json.loads(done.stdout)
        shop = next(d for d in report["dashboards"] if d["file"] == str(SHOP_FIXTURE))
        ready = all(p["status"] == "data" for p in shop["panels"])
        run.last = report  # type: ignore[attr-defined]
        return report if ready else None

    started = time.monotonic()
    try:
        report = poll_until(run, "every panel of the shop fixture to have data", 60, 3)
    except AssertionError:
        print(json.dumps(run.last["dashboards"][-1], indent=2))  # type: ignore[attr-defined]
        raise
    summary = report["summary"]
    print(f"\nlookout check over {len(committed)} committed dashboards + the shop fixture "
          f"({time.monotonic() - started:.1f} s): {summary}")  # fmt: skip
    for line in report["unchecked"]:
        print(f"  not checkable: {line}")
    if os.environ.get("LOOKOUT_CHECK_VERBOSE"):
        for dashboard in report["dashboards"]:
            for panel in dashboard["panels"]:
                if panel["status"] != "data":
                    why = "; ".join(f"{t['refId']}: {t['detail']}" for t in panel["targets"])
                    print(f"  {panel['status']:<9} {dashboard['uid']} {panel['title']!r}: {why}")
    assert summary["dashboards"] == len(committed) + 1
    shop_panels = [
        p
        for d in report["dashboards"]
        if d["file"] != str(SHOP_FIXTURE)
        for p in d["panels"]
        if p["targets"]
        and all(t["datasource"] == "prometheus" for t in p["targets"])
        and any("http_server_request" in t["query"] and "shop" in t["query"] for t in p["targets"])
    ]
    for panel in shop_panels:
        print(f"  shop panel {panel['title']!r}: {panel['status']}")
    # The service and overview dashboards query the shop's request series: finding none means
    # the filter above no longer matches them, which must fail rather than pass vacuously.
    assert shop_panels, "no committed panel queries http_server_request* of the shop"
    assert any(p["status"] == "data" for p in shop_panels), shop_panels
