"""The compose stack end to end through Grafana: load, then every panel of every dashboard.

Only where a Docker engine runs (`pytest -m compose`; skipped here). The stack is started as
`make up` starts it (and stopped afterwards only when this test started it); Locust runs the
bounded load against the published shop port; then `lookout check --grafana` sends every
panel's queries through Grafana's /api/ds/query, so every panel is covered, the collector's and
Grafana-evaluated ones included. Any empty or failing panel fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack_support import PollTimeout, poll_until
from stack_support.compose import require_docker
from stack_support.locust import run_locust
from stack_support.report import PanelCounts, record_panels

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "grafana" / "dashboards"


@pytest.fixture(scope="module")
def compose_stack(dotenv: dict[str, str]) -> Iterator[dict[str, str]]:
    """Bring the compose stack up (healthy); stop it afterwards if this test started it."""
    docker = require_docker()
    running = subprocess.run(
        [docker, "compose", "ps", "--quiet"], capture_output=True, text=True, cwd=ROOT,
        timeout=60, check=False,
    ).stdout.strip()  # fmt: skip
    subprocess.run(
        [docker, "compose", "up", "--detach", "--build", "--wait"], cwd=ROOT, timeout=900,
        check=True,
    )  # fmt: skip
    ports = {
        "shop": f"http://127.0.0.1:{dotenv.get('SHOP_PORT', '8000')}",
        "grafana": f"http://127.0.0.1:{dotenv.get('GRAFANA_PORT', '3000')}",
    }
    try:
        yield ports
    finally:
        if not running:
            subprocess.run([docker, "compose", "down"], cwd=ROOT, timeout=300, check=False)


def test_every_panel_has_data_through_grafana(
    compose_stack: dict[str, str], dotenv: dict[str, str]
) -> None:
    """After a bounded load, `lookout check --grafana` finds no empty or failing panel."""
    run = run_locust(compose_stack["shop"], users=8, spawn_rate=4, seconds=60)
    assert run.returncode == 0, run.stderr[-3000:]
    env = {
        **os.environ,
        "LOOKOUT_GRAFANA_USER": "admin",
        "LOOKOUT_GRAFANA_PASSWORD": dotenv["GRAFANA_ADMIN_PASSWORD"],
    }
    command = [
        sys.executable, "-m", "lookout_stack", "check", str(DASHBOARDS),
        "--grafana", compose_stack["grafana"], "--from", "now-15m", "--var", "service=shop",
        "--json", "--quiet",
    ]  # fmt: skip
    last: dict[str, Any] = {}

    def clean() -> bool:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=180, check=False
        )
        assert done.returncode in {0, 1}, done.stderr[-2000:]
        last["report"] = json.loads(done.stdout)
        return bool(last["report"]["ok"])

    with contextlib.suppress(PollTimeout):
        poll_until(clean, "every panel to have data through Grafana", 300, 15)
    report = last["report"]
    panels = [(d["uid"], p) for d in report["dashboards"] for p in d["panels"]]
    problems = [f"{uid} / {p['title']}: {p['status']}" for uid, p in panels
                if p["status"] in {"empty", "error"}]  # fmt: skip
    record_panels(
        PanelCounts(
            checked=len(panels),
            with_data=sum(p["status"] == "data" for _, p in panels),
            problems=problems,
            not_checkable=list(report["unchecked"]),
        )
    )
    assert not problems, "empty or failing panels through Grafana:\n" + "\n".join(problems)
