"""Helpers shared by the deploy-target tests: apply a plan, run a real binary until ready."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from lookout_stack.deploy.model import Target

__all__ = ["apply_plan", "running"]


def apply_plan(target: Target) -> list[str]:
    """Apply a target's plan as ``lookout apply`` does; return "kind object" per change."""
    changes = target.plan()
    for change in changes:
        change.apply()
    target.finish()
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
