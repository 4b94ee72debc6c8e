"""scripts/preflight.py: names each taken host port with its service and .env variable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "preflight.py"

INTERPOLATIONS = [
    ("plain", "${A}", {"A": "1"}, "1"),
    ("bare", "$A-x", {"A": "1"}, "1-x"),
    ("default when unset", "${A:-8000}", {}, "8000"),
    ("default when empty", "${A:-8000}", {"A": ""}, "8000"),
    ("value over default", "${A:-8000}", {"A": "9000"}, "9000"),
    ("dash keeps empty", "${A-8000}", {"A": ""}, ""),
    ("required and set", "${A:?set A}", {"A": "x"}, "x"),
    ("alternative", "${A:+on}", {"A": "x"}, "on"),
    ("escaped dollar", "$${A}", {}, "${A}"),
    ("several", "127.0.0.1:${P:-1}:${Q}", {"Q": "2"}, "127.0.0.1:1:2"),
]

ENV_LINES = [
    ("plain", "A=1", {"A": "1"}),
    ("comment and blank", "# c\n\nA=1", {"A": "1"}),
    ("export", "export A=1", {"A": "1"}),
    ("double quotes", 'A="a # b"', {"A": "a # b"}),
    ("single quotes", "A='x'", {"A": "x"}),
    ("inline comment", "A=1  # why", {"A": "1"}),
    ("empty", "A=", {"A": ""}),
    ("later wins", "A=1\nA=2", {"A": "2"}),
]

PORT_ENTRIES = [
    ("ip, variable, target", "127.0.0.1:${P:-8000}:8000", {}, ("127.0.0.1", 8000, 8000, "P")),
    ("no ip", "${P}:80", {"P": "8080"}, ("", 8080, 80, "P")),
    ("literal", "127.0.0.1:9000:9000/tcp", {}, ("127.0.0.1", 9000, 9000, None)),
    ("ipv6", "[::1]:${P:-8000}:8000", {}, ("::1", 8000, 8000, "P")),
    (
        "long syntax",
        {"target": 3000, "published": "${G:-3000}", "host_ip": "127.0.0.1"},
        {"G": "3001"},
        ("127.0.0.1", 3001, 3000, "G"),
    ),
]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """Hold a TCP listener on 127.0.0.1 and yield its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    """Return a port that nothing listens on (the kernel's pick, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _compose_with_shop(tmp_path: Path, port: int) -> tuple[Path, Path]:
    """Write a compose file publishing shop on ${SHOP_PORT} and a .env setting it to ``port``."""
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(
        "name: preflight-test\n"
        "services:\n"
        "  shop:\n"
        "    image: example/shop:1.0\n"
        "    ports:\n"
        '      - "127.0.0.1:${SHOP_PORT:-8000}:8000"\n',
        encoding="utf-8",
    )
    env_file = tmp_path / ".env"
    env_file.write_text(f"# the shop's host port\nSHOP_PORT={port}\n", encoding="utf-8")
    return compose_file, env_file


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the script as `make up` does, without SHOP_PORT leaking in from this shell."""
    env = {k: v for k, v in os.environ.items() if k != "SHOP_PORT"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [case[1:] for case in INTERPOLATIONS],
    ids=[case[0] for case in INTERPOLATIONS],
)
def test_interpolate_follows_compose(
    preflight: ModuleType, text: str, env: dict[str, str], expected: str
) -> None:
    """Each compose substitution form gives the value compose would."""
    assert preflight.interpolate(text, env) == expected


@pytest.mark.parametrize("text", ["${A:?set A in .env}", "${A}"], ids=["required", "unset"])
def test_interpolate_names_a_missing_variable(preflight: ModuleType, text: str) -> None:
    """A required or unset variable is an error that names it."""
    with pytest.raises(preflight.ComposeError, match=r"^A\b"):
        preflight.interpolate(text, {})


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in ENV_LINES], ids=[case[0] for case in ENV_LINES]
)
def test_load_env_file_reads_dotenv_syntax(
    preflight: ModuleType, tmp_path: Path, text: str, expected: dict[str, str]
) -> None:
    """.env lines are read as compose reads them."""
    path = tmp_path / ".env"
    path.write_text(text + "\n", encoding="utf-8")
    assert preflight.load_env_file(path) == expected


def test_load_env_file_names_the_bad_line(preflight: ModuleType, tmp_path: Path) -> None:
    """A line that is not KEY=VALUE is reported with its file and line number."""
    path = tmp_path / ".env"
    path.write_text("A=1\nnot a setting\n", encoding="utf-8")
    with pytest.raises(preflight.ComposeError, match=r"\.env:2: expected KEY=VALUE"):
        preflight.load_env_file(path)


@pytest.mark.parametrize(
    ("entry", "env", "expected"),
    [case[1:] for case in PORT_ENTRIES],
    ids=[case[0] for case in PORT_ENTRIES],
)
def test_published_ports_reads_each_syntax(
    preflight: ModuleType,
    entry: object,
    env: dict[str, str],
    expected: tuple[str, int, int, str | None],
) -> None:
    """Short and long port syntax give the host address, port, target and variable."""
    (port,) = preflight.published_ports({"services": {"svc": {"ports": [entry]}}}, env)
    assert (port.host_ip, port.port, port.target, port.variable) == expected


def test_published_ports_skips_container_only_ports(preflight: ModuleType) -> None:
    """A port without a host side (compose picks one at random) is nothing to check."""
    assert preflight.published_ports({"services": {"svc": {"ports": ["8000"]}}}, {}) == []


def test_published_ports_expands_ranges(preflight: ModuleType) -> None:
    """A host port range publishes each of its ports."""
    ports = preflight.published_ports(
        {"services": {"collector": {"ports": ["127.0.0.1:4317-4318:4317-4318"]}}}, {}
    )
    assert [(p.port, p.target) for p in ports] == [(4317, 4317), (4318, 4318)]


def test_taken_port_is_named_with_service_and_variable(
    preflight: ModuleType, taken_port: int
) -> None:
    """A port something else listens on is a clash naming the service and its .env variable."""
    ports = preflight.published_ports(
        {"services": {"shop": {"ports": ["127.0.0.1:${SHOP_PORT:-8000}:8000"]}}},
        {"SHOP_PORT": str(taken_port)},
    )
    (clash,) = preflight.find_clashes(ports)
    message = preflight.clash_message(clash, shell_env={})
    assert message == (
        f"port {taken_port} (shop) is already in use on 127.0.0.1: stop what holds it "
        f"(`ss -ltnp 'sport = :{taken_port}'`) or set SHOP_PORT in .env"
    )


def test_free_port_passes(preflight: ModuleType, free_port: int) -> None:
    """A port nothing listens on is no clash."""
    ports = preflight.published_ports(
        {"services": {"shop": {"ports": [f"127.0.0.1:{free_port}:8000"]}}}, {}
    )
    assert preflight.find_clashes(ports) == []


def test_port_held_by_this_stack_passes(preflight: ModuleType, taken_port: int) -> None:
    """A port this project's own containers publish is no clash (a second `make up`)."""
    ports = preflight.published_ports(
        {"services": {"shop": {"ports": [f"127.0.0.1:{taken_port}:8000"]}}}, {}
    )
    assert preflight.find_clashes(ports, held_by_us={taken_port}) == []


@pytest.mark.parametrize(
    ("variable", "shell_env", "advice"),
    [
        ("SHOP_PORT", {}, "or set SHOP_PORT in .env"),
        ("SHOP_PORT", {"SHOP_PORT": "1"}, "or change SHOP_PORT (set in your environment"),
        (None, {}, "or change the port published in docker-compose.yml"),
    ],
    ids=["from .env", "from the shell", "literal"],
)
def test_clash_message_says_where_the_port_is_set(
    preflight: ModuleType, variable: str | None, shell_env: dict[str, str], advice: str
) -> None:
    """The advice points at .env, the shell variable that overrides it, or the compose file."""
    port = preflight.PublishedPort("shop", "127.0.0.1", 8000, 8000, "tcp", variable)
    assert advice in preflight.clash_message(port, shell_env=shell_env)


def test_ports_held_by_project_reads_docker_ps(
    preflight: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host ports in `docker ps` output for the project's containers are ours."""
    fake = tmp_path / "docker"
    fake.write_text(
        "#!/bin/sh\n"
        "echo '127.0.0.1:8000->8000/tcp'\n"
        "echo '127.0.0.1:4317-4318->4317-4318/tcp, :::3000->3000/tcp, 5432/tcp'\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.ports_held_by_project("lookout") == {8000, 4317, 4318, 3000}


def test_ports_held_by_project_without_docker_is_empty(
    preflight: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a docker command nothing of ours can be running."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.ports_held_by_project("lookout") == set()


def test_script_exits_1_naming_the_clash(tmp_path: Path, taken_port: int) -> None:
    """Run as a script, a taken port prints the advice and exits 1."""
    compose_file, env_file = _compose_with_shop(tmp_path, taken_port)
    result = _run("--compose-file", str(compose_file), "--env-file", str(env_file))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {taken_port} (shop) is already in use" in result.stderr
    assert "set SHOP_PORT in .env" in result.stderr


def test_script_passes_when_ports_are_free(tmp_path: Path, free_port: int) -> None:
    """Run as a script with every port free, it says so and exits 0."""
    compose_file, env_file = _compose_with_shop(tmp_path, free_port)
    result = _run("--compose-file", str(compose_file), "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    assert f"{free_port} (shop)" in result.stdout


def test_script_prints_urls(tmp_path: Path) -> None:
    """With --urls it prints each published service's URL, whether or not the port is free."""
    compose_file, env_file = _compose_with_shop(tmp_path, 8123)
    result = _run("--urls", "--compose-file", str(compose_file), "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["shop", "http://127.0.0.1:8123"]


def test_script_exits_2_on_a_missing_variable(tmp_path: Path) -> None:
    """A required variable missing from .env is a config error (exit 2) that names it."""
    compose_file, env_file = _compose_with_shop(tmp_path, 8000)
    compose_file.write_text(
        compose_file.read_text(encoding="utf-8").replace(
            "${SHOP_PORT:-8000}", "${SHOP_PORT:?set SHOP_PORT in .env}"
        ),
        encoding="utf-8",
    )
    env_file.write_text("", encoding="utf-8")
    result = _run("--compose-file", str(compose_file), "--env-file", str(env_file))
    assert result.returncode == 2
    assert "SHOP_PORT: set SHOP_PORT in .env" in result.stderr


def test_the_repo_compose_file_publishes_shop_and_payments(
    preflight: ModuleType, compose: dict[str, object], dotenv: dict[str, str]
) -> None:
    """Read from the real files, shop and payments are published on their .env ports."""
    ports = {p.service: p for p in preflight.published_ports(compose, dotenv)}
    assert ports["shop"].port == int(dotenv["SHOP_PORT"])
    assert ports["payments"].port == int(dotenv["PAYMENTS_PORT"])


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [("", {"shop"}), ("load", {"shop", "locust"}), ("other, load", {"shop", "locust"})],
    ids=["no-profile", "load", "two-profiles"],
)
def test_services_of_an_inactive_profile_are_not_checked(
    preflight: ModuleType, profiles: str, expected: set[str]
) -> None:
    """A service under `profiles:` counts only when COMPOSE_PROFILES activates one of them."""
    compose = {"services": {"shop": {}, "locust": {"profiles": ["load"]}}}
    active = preflight.active_services(compose, {"COMPOSE_PROFILES": profiles})
    assert set(active) == expected
