"""Key schemas for the tests: the package's KeySchema (lookout_stack.validate.keyschema).

The schema walker and the schema files live in the ``lookout`` CLI (``lookout validate`` runs
them too); this module re-exports them under the names the tests use, and adds what only the
tests need: the compose services' ports read from this repo's docker-compose.yml.
"""

from __future__ import annotations

from pathlib import Path

from lookout_stack.validate.keyschema import (
    ENV_REFERENCE,
    SCHEMAS_DIR,
    KeySchema,
    host_port,
    load_yaml,
    resolve_env_defaults,
)
from stack_support.compose import container_ports

__all__ = [
    "COMPOSE_SERVICE_PORTS",
    "ENV_REFERENCE",
    "SCHEMAS_DIR",
    "KeySchema",
    "host_port",
    "load_yaml",
    "resolve_env_defaults",
]

ROOT = Path(__file__).resolve().parent.parent


# The compose services and the container ports each listens on (published `ports:` targets
# and `expose:` entries), read from docker-compose.yml.
def _compose_service_ports() -> dict[str, set[int]]:
    compose = load_yaml(ROOT / "docker-compose.yml")
    return {name: container_ports(spec) for name, spec in compose["services"].items()}


COMPOSE_SERVICE_PORTS: dict[str, set[int]] = _compose_service_ports()
