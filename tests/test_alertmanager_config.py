"""alertmanager/alertmanager.yml: checked by Debian's amtool and a real Alertmanager.

The config is rendered for this machine by the native stack's harness
(tests/stack_support/native.py): the compose secret /run/secrets/relay_token becomes a copy of
the committed dev token it is mounted from, and the relay's address a receiver the test owns.
Routes are tested case by case from alertmanager/route-tests.yaml with `amtool config routes test`,
and a tree walk checks that the cases reach every route. Inhibition is proven against a
real Alertmanager process (the `integration` tier), which also delivers a page to a stub
relay so the bearer token is seen on the wire.

amtool and alertmanager (Debian's 0.25; the binary is `prometheus-alertmanager` there) must
be on PATH: with CI=true a missing one fails the test, elsewhere it skips naming it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lookout_stack.validate.checks import amtool_config, amtool_routes
from stack_support import poll_until, require_binary
from stack_support.native import NativeStack
from stack_support.receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
AM_DIR = ROOT / "alertmanager"
CONFIG_FILE = AM_DIR / "alertmanager.yml"
TOKEN_FILE = AM_DIR / "relay-token.dev"
CASES_FILE = AM_DIR / "route-tests.yaml"
# Where compose mounts the token (the `relay_token` secret), and the relay's one URL.
SECRET_PATH = "/run/secrets/relay_token"
RELAY_ADDRESS = "webhook-relay:8080"
RELAY_URL = f"http://{RELAY_ADDRESS}/webhook"

CONFIG: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
CASES: dict[str, Any] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
ROUTE_CASES: list[dict[str, Any]] = CASES["routes"]
INHIBITION_CASES: list[dict[str, Any]] = CASES["inhibitions"]
RECEIVERS: list[dict[str, Any]] = CONFIG["receivers"]
INHIBIT_RULES: list[dict[str, Any]] = CONFIG["inhibit_rules"]

# name op "value" (or an unquoted value), as in Alertmanager's `matchers` lists.
MATCHER = re.compile(
    r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$'
)


# --- a model of Alertmanager's routing and inhibition, for coverage ---------------------------


def label_matches(matcher: str, labels: dict[str, str]) -> bool:
    """Tell whether ``labels`` satisfy one Alertmanager matcher string."""
    found = MATCHER.match(matcher)
    if found is None:
        raise ValueError(
            f"{CONFIG_FILE.name}: cannot read matcher {matcher!r}; "
            'write it as name="value" (or !=, =~, !~)'
        )
    name, op, quoted, bare = found.groups()
    wanted = bytes(quoted, "utf-8").decode("unicode_escape") if quoted is not None else bare
    value = labels.get(name, "")
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted
    full = re.fullmatch(wanted, value) is not None
    return full if op == "=~" else not full


def route_matches(route: dict[str, Any], labels: dict[str, str]) -> bool:
    """Tell whether a route's matchers all hold for ``labels`` (the root matches everything)."""
    for legacy in ("match", "match_re"):
        assert legacy not in route, f"{CONFIG_FILE.name}: use `matchers`, not deprecated `{legacy}`"
    return all(label_matches(m, labels) for m in route.get("matchers", []))


@dataclass
class RouteHit:
    """A route that an alert ends at, with its path in the tree and its receiver."""

    path: str
    receiver: str
    visited: list[str] = field(default_factory=list)


def walk_routes(
    route: dict[str, Any], labels: dict[str, str], path: str = "route", receiver: str = ""
) -> list[RouteHit]:
    """Return the routes an alert with ``labels`` ends at, as Alertmanager picks them.

    Children are tried in order; a matching child stops the search unless it has
    ``continue: true``; a route none of whose children match takes the alert itself.
    """
    if not route_matches(route, labels):
        return []
    receiver = route.get("receiver", receiver)
    hits: list[RouteHit] = []
    for index, child in enumerate(route.get("routes", [])):
        child_hits = walk_routes(child, labels, f"{path}.routes[{index}]", receiver)
        hits.extend(child_hits)
        if child_hits and not child.get("continue", False):
            break
    if not hits:
        return [RouteHit(path, receiver, [path])]
    for hit in hits:
        hit.visited.insert(0, path)
    return hits


def all_route_paths(route: dict[str, Any], path: str = "route") -> list[str]:
    """Return the path of every route in the tree, the root first."""
    paths = [path]
    for index, child in enumerate(route.get("routes", [])):
        paths.extend(all_route_paths(child, f"{path}.routes[{index}]"))
    return paths


def inhibit_rule_mutes(
    rule: dict[str, Any], source: dict[str, str], target: dict[str, str]
) -> bool:
    """Tell whether one inhibit rule lets ``source`` mute ``target``."""
    for legacy in ("source_match", "source_match_re", "target_match", "target_match_re"):
        assert legacy not in rule, f"{CONFIG_FILE.name}: use *_matchers, not deprecated `{legacy}`"
    return (
        all(label_matches(m, source) for m in rule.get("source_matchers", []))
        and all(label_matches(m, target) for m in rule.get("target_matchers", []))
        and all(source.get(name, "") == target.get(name, "") for name in rule.get("equal", []))
    )


# --- static checks -----------------------------------------------------------------------------


# amtool runs through `lookout validate`'s checks (one implementation): amtool 0.25 reads the
# config as Alertmanager does but never opens credentials_file, so the committed file is
# checked as it is, its compose secret path included.


def test_amtool_accepts_the_config() -> None:
    """amtool check-config accepts alertmanager.yml (lookout validate's amtool-config check)."""
    require_binary("amtool")
    assert SECRET_PATH in CONFIG_FILE.read_text(encoding="utf-8"), (
        f"{CONFIG_FILE}: expected the relay token at {SECRET_PATH}"
    )
    result = amtool_config.CHECK.run(ROOT)
    assert result.status == "passed", result.findings


def test_relay_token_is_one_nonempty_line() -> None:
    """The committed dev token is a single non-empty line, as a credentials file should be."""
    lines = TOKEN_FILE.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and lines[0].strip() == lines[0] and lines[0], (
        f"{TOKEN_FILE}: expected one line holding the token, got {len(lines)} line(s)"
    )


@pytest.mark.parametrize("receiver", RECEIVERS, ids=[r["name"] for r in RECEIVERS])
def test_receiver_posts_to_the_relay_with_the_bearer_token(receiver: dict[str, Any]) -> None:
    """Each receiver is one webhook to the relay, bearer token from the secret, resolved sent."""
    name = receiver["name"]
    others = sorted(k for k in receiver if k.endswith("_configs") and k != "webhook_configs")
    assert not others, f"receiver {name}: only webhook_configs to the relay, found {others}"
    hooks = receiver.get("webhook_configs", [])
    assert len(hooks) == 1, f"receiver {name}: expected one webhook_config, found {len(hooks)}"
    hook = hooks[0]
    assert hook.get("url") == RELAY_URL, f"receiver {name}: url should be {RELAY_URL}"
    assert hook.get("send_resolved") is True, f"receiver {name}: set send_resolved: true"
    auth = hook.get("http_config", {}).get("authorization", {})
    assert auth.get("credentials_file") == SECRET_PATH and auth.get("type", "Bearer") == "Bearer", (
        f"receiver {name}: http_config.authorization should be type Bearer with "
        f"credentials_file {SECRET_PATH}, got {auth}"
    )
    max_alerts = hook.get("max_alerts")
    assert isinstance(max_alerts, int) and max_alerts >= 0, (
        f"receiver {name}: set max_alerts to a deliberate limit (0 = none), got {max_alerts!r}"
    )


@pytest.mark.parametrize("index", range(len(ROUTE_CASES)), ids=[c["name"] for c in ROUTE_CASES])
def test_route_case_reaches_its_receivers(index: int) -> None:
    """amtool config routes test sends the case's labels to exactly its receivers."""
    require_binary("amtool")
    finding = amtool_routes.route_case_finding(ROOT, index, ROUTE_CASES[index])
    assert finding is None, f"{finding.where}: {finding.message}"


@pytest.mark.parametrize("case", ROUTE_CASES, ids=[c["name"] for c in ROUTE_CASES])
def test_route_walk_agrees_with_the_case(case: dict[str, Any]) -> None:
    """The tree walk used for coverage picks the same receivers as the case (and amtool)."""
    hits = walk_routes(CONFIG["route"], {k: str(v) for k, v in case["labels"].items()})
    assert [hit.receiver for hit in hits] == case["receivers"], (
        f"{CASES_FILE.name} case {case['name']!r}: the walk ends at "
        f"{[(h.path, h.receiver) for h in hits]}"
    )


def test_every_route_is_reached_by_a_case() -> None:
    """Together the route cases pass through every route of the tree, the default included."""
    visited: set[str] = set()
    ended: set[str] = set()
    for case in ROUTE_CASES:
        for hit in walk_routes(CONFIG["route"], {k: str(v) for k, v in case["labels"].items()}):
            visited.update(hit.visited)
            ended.add(hit.path)
    missing = [p for p in all_route_paths(CONFIG["route"]) if p not in visited]
    assert not missing, f"{CASES_FILE.name}: no case reaches {missing} of {CONFIG_FILE.name}"
    assert "route" in ended, (
        f"{CASES_FILE.name}: add a case that falls through to the root receiver"
    )


@pytest.mark.parametrize(
    "index",
    range(len(INHIBIT_RULES)),
    ids=[f"inhibit_rules[{i}]" for i in range(len(INHIBIT_RULES))],
)
def test_every_inhibit_rule_has_a_muting_case(index: int) -> None:
    """Each inhibit rule is the one that mutes the target in at least one inhibition case."""
    rule = INHIBIT_RULES[index]
    shown = [
        case["name"]
        for case in INHIBITION_CASES
        if case["inhibited"]
        and inhibit_rule_mutes(rule, _labels(case["source"]), _labels(case["target"]))
    ]
    assert shown, (
        f"{CASES_FILE.name}: no inhibition case shows inhibit_rules[{index}] ({rule}) muting"
    )


@pytest.mark.parametrize("case", INHIBITION_CASES, ids=[c["name"] for c in INHIBITION_CASES])
def test_inhibit_model_agrees_with_the_case(case: dict[str, Any]) -> None:
    """The inhibit-rule model used for coverage agrees with each case's expectation."""
    muted = any(
        inhibit_rule_mutes(rule, _labels(case["source"]), _labels(case["target"]))
        for rule in INHIBIT_RULES
    )
    assert muted == case["inhibited"], (
        f"{CASES_FILE.name} case {case['name']!r}: model says {muted}"
    )


def _labels(raw: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in raw.items()}


# --- a real Alertmanager -----------------------------------------------------------------------


@dataclass
class RunningAlertmanager:
    """A started Alertmanager and the receiver standing in for the relay it delivers to."""

    url: str
    relay: WebhookReceiver


def _http_json(url: str, payload: object | None = None) -> Any:
    if payload is None:
        response = httpx.get(url, timeout=5)
    else:
        response = httpx.post(url, json=payload, timeout=5)
    response.raise_for_status()
    return response.json() if response.content else None


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[RunningAlertmanager]:
    """Start Debian's Alertmanager on the shipped config, delivering to a test receiver."""
    require_binary("alertmanager")
    with WebhookReceiver() as relay:
        stack = NativeStack(tmp_path, ["alertmanager"], endpoints={RELAY_ADDRESS: relay.hostport})
        stack.start()
        try:
            yield RunningAlertmanager(stack.url("alertmanager", 9093), relay)
        finally:
            stack.stop()


def _post_alerts(am: RunningAlertmanager, *label_sets: dict[str, str]) -> None:
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    _http_json(
        f"{am.url}/api/v2/alerts",
        [
            {"labels": labels, "annotations": {"summary": "test"}, "endsAt": ends}
            for labels in label_sets
        ],
    )


def _alert_status(am: RunningAlertmanager, labels: dict[str, str]) -> dict[str, Any] | None:
    for alert in _http_json(f"{am.url}/api/v2/alerts"):
        if alert["labels"] == labels:
            status: dict[str, Any] = alert["status"]
            return status
    return None


@pytest.mark.integration
@pytest.mark.parametrize("case", INHIBITION_CASES, ids=[c["name"] for c in INHIBITION_CASES])
def test_real_alertmanager_inhibits_as_the_case_says(
    alertmanager: RunningAlertmanager, case: dict[str, Any]
) -> None:
    """With the source firing, a real Alertmanager reports the target inhibited (or not)."""
    source, target = _labels(case["source"]), _labels(case["target"])
    _post_alerts(alertmanager, source)
    poll_until(lambda: _alert_status(alertmanager, source), "the source alert to be listed", 10)
    _post_alerts(alertmanager, target)
    if case["inhibited"]:
        status = poll_until(
            lambda: (s := _alert_status(alertmanager, target)) and s["inhibitedBy"] and s,
            f"{target} to be inhibited by {source}",
            timeout=10,
        )
        assert status["state"] == "suppressed"
        return
    # Not inhibited: inhibition shows within a fraction of a second (see the positive cases),
    # so the target staying active for 2 s is the answer.
    poll_until(lambda: _alert_status(alertmanager, target), "the target alert to be listed", 10)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        status = _alert_status(alertmanager, target)
        assert status is not None and not status["inhibitedBy"], (
            f"{CASES_FILE.name} case {case['name']!r}: {target} was inhibited: {status}"
        )
        time.sleep(0.2)


@pytest.mark.integration
def test_real_alertmanager_pages_the_relay_with_the_bearer_token(
    alertmanager: RunningAlertmanager,
) -> None:
    """A critical alert reaches the relay as receiver `page`, with the dev token as bearer."""
    labels = {"alertname": "HTTPErrorRateHigh", "severity": "critical", "job": "shop"}
    _post_alerts(alertmanager, labels)
    token = TOKEN_FILE.read_text(encoding="utf-8").strip()

    def page_received() -> tuple[dict[str, str], dict[str, Any]] | None:
        for delivery in alertmanager.relay.snapshot():
            if delivery.json and delivery.json.get("receiver") == "page":
                return delivery.headers, delivery.json
        return None

    # The page route's group_wait is 10s.
    headers, body = poll_until(page_received, "a `page` notification at the relay stub", 20)
    assert headers.get("Authorization") == f"Bearer {token}"
    assert [a["labels"] for a in body["alerts"]] == [labels]
    assert body["status"] == "firing"
