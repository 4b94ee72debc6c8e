"""Settings and the routing file: errors name the variable, or the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay_support import payload
from webhook_relay.cli import main
from webhook_relay.errors import ConfigError, SettingsError
from webhook_relay.payload import Notification
from webhook_relay.routing import parse_routing
from webhook_relay.settings import load_settings

GOOD = """\
targets:
  pager: {type: pagerduty, routing_key: abc}
  slack: {type: slack, webhook_url: "https://hooks.slack.example/x"}
  hook: {type: webhook, url: "http://127.0.0.1:9/x"}
rules:
  - name: critical
    match: {severity: [critical]}
    targets: [pager, slack]
    continue: true
  - name: shop
    match: {labels_regex: {service: "shop|payments"}, receiver: relay}
    targets: [hook, slack]
fallback: [slack]
"""


def notification(**labels: str) -> Notification:
    """Return a notification whose common labels include ``labels``."""
    body = payload()
    body["commonLabels"].update(labels)
    return Notification.model_validate(body)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            {"severity": "critical", "service": "shop"},
            [("pager", "critical"), ("slack", "critical"), ("hook", "shop")],
        ),
        ({"severity": "critical", "service": "db"}, [("pager", "critical"), ("slack", "critical")]),
        ({"severity": "warning", "service": "payments"}, [("hook", "shop"), ("slack", "shop")]),
        ({"severity": "warning", "service": "shopx"}, [("slack", "fallback")]),
    ],
    ids=["critical-and-shop", "critical-only", "shop-only", "fallback"],
)
def test_rules_route_by_severity_labels_and_continue(
    labels: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    """Rules match in order; continue lets later rules add targets; each target once."""
    routing = parse_routing(GOOD, "routing.yml")
    assert [(r.target, r.rule) for r in routing.routes(notification(**labels))] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("type: pagerduty, routing_key: abc", "type: pagerduty"),
            "routing.yml:2: targets.pager.routing_key: Field required",
        ),
        (
            GOOD.replace("type: webhook", "type: carrier-pigeon"),
            "routing.yml:4: targets.hook.type: unknown type 'carrier-pigeon'",
        ),
        (
            GOOD.replace("targets: [hook, slack]", "targets: [hook, nope]"),
            "routing.yml:12: rules[1].targets[1]: unknown target 'nope'",
        ),
        (
            GOOD.replace("severity: [critical]", "severty: [critical]"),
            "routing.yml:7: rules[0].match.severty: Extra inputs are not permitted",
        ),
        (
            GOOD.replace('"shop|payments"', '"shop|(payments"'),
            "routing.yml:11: rules[1].match.labels_regex",
        ),
        (
            GOOD.replace(
                "fallback:",
                "  - name: bad\n    targets: [hook]\n"
                "    templates:\n      title: '{{ oops'\nfallback:",
            ),
            "routing.yml:16: rules[2].templates.title",
        ),
        ("targets: [\n", "routing.yml:2: not valid YAML"),
        (
            GOOD.replace("routing_key: abc", "routing_key: '${RELAY_TEST_UNSET_VAR}'"),
            "routing.yml:2: targets.pager.routing_key: environment variable RELAY_TEST_UNSET_VAR",
        ),
    ],
    ids=[
        "missing-field",
        "unknown-type",
        "unknown-target",
        "typo",
        "bad-regex",
        "bad-template",
        "bad-yaml",
        "unset-env",
    ],
)
def test_config_errors_name_file_line_and_field(text: str, expected: str) -> None:
    """A bad routing file fails with the file, the line and the field."""
    with pytest.raises(ConfigError) as raised:
        parse_routing(text, "routing.yml")
    assert str(raised.value).startswith(expected), str(raised.value)


def test_env_and_file_references_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """${VAR} and ${file:/path} are replaced by their values."""
    secret = tmp_path / "key"
    secret.write_text("from-file\n")
    monkeypatch.setenv("RELAY_TEST_URL", "http://127.0.0.1:1/hook")
    routing = parse_routing(
        f"targets:\n  p: {{type: pagerduty, routing_key: '${{file:{secret}}}'}}\n"
        "  h: {type: webhook, url: '${RELAY_TEST_URL}'}\nfallback: [p, h]\n"
    )
    assert routing.targets["p"].config.routing_key == "from-file"  # type: ignore[attr-defined]
    assert routing.targets["h"].config.url == "http://127.0.0.1:1/hook"  # type: ignore[attr-defined]


def test_example_routing_file_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """routing.example.yml parses once its secrets exist."""
    example = Path(__file__).resolve().parent.parent / "routing.example.yml"
    text = example.read_text().replace("/run/secrets/", f"{tmp_path}/")
    for name in ("slack_bot_token", "pagerduty_routing_key", "audit_hook_secret"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", "https://example.test/workflows")
    routing = parse_routing(text, str(example))
    assert sorted(routing.targets) == ["audit-hook", "oncall-mail", "ops-slack", "pager", "teams"]


def test_missing_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing RELAY_ROUTING_FILE and a bad port are reported by variable name."""
    monkeypatch.delenv("RELAY_ROUTING_FILE", raising=False)
    monkeypatch.setenv("RELAY_PORT", "99999")
    monkeypatch.setenv("RELAY_TOKEN", "t")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "RELAY_ROUTING_FILE: Field required" in str(raised.value)
    assert "RELAY_PORT:" in str(raised.value)


def test_bearer_mode_needs_a_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The default auth mode refuses to start without a token."""
    monkeypatch.setenv("RELAY_ROUTING_FILE", str(tmp_path / "r.yml"))
    monkeypatch.delenv("RELAY_TOKEN", raising=False)
    monkeypatch.delenv("RELAY_TOKEN_FILE", raising=False)
    with pytest.raises(SettingsError, match="RELAY_TOKEN_FILE or RELAY_TOKEN"):
        load_settings()


def test_check_config_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`webhook-relay check-config` prints the targets, or exits 2 with the error."""
    routing = tmp_path / "routing.yml"
    routing.write_text(GOOD)
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    monkeypatch.setenv("RELAY_ROUTING_FILE", str(routing))
    monkeypatch.setenv("RELAY_TOKEN_FILE", str(token))
    assert main(["check-config"]) == 0
    assert '"pager": "pagerduty"' in capsys.readouterr().out
    routing.write_text(GOOD.replace("type: webhook", "type: nope"))
    assert main(["check-config"]) == 2
    assert f"{routing}:4: targets.hook.type" in capsys.readouterr().err


def test_compose_routing_file_is_valid() -> None:
    """routing.compose.yml parses and sends the watchdog to the heartbeat log."""
    path = Path(__file__).resolve().parent.parent / "routing.compose.yml"
    routing = parse_routing(path.read_text(), str(path))
    body = payload(receiver="watchdog")
    routes = routing.routes(Notification.model_validate(body))
    assert [(r.target, r.rule) for r in routes] == [("heartbeat-log", "watchdog")]
