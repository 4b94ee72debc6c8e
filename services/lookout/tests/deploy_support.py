"""Helpers shared by the deploy-target tests: apply a plan, run a real binary until ready."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import yaml

from lookout_stack.deploy.model import Target
from stack_support import free_port, require_binary
from stack_support.prometheus import run_prometheus

__all__ = [
    "BOOT_CONFIG",
    "alertmanager_reading",
    "apply_plan",
    "loaded_groups",
    "prometheus_reading",
    "running",
    "running_receivers",
    "write_only",
]


def apply_plan(target: Target) -> list[str]:
    """Apply a target's plan as ``lookout apply`` does; return "kind object" per change."""
    changes = target.plan()
    for change in changes:
        change.apply()
    target.finish()
    return [f"{c.kind} {c.object}" for c in changes]


def write_only(target: Target) -> list[str]:
    """Apply a target's planned changes but not its reload: an apply killed before ``finish``."""
    changes = target.plan()
    for change in changes:
        change.apply()
    return [f"{c.kind} {c.object}" for c in changes]


@contextlib.contextmanager
def running(argv: Sequence[str], ready_url: str, log: Path, timeout: float = 60) -> Iterator[None]:
    """Run ``argv`` (output to ``log``) until ``ready_url`` answers 200; stop it afterwards.

    Fails naming the log when the process exits or is not ready within ``timeout`` seconds.
    """
    with log.open("wb") as output:
        process = subprocess.Popen(list(argv), stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"{argv[0]} exited {process.returncode}; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(ready_url, timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{argv[0]} not ready within {timeout:.0f} s; see {log}")
                time.sleep(0.2)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextlib.contextmanager
def prometheus_reading(rules: Path, work: Path) -> Iterator[str]:
    """Run the real Prometheus reading ``rules/*.yml``, reloadable over HTTP; yield its URL."""
    binary = require_binary("prometheus")
    rules.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True)
    config = f"global:\n  evaluation_interval: 15s\nrule_files:\n  - {rules}/*.yml\n"
    with run_prometheus(work, config, flags=["--web.enable-lifecycle"], binary=binary) as url:
        yield url


#: A minimal Alertmanager configuration that is not the deploy's (its receiver: ``boot``).
BOOT_CONFIG = "route:\n  receiver: boot\nreceivers:\n  - name: boot\n"


@contextlib.contextmanager
def alertmanager_reading(config: Path, work: Path) -> Iterator[str]:
    """Run the real Alertmanager from ``config`` (BOOT_CONFIG when absent); yield its URL."""
    binary = require_binary("alertmanager")
    config.parent.mkdir(parents=True, exist_ok=True)
    if not config.exists():
        config.write_text(BOOT_CONFIG)
    work.mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(binary),
        f"--config.file={config}",
        f"--storage.path={work / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip: one isolated instance
    ]
    with running(argv, f"{url}/-/ready", work / "alertmanager.log", timeout=30):
        yield url


def loaded_groups(url: str) -> dict[str, dict[str, object]]:
    """Return the rule groups a Prometheus has loaded, by name (GET /api/v1/rules)."""
    groups = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    return {g["name"]: g for g in groups}


def running_receivers(url: str) -> list[str]:
    """Return the receiver names of the configuration an Alertmanager runs (/api/v2/status)."""
    original = httpx.get(f"{url}/api/v2/status", timeout=10).json()["config"]["original"]
    return sorted(r["name"] for r in yaml.safe_load(original)["receivers"])
