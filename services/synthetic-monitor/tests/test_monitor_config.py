"""Configuration loading: merge, ${ENV}, defaults, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor_support import SERVICE, write
from synthetic_monitor.cli import main
from synthetic_monitor.config import HttpStep, TcpStep, load_config, load_paths
from synthetic_monitor.errors import ConfigErrors

GOOD = """
defaults:
  interval: 30s
  retries: 2
  labels: {team: web}
journeys:
  - name: login
    labels: {tier: gold}
    variables: {base: "${BASE_URL:-http://127.0.0.1:1}"}
    secrets:
      password: {env: LOGIN_PASSWORD}
    steps:
      - name: login
        method: post
        url: "{{ base }}/login"
        json: {password: "{{ secrets.password }}"}
        conditions: ["[STATUS] == 200", "[BODY].token != ''"]
        extract: {token: {json: "$.token"}}
      - name: me
        url: "{{ base }}/me"
        headers: {Authorization: "Bearer {{ token }}"}
    cleanup:
      - name: logout
        method: POST
        url: "{{ base }}/logout"
checks:
  - name: db
    type: tcp
    host: 127.0.0.1
    port: 5432
    interval: 5m
"""


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    """Load ``text`` as a file; return the error lines (empty when it loads)."""
    path = write(tmp_path / "journeys.yml", text)
    try:
        load_paths([path], env or {})
    except ConfigErrors as errors:
        return [str(error) for error in errors.errors]
    return []


def test_a_valid_file_loads_with_defaults_labels_and_env(tmp_path: Path) -> None:
    """Defaults fill what a journey leaves out, labels merge, ${VAR:-default} expands."""
    path = write(tmp_path / "a.yml", GOOD)
    config = load_config(path, {"BASE_URL": "http://example.test"})
    login = config.journeys["login"]
    assert login.interval == 30.0
    assert login.retries == 2
    assert login.labels == {"team": "web", "tier": "gold"}
    assert login.variables["base"] == "http://example.test"
    assert isinstance(login.steps[0], HttpStep)
    assert login.steps[0].method == "POST"
    assert login.cleanup[0].name == "logout"
    db = config.journeys["db"]
    assert db.kind == "check"
    assert db.interval == 300.0
    assert isinstance(db.steps[0], TcpStep)


def test_a_directory_merges_every_yaml_file(tmp_path: Path) -> None:
    """Every .yml/.yaml file below a directory contributes; hidden files are ignored."""
    write(tmp_path / "a.yml", "checks: [{name: one, url: 'http://127.0.0.1:1/'}]")
    write(tmp_path / "sub" / "b.yaml", "checks: [{name: two, type: tcp, host: h, port: 1}]")
    write(tmp_path / ".hidden.yml", "checks: [{name: three, url: 'http://x/'}]")
    write(tmp_path / "notes.txt", "not yaml")
    config = load_config(tmp_path, {})
    assert sorted(config.journeys) == ["one", "two"]


def test_a_name_defined_in_two_files_names_both_places(tmp_path: Path) -> None:
    """Journey names are unique across files; the error points at both definitions."""
    write(tmp_path / "a.yml", "checks: [{name: same, url: 'http://127.0.0.1:1/'}]")
    write(tmp_path / "b.yml", "\nchecks:\n  - {name: same, url: 'http://127.0.0.1:2/'}\n")
    with pytest.raises(ConfigErrors) as caught:
        load_config(tmp_path, {})
    message = str(caught.value)
    assert "b.yml:3: name: journey name 'same' is already defined at" in message
    assert "a.yml:1" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "checks:\n  - name: a\n    url: ${MISSING_URL}\n",
            ":3: environment variable MISSING_URL is not set",
        ),
        ("checks:\n  - name: a\n    url: [unclosed\n", "not valid YAML"),
        (
            "checks:\n  - name: a\n    url: http://x/\n    url: http://y/\n",
            ":4: duplicate key 'url' (first at line 3)",
        ),
        (
            "checks:\n  - name: a\n    url: http://x/\n    timout: 3s\n",
            ":4: checks[0](a).timout: unknown field",
        ),
        (
            "checks:\n  - name: a\n    url: http://x/\n    conditions:\n      - '[STATUS] = 200'\n",
            ":5: checks[0](a).conditions[0]: cannot read condition",
        ),
        (
            "checks:\n  - name: a\n    type: tcp\n    host: h\n    port: 1\n"
            "    conditions: ['[STATUS] == 200']\n",
            ":6: checks[0](a).conditions[0]: [STATUS] is not available in a tcp step",
        ),
        (
            "journeys:\n  - name: j\n    steps:\n      - name: s\n        url: http://x/\n"
            "        timeout: soon\n",
            ":6: journeys[0](j).steps[0](s).timeout: expected a duration",
        ),
        (
            "journeys:\n  - name: j\n    steps:\n      - name: s\n"
            "        url: 'http://x/{{ token }}'\n",
            ":2: journeys[0](j): step 's' uses {{ token }}, which is not defined",
        ),
        (
            "journeys:\n  - name: j\n    steps:\n      - name: s\n        url: http://x/\n"
            "        headers: {A: '{{ secrets.key }}'}\n",
            "declare it under secrets: with env: or file:",
        ),
        (
            "journeys:\n  - name: j\n    labels: {job: x}\n    steps: [{name: s, url: 'http://x/'}]\n",
            ":3: journeys[0](j).labels: label name 'job' is not usable",
        ),
        (
            "journeys:\n  - name: 'bad name'\n    steps: [{name: s, url: 'http://x/'}]\n",
            ":2: journeys[0](bad name).name: 'bad name' is not a valid name",
        ),
        (
            "journeys:\n  - name: j\n    steps:\n      - {name: s, url: 'http://x/'}\n"
            "      - {name: s, url: 'http://y/'}\n",
            "step name 's' is used twice",
        ),
        ("checks:\n  - name: a\n    url: ftp://x/\n", ":3: checks[0](a).url: 'ftp://x/' is not"),
        ("[1, 2]\n", ":1: the top level must be a mapping"),
        (
            "checks:\n  - name: a\n    type: dns\n    query: example.test\n    record: AX\n",
            ":5: checks[0](a).record:",
        ),
    ],
    ids=[
        "unset-env",
        "bad-yaml",
        "duplicate-key",
        "unknown-field",
        "unreadable-condition",
        "placeholder-wrong-type",
        "bad-duration",
        "undefined-variable",
        "undeclared-secret",
        "reserved-label",
        "bad-name",
        "duplicate-step",
        "bad-url",
        "not-a-mapping",
        "bad-record-type",
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    """Each kind of mistake is reported as file:line: field: message."""
    errors = load_text(tmp_path, text)
    assert errors, "the configuration should have been rejected"
    assert any(expected in error for error in errors), errors
    assert all(error.startswith(str(tmp_path / "journeys.yml")) for error in errors), errors


def test_every_error_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    """One load reports all problems, not just the first."""
    errors = load_text(
        tmp_path,
        "checks:\n  - {name: a, url: 'ftp://x'}\n  - {name: b, type: tcp, host: h, port: 0}\n",
    )
    assert len(errors) == 2


def test_dollar_dollar_escapes_a_literal_dollar_brace(tmp_path: Path) -> None:
    """$${ writes a literal ${ (for a target that wants that text)."""
    path = write(tmp_path / "a.yml", "checks: [{name: a, url: 'http://x/?q=$${HOME}'}]")
    step = load_config(path, {}).journeys["a"].steps[0]
    assert isinstance(step, HttpStep)
    assert step.url == "http://x/?q=${HOME}"


def test_a_missing_path_and_an_empty_directory_are_errors(tmp_path: Path) -> None:
    """Pointing at nothing is an error that names the path."""
    with pytest.raises(ConfigErrors, match="no such file or directory"):
        load_config(tmp_path / "nope.yml", {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigErrors, match=r"no \.yml or \.yaml file"):
        load_config(tmp_path / "empty", {})


def test_check_command_exits_2_and_prints_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`synthetic-monitor check` exits 2 with located errors, 0 with a summary."""
    bad = write(tmp_path / "bad.yml", "checks:\n  - {name: a, url: 'ftp://x'}\n")
    assert main(["check", str(bad)]) == 2
    assert "bad.yml:2: checks[0](a).url" in capsys.readouterr().err
    good = write(tmp_path / "good.yml", "checks:\n  - {name: a, url: 'http://x/'}\n")
    assert main(["check", str(good)]) == 0
    assert "OK: 0 journeys and 1 checks in 1 files" in capsys.readouterr().out


def test_the_example_journeys_for_the_demo_shop_are_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The journeys shipped for compose load cleanly (browse, login, checkout, checks)."""
    config = load_config(SERVICE / "journeys", {})
    assert {"shop-browse", "shop-login", "shop-checkout", "shop-ready"} <= set(config.journeys)
    checkout = config.journeys["shop-checkout"]
    assert [s.name for s in checkout.steps] == [
        "login",
        "list-products",
        "create-cart",
        "add-to-cart",
        "checkout",
        "read-order",
    ]
    assert checkout.cleanup[0].name == "logout"
