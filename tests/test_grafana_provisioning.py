"""grafana/provisioning: data sources, their correlations and the dashboard provider.

Grafana cannot run here: the provisioning files are checked against a key schema kept from the
pinned version's docs and option types
(services/lookout/src/lookout_stack/validate/schemas/grafana-<version>.yaml) and
cross-referenced with each other and the compose service table. Grafana ignores unknown
jsonData keys silently, which is why a misspelled one must fail here.
"""

from __future__ import annotations

import copy
import functools
import operator
import re
from pathlib import Path
from typing import Any

import pytest
from keyschema_support import COMPOSE_SERVICE_PORTS, SCHEMAS_DIR, KeySchema, host_port, load_yaml

from lookout_stack.validate.checks.key_schemas import key_findings

ROOT = Path(__file__).resolve().parent.parent
PROVISIONING = ROOT / "grafana" / "provisioning"
DATASOURCES_PATH = PROVISIONING / "datasources" / "datasources.yaml"
DASHBOARDS_PATH = PROVISIONING / "dashboards" / "dashboards.yaml"
SCHEMA_PATH = SCHEMAS_DIR / "grafana-13.2.yaml"
# The fixed uids (DESIGN.md): dashboards and links refer to data sources by these.
EXPECTED = {
    "prometheus": ("prometheus", "prometheus:9090"),
    "loki": ("loki", "loki:3100"),
    "tempo": ("tempo", "tempo:3200"),
    "alertmanager": ("alertmanager", "alertmanager:9093"),
}
# Keys in jsonData, at any depth, whose value is the uid of another data source.
REFERENCE_KEYS = {"datasourceUid", "alertmanagerUid"}
# Grafana's own ${__...} macros; in a provisioning file they must be written $${__...}.
MACRO = re.compile(r"\$?\$\{__[^}]*\}")


@pytest.fixture(scope="module")
def schema() -> KeySchema:
    """Return the key schema of the pinned Grafana version."""
    return KeySchema.load(SCHEMA_PATH)


@pytest.fixture(scope="module")
def datasources_file() -> dict[str, Any]:
    """Return the data source provisioning file, parsed."""
    data: dict[str, Any] = load_yaml(DATASOURCES_PATH)
    return data


@pytest.fixture(scope="module")
def datasources(datasources_file: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the provisioned data sources by uid."""
    return {ds["uid"]: ds for ds in datasources_file["datasources"]}


@pytest.fixture(scope="module")
def providers() -> list[dict[str, Any]]:
    """Return the dashboard providers."""
    data: list[dict[str, Any]] = load_yaml(DASHBOARDS_PATH)["providers"]
    return data


def _references(value: Any, path: str) -> list[tuple[str, str]]:
    """Return (path, uid) for every data source reference below ``value``."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}"
            if key in REFERENCE_KEYS:
                found.append((child, item))
            found += _references(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _references(item, f"{path}[{index}]")
    return found


def _strings(value: Any) -> list[str]:
    """Return every string value below ``value`` (comments are not values)."""
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


# --- key schema ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", [DATASOURCES_PATH, DASHBOARDS_PATH], ids=["datasources", "dashboards"]
)
def test_provisioning_file_uses_only_keys_of_the_pinned_grafana(
    schema: KeySchema, path: Path
) -> None:
    """Every key in a provisioning file is one the pinned Grafana version documents."""
    assert schema.path == SCHEMA_PATH
    findings = key_findings(ROOT, path.relative_to(ROOT).as_posix(), SCHEMA_PATH.name)
    assert not findings, "\n".join(f"{f.where}: {f.message}" for f in findings)


@pytest.mark.parametrize(
    ("uid", "parent", "key", "typo"),
    [
        ("prometheus", ("jsonData",), "exemplarTraceIdDestinations", "exemplarTraceIDDestinations"),
        ("tempo", ("jsonData",), "tracesToLogsV2", "tracesToLogsv2"),
        ("tempo", ("jsonData", "tracesToLogsV2"), "filterByTraceID", "filterByTraceId"),
        ("tempo", ("jsonData", "nodeGraph"), "enabled", "enable"),
        ("loki", ("jsonData", "derivedFields", 0), "matcherType", "matchType"),
        ("alertmanager", ("jsonData",), "implementation", "implementaton"),
    ],
    ids=["exemplars", "traces-to-logs", "filter-by-trace", "node-graph", "matcher", "am-impl"],
)
def test_key_schema_rejects_a_misspelled_key(
    datasources_file: dict[str, Any],
    schema: KeySchema,
    uid: str,
    parent: tuple[str | int, ...],
    key: str,
    typo: str,
) -> None:
    """A copy of the data sources with one key misspelled fails the schema check, naming it."""
    broken = copy.deepcopy(datasources_file)
    index = next(i for i, ds in enumerate(broken["datasources"]) if ds["uid"] == uid)
    body = functools.reduce(operator.getitem, parent, broken["datasources"][index])
    body[typo] = body.pop(key)
    errors = schema.check(broken, "datasources.yaml")
    where = ".".join(str(p) for p in parent).replace(".0", "[0]")
    expected = f"datasources[{index}].{where}.{typo}: unknown key {typo!r}"
    assert any(expected in error for error in errors), errors


def test_key_schema_rejects_the_removed_loki_search_option(
    datasources_file: dict[str, Any], schema: KeySchema
) -> None:
    """`lokiSearch` on Tempo, a removed option older guides still show, fails with a reason."""
    broken = copy.deepcopy(datasources_file)
    tempo = next(ds for ds in broken["datasources"] if ds["type"] == "tempo")
    tempo["jsonData"]["lokiSearch"] = {"datasourceUid": "loki"}
    errors = schema.check(broken, "datasources.yaml")
    assert any("jsonData.lokiSearch: `lokiSearch` is not a Tempo" in e for e in errors), errors


def test_key_schema_links_every_data_source_type_to_the_pinned_docs(schema: KeySchema) -> None:
    """Every data source type in the key schema cites a page of the pinned version's docs."""
    cases = schema.data["root"]["fields"]["datasources"]["items"]["cases"]
    for kind, node in cases.items():
        url = schema.doc_url(node["doc"])
        assert url.startswith("https://grafana.com/docs/grafana/v13.2/"), f"{kind}: {url}"


def test_pinned_image_matches_the_key_schema(dotenv: dict[str, str], schema: KeySchema) -> None:
    """The Grafana image pinned in .env is the version the key schema was written from."""
    # A digest may follow the tag.
    pins = [v.split("@", 1)[0] for v in dotenv.values() if v.startswith("grafana/grafana:")]
    if not pins:
        pytest.skip(".env pins no grafana/grafana image yet (compose change)")
    assert pins == [schema.data["image"]], (
        f".env pins {pins}, the key schema is for {schema.data['image']}: re-read the linked docs "
        "for the new version and write lookout_stack/validate/schemas/grafana-<version>.yaml"
    )


# --- data sources --------------------------------------------------------------------------------
def test_data_sources_have_the_fixed_uids_types_and_urls(
    datasources: dict[str, dict[str, Any]],
) -> None:
    """Exactly the four data sources exist, each with its fixed uid, type and service URL."""
    assert set(datasources) == set(EXPECTED)
    for uid, (kind, address) in EXPECTED.items():
        ds = datasources[uid]
        assert ds["type"] == kind, f"{uid}: type {ds['type']}, expected {kind}"
        assert ds["url"] == f"http://{address}", (
            f"{uid}: url {ds['url']}, expected http://{address}"
        )
        assert ds.get("access") == "proxy", f"{uid}: the browser cannot reach compose names"
        assert ds.get("editable") is False, f"{uid}: provisioned sources are edited in git only"


def test_data_source_urls_are_compose_service_ports(datasources: dict[str, dict[str, Any]]) -> None:
    """Every data source URL is http://<compose service>:<one of its container ports>."""
    for uid, ds in datasources.items():
        host, port = host_port(ds["url"])
        assert port in COMPOSE_SERVICE_PORTS.get(host, set()), f"{uid}: {ds['url']}"


def test_exactly_one_default_data_source(datasources: dict[str, dict[str, Any]]) -> None:
    """Prometheus, and only Prometheus, is the default data source."""
    defaults = [uid for uid, ds in datasources.items() if ds.get("isDefault")]
    assert defaults == ["prometheus"]


def test_every_cross_reference_names_a_provisioned_uid(
    datasources: dict[str, dict[str, Any]],
) -> None:
    """Every datasourceUid in the correlations names a data source provisioned here."""
    refs = [ref for uid, ds in datasources.items() for ref in _references(ds.get("jsonData"), uid)]
    assert refs, "no cross-data-source references found"
    dangling = [f"{path}: {target!r}" for path, target in refs if target not in datasources]
    assert not dangling, f"references to uids nobody provisions: {dangling}"


CORRELATIONS = [
    ("prometheus", ("exemplarTraceIdDestinations", 0, "datasourceUid"), "tempo"),
    ("prometheus", ("exemplarTraceIdDestinations", 0, "name"), "trace_id"),
    ("tempo", ("tracesToLogsV2", "datasourceUid"), "loki"),
    ("tempo", ("tracesToLogsV2", "filterByTraceID"), True),
    ("tempo", ("tracesToLogsV2", "tags", 0), {"key": "service.name", "value": "service_name"}),
    ("tempo", ("tracesToMetrics", "datasourceUid"), "prometheus"),
    ("tempo", ("serviceMap", "datasourceUid"), "prometheus"),
    ("tempo", ("nodeGraph", "enabled"), True),
    ("loki", ("derivedFields", 0, "datasourceUid"), "tempo"),
    ("loki", ("derivedFields", 0, "matcherType"), "label"),
    ("loki", ("derivedFields", 0, "matcherRegex"), "trace_id"),
    ("loki", ("derivedFields", 0, "url"), "$${__value.raw}"),
    ("loki", ("derivedFields", 1, "matcherType"), "label"),
    ("loki", ("derivedFields", 1, "matcherRegex"), "sentry_event_id"),
    ("loki", ("derivedFields", 1, "url"), "${BUGSINK_URL}/issues/event/$${__value.raw}/"),
    ("alertmanager", ("implementation",), "prometheus"),
]


@pytest.mark.parametrize(
    ("uid", "path", "expected"),
    CORRELATIONS,
    ids=["-".join([uid, *(str(p) for p in path)]) for uid, path, _ in CORRELATIONS],
)
def test_correlation_is_wired(
    datasources: dict[str, dict[str, Any]], uid: str, path: tuple[str | int, ...], expected: object
) -> None:
    """Exemplars open traces, traces open logs, metrics and the service map, logs open traces."""
    actual = functools.reduce(operator.getitem, path, datasources[uid]["jsonData"])
    assert actual == expected, f"{uid}.jsonData.{'.'.join(map(str, path))}: {actual!r}"


def test_grafana_macros_are_escaped_from_env_interpolation() -> None:
    """Every ${__...} macro is written $${__...}, so provisioning does not expand it as a var."""
    text = "\n".join(_strings(load_yaml(DATASOURCES_PATH)))
    unescaped = [m for m in MACRO.findall(text) if not m.startswith("$$")]
    assert not unescaped, f"write these as $${{__...}}: {unescaped}"
    bare = re.findall(r"(?<!\$)\$(?!\$)(?:__\w+)", text)
    assert not bare, f"write $__ variables as $$__ in provisioning files: {bare}"


# --- dashboards ----------------------------------------------------------------------------------
def test_dashboard_provider_loads_the_mounted_folder_read_only(
    providers: list[dict[str, Any]],
) -> None:
    """One file provider reads /var/lib/grafana/dashboards into a folder, with UI saves refused."""
    assert len(providers) == 1
    provider = providers[0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert provider["allowUiUpdates"] is False
    assert provider["folder"], "dashboards land in a named folder, not the root"


def test_dashboards_folder_exists_with_its_readme() -> None:
    """grafana/dashboards exists (compose mounts it) and says how dashboards get there."""
    readme = ROOT / "grafana" / "dashboards" / "README.md"
    assert readme.is_file()
    assert "/var/lib/grafana/dashboards" in readme.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path", [DATASOURCES_PATH, DASHBOARDS_PATH], ids=["datasources", "dashboards"]
)
def test_provisioning_file_links_its_reference_docs(path: Path) -> None:
    """Each provisioning file names the pinned Grafana version and links its reference page."""
    head = "\n".join(path.read_text(encoding="utf-8").splitlines()[:4])
    assert "Grafana 13.2" in head
    assert "https://grafana.com/docs/grafana/v13.2/administration/provisioning/" in head


def test_environment_references_are_set_on_the_grafana_service() -> None:
    """Every ${VAR} a provisioning file expands is in the grafana service's environment."""
    compose = load_yaml(ROOT / "docker-compose.yml")
    environment = compose["services"]["grafana"].get("environment") or {}
    for path in sorted(PROVISIONING.rglob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r"(?<!\$)\$\{([A-Za-z_]\w*)\}", text):
            assert name in environment, (
                f"{path.relative_to(ROOT)}: ${{{name}}} is not set on the grafana service in "
                "docker-compose.yml (Grafana would expand it to an empty string)"
            )
