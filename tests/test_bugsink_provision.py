"""bugsink/provision.py, compose's one-shot `bugsink-provision`, against the real PyPI Bugsink.

The same script provisions every real-Bugsink test (stack_support.bugsink); here it runs with
the compose file's own BUGSINK_PROJECTS (the .env keys), so an event sent with a service's
compose DSN (its host moved to the loopback Bugsink) lands in that service's project.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sentry_sdk
import yaml

from lookout_telemetry.errortracking import dashed_event_id
from lookout_telemetry.testing import error_tracking
from stack_support.bugsink import BUGSINK_MANAGE, Bugsink, bugsink_server, provision_command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def bugsink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bugsink]:
    """Run the real Bugsink once for this module (skipped locally, failed in CI, if it cannot)."""
    with bugsink_server(tmp_path_factory.mktemp("bugsink")) as server:
        yield server


def _provision(bugsink: Bugsink, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the provisioning script in Bugsink's Django with ``env`` on top of its own."""
    return subprocess.run(
        [str(BUGSINK_MANAGE), *provision_command()],
        env={**bugsink.env, **env},
        cwd=bugsink.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rows(bugsink: Bugsink, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(bugsink.db_path, timeout=10)) as conn:
        return conn.execute(sql).fetchall()


def _compose_projects(preflight: ModuleType, dotenv: dict[str, str]) -> str:
    raw = COMPOSE["services"]["bugsink-provision"]["environment"]["BUGSINK_PROJECTS"]
    return str(preflight.interpolate(str(raw), dotenv))


def test_compose_keys_make_the_compose_dsns_work(
    bugsink: Bugsink, preflight: ModuleType, dotenv: dict[str, str]
) -> None:
    """With compose's BUGSINK_PROJECTS, the shop's compose DSN reaches the shop's project."""
    done = _provision(bugsink, BUGSINK_PROJECTS=_compose_projects(preflight, dotenv))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["projects"]) == {
        "shop",
        "payments",
        "webhook-relay",
        "synthetic-monitor",
        "storefront",
    }
    env = COMPOSE["services"]["shop"]["environment"]
    dsn = urlsplit(preflight.interpolate(env["SENTRY_DSN"], dotenv))
    local_dsn = dsn._replace(netloc=f"{dsn.username}@127.0.0.1:{bugsink.port}").geturl()
    with error_tracking(local_dsn, service="shop"):
        event_id = sentry_sdk.capture_message("provisioned DSN works")
    event = bugsink.wait_for_event(
        "shop", lambda e: e.get("event_id", "").replace("-", "") == event_id
    )
    assert "provisioned DSN works" in json.dumps(event)


def test_event_link_of_a_log_line_opens_the_event(bugsink: Bugsink) -> None:
    """Grafana's link from a log line's sentry_event_id, /issues/event/<id>/, finds the event.

    The URL is Bugsink's own (issues/urls.py, ``event_by_id``): it redirects to the event's
    page in its issue; the id is the dashed form the log lines carry (``dashed_event_id``).
    """
    # Other tests here re-provision the shop's project: give it a key this test knows.
    assert _provision(bugsink, BUGSINK_PROJECTS=f"1:shop:{KEY}").returncode == 0
    with error_tracking(f"http://{KEY}@127.0.0.1:{bugsink.port}/1", service="shop"):
        try:
            raise RuntimeError("linked from Grafana")
        except RuntimeError as error:
            event_id = sentry_sdk.capture_exception(error)
    assert event_id is not None
    bugsink.wait_for_event("shop", lambda e: e.get("event_id", "").replace("-", "") == event_id)
    link = f"http://127.0.0.1:{bugsink.port}/issues/event/{dashed_event_id(event_id)}/"
    # A visitor who is not logged in is sent to the login page, then back to the link.
    response = httpx.get(link, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:300]
    assert response.headers["location"].startswith("/accounts/login/?next=/issues/event/")
    # Logged in (Django's test client in Bugsink's own process), the link opens the event.
    path = urlsplit(link).path
    follow = (
        "from django.contrib.auth import get_user_model; from django.test import Client; "
        "U = get_user_model(); "
        "u = U.objects.filter(is_superuser=True).first() "
        "or U.objects.create_superuser('link@example.com', 'link@example.com', 'pw'); "
        "c = Client(); c.force_login(u); "
        f"r = c.get({path!r}, HTTP_HOST='127.0.0.1'); "
        "print('LINK', r.status_code, r.get('Location'))"
    )
    done = subprocess.run(
        [str(BUGSINK_MANAGE), "shell", "-c", follow],
        env=bugsink.env,
        cwd=bugsink.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("LINK "))
    _, status, location = line.split(" ", 2)
    assert status == "302", line
    assert re.fullmatch(r"/issues/issue/[0-9a-f-]{36}/event/[0-9a-f-]{36}/", location), line


def test_second_run_changes_nothing(bugsink: Bugsink) -> None:
    """Provisioning twice leaves one team and the same projects, keys and ids."""
    projects = f"1:shop:{KEY}, 2:payments:{KEY[::-1]}"
    first = _provision(bugsink, BUGSINK_PROJECTS=projects)
    before = _rows(bugsink, "SELECT id, name, sentry_key FROM projects_project ORDER BY id")
    second = _provision(bugsink, BUGSINK_PROJECTS=projects)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    assert _rows(bugsink, "SELECT id, name, sentry_key FROM projects_project ORDER BY id") == before
    assert _rows(bugsink, "SELECT count(*) FROM teams_team") == [(1,)]
    keys = {name: key.replace("-", "") for _id, name, key in before}
    assert keys["shop"] == KEY


@pytest.mark.parametrize(
    ("projects", "message"),
    [
        ("", "BUGSINK_PROJECTS is empty"),
        ("1:shop", "BUGSINK_PROJECTS entry 1"),
        (f"1:shop:{KEY}, x:payments:{KEY}", "BUGSINK_PROJECTS entry 2"),
        (f"1:shop:{KEY[:-1]}", "the key 32 hex digits"),
        (f"1:shop:{KEY}, 1:payments:{KEY}", "id 1 appears more than once"),
        (f"1:payments:{KEY}", "project id 1 belongs to 'shop'"),
    ],
    ids=["empty", "no-key", "bad-id", "short-key", "duplicate-id", "id-taken"],
)
def test_bad_input_exits_2_naming_it(bugsink: Bugsink, projects: str, message: str) -> None:
    """A malformed or conflicting entry stops with exit 2 and a message that names it."""
    done = _provision(bugsink, BUGSINK_PROJECTS=projects)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert KEY not in done.stderr, "the message must not echo a key"


def test_admin_joins_the_team(bugsink: Bugsink) -> None:
    """The admin named by BUGSINK_ADMIN_EMAIL becomes an admin member of the team."""
    create = (
        "from django.contrib.auth import get_user_model; "
        "get_user_model().objects.create_superuser('boss@example.com', 'boss@example.com', 'pw')"
    )
    subprocess.run(
        [str(BUGSINK_MANAGE), "shell", "-c", create],
        env=bugsink.env,
        cwd=bugsink.workdir,
        check=True,
        capture_output=True,
        timeout=60,
    )
    done = _provision(
        bugsink, BUGSINK_PROJECTS=f"1:shop:{KEY}", BUGSINK_ADMIN_EMAIL="boss@example.com"
    )
    assert done.returncode == 0, done.stderr
    rows = _rows(
        bugsink,
        "SELECT m.role, m.accepted FROM teams_teammembership m JOIN auth_user u"
        " ON u.id = m.user_id WHERE u.username = 'boss@example.com'",
    )
    assert rows == [(1, 1)]
