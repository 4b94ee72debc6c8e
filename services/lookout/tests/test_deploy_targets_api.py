"""Grafana, Mimir/Loki ruler and Mimir Alertmanager targets, against PROTOCOL-LEVEL DOUBLES.

The doubles (deploy_doubles.py) implement the documented endpoints our code calls; these
tests prove what our client code sends and how it reads answers and errors, not that the
products behave the same (see deploy_doubles' docstring). The rendered folder is the repo
root, whose grafana/ and prometheus/ folders have the rendered layout.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deploy_doubles import Answer, GrafanaDouble, MimirAlertmanagerDouble, RulerDouble, serve
from deploy_support import apply_plan

from lookout_stack.deploy.model import (
    AlertmanagerApi,
    Auth,
    DeployError,
    GrafanaSection,
    RulerApi,
    SecretRef,
)
from lookout_stack.deploy.targets.alertmanager import AlertmanagerApiTarget
from lookout_stack.deploy.targets.grafana import GrafanaTarget
from lookout_stack.deploy.targets.rendered import rule_files
from lookout_stack.deploy.targets.ruler import RulerApiTarget
from stack_support import free_port

REPO = Path(__file__).resolve().parents[3]
TOKEN = "glsa_test-token-not-a-real-one"
SECRET = "s3cret-loki-password"


# -- Grafana -----------------------------------------------------------------------------------


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GrafanaDouble, GrafanaSection]]:
    """The Grafana double expecting a bearer token read from GRAFANA_TOKEN."""
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("BUGSINK_URL", "https://bugsink.staging.example")
    double = GrafanaDouble(expected_headers={"Authorization": f"Bearer {TOKEN}"})
    with serve(double) as url:
        section = GrafanaSection(url=url, auth=Auth(token=SecretRef(env="GRAFANA_TOKEN")))
        yield double, section


def _repo_dashboards() -> dict[str, str]:
    found = {}
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        model = json.loads(path.read_text())
        found[model["uid"]] = model["title"]
    return found


def test_grafana_first_apply_in_safe_order_then_in_sync(
    grafana: tuple[GrafanaDouble, GrafanaSection],
) -> None:
    """An empty Grafana gets the data sources, then the folder, then every dashboard in it;
    a second plan is empty, and every request carried the token."""
    double, section = grafana
    target = GrafanaTarget(section, REPO)
    applied = apply_plan(target)
    dashboards = _repo_dashboards()
    assert applied == [
        "create data source Prometheus (uid prometheus)",
        "create data source Loki (uid loki)",
        "create data source Tempo (uid tempo)",
        "create data source Alertmanager (uid alertmanager)",
        "create folder Lookout (uid lookout)",
        *[
            f"create dashboard {uid} ({title}) in folder Lookout"
            for uid, title in dashboards.items()
        ],
    ]
    assert {uid: d["folderUid"] for uid, d in double.dashboards.items()} == dict.fromkeys(
        dashboards, "lookout"
    )
    derived = double.datasources["loki"]["jsonData"]["derivedFields"]
    # Grafana's own interpolation: $$ is a literal $, ${BUGSINK_URL} comes from the environment.
    assert derived[0]["url"] == "${__value.raw}"
    assert derived[1]["url"] == "https://bugsink.staging.example/issues/event/${__value.raw}/"
    assert GrafanaTarget(section, REPO).plan() == []
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in double.requests)


def test_grafana_update_and_delete_stay_in_the_folder(
    grafana: tuple[GrafanaDouble, GrafanaSection], tmp_path: Path
) -> None:
    """A changed dashboard is one update with a JSON diff; a dashboard the render dropped is
    deleted from the folder; a dashboard in another folder is never touched."""
    double, section = grafana
    rendered = tmp_path / "rendered"
    shutil.copytree(REPO / "grafana", rendered / "grafana")
    apply_plan(GrafanaTarget(section, rendered))
    double.dashboards["team-board"] = {
        "dashboard": {"uid": "team-board", "title": "Team", "id": 99, "version": 3},
        "folderUid": "team",
    }
    overview = rendered / "grafana" / "dashboards" / "lookout-overview.json"
    model = json.loads(overview.read_text())
    model["title"] = "Lookout overview (staging)"
    overview.write_text(json.dumps(model))
    (rendered / "grafana" / "dashboards" / "lookout-business.json").unlink()
    titles = _repo_dashboards()
    changes = GrafanaTarget(section, rendered).plan()
    assert [(c.kind, c.object) for c in changes] == [
        ("update", "dashboard lookout-overview (Lookout overview (staging)) in folder Lookout"),
        ("delete", f"dashboard lookout-business ({titles['lookout-business']}) in folder Lookout"),
    ]
    assert f'-  "title": "{titles["lookout-overview"]}",' in changes[0].diff
    assert '+  "title": "Lookout overview (staging)",' in changes[0].diff
    assert '"version"' not in changes[0].diff
    for change in changes:
        change.apply()
    assert "lookout-business" not in double.dashboards
    assert "team-board" in double.dashboards
    assert (
        double.dashboards["lookout-overview"]["dashboard"]["title"] == "Lookout overview (staging)"
    )
    assert GrafanaTarget(section, rendered).plan() == []


def test_grafana_never_deletes_a_root_dashboard_a_search_returns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A search that answers beyond the folder (a Grafana ignoring folderUIDs) returns root
    dashboards without folderUid: they are not the deploy's, so none is deleted."""

    class UnfilteredSearch(GrafanaDouble):
        def handle(self, method: str, path: str, query: dict[str, list[str]], body: str) -> Answer:
            if path == "/api/search":
                query = {k: v for k, v in query.items() if k != "folderUIDs"}
            return super().handle(method, path, query, body)

    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("BUGSINK_URL", "https://bugsink.staging.example")
    double = UnfilteredSearch(expected_headers={"Authorization": f"Bearer {TOKEN}"})
    rendered = tmp_path / "rendered"
    shutil.copytree(REPO / "grafana", rendered / "grafana")
    with serve(double) as url:
        section = GrafanaSection(url=url, auth=Auth(token=SecretRef(env="GRAFANA_TOKEN")))
        apply_plan(GrafanaTarget(section, rendered))
        double.dashboards["home"] = {
            "dashboard": {"uid": "home", "title": "Home", "id": 98, "version": 1},
            "folderUid": "",
        }
        assert GrafanaTarget(section, rendered).plan() == []
    assert "home" in double.dashboards


def _secret_datasource(rendered: Path) -> None:
    folder = rendered / "grafana" / "provisioning" / "datasources"
    folder.mkdir(parents=True)
    (folder / "datasources.yaml").write_text(
        "apiVersion: 1\n"
        "datasources:\n"
        "  - name: Loki\n"
        "    type: loki\n"
        "    uid: loki\n"
        "    url: https://loki.staging.example\n"
        "    basicAuth: true\n"
        "    basicAuthUser: lookout\n"
        "    jsonData: {maxLines: 1000}\n"
        "    secureJsonData:\n"
        "      basicAuthPassword: $__env{LOKI_PASSWORD}\n"
    )


def test_datasource_secret_sent_never_shown(
    grafana: tuple[GrafanaDouble, GrafanaSection], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A $__env{} secret is expanded only when applied and reaches Grafana; the diff says where
    it comes from, never its value; it is re-sent on an update and never compared."""
    double, section = grafana
    monkeypatch.setenv("LOKI_PASSWORD", SECRET)
    rendered = tmp_path / "rendered"
    _secret_datasource(rendered)
    target = GrafanaTarget(section, rendered)
    changes = target.plan()
    datasource = changes[0]
    assert (datasource.kind, datasource.object) == ("create", "data source Loki (uid loki)")
    assert "secureJsonData.basicAuthPassword: <secret from env LOKI_PASSWORD>" in datasource.diff
    assert all(SECRET not in c.diff and SECRET not in c.object for c in changes)
    for change in changes:
        change.apply()
    assert double.secure["loki"] == {"basicAuthPassword": SECRET}
    assert GrafanaTarget(section, rendered).plan() == []
    double.datasources["loki"]["url"] = "https://old-loki.example"
    update = GrafanaTarget(section, rendered).plan()
    assert [c.kind for c in update] == ["update"]
    assert "-url: https://old-loki.example\n+url: https://loki.staging.example" in update[0].diff
    assert SECRET not in update[0].diff
    body = [r for r in double.requests if r.method == "PUT"]
    assert body == []
    update[0].apply()
    put = next(r for r in double.requests if r.method == "PUT")
    assert json.loads(put.body)["secureJsonData"] == {"basicAuthPassword": SECRET}


def test_unset_secret_variable_is_named_not_sent(
    grafana: tuple[GrafanaDouble, GrafanaSection], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Applying with the secret's variable unset fails naming the file, field and variable,
    and sends no data source."""
    double, section = grafana
    monkeypatch.delenv("LOKI_PASSWORD", raising=False)
    rendered = tmp_path / "rendered"
    _secret_datasource(rendered)
    change = GrafanaTarget(section, rendered).plan()[0]
    with pytest.raises(DeployError) as raised:
        change.apply()
    message = str(raised.value)
    assert "datasources.yaml: data source loki.secureJsonData.basicAuthPassword" in message
    assert "environment variable LOKI_PASSWORD is not set" in message
    assert double.datasources == {}


def test_grafana_errors_name_method_path_status_and_message(
    grafana: tuple[GrafanaDouble, GrafanaSection], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API error becomes a DeployError with method, path, status and Grafana's message; a
    refused token says 401 without showing the token."""
    double, section = grafana
    rendered = tmp_path / "rendered"
    shutil.copytree(REPO / "grafana" / "dashboards", rendered / "grafana" / "dashboards")
    target = GrafanaTarget(section, rendered)
    changes = target.plan()
    changes[0].apply()  # the folder
    double.fail("POST", "/api/dashboards/db", 412, {"message": "version-mismatch", "status": "x"})
    with pytest.raises(DeployError) as raised:
        changes[1].apply()
    assert str(raised.value) == "grafana: POST /api/dashboards/db answered 412: version-mismatch"
    monkeypatch.setenv("GRAFANA_TOKEN", "wrong-token-value")
    with pytest.raises(DeployError) as refused:
        GrafanaTarget(section, rendered).plan()
    assert "answered 401: Unauthorized" in str(refused.value)
    assert "wrong-token-value" not in str(refused.value)


# -- ruler APIs --------------------------------------------------------------------------------

RULERS = [
    pytest.param("mimir", "prometheus", "/prometheus/config/v1/rules/lookout", id="mimir"),
    pytest.param("loki", "loki", "/loki/api/v1/rules/lookout", id="loki"),
]


@pytest.fixture
def basic_password(monkeypatch: pytest.MonkeyPatch) -> str:
    """A basic-auth password in RULER_PASSWORD."""
    monkeypatch.setenv("RULER_PASSWORD", "ruler-pass")
    return "Basic bG9va291dDpydWxlci1wYXNz"  # lookout:ruler-pass


def _ruler_section(url: str, kind: str) -> RulerApi:
    auth = Auth(username="lookout", password=SecretRef(env="RULER_PASSWORD"))
    return RulerApi(url=url, kind=kind, tenant="staging", auth=auth)


@pytest.mark.parametrize(("kind", "language", "path"), RULERS)
def test_ruler_groups_created_then_in_sync(
    kind: str, language: str, path: str, basic_password: str
) -> None:
    """Every rendered group is created in the namespace with the tenant and auth headers, and
    a second plan is empty."""
    double = RulerDouble(
        kind=kind, expected_headers={"X-Scope-OrgID": "staging", "Authorization": basic_password}
    )
    files = rule_files(REPO, language)  # type: ignore[arg-type]
    names = [g["name"] for text in files.values() for g in yaml.safe_load(text)["groups"]]
    with serve(double) as url:
        target = RulerApiTarget(_ruler_section(url, kind), files, REPO / language / "rules")
        changes = target.plan()
        assert [c.kind for c in changes] == ["create"] * len(names)
        assert changes[0].object.startswith(f"rule group {names[0]} (")
        assert changes[0].object.endswith(") in namespace lookout")
        for change in changes:
            change.apply()
        assert list(double.groups["staging"]["lookout"]) == names
        assert (
            RulerApiTarget(_ruler_section(url, kind), files, REPO / language / "rules").plan() == []
        )
    posts = [r for r in double.requests if r.method == "POST"]
    assert {r.path for r in posts} == {path}
    assert {r.headers["content-type"] for r in posts} == {"application/yaml"}


@pytest.mark.parametrize(("kind", "language", "path"), RULERS)
def test_ruler_update_and_delete_only_in_namespace(
    kind: str, language: str, path: str, basic_password: str
) -> None:
    """A changed group is one update, a group the ruler has but the render lacks is deleted,
    and another namespace's group is left alone."""
    double = RulerDouble(kind=kind)
    files = {
        "demo.yml": "groups:\n  - name: a\n    rules:\n      - record: r\n"
        "        expr: vector(1)\n        labels: {}\n"
    }
    origin = Path("/rendered") / language / "rules"
    with serve(double) as url:
        apply_plan(RulerApiTarget(_ruler_section(url, kind), files, origin))
        double.groups["staging"]["lookout"]["stale"] = {
            "name": "stale",
            "rules": [{"record": "s", "expr": "vector(0)"}],
        }
        double.groups["staging"]["team"] = {"theirs": {"name": "theirs", "rules": []}}
        changed = {"demo.yml": files["demo.yml"].replace("vector(1)", "vector(2)")}
        changes = RulerApiTarget(_ruler_section(url, kind), changed, origin).plan()
        assert [(c.kind, c.object) for c in changes] == [
            ("update", "rule group a (demo.yml) in namespace lookout"),
            ("delete", "rule group stale in namespace lookout"),
        ]
        assert "-  - expr: vector(1)\n+  - expr: vector(2)\n" in changes[0].diff
        for change in changes:
            change.apply()
        assert list(double.groups["staging"]["lookout"]) == ["a"]
        assert "theirs" in double.groups["staging"]["team"]
    assert [r.path for r in double.requests if r.method == "DELETE"] == [f"{path}/stale"]


def test_ruler_durations_compare_as_values(basic_password: str) -> None:
    """A ruler that prints "90s" back as "1m30s" is in sync, not a change."""
    double = RulerDouble(kind="mimir")
    files = {
        "a.yml": "groups:\n  - name: g\n    interval: 60s\n    rules:\n      - alert: A\n"
        "        expr: up == 0\n        for: 90s\n"
    }
    with serve(double) as url:
        double.groups["staging"] = {
            "lookout": {
                "g": {
                    "name": "g",
                    "interval": "1m",
                    "rules": [{"alert": "A", "expr": "up == 0", "for": "1m30s"}],
                }
            }
        }
        assert RulerApiTarget(_ruler_section(url, "mimir"), files, Path("/r")).plan() == []


def test_ruler_error_names_request_and_answer(basic_password: str) -> None:
    """A refused group becomes a DeployError with method, path, status and the ruler's text."""
    double = RulerDouble(kind="mimir")
    double.fail("POST", "/prometheus/config/v1/rules", 400, "group a: 1:1: parse error\n")
    files = {
        "a.yml": "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: vector(1)\n"
    }
    with serve(double) as url:
        change = RulerApiTarget(_ruler_section(url, "mimir"), files, Path("/r")).plan()[0]
        with pytest.raises(DeployError) as raised:
            change.apply()
    assert str(raised.value) == (
        "prometheus rules (mimir ruler API): POST /prometheus/config/v1/rules/lookout"
        " answered 400: group a: 1:1: parse error"
    )
    assert "ruler-pass" not in str(raised.value)


def test_duplicate_group_name_is_refused_naming_both_files() -> None:
    """Two rendered files defining the same group name fail before anything is planned."""
    files = {
        "a.yml": "groups:\n  - name: same\n    rules: []\n",
        "b.yml": "groups:\n  - name: same\n    rules: []\n",
    }
    section = RulerApi(url="http://127.0.0.1:9", kind="mimir")
    with pytest.raises(
        DeployError, match=r"/r/b.yml: rule group 'same' is also defined in /r/a.yml"
    ):
        RulerApiTarget(section, files, Path("/r"))


# -- Mimir Alertmanager ------------------------------------------------------------------------


def test_mimir_alertmanager_config_set_then_in_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rendered configuration and templates are stored for the tenant; a second plan is
    empty; a changed route is one update."""
    monkeypatch.setenv("MIMIR_TOKEN", "mimir-token")
    double = MimirAlertmanagerDouble(
        expected_headers={"X-Scope-OrgID": "staging", "Authorization": "Bearer mimir-token"}
    )
    config = (REPO / "alertmanager" / "alertmanager.yml").read_text()
    templates = {
        "lookout.tmpl": '{{ define "lookout.title" }}{{ .CommonLabels.alertname }}{{ end }}\n'
    }
    with serve(double) as url:
        section = AlertmanagerApi(
            url=url, kind="mimir", tenant="staging", auth=Auth(token=SecretRef(env="MIMIR_TOKEN"))
        )
        assert apply_plan(AlertmanagerApiTarget(section, config, templates)) == [
            "create Alertmanager configuration of tenant staging"
        ]
        assert double.configs["staging"] == {
            "template_files": templates,
            "alertmanager_config": config,
        }
        assert AlertmanagerApiTarget(section, config, templates).plan() == []
        changed = config.replace("repeat_interval: 4h", "repeat_interval: 6h")
        changes = AlertmanagerApiTarget(section, changed, templates).plan()
        assert [c.kind for c in changes] == ["update"]
        assert "-    repeat_interval: 4h\n+    repeat_interval: 6h" in changes[0].diff
    assert {r.method for r in double.requests} == {"GET", "POST"}


def test_mimir_alertmanager_refusal_is_a_deploy_error() -> None:
    """Mimir's 400 on a configuration becomes a DeployError quoting its message."""
    double = MimirAlertmanagerDouble()
    double.fail("POST", "/api/v1/alerts", 400, "error validating Alertmanager config: bad route\n")
    with serve(double) as url:
        section = AlertmanagerApi(url=url, kind="mimir", tenant="staging")
        change = AlertmanagerApiTarget(section, "route: {receiver: x}\n", {}).plan()[0]
        with pytest.raises(DeployError) as raised:
            change.apply()
    assert str(raised.value) == (
        "alertmanager (mimir API): POST /api/v1/alerts answered 400:"
        " error validating Alertmanager config: bad route"
    )


def test_folder_rename_and_dashboard_move_are_updates(
    grafana: tuple[GrafanaDouble, GrafanaSection], tmp_path: Path
) -> None:
    """A folder with another title is renamed in place, and a dashboard with a rendered uid
    found in another folder is an update that says it moves."""
    double, section = grafana
    rendered = tmp_path / "rendered"
    folder = rendered / "grafana" / "dashboards"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps({"uid": "a", "title": "A", "panels": []}))
    double.folders["lookout"] = {"id": 1, "uid": "lookout", "title": "Old title", "version": 4}
    double.dashboards["a"] = {
        "dashboard": {"uid": "a", "title": "A", "panels": [], "id": 7, "version": 2},
        "folderUid": "",
    }
    changes = GrafanaTarget(section, rendered).plan()
    assert [(c.kind, c.object) for c in changes] == [
        ("update", "folder Lookout (uid lookout)"),
        ("update", "dashboard a (A) in folder Lookout"),
    ]
    assert "-title: Old title\n+title: Lookout" in changes[0].diff
    assert changes[1].diff == "# moves from folder '(root)' to 'lookout'\n"
    for change in changes:
        change.apply()
    assert double.folders["lookout"]["title"] == "Lookout"
    assert double.dashboards["a"]["folderUid"] == "lookout"
    assert GrafanaTarget(section, rendered).plan() == []


@pytest.mark.parametrize("which", ["grafana", "ruler"])
def test_unreachable_api_is_a_deploy_error(which: str) -> None:
    """An API nobody answers on is a DeployError naming the request and the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    if which == "grafana":
        target: GrafanaTarget | RulerApiTarget = GrafanaTarget(GrafanaSection(url=url), REPO)
        request = "grafana: GET /api/datasources/uid/prometheus failed: "
    else:
        section = RulerApi(url=url, kind="mimir", tenant="t")
        target = RulerApiTarget(section, rule_files(REPO, "prometheus"), REPO / "prometheus")
        request = (
            "prometheus rules (mimir ruler API): GET /prometheus/config/v1/rules/lookout failed: "
        )
    with pytest.raises(DeployError) as raised:
        target.plan()
    assert str(raised.value).startswith(request)
    assert f"({url} unreachable or too slow?)" in str(raised.value)
