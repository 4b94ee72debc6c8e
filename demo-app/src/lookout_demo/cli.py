"""The ``lookout-demo`` command: ``lookout-demo serve shop|payments``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from lookout_demo import __version__
from lookout_demo.settings import (
    CommonSettings,
    PaymentsSettings,
    SettingsError,
    ShopSettings,
    load_settings,
)

__all__ = ["main"]

SERVICES: dict[str, tuple[type[CommonSettings], str, int]] = {
    "shop": (ShopSettings, "lookout_demo.entrypoints:shop", 8000),
    "payments": (PaymentsSettings, "lookout_demo.entrypoints:payments", 8001),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lookout-demo", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the shop or the payments service")
    serve.add_argument("service", choices=sorted(SERVICES))
    serve.add_argument("--host", default=os.environ.get("DEMO_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=None, help="default: DEMO_PORT, else 8000/8001")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("DEMO_WORKERS", "1")),
        help="uvicorn worker processes (metrics then aggregate through PROMETHEUS_MULTIPROC_DIR)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run it."""
    args = _parser().parse_args(argv)
    settings_cls, factory, default_port = SERVICES[args.service]
    os.environ.setdefault("DEMO_SERVICE_NAME", args.service)
    try:
        settings = load_settings(settings_cls)
    except SettingsError as exc:
        print(f"lookout-demo: {exc}", file=sys.stderr)
        return 2
    port = args.port or int(os.environ.get("DEMO_PORT", default_port))
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before any worker imports prometheus_client.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lookout-metrics-")
    from lookout_demo.server import serve  # noqa: PLC0415 - after the env is final

    serve(
        factory,
        host=args.host,
        port=port,
        workers=args.workers,
        shutdown_delay_seconds=settings.shutdown_delay_seconds,
        graceful_timeout_seconds=settings.graceful_timeout_seconds,
    )
    return 0
