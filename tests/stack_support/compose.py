"""docker-compose.yml and .env read the way compose reads them, via scripts/preflight.py.

preflight.py is a script (run before `docker compose up`, with only PyYAML), not a package:
it is imported here by path, once, so the tests and the native stack share its parser.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from lookout_stack.validate.checks import stack_wiring as wiring

__all__ = ["container_ports", "interpolate", "load_env_file", "load_script", "require_docker"]

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` once, under a module name of its own."""
    module_name = f"lookout_scripts_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    if spec is None or spec.loader is None:
        msg = f"cannot import scripts/{name}.py"
        raise ImportError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def load_env_file(path: Path) -> dict[str, str]:
    """Read a .env file as compose does."""
    values: dict[str, str] = load_script("preflight").load_env_file(path)
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute compose's ``${VAR}`` forms from ``env``."""
    result: str = load_script("preflight").interpolate(text, env)
    return result


def container_ports(spec: Mapping[str, Any]) -> set[int]:
    """Return the ports a compose service listens on: its published targets and `expose:`."""
    return wiring.container_ports(spec)


def require_docker() -> str:
    """Return the docker client, or skip the test when no Docker engine answers."""
    import pytest

    docker = shutil.which("docker")
    engine = docker and subprocess.run(
        [docker, "info"], capture_output=True, timeout=30, check=False
    )
    if not docker or not engine or engine.returncode != 0:
        pytest.skip("no Docker engine here: compose is verified only where Docker runs")
    return docker
