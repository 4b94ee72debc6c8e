"""Crash test: kill -9 the relay at random moments under load; nothing accepted is lost.

SQLite: one relay, killed and restarted a bounded number of times. Postgres: two replicas
sharing one throwaway database, either of them killed at random. After the last restart,
every notification that was answered 202 must reach the target; the same notification sent
twice (an HA peer) is delivered once; a duplicate is tolerated only for a delivery that was
in flight at the moment of a kill (sent, but its success not yet recorded), and each such
one carries the same Idempotency-Key so a receiver can drop it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay_support import (
    TOKEN,
    Receiver,
    free_port,
    payload,
    receiver,
    require,
    start_relay,
    wait_http,
)

pytestmark = pytest.mark.integration

WORKERS = 4
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Load:
    """Posts notifications (each twice, like two Alertmanager peers) until stopped."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.accepted: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.errors = 0
        self.bad: list[tuple[int, str]] = []  # 4xx answers: a relay bug (checked by the test)

    def _post(self, client: httpx.Client, body: dict[str, object]) -> bool:
        """Post until one relay answers 2xx (Alertmanager retries on errors and 5xx)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            port = random.choice(self.ports)
            try:
                response = client.post(
                    f"http://127.0.0.1:{port}/webhook",
                    json=body,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                if response.status_code == 202:
                    return True
                if response.status_code < 500:
                    self.bad.append((response.status_code, response.text))
            except httpx.HTTPError:
                pass
            self.errors += 1
            time.sleep(0.05)
        return False

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            index = 0
            while not self.stop.is_set():
                group = f"group-{index}"
                body = payload(group=group)
                if self._post(client, body) and self._post(client, body):
                    self.accepted.add(group)
                index += 1

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=40)


def _env(database_url: str, routing: Path, port: int) -> dict[str, str]:
    return {
        "RELAY_ROUTING_FILE": str(routing),
        "RELAY_DATABASE_URL": database_url,
        "RELAY_TOKEN": TOKEN,
        "RELAY_HOST": "127.0.0.1",
        "RELAY_PORT": str(port),
        "RELAY_WORKERS": str(WORKERS),
        "RELAY_LEASE_SECONDS": "2",
        "RELAY_POLL_INTERVAL_SECONDS": "0.05",
        "RELAY_BACKOFF_BASE_SECONDS": "0.05",
        "RELAY_BACKOFF_MAX_SECONDS": "0.5",
        "RELAY_LOG_LEVEL": "WARNING",
        "OTEL_SDK_DISABLED": "true",
    }


def _kill_and_restart_loop(
    processes: list[subprocess.Popen[bytes]],
    envs: list[dict[str, str]],
    log: Path,
    trials: int,
    seed: int,
) -> int:
    """Kill a random replica with SIGKILL at random moments, restarting it each time."""
    rng = random.Random(seed)
    for _ in range(trials):
        time.sleep(rng.uniform(0.2, 0.8))
        victim = rng.randrange(len(processes))
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait(timeout=10)
        processes[victim] = start_relay(envs[victim], log)
        time.sleep(rng.uniform(0.0, 0.3))
    for index, process in enumerate(processes):
        wait_http(
            f"http://127.0.0.1:{envs[index]['RELAY_PORT']}/health/ready",
            timeout=30,
            process=process,
        )
    return trials


def _check(target: Receiver, load: Load, kills: int) -> None:
    started = time.monotonic()
    deadline = started + 30
    while time.monotonic() < deadline:
        delivered = {request.json()["groupKey"] for request in list(target.requests)}
        if load.accepted <= delivered:
            break
        time.sleep(0.1)
    counts = Counter(request.json()["groupKey"] for request in list(target.requests))
    print(
        f"crash: accepted={len(load.accepted)} delivered={len(counts)} "
        f"sends={sum(counts.values())} "
        f"kills={kills} post-retries={load.errors} drain={time.monotonic() - started:.1f}s"
    )
    assert not load.bad, f"the relay answered 4xx (a relay bug): {load.bad[:5]}"
    missing = load.accepted - set(counts)
    assert not missing, f"accepted but never delivered: {sorted(missing)[:10]}"
    assert len(load.accepted) >= 20, f"too little load to mean anything: {len(load.accepted)}"
    duplicates = {group: n for group, n in counts.items() if n > 1}
    assert sum(n - 1 for n in duplicates.values()) <= kills * WORKERS, duplicates
    keys = Counter(request.headers["idempotency-key"] for request in list(target.requests))
    for group in duplicates:  # a re-sent delivery carries the same key as the first send
        sends = {
            r.headers["idempotency-key"] for r in target.requests if r.json()["groupKey"] == group
        }
        assert len(sends) == 1, (group, sends)
    assert keys  # the receiver saw keys at all


@pytest.fixture
def routing_to(tmp_path: Path) -> Iterator[tuple[Receiver, Path]]:
    """A receiver and a routing file that sends everything to it."""
    with receiver() as target:
        path = tmp_path / "routing.yml"
        path.write_text(
            f"targets:\n  sink: {{type: webhook, url: '{target.url}/in'}}\nfallback: [sink]\n"
        )
        yield target, path


def test_sqlite_kill_9_loses_nothing(tmp_path: Path, routing_to: tuple[Receiver, Path]) -> None:
    """Under load, SIGKILL at random moments (bounded trials): all 202s delivered, none lost."""
    target, routing = routing_to
    envs = [_env(f"sqlite:///{tmp_path / 'relay.db'}", routing, free_port())]
    log = tmp_path / "relay.log"
    processes = [start_relay(envs[0], log)]
    try:
        wait_http(
            f"http://127.0.0.1:{envs[0]['RELAY_PORT']}/health/ready",
            timeout=30,
            process=processes[0],
        )
        with Load([int(envs[0]["RELAY_PORT"])]) as load:
            kills = _kill_and_restart_loop(
                processes, envs, log, trials=3, seed=int(os.environ.get("RELAY_CRASH_SEED", "5"))
            )
            time.sleep(0.5)
        _check(target, load, kills)
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Create a throwaway database on 127.0.0.1:5432 and drop it afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"relay_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        require(False, f"Postgres on 127.0.0.1:5432 ({error})")
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgres_two_replicas_kill_9_loses_nothing(
    tmp_path: Path, routing_to: tuple[Receiver, Path], postgres_url: str
) -> None:
    """Two replicas share one Postgres queue; random SIGKILLs lose nothing; HA copies collapse."""
    target, routing = routing_to
    envs = [_env(postgres_url, routing, free_port()) for _ in range(2)]
    log = tmp_path / "relay.log"
    processes = [start_relay(env, log) for env in envs]
    try:
        for index, process in enumerate(processes):
            wait_http(
                f"http://127.0.0.1:{envs[index]['RELAY_PORT']}/health/ready",
                timeout=30,
                process=process,
            )
        with Load([int(env["RELAY_PORT"]) for env in envs]) as load:
            kills = _kill_and_restart_loop(
                processes, envs, log, trials=3, seed=int(os.environ.get("RELAY_CRASH_SEED", "7"))
            )
            time.sleep(0.5)
        _check(target, load, kills)
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
