"""Alert links open from outside the compose network: Prometheus and Alertmanager external URLs.

Without ``--web.external-url`` an alert's ``generatorURL`` and a notification's
``externalURL`` name the container's hostname (``http://3f2a...:9090/graph``), which no one
can open from Slack or PagerDuty. Compose sets both flags to the published localhost port;
users set their public URL. The path must stay ``/``: a path in the external URL also prefixes
every route (``--web.route-prefix`` defaults to it), healthchecks included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from stack_support import IN_CI, MissingPrerequisite
from stack_support.compose import interpolate, load_env_file
from stack_support.native import NativeStack, ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
SERVICES: dict[str, Any] = yaml.safe_load(
    (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
)["services"]
DOTENV = load_env_file(ROOT / ".env")
FLAG = "--web.external-url="
#: service -> (the .env variable of its published port, its container port)
LINKED = {"prometheus": ("PROMETHEUS_PORT", 9090), "alertmanager": ("ALERTMANAGER_PORT", 9093)}


def _external_url(service: str, env: dict[str, str]) -> str:
    """Return the service's --web.external-url from compose, interpolated with ``env``."""
    flags = [str(a) for a in SERVICES[service]["command"] if str(a).startswith(FLAG)]
    assert len(flags) == 1, f"services.{service}.command: {FLAG} set {len(flags)} times"
    return interpolate(flags[0][len(FLAG) :], env)


def _published_port(service: str, container_port: int, env: dict[str, str]) -> int:
    """Return the host port compose publishes ``container_port`` of ``service`` on."""
    for entry in SERVICES[service].get("ports") or []:
        parts = interpolate(str(entry), env).split(":")
        if int(parts[-1]) == container_port:
            return int(parts[-2])
    pytest.fail(f"services.{service}: port {container_port} is not published")


@pytest.mark.parametrize("service", sorted(LINKED))
@pytest.mark.parametrize("port", [None, "19999"], ids=["dotenv", "overridden"])
def test_external_url_is_the_published_localhost_port_at_root(
    service: str, port: str | None
) -> None:
    """The external URL is http://localhost:<published port>/, following the .env port."""
    variable, container_port = LINKED[service]
    assert variable in DOTENV, f".env has no {variable}"
    env = dict(DOTENV) if port is None else {**DOTENV, variable: port}
    url = urlsplit(_external_url(service, env))
    assert (url.scheme, url.hostname, url.path) == ("http", "localhost", "/"), url
    assert url.port == _published_port(service, container_port, env)
    assert url.port == int(env[variable])
    # Without the variable at all, the flag's default is the published default.
    bare = {k: v for k, v in DOTENV.items() if k != variable}
    assert urlsplit(_external_url(service, bare)).port == _published_port(
        service, container_port, bare
    )


@pytest.mark.parametrize("service", sorted(LINKED))
def test_healthcheck_path_is_served_under_the_route_prefix(service: str) -> None:
    """The healthcheck's path lies under the external URL's path (the route prefix)."""
    prefix = urlsplit(_external_url(service, DOTENV)).path
    test = " ".join(SERVICES[service]["healthcheck"]["test"])
    path = urlsplit(re.search(r"https?://\S+", test)[0]).path  # type: ignore[index]
    assert path.startswith(prefix), f"services.{service}: {path} outside prefix {prefix}"


def _render(service: str, workdir: Path) -> ServiceProcess:
    """Render a service for the native run; a missing program skips (fails under CI)."""
    try:
        return NativeStack(workdir, [service]).render(service)
    except MissingPrerequisite as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.mark.parametrize("service", sorted(LINKED))
def test_native_run_keeps_the_external_url_and_its_ready_url(service: str, tmp_path: Path) -> None:
    """The native harness passes the flag through (localhost is no service) and probes /-/ready."""
    rendered = _render(service, tmp_path)
    variable, _ = LINKED[service]
    assert f"{FLAG}http://localhost:{DOTENV[variable]}/" in rendered.argv
    assert rendered.ready_url is not None
    ready = urlsplit(rendered.ready_url)
    assert (ready.hostname, ready.path) == (rendered.address, "/-/ready")
