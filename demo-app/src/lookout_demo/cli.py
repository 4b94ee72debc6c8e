"""The ``lookout-demo`` command: ``serve shop|payments`` and ``audit verify|export|prune|restore``.

The audit commands work on the database in ``DATABASE_URL`` (or ``--database-url``):

- ``audit verify [--file EXPORT]``: walk the hash chain; exit 1 naming the first broken
  record (of the database, or of an export file);
- ``audit export --output FILE [--before ISO-DATE]``: write records (default: all) as JSON
  lines, then verify the file;
- ``audit prune --export-to FILE``: export the records older than the 7-year retention,
  verify the export, then delete them;
- ``audit restore FILE``: verify an export, then put its records back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from lookout_demo import __version__
from lookout_demo.settings import (
    CommonSettings,
    PaymentsSettings,
    SettingsError,
    ShopSettings,
    load_settings,
)

if TYPE_CHECKING:  # imported late at run time: prometheus-client must not load before the env
    from lookout_demo.storage.audit import Verification

__all__ = ["main"]

SERVICES: dict[str, tuple[type[CommonSettings], str, int]] = {
    "shop": (ShopSettings, "lookout_demo.entrypoints:shop", 8000),
    "payments": (PaymentsSettings, "lookout_demo.entrypoints:payments", 8001),
}


def _env_int(variable: str, default: int) -> int:
    """Read a positive whole number from the environment, or fail naming the variable."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        msg = f"{variable}={raw!r}: not a whole number"
        raise SettingsError(msg) from None
    if value < 1:
        msg = f"{variable}={raw!r}: must be at least 1"
        raise SettingsError(msg)
    return value


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
        default=None,
        help=(
            "default: DEMO_WORKERS, else 1; uvicorn worker processes (metrics then aggregate "
            "through PROMETHEUS_MULTIPROC_DIR)"
        ),
    )
    audit = sub.add_parser("audit", help="verify, export, prune or restore the audit log")
    audit.add_argument("--database-url", default=None, help="default: DATABASE_URL")
    actions = audit.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="check the hash chain; name the first broken record")
    verify.add_argument("--file", type=Path, default=None, help="verify an export file instead")
    export = actions.add_parser("export", help="write records to a JSON-lines file")
    export.add_argument("--output", type=Path, required=True)
    export.add_argument("--before", type=datetime.fromisoformat, default=None)
    prune = actions.add_parser("prune", help="export, verify, then delete records past retention")
    prune.add_argument("--export-to", type=Path, required=True)
    restore = actions.add_parser("restore", help="verify an export, then insert its records")
    restore.add_argument("file", type=Path)
    return parser


async def _audit(args: argparse.Namespace) -> int:
    """Run one audit command; return the exit code."""
    from lookout_demo.storage.audit import AuditLog, read_export, verify_chain  # noqa: PLC0415
    from lookout_demo.storage.database import Database  # noqa: PLC0415

    if args.action == "verify" and args.file is not None:
        result = verify_chain(read_export(args.file))
        return _report(result, str(args.file))
    overrides = {"database_url": args.database_url} if args.database_url else {}
    settings = load_settings(CommonSettings, **overrides)
    db = Database(settings.database_url)
    audit = AuditLog(db)
    try:
        if args.action == "verify":
            return _report(await audit.verify(), "the database")
        if args.action == "export":
            before = args.before or datetime.now(UTC)
            if before.tzinfo is None:
                before = before.replace(tzinfo=UTC)
            result = await audit.export(args.output, before=before)
            print(f"exported {result.checked} audit records to {args.output}")
            return _report(result, str(args.output))
        if args.action == "prune":
            count = await audit.prune(args.export_to)
            print(
                f"pruned {count} audit records older than the retention; kept in {args.export_to}"
            )
            return 0
        count = await audit.restore(args.file)
        print(f"restored {count} audit records from {args.file}")
        return _report(await audit.verify(), "the database")
    finally:
        await db.close()


def _report(result: Verification, where: str) -> int:
    """Print a verification's outcome; return 0 when the chain holds, else 1."""
    if result.ok:
        print(f"audit chain OK: {result.checked} records in {where}")
        return 0
    print(
        f"audit chain BROKEN in {where}: first broken record id={result.first_broken_id}: "
        f"{result.reason}",
        file=sys.stderr,
    )
    return 1


def _masked_url(args: argparse.Namespace) -> str:
    """Return the audit commands' database URL with any password masked."""
    url = args.database_url or load_settings(CommonSettings).database_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run it."""
    args = _parser().parse_args(argv)
    if args.command == "audit":
        try:
            return asyncio.run(_audit(args))
        except DBAPIError as exc:
            print(
                f"lookout-demo audit: cannot read the audit log at {_masked_url(args)}: "
                f"{exc.orig or exc}; has the service run its migrations?",
                file=sys.stderr,
            )
            return 2
        except (SettingsError, RuntimeError, OSError, ValueError) as exc:
            print(f"lookout-demo audit: {exc}", file=sys.stderr)
            return 2
    settings_cls, factory, default_port = SERVICES[args.service]
    os.environ.setdefault("DEMO_SERVICE_NAME", args.service)
    try:
        settings = load_settings(settings_cls)
        port = args.port or _env_int("DEMO_PORT", default_port)
        args.workers = args.workers or _env_int("DEMO_WORKERS", 1)
    except SettingsError as exc:
        print(f"lookout-demo: {exc}", file=sys.stderr)
        return 2
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
