"""Test timings on the native stack's copies (stack_support.timing) and the relay's test routing.

The shipped configs keep production timings; NativeStack(alert_timing=...) rewrites only the
copies in its folders, and mount_sources=... hands the real relay a routing file that delivers
to a receiver the test owns. Nothing here starts a service: the copies are checked by their
content, by Debian's promtool and amtool, and by the relay's own routing-file loader.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack_support import require_binary
from stack_support.native import NativeStack
from stack_support.receiver import Delivery
from stack_support.relay import (
    RELAY_ROUTING_MOUNT,
    relay_mount,
    signature_is_valid,
    write_relay_routing,
)
from stack_support.timing import (
    AlertTiming,
    TimingError,
    format_duration,
    parse_duration,
    retime_alertmanager,
    retime_prometheus,
    retime_rules,
)

ROOT = Path(__file__).resolve().parent.parent
TIMING = AlertTiming(
    rule_for=5, evaluation_interval=2, scrape_interval=2, group_wait=2, group_interval=5
)


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _shipped() -> list[Path]:
    return sorted(
        [
            ROOT / "prometheus" / "prometheus.yml",
            ROOT / "alertmanager" / "alertmanager.yml",
            *(ROOT / "prometheus" / "rules").glob("*.yml"),
        ]
    )


def _config_arg(argv: list[str]) -> Path:
    return Path(next(a.split("=", 1)[1] for a in argv if a.lstrip("-").startswith("config.file=")))


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0),
        ("0", 0),
        ("15s", 15),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("2d", 172800),
    ],
    ids=["zero-s", "zero", "seconds", "minutes", "hours-minutes", "millis", "days"],
)
def test_parse_duration_reads_prometheus_durations(text: str, seconds: float) -> None:
    """Prometheus-style durations are read in seconds."""
    assert parse_duration(text, "f") == seconds


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (0.25, "250ms"), (0, "0s"), (600, "600s")], ids=str
)
def test_format_duration_writes_what_both_tools_read(seconds: float, text: str) -> None:
    """Seconds are written in s, or in ms when not whole, and read back to the same value."""
    assert format_duration(seconds) == text
    assert parse_duration(text, "f") == seconds


def test_a_bad_duration_names_file_and_field() -> None:
    """A value that is no duration fails with the file and the field's path in the message."""
    rules = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "1", "for": "soon"}]}]}
    with pytest.raises(TimingError, match=r"rules\.yml: groups\[0\]\.rules\[0\]\.for: 'soon'"):
        retime_rules(rules, TIMING, "rules.yml")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"group_interval": 10, "repeat_interval": 5}, "repeat_interval"),
        ({"scrape_interval": 0}, "scrape_interval"),
        ({"rule_for": -1}, "rule_for"),
    ],
    ids=["repeat-below-group-interval", "zero-scrape", "negative-for"],
)
def test_alert_timing_refuses_what_the_tools_would(fields: dict[str, float], message: str) -> None:
    """Timings Prometheus or Alertmanager would refuse or ignore fail, naming the field."""
    with pytest.raises(TimingError, match=message):
        AlertTiming(**fields)


def test_rules_for_is_capped_and_shorter_ones_kept() -> None:
    """A long `for:` drops to the cap; a shorter one and a rule without `for:` stay as they are."""
    rules = {
        "groups": [
            {
                "name": "g",
                "interval": "1m",
                "rules": [
                    {"alert": "Long", "expr": "up == 0", "for": "10m"},
                    {"alert": "Short", "expr": "up == 0", "for": "1s"},
                    {"alert": "Instant", "expr": "up == 0"},
                    {"record": "r", "expr": "sum(up)"},
                ],
            }
        ]
    }
    group = retime_rules(rules, TIMING, "f")["groups"][0]
    assert group["interval"] == "2s"
    assert [r.get("for") for r in group["rules"]] == ["5s", "1s", None, None]
    assert group["rules"][0]["expr"] == "up == 0"


def test_prometheus_intervals_capped_and_timeouts_follow() -> None:
    """Scrape and evaluation intervals drop to the test's; no timeout stays above its interval."""
    config = {
        "global": {"scrape_interval": "15s", "scrape_timeout": "10s"},
        "scrape_configs": [
            {"job_name": "a"},
            {"job_name": "b", "scrape_interval": "30s", "scrape_timeout": "20s"},
            {"job_name": "c", "scrape_interval": "1s"},
        ],
    }
    out = retime_prometheus(config, TIMING, "prometheus.yml")
    assert out["global"] == {
        "scrape_interval": "2s",
        "scrape_timeout": "2s",
        "evaluation_interval": "2s",
    }
    jobs = {job["job_name"]: job for job in out["scrape_configs"]}
    assert jobs["a"] == {"job_name": "a"}
    assert (jobs["b"]["scrape_interval"], jobs["b"]["scrape_timeout"]) == ("2s", "2s")
    assert (jobs["c"]["scrape_interval"], jobs["c"]["scrape_timeout"]) == ("1s", "1s")


def test_alertmanager_route_tree_capped_and_root_completed() -> None:
    """Every route's group timers drop to the caps; the root gets them when absent; 0s stays."""
    config = {
        "route": {
            "receiver": "chat",
            "group_wait": "30s",
            "routes": [
                {"receiver": "watchdog", "group_wait": "0s", "repeat_interval": "2m"},
                {"receiver": "page", "routes": [{"receiver": "x", "group_interval": "10m"}]},
            ],
        }
    }
    route = retime_alertmanager(config, TIMING, "am.yml")["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "2s",
        "5s",
        "600s",
    )
    assert route["routes"][0] == {
        "receiver": "watchdog",
        "group_wait": "0s",
        "repeat_interval": "2m",
    }
    assert route["routes"][1]["routes"][0]["group_interval"] == "5s"
    assert "group_wait" not in route["routes"][1]


def test_native_copies_are_retimed_and_the_shipped_files_untouched(tmp_path: Path) -> None:
    """Rendering with alert_timing caps every alert's `for:` in the copies only, rules intact."""
    require_binary("prometheus")
    before = _digest(_shipped())
    stack = NativeStack(tmp_path, ["prometheus", "alertmanager"], alert_timing=TIMING)
    prometheus = _config_arg(stack.render("prometheus").argv)
    alertmanager = _config_arg(stack.render("alertmanager").argv)
    assert _digest(_shipped()) == before, "a shipped file changed"
    assert _load(prometheus)["global"]["evaluation_interval"] == "2s"
    assert _load(alertmanager)["route"]["group_wait"] == "2s"
    copies = sorted((prometheus.parent / "rules").glob("*.yml"))
    assert [p.name for p in copies] == [p.name for p in sorted(ROOT.glob("prometheus/rules/*.yml"))]
    for copy in copies:
        shipped = _load(ROOT / "prometheus" / "rules" / copy.name)["groups"]
        retimed = _load(copy)["groups"]
        shipped_rules = [r for g in shipped for r in g["rules"]]
        retimed_rules = [r for g in retimed for r in g["rules"]]
        assert [r.get("alert") or r["record"] for r in retimed_rules] == [
            r.get("alert") or r["record"] for r in shipped_rules
        ]
        for old, new in zip(shipped_rules, retimed_rules, strict=True):
            assert {k: v for k, v in new.items() if k != "for"} == {
                k: v for k, v in old.items() if k != "for"
            }, f"{copy.name}: {new.get('alert')} changed beyond `for`"
            if "for" in old:
                assert parse_duration(new["for"], copy.name) <= TIMING.rule_for


def test_retimed_copies_pass_promtool_and_amtool(tmp_path: Path) -> None:
    """Debian's promtool and amtool accept the retimed configs (promtool checks the rules too)."""
    promtool = str(require_binary("promtool"))
    amtool = str(require_binary("amtool"))
    require_binary("alertmanager")
    stack = NativeStack(tmp_path, ["prometheus", "alertmanager"], alert_timing=TIMING)
    prometheus = _config_arg(stack.render("prometheus").argv)
    alertmanager = _config_arg(stack.render("alertmanager").argv)
    for argv in (
        [promtool, "check", "config", str(prometheus)],
        [amtool, "check-config", str(alertmanager)],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}{done.stderr}"


def test_without_alert_timing_the_copy_keeps_the_shipped_timings(tmp_path: Path) -> None:
    """No alert_timing: the copy is the shipped file with addresses substituted, comments kept."""
    require_binary("prometheus")
    copy = _config_arg(NativeStack(tmp_path, ["prometheus"]).render("prometheus").argv)
    text = copy.read_text(encoding="utf-8")
    assert "# Prometheus: what it scrapes" in text
    assert _load(copy)["global"]["evaluation_interval"] == "15s"


def test_relay_routing_file_is_accepted_by_the_relay(tmp_path: Path) -> None:
    """The test routing file loads with the relay's own loader and routes every receiver to it."""
    from webhook_relay.payload import parse_notification  # type: ignore[import-untyped]
    from webhook_relay.routing import load_routing  # type: ignore[import-untyped]

    path = write_relay_routing(tmp_path / "routing.yml", "http://127.0.0.1:9/hook", "s3cret")
    routing = load_routing(path)
    for receiver in ("page", "chat", "log", "watchdog", "added-later"):
        body = {
            "version": "4",
            "groupKey": "k",
            "status": "firing",
            "receiver": receiver,
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "A"},
                    "startsAt": "2026-01-01T00:00:00Z",
                }
            ],
        }
        routes = routing.routes(parse_notification(json.dumps(body).encode()))
        assert [r.target for r in routes] == ["test-receiver"], receiver


def test_mount_sources_replace_the_relay_routing_in_the_copy(tmp_path: Path) -> None:
    """The relay's rendered routing file is the test's, and its env still points at it."""
    routing = write_relay_routing(tmp_path / "mine.yml", "http://127.0.0.1:9/hook", "s3cret")
    stack = NativeStack(tmp_path / "stack", ["webhook-relay"], mount_sources=relay_mount(routing))
    relay = stack.render("webhook-relay")
    rendered = Path(relay.env["RELAY_ROUTING_FILE"])
    assert rendered == relay.root / RELAY_ROUTING_MOUNT.lstrip("/")
    assert _load(rendered) == _load(routing)


def test_mount_sources_refuse_a_path_that_is_not_a_mount(tmp_path: Path) -> None:
    """A container path the service does not mount fails, naming the service and the path."""
    routing = write_relay_routing(tmp_path / "mine.yml", "http://127.0.0.1:9/hook", "s3cret")
    with pytest.raises(ValueError, match=r"mount_sources\['webhook-relay'\]\['/etc/nope.yml'\]"):
        NativeStack(
            tmp_path, ["webhook-relay"], mount_sources={"webhook-relay": {"/etc/nope.yml": routing}}
        )


def test_signature_check_tells_signed_from_tampered() -> None:
    """A body signed with the secret verifies; a changed body or another secret does not."""
    import hmac

    body = b'{"status":"firing"}'
    digest = hmac.new(b"k", b"1700000000." + body, "sha256").hexdigest()
    headers = {"X-Relay-Timestamp": "1700000000", "X-Relay-Signature": f"sha256={digest}"}
    assert signature_is_valid(Delivery("/hook", headers, body), "k")
    assert not signature_is_valid(Delivery("/hook", headers, body + b" "), "k")
    assert not signature_is_valid(Delivery("/hook", headers, body), "other")


def test_loki_ruler_copy_is_retimed(tmp_path: Path) -> None:
    """With alert_timing, the loki.yaml copy evaluates every 2 s; its rules' `for:` is capped."""
    require_binary("loki")
    shipped = _digest(sorted((ROOT / "loki").rglob("*.y*ml")))
    stack = NativeStack(tmp_path, ["loki"], alert_timing=TIMING)
    config = _config_arg(stack.render("loki").argv)
    assert _digest(sorted((ROOT / "loki").rglob("*.y*ml"))) == shipped, "a shipped file changed"
    ruler = _load(config)["ruler"]
    assert ruler["evaluation_interval"] == "2s"
    rules = sorted(Path(ruler["storage"]["local"]["directory"]).rglob("*.yaml"))
    assert rules, "no Loki rule files in the copy"
    fors = [
        parse_duration(rule["for"], str(path))
        for path in rules
        for group in _load(path)["groups"]
        for rule in group["rules"]
        if "for" in rule
    ]
    assert fors, "the Loki rules have no `for:` to cap"
    assert max(fors) <= TIMING.rule_for
