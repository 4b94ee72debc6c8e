"""The Locust file that compose's `load` profile runs: headless against the real shop, budgets kept.

The shop and payments run natively from their compose definitions; Locust runs bounded (users,
spawn rate, run time) with tests/load/budgets.toml, which the locustfile checks when Locust
quits. A copy of the budgets with an impossible p95 makes the same run exit 1 naming it; a
broken budget file stops Locust before it starts, naming file:line and the field.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack_support import require_listening
from stack_support.locust import BUDGETS, LOAD_DIR, LOCUSTFILE, run_locust
from stack_support.native import NativeStack
from stack_support.report import record_locust

sys.path.insert(0, str(LOAD_DIR))
from budgets import BudgetError, load_budgets

#: Every journey's request names (a journey that stops sending shows up here).
JOURNEY_REQUESTS = {
    "/api/login",
    "/api/login (wrong password)",
    "/api/products?category",
    "/api/products?category&limit&offset",
    "/api/carts",
    "/api/carts/{id}/items",
    "/api/checkout",
    "storefront /",
}


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


@pytest.mark.integration
def test_bounded_run_keeps_every_budget(shop: NativeStack) -> None:
    """A 25 s headless run of every journey sends requests, fails none and keeps the budgets."""
    run = run_locust(shop.url("shop", 8000), users=8, spawn_rate=4, seconds=25)
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.requests) >= JOURNEY_REQUESTS, sorted(run.requests)
    assert not run.failures, f"failed requests: {run.failures}\n{run.stderr[-2000:]}"
    assert "every performance budget" in run.stderr
    record_locust(run.headline("budget test"))


@pytest.mark.integration
def test_impossible_budget_fails_the_run_naming_it(shop: NativeStack, tmp_path: Path) -> None:
    """With a p95 budget of 1 ms, Locust exits 1 and logs that budget, its figure and overrun."""
    impossible = tmp_path / "budgets.toml"
    impossible.write_text(
        BUDGETS.read_text(encoding="utf-8").replace("p95_ms = 800", "p95_ms = 1", 1),
        encoding="utf-8",
    )
    run = run_locust(shop.url("shop", 8000), users=4, spawn_rate=4, seconds=8, budgets=impossible)
    assert run.returncode == 1, run.stderr[-3000:]
    assert "budget broken: total: p95 " in run.stderr, run.stderr[-3000:]
    assert "> p95_ms 1 (over by " in run.stderr


def test_broken_budget_file_stops_locust_before_it_starts(tmp_path: Path) -> None:
    """A budget file with a bad value stops Locust (exit 2) naming file:line and the field."""
    broken = tmp_path / "budgets.toml"
    broken.write_text("[total]\nmax_failure_ratio = 0.01\np95_ms = -5\n", encoding="utf-8")
    locust = Path(sys.executable).parent / "locust"
    done = subprocess.run(
        [str(locust), "-f", str(LOCUSTFILE), "--headless", "-u", "1", "-t", "1s",
         "--host", "http://127.0.0.1:9", f"--budgets={broken}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{broken}:3: total.p95_ms: -5 is not a positive number" in done.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[total]\np95_ms = 10\nmax_failur_ratio = 0.1\n", ":3: total.max_failur_ratio: unknown"),
        ("[total]\nmax_failure_ratio = 2\n", ":2: total.max_failure_ratio: 2 is not a number"),
        ("[total]\nmin_requests = 1.5\n", ":2: total.min_requests: 1.5 is not a positive whole"),
        (
            '[total]\np50_ms = 5\n\n[requests."/api/x"]\np99_ms = "fast"\n',
            ':5: requests./api/x.p99_ms: \'fast\' is not a positive',
        ),
        ('[requests."/api/x"]\np99_ms = 5\n', ":1: total: missing"),
        ("[total]\n", ":1: total: no limits"),
        ("[totals]\np50_ms = 1\n", ":1: totals: unknown table"),
        ("[total\n", ": not TOML: "),
    ],
    ids=[
        "unknown-field", "ratio-above-1", "fractional-count", "string-limit", "no-total",
        "empty-total", "unknown-table", "syntax",
    ],
)  # fmt: skip
def test_budget_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    """Each kind of bad budget file is refused with file:line, the field and what is wanted."""
    path = tmp_path / "budgets.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BudgetError) as caught:
        load_budgets(path)
    assert str(caught.value).startswith(str(path)), caught.value
    assert expected in str(caught.value)


def test_shipped_budgets_load() -> None:
    """tests/load/budgets.toml loads: a total budget and the per-request ones."""
    budgets = load_budgets(BUDGETS)
    assert {"max_failure_ratio", "p95_ms", "min_requests"} <= set(budgets.total.limits)
    assert {b.name for b in budgets.requests} <= JOURNEY_REQUESTS
