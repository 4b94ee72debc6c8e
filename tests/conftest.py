"""Fixtures shared by the stack tests: the repo's paths and scripts/preflight.py as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (not a package) once, under a name of its own."""
    module_name = f"lookout_scripts_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def preflight() -> ModuleType:
    """Return scripts/preflight.py, imported."""
    return load_script("preflight")


@pytest.fixture(scope="session")
def dotenv(preflight: ModuleType) -> dict[str, str]:
    """Return the values in the repo's .env (not the environment: tests stay deterministic)."""
    values: dict[str, str] = preflight.load_env_file(ROOT / ".env")
    return values


@pytest.fixture(scope="session")
def compose(preflight: ModuleType) -> dict[str, Any]:
    """Return docker-compose.yml, parsed (anchors and merge keys resolved, nothing substituted)."""
    data: dict[str, Any] = preflight.load_compose(ROOT / "docker-compose.yml")
    return data
