"""Fixtures shared by the stack tests: the repo's paths and scripts/preflight.py as a module."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stack_support.compose import load_script

ROOT = Path(__file__).resolve().parent.parent


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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the end-to-end report (and write test-artifacts/e2e-report.json) when e2e ran."""
    from stack_support import report

    lines = report.summary()
    if not lines:
        return
    terminalreporter.section("end-to-end report")
    for line in lines:
        terminalreporter.write_line(line)
    report.write_json(ROOT / "test-artifacts" / "e2e-report.json")
