"""docker-compose.yml, .env and the Dockerfiles: the rules every service follows.

No Docker engine runs here: the compose file is checked against the compose-spec JSON schema
and cross-referenced with .env and itself; `docker compose config` runs only where Docker does
(the `compose` marker).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from lookout_stack.validate.checks import compose_rules, compose_schema
from stack_support.compose import require_docker

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_TEXT = COMPOSE_FILE.read_text(encoding="utf-8")
SERVICES = list(yaml.safe_load(COMPOSE_TEXT)["services"])
DOCKERFILES = sorted(
    p.relative_to(ROOT)
    for p in ROOT.rglob("Dockerfile")
    if not {".venv", ".cache", "node_modules"} & set(p.parts)
)
# Postgres and Redis stay off the host (DESIGN.md, Ports): 5432 and 6379 are often taken there.
UNPUBLISHED = ["postgres", "redis"]
# Which variable of which service names another compose service that it needs (any URL-valued
# variable whose host is a compose service).
DEPENDENCY_URLS = [
    (service, variable)
    for service, spec in yaml.safe_load(COMPOSE_TEXT)["services"].items()
    for variable, value in (spec.get("environment") or {}).items()
    if re.search(r"://(?:[^@/]*@)?(?:" + "|".join(map(re.escape, SERVICES)) + r"):\d+", str(value))
]
# A pinned tag starts with a version of at least MAJOR.MINOR (postgres 17.11, redis 8.10.2).
PINNED_TAG = re.compile(r"^v?\d+\.\d+")


# The rules themselves live in `lookout validate`'s compose-rules check (one implementation).
RULES = compose_rules.RULES
ONE_SHOT = compose_rules.one_shot(yaml.safe_load(COMPOSE_TEXT))
ONE_SHOT_RULES = compose_rules.ONE_SHOT_RULES


def test_compose_file_matches_the_compose_spec_schema() -> None:
    """docker-compose.yml validates against the compose-spec JSON schema."""
    result = compose_schema.CHECK.run(ROOT)
    assert result.status == "passed", result.findings


def test_every_variable_the_compose_file_uses_is_set_in_env(
    preflight: ModuleType, dotenv: dict[str, str]
) -> None:
    """Every ${VAR} in docker-compose.yml has its value in .env, defaults notwithstanding."""
    missing = sorted(set(preflight.variables_in(COMPOSE_TEXT)) - set(dotenv))
    assert not missing, f"set these in .env: {missing}"


@pytest.mark.parametrize("service", SERVICES)
def test_image_is_pinned_in_env(
    service: str, compose: dict[str, Any], preflight: ModuleType, dotenv: dict[str, str]
) -> None:
    """The service's image comes from .env and resolves to a version tag, never `latest`."""
    raw = compose["services"][service].get("image", "")
    assert preflight.variables_in(raw), f"{service}: put the image tag in .env, not {raw!r}"
    image = preflight.interpolate(raw, dotenv)
    name, _, digest = image.partition("@")
    tag = name.rpartition(":")[2] if ":" in name.split("/")[-1] else ""
    assert digest or PINNED_TAG.match(tag), f"{service}: {image!r} is not pinned to a version"


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("service", [s for s in SERVICES if s not in ONE_SHOT])
def test_service_follows_rule(service: str, rule: str, compose: dict[str, Any]) -> None:
    """The service has a healthcheck, a memory limit and `restart: unless-stopped`."""
    assert RULES[rule](compose["services"][service]), f"{service}: {rule} is not true"


@pytest.mark.parametrize("rule", ONE_SHOT_RULES)
@pytest.mark.parametrize("service", ONE_SHOT)
def test_one_shot_job_follows_rule(service: str, rule: str, compose: dict[str, Any]) -> None:
    """A one-shot job has a memory limit and `restart: "no"` (it exits when done)."""
    assert ONE_SHOT_RULES[rule](compose["services"][service]), f"{service}: {rule} is not true"


@pytest.mark.parametrize("service", SERVICES)
def test_service_has_a_comment_above_it(service: str) -> None:
    """Each service is introduced by a one-line comment saying what it is."""
    lines = COMPOSE_TEXT.splitlines()
    index = lines.index(f"  {service}:")
    assert lines[index - 1].startswith("  # "), f"{service}: add a comment line above it"


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_are_waited_for_until_healthy(service: str, compose: dict[str, Any]) -> None:
    """Each depends_on target exists, has a healthcheck and is awaited as service_healthy.

    A one-shot job is awaited as service_completed_successfully instead.
    """
    problems = compose_rules.dependency_problems(service, compose)
    assert not problems, f"{service}: {problems}"


@pytest.mark.parametrize("service", SERVICES)
def test_published_ports_bind_loopback_from_env(
    service: str, compose: dict[str, Any], preflight: ModuleType, dotenv: dict[str, str]
) -> None:
    """Each host port binds 127.0.0.1, comes from a .env variable and defaults to its value."""
    ports = [p for p in preflight.published_ports(compose, dotenv) if p.service == service]
    for published in ports:
        assert published.host_ip == "127.0.0.1", f"{service}: bind {published.port} to loopback"
        assert published.variable in dotenv, (
            f"{service}: set the port of {published.target} in .env"
        )
        assert published.port == int(dotenv[published.variable])
    only_this = {"services": {service: compose["services"][service]}}
    try:
        defaults = [p.port for p in preflight.published_ports(only_this, {})]
    except preflight.ComposeError:  # no default written beside the variable: nothing to drift
        return
    assert defaults == [p.port for p in ports], (
        f"{service}: the ${{VAR:-default}} differs from .env"
    )


@pytest.mark.parametrize("service", UNPUBLISHED)
def test_data_stores_are_not_published(service: str, compose: dict[str, Any]) -> None:
    """Postgres and Redis publish no host port."""
    assert not compose["services"][service].get("ports")


@pytest.mark.parametrize("service", SERVICES)
def test_named_volumes_are_declared(service: str, compose: dict[str, Any]) -> None:
    """Every named volume a service mounts is declared under the top-level `volumes:`."""
    declared = set(compose.get("volumes") or {})
    for mount in compose["services"][service].get("volumes") or []:
        if isinstance(mount, dict):
            source = mount.get("source", "") if mount.get("type") == "volume" else ""
        else:
            source = mount.split(":", 1)[0] if ":" in mount else ""
        if source and not source.startswith((".", "/", "~", "$")):
            assert source in declared, f"{service}: declare volume {source!r} at the top level"


@pytest.mark.parametrize(("service", "variable"), DEPENDENCY_URLS)
def test_dependency_urls_name_a_service_it_waits_for(
    service: str, variable: str, compose: dict[str, Any], preflight: ModuleType, dotenv: dict
) -> None:
    """Each URL to another service names a compose service listed in depends_on."""
    spec = compose["services"][service]
    host = urlsplit(preflight.interpolate(spec["environment"][variable], dotenv)).hostname
    assert host in compose["services"], f"{service}: {variable} names unknown host {host!r}"
    assert host in (spec.get("depends_on") or {}), f"{service}: add {host} to depends_on"


@pytest.mark.parametrize("service", ["shop", "payments", "bugsink"])
def test_database_exists_on_first_start(
    service: str, compose: dict[str, Any], preflight: ModuleType, dotenv: dict[str, str]
) -> None:
    """The database in DATABASE_URL is POSTGRES_DB or one an init script creates."""
    url = preflight.interpolate(compose["services"][service]["environment"]["DATABASE_URL"], dotenv)
    database = urlsplit(url).path.lstrip("/")
    postgres = compose["services"]["postgres"]
    created = {postgres["environment"]["POSTGRES_DB"]}
    for mount in postgres.get("volumes") or []:
        source, _, target = str(mount).partition(":")
        if target.startswith("/docker-entrypoint-initdb.d"):
            for script in sorted((ROOT / source).glob("*.sql")):
                text = script.read_text(encoding="utf-8")
                created.update(re.findall(r"(?i)CREATE\s+DATABASE\s+(\w+)", text))
    assert database in created, f"{service}: nothing creates database {database!r}"


@pytest.mark.parametrize("service", ["shop", "payments"])
def test_app_listens_on_the_port_it_publishes(
    service: str, compose: dict[str, Any], preflight: ModuleType, dotenv: dict[str, str]
) -> None:
    """DEMO_PORT, which the healthcheck also reads, is the container port that is published."""
    spec = compose["services"][service]
    targets = {p.target for p in preflight.published_ports(compose, dotenv) if p.service == service}
    assert targets == {int(spec["environment"]["DEMO_PORT"])}
    assert spec["environment"]["DEMO_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=str)
def test_dockerfile_images_are_pinned(dockerfile: Path) -> None:
    """Every image a Dockerfile builds FROM or copies from carries a version tag."""
    text = (ROOT / dockerfile).read_text(encoding="utf-8")
    # FROM ${NAME} takes the ARG's default unless a build arg overrides it (compose passes the
    # .env value): the default must be pinned too.
    defaults = dict(re.findall(r"(?im)^ARG\s+(\w+)=(\S+)", text))
    text = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m[1], m[0]), text)
    stages = set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", text))
    images = re.findall(r"(?im)^FROM\s+(\S+)", text) + re.findall(r"--from=(\S+)", text)
    for image in images:
        if image in stages:
            continue
        name = image.split("@", 1)[0]
        tag = name.rpartition(":")[2] if ":" in name.split("/")[-1] else ""
        assert PINNED_TAG.match(tag), f"{dockerfile}: pin {image!r} to a version tag"


@pytest.mark.compose
def test_docker_compose_config_accepts_the_file() -> None:
    """`docker compose config` accepts the file with .env (only where a Docker engine runs)."""
    docker = require_docker()
    result = subprocess.run(
        [docker, "compose", "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


BUILD_ARGS = [
    (service, name, value)
    for service, spec in yaml.safe_load(COMPOSE_TEXT)["services"].items()
    for name, value in ((spec.get("build") or {}).get("args") or {}).items()
    # Image pins only: LOOKOUT_VERSION's Dockerfile default ("dev") marks a hand-made build.
    if name.endswith("_IMAGE")
]


@pytest.mark.parametrize(("service", "arg", "value"), BUILD_ARGS, ids=str)
def test_dockerfile_arg_default_matches_env(
    service: str,
    arg: str,
    value: str,
    compose: dict[str, Any],
    preflight: ModuleType,
    dotenv: dict[str, str],
) -> None:
    """A base-image ARG that compose sets from .env defaults to the same image (no drift)."""
    build = compose["services"][service]["build"]
    dockerfile = ROOT / build["context"] / build.get("dockerfile", "Dockerfile")
    defaults = dict(re.findall(r"(?im)^ARG\s+(\w+)=(\S+)", dockerfile.read_text(encoding="utf-8")))
    if arg not in defaults:
        return  # no default in the Dockerfile: nothing to drift
    assert defaults[arg] == preflight.interpolate(str(value), dotenv), (
        f"{dockerfile.relative_to(ROOT)}: ARG {arg}={defaults[arg]} but .env gives "
        f"{preflight.interpolate(str(value), dotenv)}"
    )


WORKSPACE_MEMBERS = sorted(
    str(p.parent.relative_to(ROOT))
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "uv"
    ]["workspace"]["members"]
    for p in ROOT.glob(f"{pattern}/pyproject.toml")
)
UV_DOCKERFILES = [d for d in DOCKERFILES if "uv sync --locked" in (ROOT / d).read_text()]


@pytest.mark.parametrize("dockerfile", UV_DOCKERFILES, ids=str)
def test_dockerfile_sees_every_workspace_member(dockerfile: Path) -> None:
    """`uv sync --locked` reads the whole workspace: each member's pyproject.toml is in the image.

    Without it uv stops with a misleading "the lockfile needs to be updated".
    """
    text = (ROOT / dockerfile).read_text(encoding="utf-8")
    for member in WORKSPACE_MEMBERS:
        manifest = f"{member}/pyproject.toml"
        assert f"source={manifest},target={manifest}" in text, f"{dockerfile}: mount {manifest}"
        assert f"COPY {manifest} {member}/" in text, f"{dockerfile}: COPY {manifest}"


def _dev_group_pin(package: str) -> str:
    """Return the version demo-app's dev dependency group pins ``package`` to (==)."""
    manifest = tomllib.loads((ROOT / "demo-app" / "pyproject.toml").read_text(encoding="utf-8"))
    for requirement in manifest["dependency-groups"]["dev"]:
        name, _, version = str(requirement).partition("==")
        if name.strip() == package:
            return version.strip()
    msg = f"demo-app/pyproject.toml: no {package}==<version> in the dev dependency group"
    raise AssertionError(msg)


def test_bugsink_image_is_the_version_the_tests_run(dotenv: dict[str, str]) -> None:
    """BUGSINK_IMAGE's tag is the bugsink version the tests run from PyPI (no drift)."""
    tag = dotenv["BUGSINK_IMAGE"].rpartition(":")[2]
    assert dotenv["BUGSINK_IMAGE"].startswith("bugsink/bugsink:")
    assert tag == _dev_group_pin("bugsink"), (
        f".env: BUGSINK_IMAGE={dotenv['BUGSINK_IMAGE']} but demo-app's dev group pins "
        f"bugsink=={_dev_group_pin('bugsink')}: bump both together"
    )


def _provisioned(compose: dict[str, Any], preflight: ModuleType, env: dict[str, str]) -> dict:
    """Return {project name: (id, key)} from bugsink-provision's BUGSINK_PROJECTS."""
    raw = compose["services"]["bugsink-provision"]["environment"]["BUGSINK_PROJECTS"]
    projects = {}
    for entry in preflight.interpolate(str(raw), env).split(","):
        project_id, name, key = entry.strip().split(":")
        projects[name] = (int(project_id), key)
    return projects


SENTRY_DSNS = [
    service
    for service, spec in yaml.safe_load(COMPOSE_TEXT)["services"].items()
    if "SENTRY_DSN" in (spec.get("environment") or {})
]


def test_every_python_service_reports_errors() -> None:
    """Each service built from this repo's uv workspace has a SENTRY_DSN (on in compose)."""
    services = yaml.safe_load(COMPOSE_TEXT)["services"]
    ours = {s for s, spec in services.items() if (spec.get("build") or {}).get("context") == "."}
    assert ours, "no service is built from this repo"
    assert ours <= set(SENTRY_DSNS), f"no SENTRY_DSN: {sorted(ours - set(SENTRY_DSNS))}"


@pytest.mark.parametrize("service", SENTRY_DSNS)
def test_sentry_dsn_is_a_provisioned_project(
    service: str, compose: dict[str, Any], preflight: ModuleType, dotenv: dict[str, str]
) -> None:
    """A service's SENTRY_DSN is http://<key>@bugsink:8000/<id> of its own provisioned project."""
    dsn = urlsplit(
        preflight.interpolate(compose["services"][service]["environment"]["SENTRY_DSN"], dotenv)
    )
    projects = _provisioned(compose, preflight, dotenv)
    assert service in projects, f"bugsink-provision: BUGSINK_PROJECTS has no project {service!r}"
    project_id, key = projects[service]
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("http", "bugsink", 8000)
    assert dsn.username == key, f"{service}: SENTRY_DSN's key is not its project's key"
    assert dsn.path == f"/{project_id}", f"{service}: SENTRY_DSN names project {dsn.path}"
    assert re.fullmatch(r"[0-9a-f]{32}", key), f"{service}: the project key is not 32 hex digits"


def test_no_literal_password_in_compose() -> None:
    """Passwords and secret keys come from .env: the compose file holds none literally."""
    for line in COMPOSE_TEXT.splitlines():
        name, _, value = line.strip().partition(":")
        if re.search(r"(?i)(password|secret_key|superuser)$", name) and value.strip():
            assert "${" in value, f"docker-compose.yml: {line.strip()!r}: take it from .env"
