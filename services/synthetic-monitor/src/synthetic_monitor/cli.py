"""The ``synthetic-monitor`` command: ``serve``, ``run FILE...`` and ``check FILE...``.

Exit codes: 0 success; 1 a journey failed (``run``); 2 the configuration or a setting is
invalid (every problem printed, with file, line and field, or the variable's name).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from lookout_telemetry.errortracking import install_loop_handler, start_error_tracking
from lookout_telemetry.logs import configure_logging
from synthetic_monitor import __version__
from synthetic_monitor.config import load_paths
from synthetic_monitor.errors import ConfigErrors
from synthetic_monitor.otel import setup_logs, setup_tracing
from synthetic_monitor.report import render_json, render_junit, render_text
from synthetic_monitor.results import RunResult
from synthetic_monitor.runner import JourneyRunner
from synthetic_monitor.settings import MonitorSettings, SettingsError, load_settings

__all__ = ["main"]

log = logging.getLogger("synthetic_monitor.cli")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthetic-monitor",
        description="Scripted HTTP journeys and checks: metrics, traces, history, status page.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run journeys on their schedules (settings: MONITOR_*)")
    run = commands.add_parser("run", help="run each journey once; exit 1 if any failed")
    run.add_argument("paths", nargs="+", type=Path, help="journey files or directories")
    run.add_argument("--format", choices=["text", "json", "junit"], default="text")
    run.add_argument("--output", type=Path, help="write the report here instead of stdout")
    run.add_argument(
        "--journey", action="append", default=[], help="run only this journey (repeatable)"
    )
    run.add_argument(
        "--log-level",
        default="WARNING",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="JSON logs on stderr from this level",
    )
    check = commands.add_parser("check", help="validate journey files; exit 2 on any error")
    check.add_argument("paths", nargs="+", type=Path, help="journey files or directories")
    return parser


def _check(paths: Sequence[Path]) -> int:
    try:
        config = load_paths(paths)
    except ConfigErrors as errors:
        print(errors, file=sys.stderr)
        return EXIT_CONFIG
    kinds = [j.kind for j in config.journeys.values()]
    print(
        f"OK: {kinds.count('journey')} journeys and {kinds.count('check')} checks "
        f"in {len(config.files)} files"
    )
    return EXIT_OK


async def _run_all(paths: Sequence[Path], only: Sequence[str]) -> list[RunResult] | int:
    try:
        config = load_paths(paths)
    except ConfigErrors as errors:
        print(errors, file=sys.stderr)
        return EXIT_CONFIG
    journeys = list(config.journeys.values())
    if only:
        unknown = sorted(set(only) - set(config.journeys))
        if unknown:
            print(
                f"no journey named {', '.join(unknown)} in {', '.join(config.files)}",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        journeys = [j for j in journeys if j.name in only]
    try:
        provider = setup_tracing("synthetic-monitor", "ci")
    except ValueError as error:  # an unsupported OTEL_* exporter setting
        print(f"synthetic-monitor: {error}", file=sys.stderr)
        return EXIT_CONFIG
    runner = JourneyRunner(provider)
    try:
        return list(await asyncio.gather(*(runner.run(j) for j in journeys)))
    finally:
        provider.force_flush()
        provider.shutdown()


def _run(args: argparse.Namespace) -> int:
    configure_logging("synthetic-monitor", args.log_level, stream=sys.stderr)
    outcome = asyncio.run(_run_all(args.paths, args.journey))
    if isinstance(outcome, int):
        return outcome
    render = {"text": render_text, "json": render_json, "junit": render_junit}[args.format]
    report = render(outcome)
    if args.output is not None:
        args.output.write_text(report, encoding="utf-8")
        if args.format != "text":
            sys.stdout.write(render_text(outcome))
    else:
        sys.stdout.write(report)
    return EXIT_OK if all(r.success for r in outcome) else EXIT_FAILED


def serve(settings: MonitorSettings) -> int:
    """Run the monitor until SIGTERM/SIGINT; SIGHUP reloads the configuration."""
    import uvicorn  # noqa: PLC0415
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from synthetic_monitor.metrics import MonitorMetrics  # noqa: PLC0415
    from synthetic_monitor.service import Monitor, tune_gc  # noqa: PLC0415
    from synthetic_monitor.storage import create_store  # noqa: PLC0415
    from synthetic_monitor.web import create_app  # noqa: PLC0415

    try:
        log_export = setup_logs(settings.service_name, settings.environment)
        provider = setup_tracing(settings.service_name, settings.environment)
    except ValueError as error:  # an unsupported OTEL_* exporter setting
        print(f"synthetic-monitor: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(
        settings.service_name,
        settings.log_level,
        extra_handlers=[log_export.handler] if log_export is not None else [],
    )
    start_error_tracking(
        settings.sentry_dsn,
        service=settings.service_name,
        package="lookout-synthetic-monitor",
        version=__version__,
        revision=settings.revision,
        environment=settings.environment,
    )
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    monitor = Monitor(
        settings.config_path,
        JourneyRunner(provider, observer=metrics),
        create_store(settings.database_url),
        metrics,
        retention_days=settings.history_retention_days,
        reload_poll_seconds=settings.reload_poll_seconds,
        trace_url_template=settings.trace_url_template,
    )
    try:
        config = monitor.load_initial()
    except ConfigErrors as errors:
        log.error(
            "configuration invalid; not starting",
            extra={"errors": [str(e) for e in errors.errors], "path": str(settings.config_path)},
        )
        return EXIT_CONFIG

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        install_loop_handler()
        await monitor.start()
        tune_gc()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, monitor.reload)
        log.info(
            "monitor started",
            extra={"journeys": len(config.journeys), "port": settings.port, "version": __version__},
        )
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            log.info("shutting down; letting runs in progress finish")
            await monitor.stop(settings.shutdown_grace_seconds)
            provider.force_flush()
            provider.shutdown()
            log.info("monitor stopped")
            if log_export is not None:
                log_export.shutdown()

    app = create_app(monitor, registry, lifespan)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    server.run()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _check(args.paths)
    if args.command == "run":
        return _run(args)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"synthetic-monitor: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return serve(settings)
