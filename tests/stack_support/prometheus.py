"""Run Debian's Prometheus on loopback from a config text, for a test or a benchmark.

One place for what the dashboard-check tests (a Prometheus scraping the demo apps) and the
query benchmark (a Prometheus over backfilled blocks) both need: write the config, start the
process with its log in the work folder, wait for ``/-/ready`` (failing with the log's path
when the process exits first), and stop it however the caller's block ends.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from stack_support.backends import free_port, system_binary

__all__ = ["run_prometheus"]


@contextlib.contextmanager
def run_prometheus(
    workdir: Path,
    config: str,
    *,
    data: Path | None = None,
    port: int | None = None,
    flags: Sequence[str] = (),
    ready_timeout: float = 30.0,
    binary: Path | None = None,
) -> Iterator[str]:
    """Run Prometheus with ``config`` (YAML text) on ``data`` (default ``workdir/data``).

    Yields its URL once ready; ``flags`` are added to the command line. The config and the
    log (``prometheus.log``, appended to) live in ``workdir``. Raises RuntimeError naming the
    log when the process exits or is not ready within ``ready_timeout`` seconds, and
    MissingPrerequisite when there is no ``prometheus`` (unless ``binary`` is given).
    """
    program = binary or system_binary("prometheus")
    port = port or free_port()
    config_file = workdir / "prometheus.yml"
    config_file.write_text(config, encoding="utf-8")
    log_path = workdir / "prometheus.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(program),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={data or workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + ready_timeout
            while True:
                if process.poll() is not None:
                    msg = f"prometheus exited {process.returncode}; see {log_path}"
                    raise RuntimeError(msg)
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    msg = f"prometheus not ready within {ready_timeout:.0f} s; see {log_path}"
                    raise RuntimeError(msg)
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
