"""Start-up time and idle memory of the native stack (the compose stack less Grafana and the
collector, as local processes from the same config files).

Starts Prometheus and Alertmanager (Debian), the real Loki and Tempo, and the demo shop and
payments at once, exactly as the e2e tests do (tests/stack_support/native.py), and prints:

- the seconds until each process answered its readiness URL, and until all had (goal: 20 s);
- after ``--idle`` seconds (default 60) with no traffic, each process's resident memory and
  the four backends' total (goal: under 600 MB).

Run: ``uv run python bench/native_stack.py [--idle 60] [--keep]``. Needs the machine's
Postgres and Redis (the apps' data stores). Exits 0 when the measurement completed, 2 when
the stack could not start (the message names the log to read).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# stack_support lives beside the tests (inserted on sys.path above).
from stack_support.backends import MissingPrerequisite
from stack_support.native import NativeStack, StackStartError

SERVICES = ["alertmanager", "prometheus", "loki", "tempo", "payments", "shop"]
BACKENDS = ["prometheus", "alertmanager", "loki", "tempo"]
READY_GOAL_S = 20.0
IDLE_GOAL_MB = 600.0


def main() -> int:
    """Measure and print; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before RSS")
    parser.add_argument("--keep", action="store_true", help="keep the folder with the logs")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lookout-native-bench-"))
    stack = NativeStack(workdir, SERVICES)
    try:
        elapsed = stack.start(progress=lambda line: print(f"  {line}", flush=True))
    except (StackStartError, MissingPrerequisite) as exc:
        print(f"the native stack did not start: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"\nready: every process in {elapsed:.1f} s (goal {READY_GOAL_S:.0f} s)")
        for name, proc in stack.services.items():
            print(f"  {name:<13} {proc.ready_after:5.1f} s")
        print(f"\nidle for {args.idle:.0f} s ...", flush=True)
        deadline = time.monotonic() + args.idle
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(10.0, left))
            print(f"  {max(0.0, deadline - time.monotonic()):.0f} s left", flush=True)
        rss = {name: stack.rss_bytes(name) / 2**20 for name in stack.services}
        print("\nidle RSS (MB):")
        for name, megabytes in rss.items():
            print(f"  {name:<13} {megabytes:6.0f}")
        backends = sum(rss[name] for name in BACKENDS)
        print(f"  {'4 backends':<13} {backends:6.0f}  (goal under {IDLE_GOAL_MB:.0f})")
        return 0
    finally:
        stack.stop()
        if args.keep:
            print(f"logs and data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
