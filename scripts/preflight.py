#!/usr/bin/env python3
"""Check, before `docker compose up`, that every host port the stack publishes is free.

Reads the host ports from docker-compose.yml, substitutes ``${VAR}``, ``${VAR:-default}``
and the other compose forms from .env and the environment (the environment wins, as in
compose), and tries to bind each one. For a port that is taken it names the service and the
.env variable that moves it, and exits 1. Ports that this project's own running containers
hold are fine (a second `make up`).

    python3 scripts/preflight.py           check the ports (exit 1: a port is taken)
    python3 scripts/preflight.py --urls    print the URL of each published service

Needs PyYAML to read docker-compose.yml: run it with `uv run` (the project's venv has it) or
install it with pip. Everything else is the standard library.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ComposeError",
    "PublishedPort",
    "active_services",
    "clash_message",
    "find_clashes",
    "interpolate",
    "load_compose",
    "load_env_file",
    "main",
    "port_in_use",
    "ports_held_by_project",
    "project_name",
    "published_ports",
    "service_urls",
    "variables_in",
]

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_FILE = ROOT / ".env"

# $$ (a literal $), ${VAR}, ${VAR<op>arg} with op one of :- - :? ? :+ +, and bare $VAR.
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)$")
# The host side of "127.0.0.1:8000->8000/tcp" or ":::4317-4318->4317-4318/tcp" (`docker ps`).
_DOCKER_PS_PORT = re.compile(r":(?P<first>\d+)(?:-(?P<last>\d+))?->")


class ComposeError(ValueError):
    """docker-compose.yml or .env cannot be read; the message says where and why."""


@dataclass(frozen=True)
class PublishedPort:
    """One host port that compose publishes for a service."""

    service: str
    host_ip: str
    port: int
    target: int
    protocol: str = "tcp"
    #: The variable that sets the host port (``SHOP_PORT``), or None when it is a literal.
    variable: str | None = None


def load_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines the way compose reads .env (comments, quotes, ``export``)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            msg = f"{path}:{number}: expected KEY=VALUE, found {raw!r}"
            raise ComposeError(msg)
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        values[match["key"]] = value
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute compose's ``${VAR}`` forms in ``text``; an unset required one raises."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        present = value is not None
        filled = bool(value)
        if op in (":-", "-"):
            use_default = not filled if op == ":-" else not present
            return arg if use_default else str(value)
        if op in (":?", "?"):
            if not (filled if op == ":?" else present):
                reason = arg or "is not set"
                msg = f"{name}: {reason} (set it in .env or the environment)"
                raise ComposeError(msg)
            return str(value)
        if op in (":+", "+"):
            return arg if (filled if op == ":+" else present) else ""
        if not present:
            msg = f"{name} is not set (set it in .env or the environment)"
            raise ComposeError(msg)
        return str(value)

    return _REFERENCE.sub(substitute, text)


def variables_in(text: str) -> list[str]:
    """Name the variables that ``text`` references, in order."""
    return [m["braced"] or m["bare"] for m in _REFERENCE.finditer(text) if not m["escaped"]]


def load_compose(path: Path) -> dict[str, Any]:
    """Parse docker-compose.yml (YAML anchors and merge keys included) with PyYAML."""
    try:
        import yaml  # noqa: PLC0415  (optional: only this function needs it)
    except ImportError:
        msg = (
            "PyYAML is needed to read docker-compose.yml: run `uv run python "
            "scripts/preflight.py` (the project's venv has it) or `pip install pyyaml`"
        )
        raise ComposeError(msg) from None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: cannot read it: {exc}"
        raise ComposeError(msg) from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        msg = f"{path}: expected a mapping with a `services:` mapping"
        raise ComposeError(msg)
    return data


def _split_outside(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside ``${...}`` or ``[...]`` (an IPv6 address)."""
    parts, current, depth = [], "", 0
    for index, char in enumerate(text):
        if (char == "{" and text[index - 1 : index] == "$") or char == "[":
            depth += 1
        elif char in "}]" and depth:
            depth -= 1
        elif char == sep and not depth:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def _port_range(text: str, where: str) -> list[int]:
    """Turn ``8000`` or ``8000-8002`` into a list of ports."""
    first, _, last = text.strip().partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        msg = f"{where}: {text!r} is not a port number or a range like 8000-8002"
        raise ComposeError(msg) from None
    if not 0 < low <= high < 65536:
        msg = f"{where}: {text!r} is outside 1-65535"
        raise ComposeError(msg)
    return list(range(low, high + 1))


def _one_port_entry(
    service: str, entry: object, env: Mapping[str, str], index: int
) -> list[PublishedPort]:
    """Read one item of a service's ``ports:`` list (short or long syntax)."""
    where = f"docker-compose.yml: services.{service}.ports[{index}]"
    if isinstance(entry, dict):
        raw_ip, raw_published = str(entry.get("host_ip", "")), str(entry.get("published", ""))
        raw_target, protocol = str(entry.get("target", "")), str(entry.get("protocol", "tcp"))
    elif isinstance(entry, str | int):
        parts = _split_outside(str(entry), ":")
        if len(parts) == 1:  # container port only: compose picks a random host port
            return []
        if len(parts) not in (2, 3):
            msg = f"{where}: {entry!r} is not [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]"
            raise ComposeError(msg)
        raw_ip = parts[0] if len(parts) == 3 else ""
        raw_published, raw_target = parts[-2], parts[-1]
        raw_target, _, protocol = raw_target.partition("/")
        protocol = protocol or "tcp"
    else:
        msg = f"{where}: expected a string or a mapping, found {entry!r}"
        raise ComposeError(msg)
    if not raw_published:
        return []
    names = variables_in(raw_published)
    host_ip = interpolate(raw_ip, env).strip("[]")
    hosts = _port_range(interpolate(raw_published, env), where)
    targets = _port_range(interpolate(raw_target, env), where)
    if len(targets) == 1:
        targets = targets * len(hosts)
    if len(targets) != len(hosts):
        msg = f"{where}: host and container port ranges differ in length"
        raise ComposeError(msg)
    return [
        PublishedPort(service, host_ip, port, target, protocol, names[0] if names else None)
        for port, target in zip(hosts, targets, strict=True)
    ]


def published_ports(compose: Mapping[str, Any], env: Mapping[str, str]) -> list[PublishedPort]:
    """List every host port the services publish, with variables substituted from ``env``."""
    ports: list[PublishedPort] = []
    for service, spec in compose["services"].items():
        for index, entry in enumerate((spec or {}).get("ports") or []):
            ports.extend(_one_port_entry(service, entry, env, index))
    return ports


def active_services(compose: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Keep the services `up` starts: those without `profiles:` and those of an active one.

    Active profiles come from COMPOSE_PROFILES (comma-separated), as compose reads them; the
    load generator under the `load` profile is not started, so its port need not be free.
    """
    active = {p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()}
    services = compose["services"]
    return {
        name: spec
        for name, spec in services.items()
        if not (spec or {}).get("profiles") or active & set(spec["profiles"])
    }


def project_name(compose: Mapping[str, Any], env: Mapping[str, str], directory: Path) -> str:
    """Name the compose project as compose does: COMPOSE_PROJECT_NAME, `name:`, the folder."""
    if env.get("COMPOSE_PROJECT_NAME"):
        return env["COMPOSE_PROJECT_NAME"]
    if compose.get("name"):
        return interpolate(str(compose["name"]), env)
    return re.sub(r"[^a-z0-9_-]", "", directory.name.lower())


def port_in_use(host: str, port: int) -> bool:
    """Tell whether a TCP listener could not bind ``host:port`` because it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Like Docker's own listener: a port in TIME_WAIT is free, one that is bound is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            # EACCES (a port below 1024 for a non-root user) is no clash: Docker binds as root.
            return exc.errno == errno.EADDRINUSE
    return False


def ports_held_by_project(project: str) -> set[int]:
    """Return the host ports that this compose project's running containers publish."""
    docker = shutil.which("docker")
    if docker is None:
        return set()
    try:
        result = subprocess.run(  # noqa: S603  (fixed arguments, docker found on PATH)
            [
                docker,
                "ps",
                "--filter",
                f"label=com.docker.compose.project={project}",
                "--format",
                "{{.Ports}}",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if result.returncode != 0:  # no engine: nothing of ours can be running
        return set()
    held: set[int] = set()
    for match in _DOCKER_PS_PORT.finditer(result.stdout):
        held.update(range(int(match["first"]), int(match["last"] or match["first"]) + 1))
    return held


def find_clashes(
    ports: Iterable[PublishedPort],
    *,
    in_use: Callable[[str, int], bool] = port_in_use,
    held_by_us: Iterable[int] = (),
) -> list[PublishedPort]:
    """Return the TCP ports that something other than this stack already holds."""
    ours = set(held_by_us)
    return [
        p
        for p in ports
        if p.protocol == "tcp" and p.port not in ours and in_use(p.host_ip or "0.0.0.0", p.port)
    ]


def clash_message(port: PublishedPort, shell_env: Mapping[str, str] = os.environ) -> str:
    """Say which port is taken, for which service, and how to free or move it."""
    where = port.host_ip or "every interface"
    head = (
        f"port {port.port} ({port.service}) is already in use on {where}: stop what holds it "
        f"(`ss -ltnp 'sport = :{port.port}'`)"
    )
    if port.variable is None:
        return f"{head} or change the port published in docker-compose.yml"
    if port.variable in shell_env:
        return f"{head} or change {port.variable} (set in your environment, which overrides .env)"
    return f"{head} or set {port.variable} in .env"


def service_urls(ports: Iterable[PublishedPort]) -> list[str]:
    """Give one aligned ``service  http://host:port`` line per published TCP port, by port."""
    rows = []
    for p in sorted(ports, key=lambda p: p.port):
        if p.protocol != "tcp":
            continue
        host = p.host_ip if p.host_ip not in ("", "0.0.0.0", "::") else "localhost"
        if ":" in host:
            host = f"[{host}]"
        rows.append((p.service, f"http://{host}:{p.port}"))
    width = max((len(name) for name, _ in rows), default=0)
    return [f"{name:<{width}}  {url}" for name, url in rows]


def main(argv: list[str] | None = None) -> int:
    """Run the check (exit 1 on a clash, 2 on a config error) or print the URLs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", action="store_true", help="print each service's URL")
    parser.add_argument("--compose-file", type=Path, default=COMPOSE_FILE)
    parser.add_argument("--env-file", type=Path, default=ENV_FILE)
    args = parser.parse_args(argv)

    try:
        dotenv = load_env_file(args.env_file) if args.env_file.exists() else {}
        env = {**dotenv, **os.environ}
        compose = load_compose(args.compose_file)
        ports = published_ports({"services": active_services(compose, env)}, env)
    except ComposeError as exc:
        print(f"preflight: {exc}", file=sys.stderr)
        return 2

    if args.urls:
        print("\n".join(service_urls(ports)))
        return 0

    project = project_name(compose, env, args.compose_file.resolve().parent)
    clashes = find_clashes(ports, held_by_us=ports_held_by_project(project))
    for clash in clashes:
        print(clash_message(clash), file=sys.stderr)
    if clashes:
        return 1
    listed = ", ".join(f"{p.port} ({p.service})" for p in sorted(ports, key=lambda p: p.port))
    print(f"preflight: host ports free: {listed or 'none published'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
