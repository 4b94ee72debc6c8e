"""The ``lookout`` command. Each sub-command lives in its own module, which exposes
``register(commands)``: it adds its parser to ``commands`` and sets ``handler`` (a function
taking the parsed arguments and returning the exit code) as the parser's default.

Exit codes shared by every sub-command: 0 success; 1 the check found a problem (an empty or
failing panel, a diff); 2 bad input or settings (the message names the file, line or field).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from lookout_stack import __version__

__all__ = ["COMMAND_MODULES", "main"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2

# One module per sub-command, in the order `lookout --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "lookout_stack.dashboards.command",
    "lookout_stack.slo.command",
    "lookout_stack.check",
    "lookout_stack.validate.command",
    "lookout_stack.deploy.command",
)

Handler = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookout",
        description="Lookout's stack CLI: dashboards as code, SLO rules, panel checks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("lookout: interrupted", file=sys.stderr)
        return 130
