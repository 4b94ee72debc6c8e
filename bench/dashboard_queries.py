"""Every dashboard panel's PromQL over 24 h: with the recording rules' series versus the raw
expressions, against a real Prometheus holding 24 h of backfilled data.

1. Writes an OpenMetrics file with 24 h of the demo's metrics at the 15 s scrape interval
   (shop and payments: RED per route, latency histograms, database, pool, cache, orders,
   payments, logins, the long-tail families; counters increase with a day/night swing,
   histograms keep their bucket shape) and turns it into TSDB blocks with
   ``promtool tsdb create-blocks-from openmetrics``.
2. Starts Debian's Prometheus on that data and backfills every recording rule of
   prometheus/rules/*.yml with ``promtool tsdb create-blocks-from rules`` (at the 15 s
   evaluation interval), level by level: a rule reading another rule's series is backfilled
   after it, Prometheus restarted in between (promtool evaluates against the live server).
3. Takes every Prometheus target of every dashboard (grafana/dashboards/*.json), its variables
   resolved and its ``$__rate_interval``/``$__interval`` computed the way Grafana does for a
   24 h range (``lookout check``'s code), and builds its raw twin: each recording rule's name
   replaced by the rule's expression (recursively), the name's label matchers pushed into the
   expression's selectors and the rule's static labels chosen by them.
4. Runs both sets, interleaved over ``--rounds`` rounds, one query at a time, and prints the
   median total of each set, the ratio raw / recorded, and the slowest queries. Goal: the whole
   recorded set under 1 s.

Run: ``uv run python bench/dashboard_queries.py [--dashboards DIR] [--rounds 3] [--keep]``.
Needs Debian's ``prometheus`` and ``promtool``. Exit 0 when measured, 2 when something could
not be set up (the message says what).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# stack_support lives beside the tests (inserted on sys.path above).
from lookout_stack.check.backends.prometheus import PrometheusBackend
from lookout_stack.check.context import QueryContext
from lookout_stack.check.errors import VariableError
from lookout_stack.check.http import Http
from lookout_stack.check.model import Dashboard, datasource_kind, find_dashboards, load_dashboard
from lookout_stack.check.runner import panel_repetitions, variable_datasource_kind
from lookout_stack.check.timing import TimeRange, max_data_points_for
from lookout_stack.check.variables import resolve_variables
from stack_support.prometheus import run_prometheus

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "prometheus" / "rules"
HOURS = 24
SCRAPE_S = 15
GOAL_S = 1.0

# --- 1. the demo's metrics for 24 h -------------------------------------------------------------

LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
DB = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ORDER_VALUE = (5, 10, 25, 50, 100, 250, 500, 1000, 2500)
SHOP_ROUTES = [  # (method, route, requests per second at the daily mean, typical seconds)
    ("GET", "/api/products", 6.0, 0.02),
    ("GET", "/api/products/{product_id}", 8.0, 0.015),
    ("GET", "/api/v1/products", 0.5, 0.02),
    ("GET", "/api/v2/products", 1.5, 0.02),
    ("POST", "/api/carts", 1.2, 0.03),
    ("GET", "/api/carts/{cart_id}", 1.0, 0.02),
    ("POST", "/api/carts/{cart_id}/items", 1.5, 0.04),
    ("POST", "/api/checkout", 0.4, 0.25),
    ("POST", "/api/login", 0.6, 0.12),
    ("GET", "unmatched", 0.2, 0.005),
]
PAYMENTS_ROUTES = [
    ("POST", "/v1/authorizations", 0.4, 0.15),
    ("POST", "/v1/captures", 0.35, 0.08),
    ("POST", "/v1/refunds", 0.02, 0.1),
]
CATEGORIES = ["books", "electronics", "garden", "grocery", "toys", "wine"]


@dataclass
class Series:
    """One series: its family, labels, kind and how its value moves."""

    family: str
    labels: dict[str, str]
    kind: str  # counter, gauge, histogram
    rate: float = 0.0  # per second (counter: increase; histogram: observations)
    level: float = 0.0  # gauge value
    buckets: tuple[float, ...] = ()
    typical: float = 0.0  # histogram: median observation


def _statuses(route: str, method: str) -> list[tuple[str, float]]:
    if route == "unmatched":
        return [("404", 1.0)]
    if route == "/api/login":
        return [("200", 0.85), ("401", 0.13), ("429", 0.015), ("500", 0.005)]
    if route == "/api/checkout":
        return [("201", 0.9), ("402", 0.07), ("500", 0.03)]
    if route == "/v1/authorizations":
        return [("201", 0.92), ("402", 0.07), ("500", 0.01)]
    ok = "201" if method == "POST" else "200"
    return [(ok, 0.995), ("500", 0.005)]


def demo_series() -> list[Series]:  # noqa: PLR0912, PLR0915 (one table, top to bottom)
    """Return the shop's and payments' series, labelled as Prometheus scrapes them."""
    out: list[Series] = []
    for job, port, routes in (("shop", 8000, SHOP_ROUTES), ("payments", 8001, PAYMENTS_ROUTES)):
        base = {"job": job, "instance": f"{job}:{port}"}
        out.append(Series("up", base, "gauge", level=1))
        out.append(
            Series(
                "lookout_demo_build_info",
                base | {"service": job, "version": "0.1.0", "revision": "bench"},
                "gauge",
                level=1,
            )
        )
        out.append(Series("http_server_active_requests", base, "gauge", level=2))
        for method, route, rps, typical in routes:
            for status, share in _statuses(route, method):
                labels = base | {"method": method, "route": route, "status_code": status}
                out.append(Series("http_server_requests", labels, "counter", rps * share))
            hist = base | {"method": method, "route": route}
            out.append(
                Series(
                    "http_server_request_duration_seconds",
                    hist,
                    "histogram",
                    rps,
                    buckets=LATENCY,
                    typical=typical,
                )
            )
            out.append(Series("http_server_rejected_requests", hist, "counter", rps * 0.001))
        for op, share in (("SELECT", 3.0), ("INSERT", 0.6), ("UPDATE", 0.4), ("DELETE", 0.05)):
            labels = base | {"operation": op}
            out.append(
                Series(
                    "db_query_duration_seconds",
                    labels,
                    "histogram",
                    share * 2,
                    buckets=DB,
                    typical=0.002,
                )
            )
            out.append(Series("db_query_errors", labels, "counter", 0.001))
        for name, level in (
            ("db_pool_size", 10),
            ("db_pool_checked_out_connections", 3),
            ("db_pool_overflow_connections", 0),
        ):
            out.append(Series(name, base, "gauge", level=level))
        out.append(
            Series("db_pool_wait_seconds", base, "histogram", 0.5, buckets=DB, typical=0.0008)
        )
        out.append(Series("db_pool_timeouts", base, "counter", 0.0005))
        for cache, rate in (("product", 10.0), ("product_list", 4.0)):
            labels = base | {"cache": cache}
            out.append(Series("cache_hits", labels, "counter", rate * 0.9))
            out.append(Series("cache_misses", labels, "counter", rate * 0.1))
            out.append(Series("cache_errors", labels, "counter", 0.0002))
    shop = {"job": "shop", "instance": "shop:8000"}
    pay = {"job": "payments", "instance": "payments:8001"}
    for status, share in (("paid", 0.9), ("payment_declined", 0.07), ("payment_error", 0.03)):
        out.append(Series("shop_orders", shop | {"status": status}, "counter", 0.4 * share))
    out.append(
        Series("shop_order_value_usd", shop, "histogram", 0.36, buckets=ORDER_VALUE, typical=60)
    )
    for category in CATEGORIES:
        labels = shop | {"category": category}
        out.append(Series("shop_revenue_usd", labels, "counter", 3.5))
        out.append(Series("shop_items_sold", labels, "counter", 0.1))
        out.append(Series("shop_cart_additions", labels, "counter", 0.25))
        out.append(Series("shop_inventory_stock_units", labels, "gauge", level=500))
        out.append(Series("shop_inventory_low_stock_items", labels, "gauge", level=1))
        out.append(Series("shop_inventory_reserved_units", labels, "gauge", level=12))
    for method in ("card", "wallet", "bank_transfer"):
        for op, outcomes in (
            ("authorize", (("approved", 0.92), ("declined", 0.07), ("error", 0.01))),
            ("capture", (("approved", 0.995), ("error", 0.005))),
        ):
            for outcome, share in outcomes:
                labels = pay | {"operation": op, "method": method, "outcome": outcome}
                out.append(Series("payments_transactions", labels, "counter", 0.13 * share))
            out.append(
                Series(
                    "payments_processing_duration_seconds",
                    pay | {"operation": op, "method": method},
                    "histogram",
                    0.13,
                    buckets=LATENCY,
                    typical=0.08,
                )
            )
        out.append(Series("payments_captured_usd", pay | {"method": method}, "counter", 7.0))
    for outcome, rate in (("success", 0.5), ("failure", 0.08)):
        out.append(Series("auth_logins", shop | {"outcome": outcome}, "counter", rate))
    for reason in ("bad_password", "unknown_user", "locked"):
        out.append(Series("auth_login_failures", shop | {"reason": reason}, "counter", 0.03))
    out.append(Series("auth_bruteforce_detections", shop | {"scope": "account"}, "counter", 0.0005))
    for version, deprecated in (("v1", "true"), ("v2", "false")):
        out.append(
            Series(
                "api_version_requests",
                shop | {"version": version, "deprecated": deprecated},
                "counter",
                1.0,
            )
        )
    for variant in ("control", "one_page"):
        labels = shop | {"experiment": "checkout_flow", "variant": variant}
        out.append(Series("experiment_assignments", labels, "counter", 0.3))
        out.append(Series("experiment_conversions", labels, "counter", 0.05))
    for flag, variant in (("new_search", "on"), ("new_search", "off"), ("free_shipping", "on")):
        out.append(
            Series(
                "feature_flag_evaluations",
                shop | {"flag": flag, "variant": variant},
                "counter",
                2.0,
            )
        )
    for browser in ("chrome", "firefox", "safari", "other"):
        for device in ("desktop", "mobile"):
            labels = shop | {"browser": browser, "os": "linux", "device": device}
            out.append(Series("http_server_requests_by_client", labels, "counter", 1.5))
    for region in ("eu", "us", "apac"):
        for outcome in ("success", "error"):
            share = 0.99 if outcome == "success" else 0.01
            out.append(
                Series(
                    "http_server_requests_by_region",
                    shop | {"region": region, "outcome": outcome},
                    "counter",
                    6 * share,
                )
            )
    out.append(Series("outbox_pending_messages", shop | {"topic": "orders"}, "gauge", level=2))
    out.append(
        Series("outbox_oldest_pending_age_seconds", shop | {"topic": "orders"}, "gauge", level=3)
    )
    out.append(
        Series(
            "outbox_deliveries", shop | {"topic": "orders", "outcome": "delivered"}, "counter", 0.36
        )
    )
    for verification, outcome in (("id_check", "passed"), ("id_check", "failed")):
        out.append(
            Series(
                "compliance_age_verifications",
                shop | {"verification": verification, "outcome": outcome},
                "counter",
                0.02,
            )
        )
    out.append(
        Series(
            "compliance_age_restricted_checkouts", shop | {"outcome": "allowed"}, "counter", 0.02
        )
    )
    return out


def _cdf(le: float, typical: float) -> float:
    """Share of observations at most ``le`` for a log-normal around ``typical`` (sigma 0.8)."""
    return 0.5 * (1 + math.erf(math.log(le / typical) / (0.8 * math.sqrt(2))))


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def write_openmetrics(path: Path, start: int, end: int) -> tuple[int, int]:
    """Write 24 h of the demo series as OpenMetrics; return (series, samples)."""
    series = demo_series()
    times = list(range(start, end, SCRAPE_S))
    # Day/night swing and a little noise, the same for every series: busy at 14:00 UTC.
    rng = random.Random(42)
    swing = [1 + 0.6 * math.sin(2 * math.pi * ((t % 86400) / 86400 - 0.33)) for t in times]
    noise = [s * (0.9 + 0.2 * rng.random()) for s in swing]
    samples = 0
    by_family: dict[str, list[Series]] = {}
    for one in series:
        by_family.setdefault(one.family, []).append(one)
    with path.open("w", encoding="utf-8") as out:
        for family, members in by_family.items():
            kind = members[0].kind
            out.write(f"# TYPE {family} {kind}\n")
            for one in members:
                labels = _labels(one.labels)
                if kind == "gauge":
                    for t, factor in zip(times, noise, strict=True):
                        value = (
                            one.level
                            if family in {"up", "lookout_demo_build_info", "db_pool_size"}
                            else round(one.level * factor, 3)
                        )
                        out.write(f"{family}{{{labels}}} {value} {t}\n")
                    samples += len(times)
                    continue
                total = 0.0
                if kind == "counter":
                    for t, factor in zip(times, noise, strict=True):
                        total += one.rate * factor * SCRAPE_S
                        out.write(f"{family}_total{{{labels}}} {total:.3f} {t}\n")
                    samples += len(times)
                    continue
                shares = [_cdf(le, one.typical) for le in one.buckets]
                for t, factor in zip(times, noise, strict=True):
                    total += one.rate * factor * SCRAPE_S
                    for le, share in zip(one.buckets, shares, strict=True):
                        out.write(
                            f'{family}_bucket{{{labels},le="{le}"}} '
                            f"{math.floor(total * share)} {t}\n"
                        )
                    count = math.floor(total)
                    out.write(f'{family}_bucket{{{labels},le="+Inf"}} {count} {t}\n')
                    out.write(f"{family}_count{{{labels}}} {count} {t}\n")
                    out.write(f"{family}_sum{{{labels}}} {total * one.typical * 1.3:.3f} {t}\n")
                samples += len(times) * (len(one.buckets) + 3)
        out.write("# EOF\n")
    histograms = sum(len(s.buckets) + 3 for s in series if s.kind == "histogram")
    return len([s for s in series if s.kind != "histogram"]) + histograms, samples


# --- 2. Prometheus and the recording rules ------------------------------------------------------


def _run(args: list[str], what: str, timeout: float = 1800) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        msg = f"{what} failed ({done.returncode}): {(done.stderr or done.stdout)[-1500:]}"
        raise RuntimeError(msg)
    return done.stdout


@contextlib.contextmanager
def prometheus(data: Path, port: int) -> Iterator[str]:
    """Run Prometheus on ``data`` (no scrapes, no rules); yield its URL."""
    config = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
    # 30d retention: backfilled blocks are hours old, never dropped while measured; the
    # samples limit: a 24 h range over raw histograms reads more than the default 50 million.
    flags = ["--storage.tsdb.retention.time=30d", "--query.max-samples=100000000"]
    with run_prometheus(
        data.parent, config, data=data, port=port, flags=flags, ready_timeout=120
    ) as url:
        yield url


@dataclass
class Rule:
    """A recording rule: its name, expression and static labels."""

    record: str
    expr: str
    labels: dict[str, str]


def load_rules(paths: list[Path]) -> list[Rule]:
    """Return every recording rule of the rule files, in file order."""
    rules = []
    for path in paths:
        for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    labels = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
                    rules.append(Rule(rule["record"], " ".join(str(rule["expr"]).split()), labels))
    return rules


def _names(expr: str, names: set[str]) -> set[str]:
    return {n for n in names if re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", expr)}


def rule_levels(rules: list[Rule]) -> list[list[Rule]]:
    """Group rules by dependency level: level n reads only series of levels below n."""
    names = {r.record for r in rules}
    level: dict[str, int] = {}
    for _ in range(len(rules) + 1):
        for rule in rules:
            deps = _names(rule.expr, names - {rule.record})
            if all(d in level for d in deps):
                level[rule.record] = max(
                    level.get(rule.record, 0), 1 + max((level[d] for d in deps), default=-1)
                )
    missing = names - set(level)
    if missing:
        msg = f"recording rules in a dependency cycle: {sorted(missing)}"
        raise RuntimeError(msg)
    grouped: dict[int, list[Rule]] = {}
    for rule in rules:
        grouped.setdefault(level[rule.record], []).append(rule)
    return [grouped[k] for k in sorted(grouped)]


def backfill_rules(  # noqa: PLR0917 (a script's step: its inputs, in order)
    data: Path, work: Path, rules: list[Rule], start: int, end: int, port: int
) -> None:
    """Backfill each level of rules into ``data`` (Prometheus restarted per level)."""
    promtool = shutil.which("promtool") or "promtool"
    levels = rule_levels(rules)
    for index, level in enumerate(levels, 1):
        rule_file = work / f"level{index}.yml"
        # One group per record name: promtool names a block's series by group, and a name
        # recorded several times (quantiles) must stay one group with its label variants.
        rule_file.write_text(
            yaml.safe_dump(
                {
                    "groups": [
                        {
                            "name": f"level{index}",
                            "interval": f"{SCRAPE_S}s",
                            "rules": [
                                {
                                    "record": r.record,
                                    "expr": r.expr,
                                    **({"labels": r.labels} if r.labels else {}),
                                }
                                for r in level
                            ],
                        }
                    ]
                }
            ),
            encoding="utf-8",
        )
        out = work / f"rules{index}"
        t0 = time.monotonic()
        with prometheus(data, port) as url:
            _run(
                [
                    promtool,
                    "tsdb",
                    "create-blocks-from",
                    "rules",
                    f"--start={start}",
                    f"--end={end}",
                    f"--url={url}",
                    f"--output-dir={out}",
                    "--quiet",
                    f"--eval-interval={SCRAPE_S}s",
                    str(rule_file),
                ],
                f"promtool tsdb create-blocks-from rules (level {index})",
            )
        for block in out.iterdir():
            shutil.move(str(block), data / block.name)
        print(
            f"  rules level {index}/{len(levels)}: {len(level)} rules backfilled in "
            f"{time.monotonic() - t0:.1f} s",
            file=sys.stderr,
            flush=True,
        )


# --- 3. the queries, recorded and raw -----------------------------------------------------------

_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "atan2",
}


def _matchers(braces: str) -> list[tuple[str, str, str]]:
    return _MATCHER.findall(braces[1:-1]) if braces else []


def _inject(expr: str, matchers: list[tuple[str, str, str]]) -> str:
    """Add label matchers to every vector selector of ``expr``."""
    if not matchers:
        return expr
    text = ",".join(f'{k}{op}"{v}"' for k, op, v in matchers)
    # Leave strings and label lists (by (...), on (...)) alone: mask them first.
    masked = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: "\0" * len(m[0]), expr)
    masked = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
        lambda m: "\0" * len(m[0]),
        masked,
    )
    out, last = [], 0
    selector = r"(?<![\w:.\]])([a-zA-Z_:][\w:]*)(\s*\{[^}]*\})?(?![\w:]|[\s\0]*\()"
    for match in re.finditer(selector, masked):
        name = match[1]
        if name in _KEYWORDS or re.fullmatch(r"\d.*", name):
            continue
        end = match.end()
        if match[2]:
            inner = expr[match.start(2) : match.end(2)].strip()
            body = inner[1:-1].strip()
            replacement = f"{name}{{{body + ',' if body else ''}{text}}}"
        else:
            replacement = f"{name}{{{text}}}"
        out.append(expr[last : match.start()] + replacement)
        last = end
    out.append(expr[last:])
    return "".join(out)


class NeedsSubqueryError(ValueError):
    """A recorded series is read over a range: the raw form would need a subquery."""


def expand_rules(expr: str, rules: list[Rule], depth: int = 0) -> str:
    """Return ``expr`` with every recorded series replaced by its rule's expression."""
    if depth > 10:
        return expr
    by_name: dict[str, list[Rule]] = {}
    for rule in rules:
        by_name.setdefault(rule.record, []).append(rule)
    pattern = "|".join(re.escape(n) for n in sorted(by_name, key=len, reverse=True))
    if not pattern:
        return expr
    selector = re.compile(rf"(?<![\w:])({pattern})(?![\w:])(\s*\{{[^}}]*\}})?(\s*\[)?")

    def replace(match: re.Match[str]) -> str:
        if match[3]:
            # A recorded series over a range (avg_over_time(x[30d])): its raw form would be a
            # subquery, which nobody would write instead; such targets have no raw twin.
            raise NeedsSubqueryError(match[1])
        matchers = _matchers((match[2] or "").strip())
        variants = by_name[match[1]]
        static = {k for v in variants for k in v.labels}
        chosen = [
            v
            for v in variants
            if all(_matches(v.labels.get(k), op, val) for k, op, val in matchers if k in static)
        ]
        rest = [m for m in matchers if m[0] not in static]
        parts = []
        for variant in chosen:
            # Push the matchers down first, so a nested rule's static labels pick its variant.
            inner = expand_rules(_inject(variant.expr, rest), rules, depth + 1)
            for key, value in variant.labels.items():
                inner = f'label_replace({inner}, "{key}", "{value}", "", "")'
            parts.append(inner)
        return "(" + " or ".join(parts) + ")" if parts else "vector(0)"

    return selector.sub(replace, expr)


def _matches(value: str | None, op: str, wanted: str) -> bool:
    if value is None:
        return op in {"!=", "!~"}
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted
    found = re.fullmatch(wanted, value) is not None
    return found if op == "=~" else not found


@dataclass
class Query:
    """One panel target, as recorded-series PromQL and as raw PromQL."""

    where: str
    recorded: str
    raw: str | None  # None: no raw twin (a recorded series read over a range)
    step_ms: int
    instant: bool


async def panel_queries(
    dashboards: list[Dashboard], url: str, rng: TimeRange, rules: list[Rule]
) -> list[Query]:
    """Return every Prometheus target of every dashboard, expanded for the 24 h range."""
    http = Http(concurrency=4, timeout=60)
    backend = PrometheusBackend(http, url)
    queries: list[Query] = []
    try:
        for dashboard in dashboards:
            try:
                variables = await resolve_variables(
                    dashboard.templating, rng, {"prometheus": backend}, {}, variable_datasource_kind
                )
            except VariableError as exc:
                print(f"  skipped {dashboard.uid}: {exc}", file=sys.stderr)
                continue
            for panel in dashboard.panels():
                for repeat, scoped in panel_repetitions(panel, variables):
                    ctx = QueryContext(
                        time_range=rng,
                        variables=scoped,
                        max_data_points=max_data_points_for(
                            panel.raw.get("maxDataPoints"),
                            (panel.raw.get("gridPos") or {}).get("w"),
                        ),
                        min_interval=panel.raw.get("interval") or None,
                        scrape_interval_ms=SCRAPE_S * 1000,
                    )
                    for target in panel.targets:
                        if datasource_kind(target.datasource) != "prometheus":
                            continue
                        expr, step = backend.expand(target, ctx)
                        if not expr.strip():
                            continue
                        copy = f" ({repeat})" if repeat else ""
                        where = f"{dashboard.uid} {panel.label}{copy} {target.ref_id}"
                        instant = bool(target.raw.get("instant")) and not target.raw.get("range")
                        try:
                            raw: str | None = expand_rules(expr, rules)
                        except NeedsSubqueryError:
                            raw = None
                        queries.append(Query(where, expr, raw, step, instant))
    finally:
        await http.aclose()
    return queries


async def run_set(
    url: str, queries: list[Query], rng: TimeRange, *, raw: bool, in_flight: int = 1
) -> tuple[float, list[float], int]:
    """Run the queries (the raw twins when ``raw``); return (wall s, each query's s, errors).

    One at a time (``in_flight`` 1) the wall time is the sum; a browser loads a dashboard's
    panels about 6 at a time (its connections per host), which ``in_flight=6`` imitates.
    """
    http = Http(concurrency=in_flight, timeout=120)
    backend = PrometheusBackend(http, url)
    each = [0.0] * len(queries)
    errors = 0

    async def one(index: int, query: Query) -> None:
        nonlocal errors
        text = query.raw if raw else query.recorded
        if text is None:
            return
        t0 = time.perf_counter()
        status, detail = await backend.query(text, rng, query.step_ms, instant=query.instant)
        each[index] = time.perf_counter() - t0
        if status == "error":
            errors += 1
            say(f"  error ({'raw' if raw else 'recorded'}) {query.where}: {detail}")

    started = time.perf_counter()
    try:
        if in_flight == 1:
            for index, query in enumerate(queries):
                await one(index, query)
        else:
            await asyncio.gather(*(one(i, q) for i, q in enumerate(queries)))
    finally:
        await http.aclose()
    return time.perf_counter() - started, each, errors


def backfill(  # noqa: PLR0917 (a script's step: its inputs, in order)
    work: Path, data: Path, rules: list[Rule], start: int, end: int, port: int
) -> None:
    """Write the demo metrics, turn them into blocks, backfill the recording rules."""
    t0 = time.monotonic()
    say(f"writing {HOURS} h of demo metrics (OpenMetrics) ...")
    metrics = work / "demo.om.txt"
    n_series, n_samples = write_openmetrics(metrics, start, end)
    size = metrics.stat().st_size / 2**20
    say(
        f"  {n_series} series, {n_samples:,} samples, {size:.0f} MB in "
        f"{time.monotonic() - t0:.1f} s"
    )
    t0 = time.monotonic()
    _run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--quiet",
            str(metrics),
            str(data),
        ],
        "promtool tsdb create-blocks-from openmetrics",
    )
    metrics.unlink()
    say(f"  blocks created in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    say(f"backfilling {len(rules)} recording rules ...")
    backfill_rules(data, work, rules, start, end, port)
    say(f"  done in {time.monotonic() - t0:.1f} s")


def report(  # noqa: PLR0917 (a script's step: its inputs, in order)
    url: str,
    queries: list[Query],
    rng: TimeRange,
    dashboards: int,
    rounds: int,
    top: int,
    baseline: list[Query] | None = None,
) -> None:
    """Measure both sets over interleaved rounds and print the figures.

    With ``baseline`` (the targets of other dashboards, e.g. before a change), their recorded
    set runs in the same rounds, so both figures see the same machine load.
    """
    twins = [i for i, q in enumerate(queries) if q.raw is not None]
    using = [i for i in twins if queries[i].raw != queries[i].recorded]
    say(
        f"{len(queries)} Prometheus targets in {dashboards} dashboards: {len(using)} read "
        f"recorded series; {len(queries) - len(twins)} read one over a range (no raw twin)"
    )
    asyncio.run(run_set(url, queries, rng, raw=False))  # warm-up: page cache, chunk mmaps
    totals: dict[str, list[float]] = {}
    each: dict[str, list[list[float]]] = {}
    errors: dict[str, int] = {}
    for round_ in range(1, rounds + 1):
        sets = [
            ("recorded", queries, False, 1),
            ("raw", queries, True, 1),
            ("recorded x6", queries, False, 6),
            ("raw x6", queries, True, 6),
        ]
        if baseline is not None:
            sets.insert(1, ("baseline", baseline, False, 1))
        for name, chosen, raw, in_flight in sets:
            wall, per, failed = asyncio.run(run_set(url, chosen, rng, raw=raw, in_flight=in_flight))
            totals.setdefault(name, []).append(wall)
            each.setdefault(name, []).append(per)
            errors[name] = max(errors.get(name, 0), failed)
            say(f"  round {round_}/{rounds} {name:<12} {wall:6.3f} s")

    def median_each(name: str, index: int) -> float:
        return statistics.median(r[index] for r in each[name])

    recorded = statistics.median(totals["recorded"])
    rec_twins = sum(median_each("recorded", i) for i in twins)
    raw_twins = sum(median_each("raw", i) for i in twins)
    print(
        f"\nAll {len(queries)} Prometheus panel queries of {dashboards} dashboards over {HOURS} h "
        f"(median of {rounds} rounds, {SCRAPE_S} s data, rules backfilled at {SCRAPE_S} s):"
    )
    verdict = "met" if recorded < GOAL_S else "NOT met"
    print(
        f"  whole set, with recording rules, one at a time  {recorded:7.3f} s  "
        f"(goal < {GOAL_S:.0f} s: {verdict})"
    )
    print(
        "  whole set, with recording rules, 6 in flight     "
        f"{statistics.median(totals['recorded x6']):7.3f} s"
    )
    print(
        f"  the {len(twins)} with a raw twin: recorded {rec_twins:7.3f} s, raw {raw_twins:7.3f} s, "
        f"ratio raw / recorded {raw_twins / rec_twins:5.1f}x"
    )
    print(
        f"  the {len(using)} that read recorded series: recorded "
        f"{sum(median_each('recorded', i) for i in using):7.3f} s, "
        f"raw {sum(median_each('raw', i) for i in using):7.3f} s"
    )
    print(
        "  raw twins, 6 in flight                           "
        f"{statistics.median(totals['raw x6']):7.3f} s"
    )
    if baseline is not None:
        print(
            f"  baseline: its {len(baseline)} queries, with recording rules, one at a time "
            f"{statistics.median(totals['baseline']):7.3f} s (same rounds)"
        )
    if any(errors.values()):
        print(f"  errors: {errors} (listed above)")
    # What is left once no single query stands out: the per-query floor (a round trip, parsing,
    # an index lookup) times the number of queries.
    per_query = sorted(median_each("recorded", i) for i in range(len(queries)))
    print(
        f"  recorded, per query: median {statistics.median(per_query) * 1000:5.1f} ms, "
        f"fastest {per_query[0] * 1000:5.1f} ms; the {len(queries)} at the median would take "
        f"{statistics.median(per_query) * len(queries):5.3f} s"
    )
    for name, chosen, pool in (
        ("recorded", queries, list(range(len(queries)))),
        ("raw", queries, twins),
        ("baseline", baseline or [], list(range(len(baseline or [])))),
    ):
        if not pool:
            continue
        slow = sorted(pool, key=lambda i: -median_each(name, i))[:top]
        print(f"  slowest {name} queries (s):")
        for i in slow:
            print(f"    {median_each(name, i):6.3f}  {chosen[i].where}")


def say(line: str) -> None:
    """Print progress on stderr."""
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    """Set up, measure, print; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dashboards", type=Path, default=ROOT / "grafana" / "dashboards")
    parser.add_argument("--rules", type=Path, default=RULES, help="folder of rule files (*.yml)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--keep", action="store_true", help="keep the folder with the data")
    parser.add_argument("--top", type=int, default=5, help="slowest queries to list per set (5)")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="dashboards to time in the same rounds (e.g. the JSON before a change)",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="DIR",
        help="a folder kept by an earlier --keep run: measure its data again, no backfill",
    )
    args = parser.parse_args()
    for program in ("prometheus", "promtool"):
        if shutil.which(program) is None:
            print(f"{program} is not on PATH: apt-get install prometheus", file=sys.stderr)
            return 2
    try:
        dashboards = [load_dashboard(p) for p in find_dashboards([args.dashboards])]
    except ValueError as exc:
        print(f"dashboards: {exc}", file=sys.stderr)
        return 2
    rules = load_rules(sorted(args.rules.glob("*.yml")))
    work = args.reuse or Path(tempfile.mkdtemp(prefix="lookout-bench-queries-"))
    data = work / "data"
    stamp = work / "range.txt"
    port = 19090 + random.randrange(500)
    try:
        if args.reuse:
            start, end = map(int, stamp.read_text(encoding="utf-8").split())
        else:
            data.mkdir()
            end = int(time.time()) // 3600 * 3600  # whole hours: blocks align, range stable
            start = end - HOURS * 3600
            backfill(work, data, rules, start, end, port)
            stamp.write_text(f"{start} {end}\n", encoding="utf-8")
        rng = TimeRange(start * 1000, end * 1000)
        with prometheus(data, port) as url:
            queries = asyncio.run(panel_queries(dashboards, url, rng, rules))
            baseline = None
            if args.baseline:
                before = [load_dashboard(p) for p in find_dashboards([args.baseline])]
                baseline = asyncio.run(panel_queries(before, url, rng, rules))
            report(url, queries, rng, len(dashboards), args.rounds, args.top, baseline)
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"bench set-up failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep or args.reuse:
            print(f"kept {work} (measure again: --reuse {work})", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
