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

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lookout_stack.validate.checks import alertmanager_coverage as coverage
from lookout_stack.validate.checks import amtool_config, amtool_routes
from stack_support import poll_until, require_binary
from stack_support.native import NativeStack
from stack_support.receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
AM_DIR = ROOT / "alertmanager"
CONFIG_FILE = AM_DIR / "alertmanager.yml"
TOKEN_FILE = AM_DIR / "relay-token.dev"
CASES_FILE = AM_DIR / "route-tests.yaml"
# Where compose mounts the token (the `relay_token` secret), and the relay's address (the
# native stack points it at a receiver the test owns).
SECRET_PATH = coverage.SECRET_PATH
RELAY_ADDRESS = "webhook-relay:8080"

CONFIG: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
CASES: dict[str, Any] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
ROUTE_CASES: list[dict[str, Any]] = CASES["routes"]
INHIBITION_CASES: list[dict[str, Any]] = CASES["inhibitions"]
RECEIVERS: list[dict[str, Any]] = CONFIG["receivers"]
INHIBIT_RULES: list[dict[str, Any]] = CONFIG["inhibit_rules"]

# The routing and inhibition model lives in `lookout validate`'s alertmanager-coverage check
# (one implementation); these tests parametrise over it so a failure names the case.


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
    problems = coverage.receiver_problems(receiver)
    assert not problems, problems


@pytest.mark.parametrize("index", range(len(ROUTE_CASES)), ids=[c["name"] for c in ROUTE_CASES])
def test_route_case_reaches_its_receivers(index: int) -> None:
    """amtool config routes test sends the case's labels to exactly its receivers."""
    require_binary("amtool")
    finding = amtool_routes.route_case_finding(ROOT, index, ROUTE_CASES[index])
    assert finding is None, f"{finding.where}: {finding.message}"


@pytest.mark.parametrize("case", ROUTE_CASES, ids=[c["name"] for c in ROUTE_CASES])
def test_route_walk_agrees_with_the_case(case: dict[str, Any]) -> None:
    """The tree walk used for coverage picks the same receivers as the case (and amtool)."""
    problem = coverage.walk_problem(CONFIG["route"], case)
    assert problem is None, f"{CASES_FILE.name}: {problem}"


def test_every_route_is_reached_by_a_case() -> None:
    """Together the route cases pass through every route of the tree, the default included."""
    problems = coverage.route_coverage_problems(CONFIG["route"], ROUTE_CASES)
    assert not problems, f"{CASES_FILE.name}: {problems}"


@pytest.mark.parametrize(
    "index",
    range(len(INHIBIT_RULES)),
    ids=[f"inhibit_rules[{i}]" for i in range(len(INHIBIT_RULES))],
)
def test_every_inhibit_rule_has_a_muting_case(index: int) -> None:
    """Each inhibit rule is the one that mutes the target in at least one inhibition case."""
    problem = coverage.unshown_inhibit_problem(INHIBIT_RULES[index], index, INHIBITION_CASES)
    assert problem is None, f"{CASES_FILE.name}: {problem}"


@pytest.mark.parametrize("case", INHIBITION_CASES, ids=[c["name"] for c in INHIBITION_CASES])
def test_inhibit_model_agrees_with_the_case(case: dict[str, Any]) -> None:
    """The inhibit-rule model used for coverage agrees with each case's expectation."""
    problem = coverage.inhibit_case_problem(INHIBIT_RULES, case)
    assert problem is None, f"{CASES_FILE.name}: {problem}"


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
