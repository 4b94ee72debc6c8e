"""Every Python service refuses a mistyped SENTRY_DSN at start-up, naming the variable and the
reason, and never printing the DSN's key (a DSN holds the project's key)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEY = "0123456789abcdef0123456789abcdef"
BAD_DSN = f"https//{KEY}@bugsink:8000/1"

# (command, extra environment, the variable the message must name)
SERVICES = {
    "shop": (["lookout-demo", "serve", "shop"], {}, "SENTRY_DSN"),
    "webhook-relay": (
        ["webhook-relay", "serve"],
        {
            "RELAY_ROUTING_FILE": str(ROOT / "services/webhook-relay/routing.compose.yml"),
            "RELAY_AUTH_MODE": "none",
        },
        "SENTRY_DSN",
    ),
    "synthetic-monitor": (
        ["synthetic-monitor", "serve"],
        {"MONITOR_CONFIG_PATH": str(ROOT / "services/synthetic-monitor/journeys")},
        "SENTRY_DSN",
    ),
}


def _run(
    command: list[str], env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name(command[0])
    return subprocess.run(
        [str(executable), *command[1:]],
        env={"PATH": str(executable.parent), "HOME": str(tmp_path), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_mistyped_dsn_stops_start_up_with_a_reason_and_no_key(
    service: str, tmp_path: Path
) -> None:
    command, env, variable = SERVICES[service]
    done = _run(command, {**env, "SENTRY_DSN": BAD_DSN}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert variable in done.stderr
    assert "not a Sentry DSN" in done.stderr
    assert KEY not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEMO_PORT", "abc", "DEMO_PORT='abc': not a whole number"),
        ("DEMO_WORKERS", "0", "DEMO_WORKERS='0': must be at least 1"),
    ],
)
def test_the_demo_cli_names_a_bad_number_setting(
    variable: str, value: str, message: str, tmp_path: Path
) -> None:
    done = _run(["lookout-demo", "serve", "shop"], {variable: value}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
