"""``lookout check``: run every panel's queries and report data / empty / error per panel."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from lookout_stack.check.absent import parse_absent
from lookout_stack.check.backends.loki import LokiBackend
from lookout_stack.check.backends.prometheus import PrometheusBackend
from lookout_stack.check.backends.tempo import TempoBackend
from lookout_stack.check.errors import CheckInputError
from lookout_stack.check.grafana import GrafanaQuerier
from lookout_stack.check.http import Http
from lookout_stack.check.model import find_dashboards, load_dashboard
from lookout_stack.check.report import is_ok, summary, to_json, to_text
from lookout_stack.check.results import PanelResult
from lookout_stack.check.runner import DirectMode, GrafanaMode, Mode, RunSettings, run_check
from lookout_stack.check.timing import parse_duration_ms, parse_time
from lookout_stack.check.variables import VariableSource

__all__ = ["handle", "register"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
DEFAULT_FOLDER = Path("grafana/dashboards")
#: The compose stack's published ports: the default when no backend URL is given.
DEFAULT_URLS = {
    "prometheus": "http://127.0.0.1:9090",
    "loki": "http://127.0.0.1:3100",
    "tempo": "http://127.0.0.1:3200",
}

DESCRIPTION = """\
Run the queries of every panel of every dashboard over the dashboard's time range and report,
per panel, data / empty / error, or "not checkable" (panel types and data sources that only
Grafana can evaluate: named, never counted as passed). Exit 1 when a panel is empty or failing.

Two modes: --grafana URL sends each panel's queries to Grafana's /api/ds/query (credentials
from LOOKOUT_GRAFANA_TOKEN or LOOKOUT_GRAFANA_TOKEN_FILE, or LOOKOUT_GRAFANA_USER with
LOOKOUT_GRAFANA_PASSWORD or LOOKOUT_GRAFANA_PASSWORD_FILE; never on the command line); or
straight to --prometheus, --loki and --tempo (default: the compose ports on 127.0.0.1).

A stack that runs without a component (no collector on a test machine, say): --absent NAME
(repeatable) makes every query that reads only that component's metrics "not checkable",
with the reason, instead of empty. A series selector is the component's when its metric name
starts with one of its prefixes or it selects job="NAME" exactly; known prefixes:
otel-collector otelcol_, grafana grafana_; others: --absent NAME=PREFIX[,PREFIX...]. Direct
mode only (through Grafana, every component of the compose stack runs).
"""


def register(commands: Any) -> None:
    """Add ``check`` to the CLI's sub-commands."""
    parser = commands.add_parser(
        "check",
        help="run every dashboard panel's queries; report data / empty / error per panel",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help=f"dashboard files or folders of *.json (default: {DEFAULT_FOLDER})",
    )
    mode = parser.add_argument_group("where the queries go")
    mode.add_argument("--grafana", metavar="URL", help="through Grafana's /api/ds/query")
    mode.add_argument(
        "--grafana-token-file", metavar="FILE", type=Path,
        help="a file holding a Grafana service-account token (or LOOKOUT_GRAFANA_TOKEN_FILE)",
    )  # fmt: skip
    mode.add_argument("--prometheus", metavar="URL", help="Prometheus' HTTP API (direct mode)")
    mode.add_argument("--loki", metavar="URL", help="Loki's HTTP API (direct mode)")
    mode.add_argument("--tempo", metavar="URL", help="Tempo's HTTP API (direct mode)")
    when = parser.add_argument_group("what is run")
    when.add_argument(
        "--from", dest="range_from", metavar="TIME",
        help="start of the range for every dashboard (now-1h, ISO 8601, epoch ms)",
    )  # fmt: skip
    when.add_argument("--to", dest="range_to", metavar="TIME", help="end of the range (now)")
    when.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE",
        help="a variable's value, as Grafana's var-NAME=VALUE (repeat for several values; "
        "All for every value); default: the dashboard's saved value",
    )  # fmt: skip
    when.add_argument(
        "--absent", action="append", default=[], metavar="NAME[=PREFIX,...]",
        help="a component that does not run here (repeat for several): queries of only its "
        "metrics are not checkable, not empty (direct mode)",
    )  # fmt: skip
    when.add_argument(
        "--scrape-interval", default="15s", metavar="DURATION",
        help="the Prometheus data source's scrape interval (timeInterval; Lookout: 15s), "
        "used for $__rate_interval",
    )  # fmt: skip
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print a JSON report (schema: README)")
    out.add_argument("--quiet", action="store_true", help="no progress on stderr")
    out.add_argument("--strict", action="store_true", help="exit 1 on a not-checkable panel too")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    limits.add_argument("--timeout", type=float, default=30.0, help="seconds per request (30)")
    parser.set_defaults(handler=handle)


class Progress:
    """Progress on stderr: a counter redrawn in place on a terminal, a line per panel otherwise."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        """Note how many panels will be checked."""
        self.total = total
        if self.enabled and self.tty:
            self.stream.write(f"\rchecking {total} panels ...")
            self.stream.flush()

    def panel(self, result: PanelResult) -> None:
        """Count one finished panel."""
        self.done += 1
        if not self.enabled:
            return
        if self.tty:
            self.stream.write(f"\rchecked {self.done}/{self.total} panels ")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(
                f"[{self.done}/{self.total}] {result.file} {result.label}: {result.status}\n"
            )
        self.stream.flush()


def _read_secret(name: str, path: Path | None) -> str | None:
    """Return a secret from env var ``name``, else from the file ``path`` or ``name``_FILE."""
    value = os.environ.get(name)
    if value:
        return value.strip()
    file = path or (Path(os.environ[f"{name}_FILE"]) if os.environ.get(f"{name}_FILE") else None)
    if file is None:
        return None
    try:
        secret = file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        msg = f"{file}: cannot read the secret for {name}: {exc.strerror}"
        raise CheckInputError(msg) from None
    if not secret:
        msg = f"{file}: empty (expected the secret for {name})"
        raise CheckInputError(msg)
    return secret


def grafana_credentials(
    token_file: Path | None,
) -> tuple[dict[str, str], httpx.BasicAuth | None]:
    """Return the headers and basic auth for Grafana, from the environment or a file."""
    token = _read_secret("LOOKOUT_GRAFANA_TOKEN", token_file)
    user = os.environ.get("LOOKOUT_GRAFANA_USER")
    password = _read_secret("LOOKOUT_GRAFANA_PASSWORD", None) if user else None
    if token and user:
        msg = "both a Grafana token and LOOKOUT_GRAFANA_USER are set: keep one"
        raise CheckInputError(msg)
    if user and not password:
        msg = "LOOKOUT_GRAFANA_USER is set without LOOKOUT_GRAFANA_PASSWORD(_FILE)"
        raise CheckInputError(msg)
    if token:
        return {"Authorization": f"Bearer {token}"}, None
    if user and password:
        return {}, httpx.BasicAuth(user, password)
    return {}, None


def _url(value: str, flag: str) -> str:
    # The value is never echoed once it may hold credentials (user:password@): check those first.
    try:
        parsed = httpx.URL(value)
    except httpx.InvalidURL as exc:
        msg = f"{flag}: not a URL ({exc}); expected http(s)://host:port"
        raise CheckInputError(msg) from None
    if parsed.userinfo:
        msg = f"{flag}: credentials in the URL are refused; use the environment or a file"
        raise CheckInputError(msg)
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        msg = f"{flag} {value!r}: expected an http(s):// URL"
        raise CheckInputError(msg)
    return str(parsed).rstrip("/")


def _overrides(pairs: list[str]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            msg = f"--var {pair!r}: expected NAME=VALUE"
            raise CheckInputError(msg)
        values.setdefault(name.removeprefix("var-"), []).append(value)
    return values


def _check_time(flag: str, value: str | None, now: datetime) -> None:
    """Refuse a --from/--to that is not a Grafana time (bad input, not a dashboard's fault)."""
    if value is None:
        return
    try:
        parse_time(value, now)
    except ValueError as exc:
        msg = f"{flag}: {exc}"
        raise CheckInputError(msg) from None


def build_mode(args: argparse.Namespace, http: Http, scrape_ms: int) -> Mode:
    """Return the direct or Grafana mode the arguments ask for."""
    direct = {k: getattr(args, k) for k in ("prometheus", "loki", "tempo")}
    absent = parse_absent(args.absent)
    if args.grafana:
        if absent:
            msg = "--absent is for direct mode: through Grafana every compose component runs"
            raise CheckInputError(msg)
        if any(direct.values()):
            msg = "--grafana and --prometheus/--loki/--tempo exclude each other: pick one mode"
            raise CheckInputError(msg)
        base = _url(args.grafana, "--grafana")
        querier = GrafanaQuerier(http, base, scrape_ms)
        prometheus = PrometheusBackend(http, querier.proxy_url("prometheus"))
        sources: dict[str, VariableSource] = {
            "prometheus": prometheus,
            "loki": LokiBackend(http, querier.proxy_url("loki")),
            "tempo": TempoBackend(http, querier.proxy_url("tempo")),
        }
        return GrafanaMode(querier, sources)
    if not any(direct.values()):
        direct = dict(DEFAULT_URLS)
    backends: dict[str, Any] = {}
    missing: dict[str, str] = {}
    prom = None
    if direct["prometheus"]:
        prom = PrometheusBackend(http, _url(direct["prometheus"], "--prometheus"), absent)
        backends["prometheus"] = prom
    if direct["loki"]:
        backends["loki"] = LokiBackend(http, _url(direct["loki"], "--loki"))
    if direct["tempo"]:
        backends["tempo"] = TempoBackend(http, _url(direct["tempo"], "--tempo"), prom)
    for kind in ("prometheus", "loki", "tempo"):
        if kind not in backends:
            missing[kind] = f"no --{kind} URL given"
    return DirectMode(backends, missing)


async def _run(args: argparse.Namespace, progress: Progress) -> tuple[str, list[Any]]:
    paths = args.paths or [DEFAULT_FOLDER]
    dashboards = [load_dashboard(p) for p in find_dashboards(paths)]
    scrape_ms = parse_duration_ms(args.scrape_interval)
    headers: dict[str, str] = {}
    auth = None
    if args.grafana:
        headers, auth = grafana_credentials(args.grafana_token_file)
    http = Http(args.concurrency, args.timeout, headers=headers, auth=auth)
    try:
        mode = build_mode(args, http, scrape_ms)
        now = datetime.now(tz=UTC)
        for flag, value in (("--from", args.range_from), ("--to", args.range_to)):
            _check_time(flag, value, now)
        settings = RunSettings(
            now=now,
            range_from=args.range_from,
            range_to=args.range_to,
            overrides=_overrides(args.var),
            scrape_interval_ms=scrape_ms,
        )
        reports = await run_check(
            dashboards, mode, settings, on_panel=progress.panel, on_total=progress.start
        )
    finally:
        await http.aclose()
    return mode.name, reports


def handle(args: argparse.Namespace) -> int:
    """Run the check; 0 all panels have data, 1 a panel is empty or failing, 2 bad input."""
    if args.concurrency < 1 or args.timeout <= 0:
        print("lookout check: --concurrency and --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    progress = Progress(sys.stderr, enabled=not args.quiet)
    try:
        mode, reports = asyncio.run(_run(args, progress))
    except (CheckInputError, ValueError) as exc:
        print(f"lookout check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(to_json(reports, mode) if args.json else to_text(reports, mode))
    if not is_ok(reports):
        return EXIT_PROBLEM
    if args.strict and summary(reports)["unchecked"]:
        return EXIT_PROBLEM
    return EXIT_OK
