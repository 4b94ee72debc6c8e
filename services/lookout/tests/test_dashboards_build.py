"""`lookout dashboards build|verify`: the committed JSON is exactly what the code builds.

Also: thresholds drawn on panels follow the alert rules (change a rule, the panel moves), a
rule reshaped so its threshold cannot be found stops the build with a message naming it,
and verify names each stale, missing or stray file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel
from grafana_foundation_sdk.models.dashboard import Panel

from lookout_stack.cli import COMMAND_MODULES, main
from lookout_stack.dashboards import DASHBOARDS, OUTPUT_DIR, build_all
from lookout_stack.dashboards.rules import RuleError, Rules

ROOT = Path(__file__).resolve().parents[3]
UIDS = [
    "lookout-overview",
    "lookout-service",
    "lookout-slo",
    "lookout-business",
    "lookout-security",
    "lookout-synthetic",
    "lookout-alerts",
    "lookout-stack",
    "lookout-logs",
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Return a copy of the parts of the repository the build reads and writes."""
    for part in ("prometheus/rules", "loki/rules", "grafana/dashboards"):
        shutil.copytree(ROOT / part, tmp_path / part)
    return tmp_path


def _panels(text: str) -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in json.loads(text)["panels"]}


def _steps(panel: dict[str, Any]) -> list[Any]:
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_the_contract_uids_are_built() -> None:
    """Exactly the dashboard uids the alerts and the contract name are built."""
    assert list(DASHBOARDS) == UIDS


def test_command_is_registered() -> None:
    """`lookout dashboards` is one of the CLI's sub-commands."""
    assert "lookout_stack.dashboards.command" in COMMAND_MODULES


@pytest.mark.parametrize("uid", UIDS)
def test_committed_json_is_a_fresh_build(uid: str) -> None:
    """grafana/dashboards/<uid>.json has the bytes a fresh build gives."""
    built = build_all(ROOT)[uid]
    committed = (ROOT / OUTPUT_DIR / f"{uid}.json").read_text(encoding="utf-8")
    assert committed == built, f"{uid}.json is stale: run `uv run lookout dashboards build`"


def test_building_twice_gives_the_same_bytes() -> None:
    """The build is deterministic: sorted keys, numbered panels, a trailing newline."""
    first, second = build_all(ROOT), build_all(ROOT)
    assert first == second
    for uid, text in first.items():
        assert text.endswith("}\n"), uid
        document = json.loads(text)
        assert document["uid"] == uid
        ids = [p["id"] for p in document["panels"]]
        assert ids == list(range(1, len(ids) + 1)), uid


@pytest.mark.parametrize("uid", UIDS)
def test_dashboard_has_range_refresh_links_and_units(uid: str) -> None:
    """Each dashboard has a default range, a refresh, the menu of the others, units on panels."""
    document = json.loads(build_all(ROOT)[uid])
    assert document["time"]["from"].startswith("now-")
    assert document["refresh"]
    assert any(link["type"] == "dashboards" and link["includeVars"] for link in document["links"])
    for panel in document["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{uid}: {panel['title']} has no unit"
        assert panel.get("description"), f"{uid}: {panel['title']} has no description"


@pytest.mark.parametrize("uid", UIDS)
def test_panels_tile_the_grid(uid: str) -> None:
    """Panels stay within the 24 columns, never overlap, and fill each line they start."""
    document = json.loads(build_all(ROOT)[uid])
    taken: dict[tuple[int, int], str] = {}
    widths: dict[int, int] = {}
    for panel in document["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{uid}: {panel['title']} is wider than the grid"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{uid}: {panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]
        widths[grid["y"]] = widths.get(grid["y"], 0) + grid["w"]
    assert set(widths.values()) == {24}, f"{uid}: lines not filled: {widths}"


def test_drill_down_links_carry_the_service() -> None:
    """The overview's series open the service detail with that series' job as $service."""
    panels = _panels(build_all(ROOT)["lookout-overview"])
    links = panels["Traffic"]["fieldConfig"]["defaults"]["links"]
    assert links[0]["url"] == (
        "/d/lookout-service?var-service=${__field.labels.job}&${__url_time_range}"
    )


def test_latency_panels_have_exemplars_on() -> None:
    """The overview's latency panel asks Prometheus for exemplars (the trace links)."""
    panel = _panels(build_all(ROOT)["lookout-overview"])["Latency p95 (with exemplars)"]
    assert panel["targets"][0]["exemplar"] is True
    assert "_bucket" in panel["targets"][0]["expr"]


def test_tempo_and_loki_targets_are_standard_grafana_queries() -> None:
    """The service detail's traces panel is a TraceQL query, its logs panel a LogQL one."""
    panels = _panels(build_all(ROOT)["lookout-service"])
    traces = panels["Traces of ${service}"]["targets"][0]
    assert traces["datasource"] == {"type": "tempo", "uid": "tempo"}
    assert traces["queryType"] == "traceql"
    assert traces["query"] == '{resource.service.name="$service"}'
    logs = panels["Logs of ${service}"]["targets"][0]
    assert logs["datasource"] == {"type": "loki", "uid": "loki"}
    assert logs["expr"] == '{service_name="$service"}'


def test_thresholds_follow_the_alert_rules(repo: Path) -> None:
    """Change HTTPErrorRateHigh's warning threshold in the rule file: the panel's line moves."""
    before = _steps(_panels(build_all(repo)["lookout-overview"])["Errors (5xx share)"])
    assert before == [None, 0.05, 0.2]
    rules = repo / "prometheus/rules/demo-app.yml"
    text = rules.read_text(encoding="utf-8")
    changed = text.replace(
        "job:http_server_requests_errors:ratio_rate5m > 0.05",
        "job:http_server_requests_errors:ratio_rate5m > 0.07",
    )
    assert changed != text
    rules.write_text(changed, encoding="utf-8")
    after = _steps(_panels(build_all(repo)["lookout-overview"])["Errors (5xx share)"])
    assert after == [None, 0.07, 0.2]


def test_slo_burn_rate_thresholds_come_from_the_slo_rules(repo: Path) -> None:
    """With SLO alerts comparing slo:burn_rate:* series, those values are drawn; none without."""
    panel = "Availability: burn rate 1h"
    generated = (repo / "prometheus/rules/slo.yml").is_file()
    if not generated:  # before the SLO branch is merged: no SLO alerts, no lines
        assert _steps(_panels(build_all(repo)["lookout-slo"])[panel]) == [None]
    (repo / "prometheus/rules/slo.yml").write_text(
        "groups:\n  - name: slo-test\n    rules:\n"
        "      - alert: SLOErrorBudgetFastBurn\n"
        '        expr: slo:burn_rate:rate1h{slo="availability"} > 14.4\n'
        "        labels: {severity: critical}\n"
        "      - alert: SLOErrorBudgetSlowBurn\n"
        "        expr: slo:burn_rate:rate1h > 6 and slo:burn_rate:rate6h > 6\n"
        "        labels: {severity: warning}\n",
        encoding="utf-8",
    )
    built = _panels(build_all(repo)["lookout-slo"])
    assert _steps(built[panel]) == [None, 6, 14.4]
    assert _steps(built["Availability: burn rate 6h"]) == [None, 6]
    assert _steps(built["Availability: burn rate 3d"]) == [None]


def test_a_reshaped_rule_stops_the_build(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rule whose threshold cannot be found any more: exit 2, the alert and file named."""
    rules = repo / "prometheus/rules/demo-app.yml"
    text = rules.read_text(encoding="utf-8").replace(
        "job:cache_hits:ratio_rate5m < 0.5", "job:cache_hits:ratio_rate5m < bool 0.5"
    )
    rules.write_text(text, encoding="utf-8")
    assert main(["dashboards", "build", "--root", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "CacheHitRatioLow" in err
    assert "demo-app.yml" in err


def test_verify_names_each_stale_missing_and_stray_file(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify exits 1 naming an edited, a deleted and an unexpected file; 0 after build."""
    folder = repo / OUTPUT_DIR
    assert main(["dashboards", "verify", "--root", str(repo)]) == 0
    edited = folder / "lookout-business.json"
    edited.write_text(
        edited.read_text(encoding="utf-8").replace("Revenue", "Revenu"), encoding="utf-8"
    )
    (folder / "lookout-logs.json").unlink()
    (folder / "hand-made.json").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["dashboards", "verify", "--root", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "lookout-business.json: differs from a fresh build" in err
    assert "lookout-logs.json: missing" in err
    assert "hand-made.json: no dashboard module builds it" in err
    (folder / "hand-made.json").unlink()
    assert main(["dashboards", "build", "--root", str(repo)]) == 0
    assert main(["dashboards", "verify", "--root", str(repo)]) == 0


def test_no_repository_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run outside the repository without --root: exit 2 with a message saying what to do."""
    assert main(["dashboards", "verify", "--root", str(tmp_path)]) == 2
    assert "pass --root" in capsys.readouterr().err


@pytest.mark.parametrize("uid", UIDS)
def test_committed_json_reads_back_into_the_sdk_model(uid: str) -> None:
    """Each file unmarshals into the SDK's typed Grafana model, every panel and query typed."""
    register_default_plugins()
    text = (ROOT / OUTPUT_DIR / f"{uid}.json").read_text(encoding="utf-8")
    model = DashboardModel.from_json(json.loads(text))
    assert model.uid == uid
    panels = [p for p in model.panels or [] if isinstance(p, Panel)]
    assert panels
    for panel in panels:
        assert panel.targets, panel.title
        assert all(type(t).__name__ != "UnknownDataquery" for t in panel.targets), panel.title


def test_threshold_parser_reads_products_and_tails() -> None:
    """Thresholds written as products or after an expression's tail are parsed."""
    rules = Rules.load(ROOT)
    assert rules.threshold(
        "SyntheticJourneySLOBurnRateHigh", "critical", "journey:synthetic_slo_error_ratio:rate1h"
    ) == pytest.approx(0.144)
    assert rules.threshold("SyntheticCertificateExpiringSoon", "critical", "/ 86400") == 3
    assert rules.threshold("DBPoolTimeouts", "critical", "db_pool_timeouts_total") == 0
    with pytest.raises(RuleError, match="severity 'page'"):
        rules.threshold("DBPoolTimeouts", "page", "db_pool_timeouts_total")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: 5\n", "expected a mapping with `groups:`"),
        ("- a\n", "expected a mapping with `groups:`"),
        ("groups: [5]\n", r"groups\[0\]: expected a mapping with `rules:`"),
        ("groups: [{rules: [x]}]\n", r"groups\[0\].rules\[0\]: expected a mapping"),
    ],
    ids=["groups-not-a-list", "not-a-mapping", "group-not-a-mapping", "rule-not-a-mapping"],
)
def test_a_misshapen_rule_file_is_a_rule_error_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    """A rule file of the wrong shape stops the build naming the file and field, not a crash."""
    rules = tmp_path / "prometheus" / "rules"
    rules.mkdir(parents=True)
    (rules / "bad.yml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=rf"bad\.yml: {message}"):
        Rules.load(tmp_path)
