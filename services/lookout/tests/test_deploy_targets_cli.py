"""``lookout diff`` and ``lookout apply`` end to end, with the targets of deploy.targets.

The environment file (in tmp_path) points at a REAL Debian Prometheus reading a rule folder
and a REAL Debian Alertmanager reading its file (both reloaded through ``/-/reload``), and at
the Grafana double (deploy_doubles: a double of Grafana's documented API, not Grafana). The
repository root is the ``--root``: render takes the base configs from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_doubles import GrafanaDouble, serve
from deploy_support import (
    alertmanager_reading,
    loaded_groups,
    prometheus_reading,
    running_receivers,
)

from lookout_stack.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
TOKEN = "cli-grafana-token"
PASSWORD = "cli-loki-password-value"

ENVIRONMENT = """\
description: test environment (real Prometheus and Alertmanager, the Grafana double)
grafana:
  url: {grafana}
  auth:
    token: {{env: TEST_GRAFANA_TOKEN}}
prometheus_rules:
  kind: files
  directory: {rules}
  reload_url: {prometheus}/-/reload
alertmanager:
  kind: file
  path: {alertmanager_file}
  reload_url: {alertmanager}/-/reload
datasources:
  loki:
    url: https://loki.test.example
    tenant: test
    auth:
      username: lookout
      password: {{env: TEST_LOKI_PASSWORD}}
bugsink_url: http://bugsink.test.example
"""


@pytest.fixture
def environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, dict[str, object]]]:
    """An environment file naming the real Prometheus, Alertmanager and the Grafana double."""
    monkeypatch.setenv("TEST_GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_LOKI_PASSWORD", PASSWORD)
    rules = tmp_path / "rules"
    am_file = tmp_path / "alertmanager" / "alertmanager.yml"
    grafana = GrafanaDouble(expected_headers={"Authorization": f"Bearer {TOKEN}"})
    with (
        prometheus_reading(rules, tmp_path / "prometheus") as prometheus,
        alertmanager_reading(am_file, tmp_path / "am") as alertmanager,
        serve(grafana) as grafana_url,
    ):
        path = tmp_path / "test-env.yaml"
        path.write_text(
            ENVIRONMENT.format(
                grafana=grafana_url,
                rules=rules,
                prometheus=prometheus,
                alertmanager_file=am_file,
                alertmanager=alertmanager,
            )
        )
        yield path, {"prometheus": prometheus, "alertmanager": alertmanager, "grafana": grafana}


def _lookout(capsys: pytest.CaptureFixture[str], command: str, env: Path) -> tuple[int, str, str]:
    code = main([command, "--env", str(env), "--root", str(REPO)])
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err and TOKEN not in out + err
    return code, out, err


def test_diff_apply_apply_diff(
    environment: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    """`lookout diff` exits 1 with the diff, `apply` applies it (rules, Alertmanager config,
    Grafana objects and the secret reach their targets), a second `apply` changes nothing and
    `diff` then exits 0; no secret is ever printed."""
    path, live = environment
    grafana = live["grafana"]
    assert isinstance(grafana, GrafanaDouble)

    code, out, _ = _lookout(capsys, "diff", path)
    assert code == 1
    assert "+ create rule file slo.yml in " in out
    assert "~ update Alertmanager configuration file " in out
    assert "+ create data source Loki (uid loki)" in out
    assert "secureJsonData.basicAuthPassword: <secret from env" in out
    assert "+ create dashboard lookout-overview (" in out

    code, out, err = _lookout(capsys, "apply", path)
    assert code == 0, err
    assert "applied " in out
    assert "lookout-demo-red" in loaded_groups(str(live["prometheus"]))
    assert running_receivers(str(live["alertmanager"])) == ["chat", "log", "page", "watchdog"]
    assert set(grafana.dashboards) >= {"lookout-overview", "lookout-slo"}
    assert grafana.secure["loki"]["basicAuthPassword"] == PASSWORD
    assert grafana.datasources["loki"]["url"] == "https://loki.test.example"

    writes = len([r for r in grafana.requests if r.method != "GET"])
    code, out, _ = _lookout(capsys, "apply", path)
    assert code == 0
    assert "in sync: nothing to apply" in out
    assert len([r for r in grafana.requests if r.method != "GET"]) == writes

    code, out, _ = _lookout(capsys, "diff", path)
    assert code == 0
    assert "in sync: nothing to change" in out
