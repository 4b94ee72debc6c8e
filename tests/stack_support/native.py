"""The native test stack: the compose services as local processes, from the same config files.

Everything is derived from docker-compose.yml and .env, mechanically:

* each compose service gets its own loopback address (``127.X.0.N``, N in compose order) and
  keeps its container ports, so ``loki:3100`` in any config file or variable becomes
  ``127.X.0.N:3100``; ``0.0.0.0`` in a service's own files becomes its own address;
* a ``*_HOST`` variable whose value is a service's name (a host, no port) gets its address;
* a port a service binds on 127.0.0.1 itself (Tempo's internal gRPC) moves to a free one;
* each service gets a folder that mirrors the container's file system: bind-mounted files and
  folders are copied there (with the two substitutions above), named volumes are empty
  folders, secrets are copied files; every container path in the service's files, command
  and environment is rewritten to that folder;
* the argv is what compose would run in the container: the image's ENTRYPOINT (this
  workspace's images: read from their Dockerfile) and CMD, combined with the service's
  ``entrypoint`` and ``command`` by the compose spec's rules (``compose_argv``); its program is
  found on this machine (Debian's prometheus and alertmanager, the real loki and tempo, the
  apps' console scripts in this workspace's venv); the environment is compose's;
* Postgres and Redis are the machine's own (127.0.0.1:5432 and :6379): the databases and the
  role named in DATABASE_URL are created afresh;
* the one substitution that is not an address: there is no collector here, so an app whose
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` names the collector sends traces straight to Tempo and logs
  straight to Loki's OTLP endpoint through the per-signal variables.
* an app whose ``SENTRY_DSN`` names a service that does not run here (Bugsink's image) runs
  without it (error tracking off), unless ``endpoints`` points that address somewhere.

Services that cannot run here (the collector, Grafana) or that another test stands in for are
left out; references to them resolve to an address of their own, or to an override
(``endpoints={"webhook-relay:8080": "127.0.0.1:40123"}``) such as a receiver a test owns.

Options for tests (the shipped files are never changed):

* ``alert_timing=AlertTiming(...)`` (stack_support.timing) shortens rule ``for:`` durations,
  Prometheus's scrape and evaluation intervals, the Loki ruler's evaluation interval and
  Alertmanager's group timers in the copied configs, so alerts fire within seconds;
* ``service_endpoints={"shop": {"postgres:5432": "127.0.0.1:40124"}}`` is ``endpoints`` for
  one service only: a fault-injecting proxy in front of the shop's database, say
  (stack_support.faults.TcpProxy), while payments keeps its direct connection;
* ``mount_sources={"webhook-relay": {"/etc/webhook-relay/routing.yml": path}}`` copies a
  test's file in place of a bind mount's source (with the same substitutions). The relay's
  routing is the usual case: ``stack_support.relay.write_relay_routing(path, url)`` writes a
  routing file whose one webhook target is a receiver the test owns
  (stack_support.receiver.WebhookReceiver), so the test sees what the real relay delivers.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil
import redis

from stack_support.backends import (
    MissingPrerequisite,
    backend_binary,
    free_port,
    system_binary,
)
from stack_support.compose import interpolate, load_env_file, load_script
from stack_support.timing import AlertTiming, apply_alert_timing

__all__ = [
    "MACHINE_SERVICES",
    "NATIVE_SERVICES",
    "NOT_RUN_HERE",
    "ImageCommand",
    "NativeStack",
    "ServiceProcess",
    "StackStartError",
    "compose_argv",
    "dockerfile_command",
    "load_compose_and_env",
]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_FILE = ROOT / ".env"
#: The /24 of 127/8 the native stack's addresses come from: one per test process, so two
#: checkouts' test runs on one machine do not collide (LOOKOUT_NATIVE_NETWORK pins it).
NETWORK = os.environ.get("LOOKOUT_NATIVE_NETWORK", f"127.{100 + os.getpid() % 150}.0")

#: Marks what one test process creates (its addresses' /24, its databases).
RUN_ID = NETWORK.split(".")[1]
#: Compose services that are the machine's own servers here.
MACHINE_SERVICES = {"postgres": "127.0.0.1", "redis": "127.0.0.1"}
#: Compose services that do not run natively, and why (the README's verification table).
NOT_RUN_HERE = {
    "otel-collector": "no collector binary here: apps send OTLP straight to Tempo and Loki",
    "grafana": "no Grafana binary here: its provisioning is checked against a key schema",
    "locust": "the `load` profile: the load tests run Locust from the venv instead",
    "bugsink": "its image; the error-tracking tests run the same Bugsink version from PyPI "
    "(stack_support.bugsink)",
    "bugsink-provision": "the image's one-shot job; stack_support.bugsink provisions the "
    "PyPI Bugsink with the same script (bugsink/provision.py)",
}
#: How long a service may take to become ready before the start is declared failed.
READY_TIMEOUT = 90.0
#: Readiness (port, path) of services whose compose healthcheck names no URL: Loki and Tempo
#: run their own `-health` (the URL is built in); the apps read their port from DEMO_PORT.
READY_PATHS: dict[str, tuple[str | int, str]] = {
    "loki": (3100, "/ready"),
    "tempo": (3200, "/ready"),
    "shop": ("DEMO_PORT", "/health/ready"),
    "payments": ("DEMO_PORT", "/health/ready"),
}
#: Ports a service binds on 127.0.0.1 itself, whatever its config says (Tempo 3.0.3 forces its
#: internal gRPC there in monolithic mode): on a host they would be shared by every such process,
#: so natively each is moved to a free port, in that service's own files only.
HOST_LOOPBACK_PORTS = {"tempo": [9095]}
#: Text files that get the substitutions when copied; anything else is copied as is.
TEXT_SUFFIXES = {".yml", ".yaml", ".json", ".txt", ".dev", ".conf", ".tmpl", ".md", ""}


def _venv_script(name: str) -> str:
    """Return a console script of this workspace's venv (where the test runner lives)."""
    script = Path(sys.executable).parent / name
    if not script.exists():
        msg = f"{script} is missing: run `uv sync --all-packages` (the test command does)"
        raise MissingPrerequisite(msg)
    return str(script)


#: The program the upstream images' ENTRYPOINT runs, as found on this machine. Their default
#: CMD is not modelled: compose gives each of them a `command` (render() fails if one does not).
UPSTREAM_PROGRAMS: dict[str, Callable[[], str]] = {
    "prometheus": lambda: str(system_binary("prometheus")),
    "alertmanager": lambda: str(system_binary("alertmanager")),
    "loki": lambda: str(backend_binary("loki")),
    "tempo": lambda: str(backend_binary("tempo")),
}
#: Compose services built from this workspace: their ENTRYPOINT and CMD are read from the
#: Dockerfile compose builds them from, and the program is the venv's console script.
WORKSPACE_SERVICES = ("shop", "payments", "webhook-relay", "synthetic-monitor")
#: Every compose service that can run natively.
NATIVE_SERVICES = (*UPSTREAM_PROGRAMS, *WORKSPACE_SERVICES)


@dataclass(frozen=True)
class ImageCommand:
    """An image's ENTRYPOINT and CMD in exec form; None when the image does not set it here."""

    entrypoint: list[str] | None
    cmd: list[str] | None


def dockerfile_command(path: Path) -> ImageCommand:
    """Return the final stage's ENTRYPOINT and CMD of a Dockerfile (exec form only).

    A HEALTHCHECK's ``CMD`` is part of the HEALTHCHECK instruction (continuation lines are
    joined first), not the image's CMD.
    """
    logical = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found: dict[str, list[str] | None] = {"ENTRYPOINT": None, "CMD": None}
    for line in logical.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":  # a new stage starts from its base image's: not known here
            found = {"ENTRYPOINT": None, "CMD": None}
        elif keyword in found:
            try:
                value = json.loads(rest)
            except json.JSONDecodeError:
                value = None
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                msg = f"{path}: {keyword} {rest!r} is not in exec form (a JSON list of strings)"
                raise ValueError(msg)
            found[keyword] = value
    return ImageCommand(found["ENTRYPOINT"], found["CMD"])


def _as_argv(value: str | list[Any]) -> list[str]:
    """Return a compose ``entrypoint``/``command`` value as a list (a string is shell-split)."""
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def compose_argv(spec: Mapping[str, Any], image: ImageCommand, where: str) -> list[str]:
    """Return the argv a container of a compose service runs: entrypoint, then command.

    The compose spec (services: ``entrypoint``, ``command``): ``command`` replaces the image's
    CMD; ``entrypoint`` replaces the image's ENTRYPOINT and, when set, drops the image's CMD
    too; either one set to ``[]`` or ``''`` means empty, ``null`` (or absent) the image's. So
    ENTRYPOINT ["relay"] CMD ["serve"] with ``command: ["serve"]`` runs ``relay serve``, once.
    https://github.com/compose-spec/compose-spec/blob/main/05-services.md#entrypoint
    """
    entrypoint = spec.get("entrypoint")
    command = spec.get("command")
    if entrypoint is not None:
        argv = _as_argv(entrypoint)
        default_cmd: list[str] | None = []
    else:
        if image.entrypoint is None:
            msg = f"{where}: the image's ENTRYPOINT is not known here; set `entrypoint`"
            raise ValueError(msg)
        argv = list(image.entrypoint)
        default_cmd = image.cmd
    if command is not None:
        return argv + _as_argv(command)
    if default_cmd is None:
        msg = f"{where}: no `command` and the image's CMD is not known here; set `command`"
        raise ValueError(msg)
    return argv + default_cmd


class StackStartError(RuntimeError):
    """A native service did not start or become ready; the message has its log's tail."""


def load_compose_and_env() -> tuple[dict[str, Any], dict[str, str]]:
    """Return docker-compose.yml (parsed) and .env (values), as compose would read them."""
    compose: dict[str, Any] = load_script("preflight").load_compose(COMPOSE_FILE)
    return compose, load_env_file(ENV_FILE)


@dataclass
class ServiceProcess:
    """One compose service, rendered for this machine and (once started) running."""

    name: str
    address: str
    root: Path
    argv: list[str]
    env: dict[str, str]
    ready_url: str | None
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    ready_after: float | None = None

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines the service wrote."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class NativeStack:
    """Run a set of compose services as local processes (see the module docstring)."""

    def __init__(
        self,
        workdir: Path,
        services: Iterable[str],
        endpoints: Mapping[str, str] | None = None,
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        *,
        alert_timing: AlertTiming | None = None,
        mount_sources: Mapping[str, Mapping[str, Path]] | None = None,
        service_endpoints: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.workdir = workdir
        self.compose, self.dotenv = load_compose_and_env()
        self.all_services: list[str] = list(self.compose["services"])
        self.endpoints = dict(endpoints or {})
        self.extra_env = {k: dict(v) for k, v in (extra_env or {}).items()}
        self.alert_timing = alert_timing
        # Like `endpoints`, for one service's files and environment only (a fault proxy in
        # front of the shop's Postgres must not sit in front of payments' too).
        self.service_endpoints = {k: dict(v) for k, v in (service_endpoints or {}).items()}
        self.mount_sources = {k: dict(v) for k, v in (mount_sources or {}).items()}
        for service, sources in self.mount_sources.items():
            volumes = (self.compose["services"].get(service) or {}).get("volumes") or []
            targets = {str(entry).split(":")[1] for entry in volumes if ":" in str(entry)}
            for target, source in sources.items():
                if target not in targets:
                    msg = (
                        f"mount_sources[{service!r}][{target!r}]: not a bind mount of "
                        f"services.{service} in {COMPOSE_FILE.name} (its mounts: {sorted(targets)})"
                    )
                    raise ValueError(msg)
                if not Path(source).exists():
                    msg = f"mount_sources[{service!r}][{target!r}]: {source} does not exist"
                    raise ValueError(msg)
        unknown = [s for s in services if s not in NATIVE_SERVICES]
        if unknown:
            msg = f"cannot run {unknown} natively; runnable: {sorted(NATIVE_SERVICES)}"
            raise ValueError(msg)
        missing = [s for s in services if s not in self.all_services]
        if missing:
            msg = f"{missing} are not services of {COMPOSE_FILE.name}"
            raise ValueError(msg)
        self.names = list(services)
        self.services: dict[str, ServiceProcess] = {}
        self._moved_ports = {
            name: {port: free_port() for port in HOST_LOOPBACK_PORTS.get(name, [])}
            for name in self.names
        }
        # Compose services, plus any host an override names (a service not in compose yet).
        overridden = {*self.endpoints, *(e for v in self.service_endpoints.values() for e in v)}
        hosts = set(self.all_services) | {e.rpartition(":")[0] for e in overridden}
        names = "|".join(re.escape(s) for s in sorted(hosts, key=len, reverse=True))
        self._reference = re.compile(rf"(?<![\w.-])({names}):(\d+)\b")

    # --- addresses ---------------------------------------------------------------------------
    def address(self, service: str) -> str:
        """Return the loopback address ``service`` listens on here."""
        if service in MACHINE_SERVICES:
            return MACHINE_SERVICES[service]
        return f"{NETWORK}.{self.all_services.index(service) + 1}"

    def hostport(self, service: str, port: int) -> str:
        """Return where ``service:port`` of the compose network is reached here."""
        override = self.endpoints.get(f"{service}:{port}")
        return override or f"{self.address(service)}:{port}"

    def url(self, service: str, port: int, path: str = "") -> str:
        """Return ``http://<address>:<port><path>`` for a service's container port."""
        return f"http://{self.hostport(service, port)}{path}"

    # --- rendering -----------------------------------------------------------------------------
    def _mounts(self, service: str, root: Path) -> list[tuple[str, Path, Path | None]]:
        """Return (container path, host path, source to copy or None) for a service's mounts."""
        spec = self.compose["services"][service]
        mounts: list[tuple[str, Path, Path | None]] = []
        for entry in spec.get("volumes") or []:
            source, target = str(entry).split(":")[:2]
            host = root / target.lstrip("/")
            copied = (ROOT / source).resolve() if source.startswith((".", "/")) else None
            override = self.mount_sources.get(service, {}).get(target)
            if override is not None:
                copied = Path(override).resolve()
            mounts.append((target, host, copied))
        for secret in spec.get("secrets") or []:
            name = secret if isinstance(secret, str) else secret["source"]
            raw = self.compose["secrets"][name]["file"]

            secret_file = (ROOT / interpolate(raw, self.dotenv)).resolve()
            secret_target = f"/run/secrets/{name}"
            mounts.append((secret_target, root / secret_target.lstrip("/"), secret_file))
        return sorted(mounts, key=lambda m: len(m[0]), reverse=True)

    def substitute(self, text: str, service: str, mounts: Iterable[tuple[str, Path]]) -> str:
        """Rewrite compose addresses, ``0.0.0.0`` and container paths in one service's text."""
        own = self.service_endpoints.get(service, {})
        text = self._reference.sub(
            lambda m: own.get(f"{m[1]}:{m[2]}") or self.hostport(m[1], int(m[2])), text
        )
        for port, moved in self._moved_ports.get(service, {}).items():
            text = re.sub(rf"(?<![\d.]){port}(?!\d)", str(moved), text)
        text = re.sub(r"(?<![\d.])0\.0\.0\.0(?![\d.])", self.address(service), text)
        for target, host in mounts:
            # A path stands alone, or follows a URL's empty authority (sqlite:////var/...).
            pattern = rf"(?:(?<=:///)|(?<![\w.:/-])){re.escape(target)}(?=$|[/\s'\",\]*])"
            text = re.sub(pattern, str(host).replace("\\", "\\\\"), text, flags=re.MULTILINE)
        return text

    def _copy(self, source: Path, dest: Path, rewrite: Callable[[str], str]) -> None:
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.is_file():
                    self._copy(path, dest / path.relative_to(source), rewrite)
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix in TEXT_SUFFIXES:
            dest.write_text(rewrite(source.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copy2(source, dest)

    def _environment(self, service: str) -> dict[str, str]:

        raw = self.compose["services"][service].get("environment") or {}
        if isinstance(raw, list):
            raw = dict(str(item).split("=", 1) for item in raw)
        env = {k: interpolate(str(v), self.dotenv) for k, v in raw.items() if v is not None}
        otlp = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        if urlsplit(otlp).hostname == "otel-collector":
            # The one substitution that is not an address: no collector runs here.
            del env["OTEL_EXPORTER_OTLP_ENDPOINT"]
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "http://tempo:4318/v1/traces"
            env["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] = "http://loki:3100/otlp/v1/logs"
        tracker = urlsplit(env.get("SENTRY_DSN", ""))
        if (
            tracker.hostname in NOT_RUN_HERE
            and f"{tracker.hostname}:{tracker.port}" not in self.endpoints
        ):
            # Nothing runs there: error tracking off (silently, as without a DSN), unless a
            # test points the address at a Bugsink of its own (endpoints=...).
            del env["SENTRY_DSN"]
        database_url = env.get("DATABASE_URL", "")
        if urlsplit(database_url).hostname == "postgres":
            # A database is a data location, like a volume: each native run gets its own
            # (shop -> shop_native123), so two runs on one Postgres never share or race.
            parts = urlsplit(database_url)
            env["DATABASE_URL"] = parts._replace(path=f"{parts.path}_native{RUN_ID}").geturl()
        env.update(self.extra_env.get(service, {}))
        return env

    def _ready_url(self, service: str, env: Mapping[str, str]) -> str | None:
        test = (self.compose["services"][service].get("healthcheck") or {}).get("test") or []
        joined = " ".join(test) if isinstance(test, list) else str(test)
        found = re.search(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/[^\s'\"]*)", joined)
        if found:
            return self.url(service, int(found[1]), found[2])
        if service in READY_PATHS:
            port, path = READY_PATHS[service]
            return self.url(service, int(env[port] if isinstance(port, str) else port), path)
        return None

    def image_command(self, service: str) -> ImageCommand:
        """Return the ENTRYPOINT and CMD of the image a service runs (see NATIVE_SERVICES)."""
        if service in UPSTREAM_PROGRAMS:
            return ImageCommand([service], None)
        build = self.compose["services"][service].get("build") or {}
        if isinstance(build, str):
            build = {"context": build}
        context = ROOT / str(build.get("context", "."))
        return dockerfile_command(context / str(build.get("dockerfile", "Dockerfile")))

    def argv(self, service: str) -> list[str]:
        """Return the argv compose would run in the service's container (nothing rewritten)."""
        spec = self.compose["services"][service]
        where = f"{COMPOSE_FILE.name}: services.{service}"
        return compose_argv(spec, self.image_command(service), where)

    def program(self, service: str, program: str) -> str:
        """Return the program on this machine for an image's ``program`` (its entrypoint)."""
        if service in UPSTREAM_PROGRAMS and Path(program).name == service:
            return UPSTREAM_PROGRAMS[service]()
        if service in WORKSPACE_SERVICES:
            return _venv_script(Path(program).name)
        msg = f"services.{service}: runs {program!r}, which has no native stand-in here"
        raise ValueError(msg)

    def render(self, service: str) -> ServiceProcess:
        """Write the service's folder and return how to run it (nothing is started)."""
        root = self.workdir / service
        mounts = self._mounts(service, root)
        pairs = [(target, host) for target, host, _ in mounts]

        def rewrite(text: str) -> str:
            return self.substitute(text, service, pairs)

        for _target, host, source in mounts:
            if source is None:
                host.mkdir(parents=True, exist_ok=True)
            else:
                self._copy(source, host, rewrite)
        program, *args = self.argv(service)
        argv = [self.program(service, program)] + [
            rewrite(interpolate(a, self.dotenv)) for a in args
        ]
        if self.alert_timing is not None:
            apply_alert_timing(service, argv, self.alert_timing)
        # A `*_HOST` variable naming a service (a host without a port) gets its address; other
        # values that happen to equal a service's name (OTEL_SERVICE_NAME=shop) stay as they are.
        env = {
            k: self.address(v) if k.endswith("_HOST") and v in self.all_services else rewrite(v)
            for k, v in self._environment(service).items()
        }
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return ServiceProcess(
            name=service,
            address=self.address(service),
            root=root,
            argv=argv,
            env={**base, **env},
            ready_url=self._ready_url(service, env),
            log=logs / f"{service}.log",
        )

    # --- the machine's Postgres and Redis ----------------------------------------------------
    def _prepare_data_stores(self) -> None:
        """Create each app's Postgres role and database afresh, and empty its Redis database."""
        for proc in self.services.values():
            database_url = proc.env.get("DATABASE_URL", "")
            if database_url.startswith("postgresql"):
                _recreate_database(database_url)
            redis_url = proc.env.get("REDIS_URL", "")
            if redis_url.startswith("redis"):
                client = redis.Redis.from_url(redis_url)
                client.flushdb()
                client.close()

    # --- processes -----------------------------------------------------------------------------
    def start(self, progress: Callable[[str], None] = lambda _line: None) -> float:
        """Start every service at once, wait until each is ready; return the seconds it took."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            self.services[name] = self.render(name)
        self._prepare_data_stores()
        started = time.monotonic()
        # Processes run in sessions of their own: make sure an interrupted run stops them too.
        atexit.register(self.stop)
        try:
            for proc in self.services.values():
                proc.root.mkdir(parents=True, exist_ok=True)
                with proc.log.open("ab") as log:
                    proc.process = subprocess.Popen(
                        proc.argv,
                        cwd=proc.root,
                        env=proc.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                progress(f"started {proc.name} on {proc.address} (pid {proc.process.pid})")
            self._wait_ready(started, progress)
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - started

    def _wait_ready(self, started: float, progress: Callable[[str], None]) -> None:
        waiting = dict(self.services)
        deadline = started + READY_TIMEOUT
        with httpx.Client(timeout=1.0) as client:
            while waiting:
                for name, proc in list(waiting.items()):
                    assert proc.process is not None
                    if proc.process.poll() is not None:
                        msg = (
                            f"{name} exited with {proc.process.returncode} before it was ready "
                            f"(argv: {' '.join(proc.argv)}); its log {proc.log} ends:\n"
                            f"{proc.log_tail()}"
                        )
                        raise StackStartError(msg)
                    if proc.ready_url is None or _answers(client, proc.ready_url):
                        proc.ready_after = time.monotonic() - started
                        progress(f"{name} ready after {proc.ready_after:.1f} s")
                        del waiting[name]
                if waiting and time.monotonic() > deadline:
                    name, proc = next(iter(waiting.items()))
                    msg = (
                        f"{', '.join(waiting)} not ready after {READY_TIMEOUT:.0f} s "
                        f"({proc.ready_url}); {name}'s log {proc.log} ends:\n{proc.log_tail()}"
                    )
                    raise StackStartError(msg)
                time.sleep(0.2)

    def stop(self, grace: float = 5.0) -> None:
        """Stop every service (SIGTERM, then SIGKILL after ``grace`` s: Tempo may hang)."""
        self._stop_processes(grace)
        for proc in self.services.values():
            database_url = proc.env.get("DATABASE_URL", "")
            if database_url.startswith("postgresql") and proc.process is not None:
                with contextlib.suppress(OSError, asyncpg.PostgresError):
                    _drop_database(database_url)

    def _stop_processes(self, grace: float) -> None:
        running = [p for p in self.services.values() if p.process and p.process.poll() is None]
        for proc in running:
            assert proc.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in running:
            assert proc.process is not None
            try:
                proc.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.process.pid, signal.SIGKILL)
                proc.process.wait(timeout=10)

    def pid(self, service: str) -> int:
        """Return the pid of a running service."""
        process = self.services[service].process
        if process is None:
            msg = f"{service} is not running"
            raise RuntimeError(msg)
        return process.pid

    def rss_bytes(self, service: str) -> int:
        """Return a running service's resident memory (the process and its children)."""

        top = psutil.Process(self.pid(service))
        return sum(p.memory_info().rss for p in [top, *top.children(recursive=True)])


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _admin(url: str) -> tuple[str, str, str]:
    """Return (admin URL, role, database) for a DATABASE_URL on the machine's Postgres."""
    parts = urlsplit(url)
    user, database = parts.username or "postgres", parts.path.lstrip("/")
    if not re.fullmatch(r"\w+", user) or not re.fullmatch(r"\w+", database):
        msg = f"DATABASE_URL {parts.hostname}/{database}: use letters, digits and _ in names"
        raise ValueError(msg)
    return f"postgresql://postgres@{parts.hostname}:{parts.port or 5432}/postgres", user, database


def _recreate_database(url: str) -> None:
    """Create the role and database that ``url`` names on the machine's Postgres, afresh."""
    admin, user, database = _admin(url)

    async def run() -> None:
        conn = await asyncpg.connect(admin)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user):
                # Another run may create the shared role at the same moment: that is fine.
                with contextlib.suppress(
                    asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError
                ):
                    await conn.execute(f'CREATE ROLE "{user}" LOGIN')
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{database}" OWNER "{user}"')
        finally:
            await conn.close()

    asyncio.run(run())


def _drop_database(url: str) -> None:
    """Drop the database a native run created."""
    admin, _user, database = _admin(url)

    async def run() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())
