"""The relay's dedup window against Alertmanager's repeats: repeats must reach the relay's targets.

The relay acknowledges, without delivering, a notification whose idempotency key it saw within
``RELAY_DEDUP_WINDOW_SECONDS``. A repeat (``repeat_interval``) is the same notification later,
so a window at or above a route's repeat_interval swallows that route's repeats: the Watchdog
heartbeat (every 2m) arrived every ~6 minutes with a 300 s window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook_relay.settings import Settings as RelaySettings

ROOT = Path(__file__).resolve().parent.parent
ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
COMPOSE = ROOT / "docker-compose.yml"
#: Units of a Prometheus/Alertmanager duration (https://prometheus.io/docs/alerting/latest/configuration/#duration).
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
#: Alertmanager's repeat_interval when the root route sets none.
DEFAULT_REPEAT = "4h"


def duration_seconds(text: str) -> float:
    """Return a duration such as ``2m`` or ``1h30m`` in seconds; ValueError names a bad one."""
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        msg = f"{text!r} is not a duration (e.g. 2m, 1h30m)"
        raise ValueError(msg)
    return sum(int(n) * _UNITS[u] for n, u in parts)


def repeat_intervals(
    route: dict[str, Any], inherited: str, where: str
) -> Iterator[tuple[str, str]]:
    """Yield (route path, effective repeat_interval) for a route and every child route."""
    own = str(route.get("repeat_interval", inherited))
    yield where, own
    for index, child in enumerate(route.get("routes") or []):
        yield from repeat_intervals(child, own, f"{where}.routes[{index}]")


def relay_windows(compose: dict[str, Any]) -> dict[str, float]:
    """Return each relay service's effective dedup window: its environment, else the default."""
    default = RelaySettings.model_fields["dedup_window_seconds"].default
    windows = {}
    for name, spec in compose["services"].items():
        env = spec.get("environment") or {}
        if "RELAY_ROUTING_FILE" in env:  # a webhook relay
            windows[name] = float(env.get("RELAY_DEDUP_WINDOW_SECONDS", default))
    return windows


def test_duration_parser_reads_alertmanager_durations() -> None:
    """Compound durations add up; anything else is refused by name."""
    assert duration_seconds("2m") == 120
    assert duration_seconds("1h30m") == 5400
    with pytest.raises(ValueError, match="'2 m' is not a duration"):
        duration_seconds("2 m")


def swallowed_repeats(compose: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Return a sentence per relay whose window is not below the shortest repeat_interval."""
    repeats = dict(repeat_intervals(config["route"], DEFAULT_REPEAT, "route"))
    where, shortest = min(repeats.items(), key=lambda item: duration_seconds(item[1]))
    return [
        f"{COMPOSE.name}: services.{service}: RELAY_DEDUP_WINDOW_SECONDS={window:g} is not "
        f"below {ALERTMANAGER_CONFIG.name} {where}.repeat_interval={shortest}: its repeats "
        "would be dropped as duplicates"
        for service, window in relay_windows(compose).items()
        if window >= duration_seconds(shortest)
    ]


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def test_compose_relay_dedup_window_is_below_every_repeat_interval() -> None:
    """The relay's effective window in compose is below the shortest repeat_interval."""
    compose = _load(COMPOSE)
    assert relay_windows(compose), f"{COMPOSE.name}: no webhook relay service found"
    assert swallowed_repeats(compose, _load(ALERTMANAGER_CONFIG)) == []


def test_window_check_catches_the_old_300_second_window() -> None:
    """A 300 s window (the old default) is named against the Watchdog route's 2m repeats."""
    relay = {"RELAY_ROUTING_FILE": "/etc/webhook-relay/routing.yml"}
    compose = {"services": {"webhook-relay": {"environment": relay}}}
    config = _load(ALERTMANAGER_CONFIG)
    assert swallowed_repeats(compose, config) == []  # the default window
    relay["RELAY_DEDUP_WINDOW_SECONDS"] = "300"
    (problem,) = swallowed_repeats(compose, config)
    assert "RELAY_DEDUP_WINDOW_SECONDS=300" in problem
    assert "repeat_interval=2m" in problem
