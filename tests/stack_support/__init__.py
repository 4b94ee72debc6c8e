"""Support for the stack tests: find real binaries, run the native stack, poll real APIs.

A package beside the tests (not conftest.py) so tests, benchmarks and scripts import it by a
name no other package's tests use: ``from stack_support import ...``.
"""

from stack_support.backends import (
    IN_CI,
    MissingPrerequisite,
    backend_binary,
    backends_dir,
    free_port,
    require_binary,
    require_listening,
    system_binary,
)
from stack_support.poll import PollTimeout, poll_until

__all__ = [
    "IN_CI",
    "MissingPrerequisite",
    "PollTimeout",
    "backend_binary",
    "backends_dir",
    "free_port",
    "poll_until",
    "require_binary",
    "require_listening",
    "system_binary",
]
