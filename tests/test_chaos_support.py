"""The chaos tests' own tools, checked without a stack: the partitioning proxy, arrival times,
the journeys' test intervals, and per-service address overrides of the native stack.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from stack_support.arrivals import Arrivals
from stack_support.faults import TcpProxy
from stack_support.native import NativeStack
from stack_support.receiver import WebhookReceiver
from stack_support.timing import retime_journeys

ROOT = Path(__file__).resolve().parent.parent
JOURNEYS = ROOT / "services" / "synthetic-monitor" / "journeys"


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """Run a TCP echo server on loopback."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield str(host), int(port)
    finally:
        server.shutdown()
        server.server_close()


def _connect(proxy: TcpProxy) -> socket.socket:
    host, port = proxy.hostport.split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _silent(sock: socket.socket, seconds: float) -> bool:
    """Return whether nothing arrives on ``sock`` for ``seconds``."""
    sock.settimeout(seconds)
    try:
        sock.recv(4096)  # data, or b"" for a closed connection: not silent
    except TimeoutError:
        return True
    return False


def test_proxy_forwards_until_partitioned_then_delivers_the_held_bytes(
    echo: tuple[str, int],
) -> None:
    """A partition silences open and new connections without closing them; heal delivers all."""
    with TcpProxy(echo) as proxy:
        open_conn = _connect(proxy)
        open_conn.sendall(b"before")
        assert open_conn.recv(4096) == b"before"

        proxy.partition()
        assert proxy.partitioned
        open_conn.sendall(b"during")
        new_conn = _connect(proxy)  # accepted, as a SYN is; then nothing
        new_conn.sendall(b"new")
        assert _silent(open_conn, 0.5)
        assert _silent(new_conn, 0.5)

        proxy.heal()
        open_conn.settimeout(5)
        new_conn.settimeout(5)
        assert open_conn.recv(4096) == b"during"
        assert new_conn.recv(4096) == b"new"
        assert proxy.accepted == 2
        open_conn.close()
        new_conn.close()


def _notification(receiver: str, status: str, **labels: str) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": "k",
        "status": status,
        "receiver": receiver,
        "alerts": [{"status": status, "labels": labels, "annotations": {}}],
    }


def test_arrivals_stamps_each_notification_and_finds_alerts_by_label() -> None:
    """Each delivery gets the time it was seen; find and wait_for select by name, status, labels."""
    with WebhookReceiver() as receiver, Arrivals(receiver, interval=0.05) as arrivals:
        url = f"http://{receiver.hostport}/relayed"
        before = time.time()
        httpx.post(url, json=_notification("chat", "firing", alertname="A", job="shop"))
        httpx.post(url, json=_notification("page", "firing", alertname="A", job="shop"))
        httpx.post(url, json=_notification("chat", "resolved", alertname="A", job="shop"))
        httpx.post(url, json=_notification("chat", "firing", alertname="A", job="payments"))
        routed = arrivals.wait_for(
            "A", status="firing", receivers={"chat", "page"}, since=before, timeout=5, job="shop"
        )
        assert set(routed) == {"chat", "page"}
        assert all(seen.arrival.at >= before for seen in routed.values())
        assert len(arrivals.find("A", status="resolved")) == 1
        assert [s.labels["job"] for s in arrivals.find("A", status="firing")] == [
            "shop",
            "shop",
            "payments",
        ]
        assert arrivals.find("A", since=time.time() + 60) == []
        with pytest.raises(AssertionError, match="firing B"):
            arrivals.wait_for("B", status="firing", receivers={"chat"}, since=0, timeout=0.3)


def test_retimed_journeys_keep_every_step_and_load_in_the_monitor(tmp_path: Path) -> None:
    """The copy caps interval and jitter only, and the monitor's own loader accepts it."""
    from synthetic_monitor.config.loader import load_config  # type: ignore[import-untyped]

    shipped = {p: p.read_bytes() for p in JOURNEYS.rglob("*") if p.is_file()}
    copy = retime_journeys(JOURNEYS, tmp_path / "journeys", interval=10, jitter=1)
    assert {p: p.read_bytes() for p in JOURNEYS.rglob("*") if p.is_file()} == shipped
    original = yaml.safe_load((JOURNEYS / "shop.yml").read_text(encoding="utf-8"))
    retimed = yaml.safe_load((copy / "shop.yml").read_text(encoding="utf-8"))
    assert [j["steps"] for j in retimed["journeys"]] == [j["steps"] for j in original["journeys"]]
    environ = {"SHOP_URL": "http://127.0.0.1:8000", "SHOP_DEMO_PASSWORD": "x"}
    config = load_config(copy, environ)
    assert set(config.journeys) == set(load_config(JOURNEYS, environ).journeys)
    for journey in config.journeys.values():
        assert journey.interval <= 10, journey.name
        assert journey.jitter is None or journey.jitter <= 1, journey.name


def test_service_endpoints_override_one_service_only(tmp_path: Path) -> None:
    """A per-service override reroutes that service's address; another service keeps its own."""
    stack = NativeStack(
        tmp_path,
        ["shop", "payments"],
        service_endpoints={"shop": {"postgres:5432": "127.0.0.1:40999"}},
    )
    shop = urlsplit(stack.render("shop").env["DATABASE_URL"])
    payments = urlsplit(stack.render("payments").env["DATABASE_URL"])
    assert (shop.hostname, shop.port) == ("127.0.0.1", 40999)
    assert (payments.hostname, payments.port) == ("127.0.0.1", 5432)
    assert shop.path.startswith("/shop_native"), "the run's own database name is kept"
