"""The Locust file that compose's `load` profile runs, run headless against the real shop."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack_support import require_listening
from stack_support.native import NativeStack

pytestmark = pytest.mark.integration

LOCUSTFILE = Path(__file__).resolve().parent / "load" / "locustfile.py"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    """Run shop and payments natively, from their compose definitions."""
    require_listening("PostgreSQL", "127.0.0.1", 5432)
    require_listening("Redis", "127.0.0.1", 6379)
    native = NativeStack(tmp_path_factory.mktemp("load"), ["payments", "shop"])
    native.start()
    try:
        yield native
    finally:
        native.stop()


def test_locust_shoppers_run_without_failures(shop: NativeStack) -> None:
    """A short headless run of every shopper task sends requests and records no failure."""
    locust = Path(sys.executable).parent / "locust"
    result = subprocess.run(
        [
            str(locust),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--users=6",
            "--spawn-rate=6",
            "--run-time=10s",
            "--stop-timeout=5",
            f"--host={shop.url('shop', 8000)}",
            "--json",
            "--only-summary",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(result.stdout)
    requests = {entry["name"]: entry["num_requests"] for entry in stats}
    failures = {entry["name"]: entry["num_failures"] for entry in stats if entry["num_failures"]}
    assert sum(requests.values()) > 20, requests
    assert {"/api/login", "/api/products?category", "/api/carts"} <= set(requests)
    assert not failures, f"failed requests: {failures}\n{result.stderr[-2000:]}"
