"""deploy/kubernetes: our services' manifests and the Grafana Helm charts' values.

No cluster runs here. The manifests are validated against the Kubernetes OpenAPI schemas of a
stated version (kubernetes-validate, strict: an unknown field fails), the ServiceMonitors against
the prometheus-operator CRD's schema (lookout_stack/validate/schemas/k8s-servicemonitor-crd.yaml),
and both are cross-checked with what they describe: compose's images, ports and memory limits, the
Dockerfiles' users, the settings each service reads. The Helm values are walked against key
trees of the charts' own values.yaml (lookout_stack/validate/schemas/helm-*.yaml); the Loki and
Tempo configuration inside them is handed to the real Loki 3.7.6 and Tempo 3.0.3.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from keyschema_support import SCHEMAS_DIR, KeySchema, host_port, load_yaml

from lookout_stack.validate.checks import kubernetes as k8s
from lookout_stack.validate.checks.kubernetes import (
    BACKEND_ENV,
    CHARTS,
    KUBERNETES_VERSION,
    PINNED_TAGS,
    SERVICES,
    Service,
)
from stack_support import require_binary
from stack_support.native import NativeStack

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
MANIFESTS = KUBE / "manifests"
HELM = KUBE / "helm"
SCHEMAS = SCHEMAS_DIR
# The rules below that need no process are the package's (lookout_stack/validate/checks/
# kubernetes.py, the `kubernetes-manifests` and `helm-values` checks of `lookout validate`):
# one implementation; these tests run them on the repo and show each can fail.
# The Secrets the charts take their environment from (deploy/kubernetes/README.md).
OBJECT_STORAGE_SECRET = "lookout-object-storage"
KAFKA_SECRET = "lookout-kafka"
# Charts whose backends write through Kafka: Mimir's ingest storage, Tempo 3.0's microservices.
KAFKA_CHARTS = ["mimir-distributed", "tempo-distributed"]
# Where each of them takes the Kafka bootstrap address in its values.
KAFKA_ADDRESS_PATHS = {
    "mimir-distributed": ("mimir", "structuredConfig", "ingest_storage", "kafka", "address"),
    "tempo-distributed": ("ingest", "kafka", "address"),
}


# --- loading ------------------------------------------------------------------------------------


MANIFEST_OBJECTS = k8s.load_manifests(ROOT)
MANIFEST_DOCS = [(ROOT / m.file, m.doc) for m in MANIFEST_OBJECTS]
BUILTIN_DOCS = [(p, d) for p, d in MANIFEST_DOCS if d["kind"] != "ServiceMonitor"]
SERVICE_MONITORS = [(p, d) for p, d in MANIFEST_DOCS if d["kind"] == "ServiceMonitor"]
SERVICE_IDS = [s.name for s in SERVICES]


def _doc_id(item: tuple[Path, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"


def _objects(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in MANIFEST_DOCS if d["kind"] == kind}


def _deployment(service: Service) -> dict[str, Any]:
    return _objects("Deployment")[service.name]


def _env(service: Service) -> dict[str, dict[str, Any]]:
    return k8s.env_entries(_deployment(service))


def _dotenv() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (ROOT / ".env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    return {key: value for key, value in pairs}


def _compose_service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")["services"][name]
    return service


def _values(chart: str) -> dict[str, Any]:
    values: dict[str, Any] = load_yaml(HELM / chart / "values.yaml")
    return values


def _dig(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


# --- the manifests against the Kubernetes API and the CRD ---------------------------------------


@pytest.mark.parametrize(("path", "doc"), BUILTIN_DOCS, ids=[_doc_id(i) for i in BUILTIN_DOCS])
def test_manifest_is_valid_for_the_stated_kubernetes_version(
    path: Path, doc: dict[str, Any]
) -> None:
    """Each object validates, strictly (no unknown field), against the Kubernetes 1.33 schemas."""
    problems = k8s.kubernetes_problems(doc, KUBERNETES_VERSION)
    assert not problems, f"{path.relative_to(ROOT)}: {doc['kind']}/{doc['metadata']['name']}"


def _misspelled_field(doc: dict[str, Any]) -> None:
    doc["spec"]["replica"] = doc["spec"].pop("replicas")


def _port_as_text(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"


def _probe_without_handler(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].pop("port")


@pytest.mark.parametrize("breakage", [_misspelled_field, _port_as_text, _probe_without_handler])
def test_validator_rejects_a_broken_deployment(breakage: Any) -> None:
    """A Deployment with a misspelled field, a mistyped port or an incomplete probe is rejected."""
    broken = copy.deepcopy(_objects("Deployment")["shop"])
    breakage(broken)
    assert k8s.kubernetes_problems(broken, KUBERNETES_VERSION)


@pytest.mark.parametrize(
    ("path", "doc"), SERVICE_MONITORS, ids=[_doc_id(i) for i in SERVICE_MONITORS]
)
def test_service_monitor_matches_the_crd_schema(path: Path, doc: dict[str, Any]) -> None:
    """Each ServiceMonitor validates against the prometheus-operator CRD's schema."""
    problems = k8s.crd_problems(doc, k8s.crd_schema())
    assert not problems, f"{path.relative_to(ROOT)}: {problems}"


@pytest.mark.parametrize(
    ("field", "value"), [("interval", "15 seconds"), ("targetPortt", "http"), ("scheme", "tcp")]
)
def test_crd_schema_rejects_a_broken_service_monitor(field: str, value: str) -> None:
    """A bad duration, a misspelled endpoint field or an unknown scheme fails the CRD schema."""
    broken = copy.deepcopy(SERVICE_MONITORS[0][1])
    broken["spec"]["endpoints"][0][field] = value
    assert k8s.crd_problems(broken, k8s.crd_schema())


# --- kustomization: resources and the ConfigMaps it generates -----------------------------------


def test_kustomization_resources_copies_and_mounts_hold() -> None:
    """Resources are the manifest files, each generated file a copy, each mounted map generated."""
    problems = k8s.kustomization_problems(ROOT, MANIFEST_OBJECTS)
    assert not problems, problems
    assert set(k8s.CONFIG_COPIES) == {
        entry.split("=", 1)[-1]
        for generator in load_yaml(MANIFESTS / "kustomization.yaml")["configMapGenerator"]
        for entry in generator["files"]
    }


def test_a_stale_configmap_copy_and_an_unlisted_manifest_are_reported(tmp_path: Path) -> None:
    """A copy that drifted from its original and a manifest not in resources are both named."""
    for path in (*k8s.CONFIG_COPIES.values(), "deploy/kubernetes/manifests"):
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (ROOT / path).is_dir() else shutil.copy)(ROOT / path, target)
    copied = tmp_path / "deploy/kubernetes/manifests/config/webhook-relay/routing.yml"
    copied.write_text(copied.read_text(encoding="utf-8") + "# drift\n", encoding="utf-8")
    shutil.copy(MANIFESTS / "shop.yaml", tmp_path / "deploy/kubernetes/manifests/extra.yaml")
    found = k8s.kustomization_problems(tmp_path, k8s.load_manifests(tmp_path))
    messages = [f"{f.where}: {f.message}" for f in found]
    assert any("extra.yaml" in m and "resources" in m for m in messages), messages
    assert any("routing.yml" in m and "copy it again" in m for m in messages), messages


# --- each Deployment against compose, its Dockerfile and its settings ---------------------------


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_image_is_the_compose_image_at_the_env_version(service: Service) -> None:
    """The image is compose's repository at .env's LOOKOUT_VERSION."""
    deployment, compose = _deployment(service), _compose_service(service.compose)
    assert not k8s.image_problems(deployment, compose, _dotenv())
    assert k8s.image_problems(deployment, compose, {"LOOKOUT_VERSION": "9.9.9"})


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_ports_and_probes_match_the_service(service: Service) -> None:
    """The port is compose's; liveness is the image's HEALTHCHECK path, readiness compose's."""
    deployment, compose = _deployment(service), _compose_service(service.compose)
    dockerfile = (ROOT / service.dockerfile).read_text(encoding="utf-8")
    assert not k8s.port_problems(deployment, compose)
    assert not k8s.probe_problems(deployment, dockerfile, compose)
    assert "/health/live" in dockerfile and "/health/ready" in str(compose["healthcheck"])
    broken = copy.deepcopy(deployment)
    k8s.container(broken)["readinessProbe"]["httpGet"]["path"] = "/health/live"
    k8s.container(broken)["ports"][0]["containerPort"] += 1
    assert k8s.probe_problems(broken, dockerfile, compose)
    assert k8s.port_problems(broken, compose)


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_memory_limit_is_compose_mem_limit(service: Service) -> None:
    """The memory limit equals compose's mem_limit; requests are set and within the limits."""
    deployment, compose = _deployment(service), _compose_service(service.compose)
    assert not k8s.memory_problems(deployment, compose)
    assert k8s.memory_problems(deployment, {**compose, "mem_limit": "1g"})


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_pod_runs_as_the_dockerfile_user_read_only_without_capabilities(service: Service) -> None:
    """Non-root as the Dockerfile USER, read-only root, no privilege escalation, no capabilities."""
    dockerfile = (ROOT / service.dockerfile).read_text(encoding="utf-8")
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.M), f"{service.dockerfile}: no numeric USER"
    assert not k8s.security_problems(_deployment(service), dockerfile)
    assert k8s.security_problems(_deployment(service), "USER 0:0\n")


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_every_variable_set_is_one_the_service_reads(service: Service) -> None:
    """Each env var is a setting of the service, an OTEL_* SDK variable, or read by its own code."""
    settings = set().union(
        *(k8s.settings_variables(k8s.load_settings(s)) for s in service.settings)
    )
    readers = [(ROOT / r).read_text(encoding="utf-8") for r in service.readers]
    unread = k8s.unread_variables(_deployment(service), settings, readers)
    assert not unread, f"{service.name}: {unread}"
    broken = copy.deepcopy(_deployment(service))
    k8s.container(broken)["env"].append({"name": "SHOPP_PORT", "value": "1"})
    assert k8s.unread_variables(broken, settings, readers)


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_secrets_are_referenced_not_inlined(service: Service) -> None:
    """Every secret-looking variable comes from a secretKeyRef, never a literal value."""
    assert not k8s.secret_problems(_deployment(service))
    broken = copy.deepcopy(_deployment(service))
    k8s.container(broken)["env"].append({"name": "SENTRY_DSN", "value": "https://k@host/1"})
    assert k8s.secret_problems(broken)


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_telemetry_goes_to_the_collector_service(service: Service) -> None:
    """OTLP goes to the otel-collector Service's OTLP/HTTP port, with the service's name."""
    assert not k8s.telemetry_problems(_deployment(service), service.name)
    endpoint = _env(service)["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"]
    assert host_port(endpoint) == ("otel-collector", 4318)
    assert k8s.telemetry_problems(_deployment(service), "another-name")


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_service_pdb_and_monitor_select_the_pods(service: Service) -> None:
    """The Service, PodDisruptionBudget and ServiceMonitor all select this Deployment's pods."""
    objects = {m.id: m.doc for m in MANIFEST_OBJECTS}
    assert not k8s.selector_problems(objects, service.name)
    broken = copy.deepcopy(objects)
    broken[f"Service/{service.name}"]["spec"]["selector"] = {"app.kubernetes.io/name": "other"}
    assert k8s.selector_problems(broken, service.name)


def test_relay_runs_two_replicas_on_postgres_from_a_secret() -> None:
    """The relay runs 2 replicas sharing Postgres; its database URL comes from a Secret."""
    relay = next(s for s in SERVICES if s.name == "webhook-relay")
    assert _objects("Deployment")["webhook-relay"]["spec"]["replicas"] >= 2
    assert "secretKeyRef" in _env(relay)["RELAY_DATABASE_URL"]["valueFrom"]
    assert _objects("PodDisruptionBudget")["webhook-relay"]["spec"]["minAvailable"] >= 1


def test_monitor_history_comes_from_a_database_secret() -> None:
    """The monitor history database URL comes from a Secret (Postgres), not a SQLite file."""
    monitor = next(s for s in SERVICES if s.name == "synthetic-monitor")
    assert "secretKeyRef" in _env(monitor)["MONITOR_DATABASE_URL"]["valueFrom"]


# --- Helm: pins, key trees, credentials ---------------------------------------------------------


def test_helmfile_pins_every_chart_with_a_values_file() -> None:
    """Each release names a repo chart, an exact version and a values file that exists."""
    helmfile = load_yaml(KUBE / "helmfile.yaml")
    assert not k8s.helmfile_problems(ROOT, helmfile)
    helmfile["releases"][0]["version"] = "^6.0"
    assert [f for f, _ in k8s.helmfile_problems(ROOT, helmfile)] == ["releases[0].version"]


@pytest.mark.parametrize("chart", CHARTS)
def test_key_tree_is_for_the_pinned_chart_version(chart: str) -> None:
    """A chart's key tree names the chart version helmfile.yaml pins."""
    releases = {
        r["chart"].split("/", 1)[1]: r for r in load_yaml(KUBE / "helmfile.yaml")["releases"]
    }
    schema = KeySchema.load(SCHEMAS / f"helm-{chart}.yaml")
    assert schema.version == str(releases[chart]["version"])


@pytest.mark.parametrize("chart", CHARTS)
def test_every_value_set_is_a_key_of_the_chart(chart: str) -> None:
    """Every key the values file sets exists in the chart's values.yaml (its key tree)."""
    schema = KeySchema.load(SCHEMAS / f"helm-{chart}.yaml")
    errors = schema.check(_values(chart), f"deploy/kubernetes/helm/{chart}/values.yaml")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("chart", "path"),
    [
        ("loki", ("loki", "storage", "s3")),
        ("tempo-distributed", ("tempo", "image")),
        ("grafana", ("admin",)),
        ("mimir-distributed", ("global",)),
    ],
)
def test_key_tree_rejects_a_misspelled_key(chart: str, path: tuple[str, ...]) -> None:
    """A key the chart does not have is reported with its path and the chart's values.yaml."""
    values = copy.deepcopy(_values(chart))
    _dig(values, path)["enabledd"] = True
    errors = KeySchema.load(SCHEMAS / f"helm-{chart}.yaml").check(values, "values.yaml")
    assert any(".".join((*path, "enabledd")) in e and "values.yaml" in e for e in errors), errors


@pytest.mark.parametrize("chart", PINNED_TAGS)
def test_image_tag_is_the_version_env_pins(chart: str) -> None:
    """Loki, Tempo and Grafana run exactly the image tag .env pins for compose."""
    assert k8s.image_tag_problem(chart, _values(chart), _dotenv()) is None
    variable = PINNED_TAGS[chart][1]
    assert k8s.image_tag_problem(chart, _values(chart), {variable: "grafana/x:0.0.1"})


@pytest.mark.parametrize("chart", CHARTS)
def test_values_carry_no_credentials(chart: str) -> None:
    """Credential keys hold ${ENV} references (from a Secret) or Secret key names, never secrets."""
    leaked = k8s.leaked_credentials(_values(chart))
    assert not leaked, f"{chart}: take {leaked} from a Secret"


def test_a_literal_credential_in_values_is_reported_without_its_value() -> None:
    """A literal secret under a credential key is named by its path; the value is not shown."""
    values = {"loki": {"storage": {"s3": {"secretAccessKey": "hunter2", "accessKeyId": "${K}"}}}}
    leaked = k8s.leaked_credentials(values)
    assert [path for path, _ in leaked] == ["loki.storage.s3.secretAccessKey"]
    assert "hunter2" not in str(leaked)


def _env_secrets(chart: str) -> list[str]:
    return [e["secretRef"]["name"] for e in _values(chart)["global"]["extraEnvFrom"]]


def test_credentials_come_from_the_object_storage_secret() -> None:
    """Every chart that expands ${S3_...} gets them from the lookout-object-storage Secret."""
    for chart in ("mimir-distributed", "loki", "tempo-distributed"):
        assert "${S3_SECRET_ACCESS_KEY}" in yaml.safe_dump(_values(chart))
        assert OBJECT_STORAGE_SECRET in _env_secrets(chart), chart
    assert _env_secrets("loki") == [OBJECT_STORAGE_SECRET]


@pytest.mark.parametrize("chart", KAFKA_CHARTS)
def test_kafka_address_comes_from_the_kafka_secret(chart: str) -> None:
    """Mimir and Tempo take the Kafka address as ${KAFKA_ADDRESS} from the lookout-kafka Secret."""
    assert str(_dig(_values(chart), KAFKA_ADDRESS_PATHS[chart])) == "${KAFKA_ADDRESS}"
    assert _env_secrets(chart) == [OBJECT_STORAGE_SECRET, KAFKA_SECRET]


def test_mimir_demo_kafka_is_off() -> None:
    """The Mimir chart's single-broker demo Kafka is not deployed: Mimir uses the external one."""
    assert _values("mimir-distributed")["kafka"]["enabled"] is False


def test_mimir_accepts_requests_without_a_tenant_header() -> None:
    """Mimir's multitenancy is off, since no client (Grafana's data source included) sends one."""
    structured = _values("mimir-distributed")["mimir"]["structuredConfig"]
    assert structured["multitenancy_enabled"] is False
    mimir = next(d for d in _grafana_datasources()["datasources"] if d["uid"] == "prometheus")
    assert "httpHeaderName1" not in mimir.get("jsonData", {})


def test_tempo_partitions_match_block_builders_and_live_stores() -> None:
    """Tempo's topic gets one partition per block-builder and per live-store replica."""
    values = _values("tempo-distributed")
    partitions = values["ingest"]["kafka"]["auto_create_topic_default_partitions"]
    assert values["blockBuilder"]["replicas"] == partitions
    assert values["liveStore"]["replicas"] == partitions


def test_tempo_distributor_receives_the_collector_otlp_grpc() -> None:
    """The distributor's OTLP gRPC receiver is on, on the port the collector exports to."""
    otlp_grpc = _values("tempo-distributed")["traces"]["otlp"]["grpc"]
    assert otlp_grpc["enabled"] is True
    collector = load_yaml(ROOT / "otel-collector" / "config.yaml")
    endpoint = collector["exporters"]["otlp_grpc/tempo"]["endpoint"]
    # The chart's config template binds the receiver to 0.0.0.0:4317 (receiverConfig unset).
    assert "receiverConfig" not in otlp_grpc
    assert host_port(endpoint)[1] == 4317


def test_tempo_expand_env_flag_reaches_only_the_tempo_pods() -> None:
    """-config.expand-env=true is in defaults.extraArgs (Tempo pods), not global (memcached too)."""
    values = _values("tempo-distributed")
    assert values["defaults"]["extraArgs"] == ["-config.expand-env=true"]
    assert "extraArgs" not in values["global"]


@pytest.mark.parametrize("chart", CHARTS)
def test_key_tree_source_is_the_pinned_major_version(chart: str) -> None:
    """A key tree transcribed from another chart version is at least of the pinned major."""
    schema = KeySchema.load(SCHEMAS / f"helm-{chart}.yaml")
    source = schema.data["source"]
    transcribed = str(source.get("chart_version", schema.version))
    assert transcribed.split(".", 1)[0] == schema.version.split(".", 1)[0], (
        f"{schema.path.name}: transcribed from {transcribed}, pinned {schema.version}"
    )


# --- Grafana: the same data sources and dashboards as compose -----------------------------------


def _grafana_datasources() -> dict[str, Any]:
    provisioned: dict[str, Any] = _values("grafana")["datasources"]["datasources.yaml"]
    return provisioned


def test_grafana_datasources_equal_compose_but_for_urls() -> None:
    """Same names, types, uids and settings as compose's datasources.yaml; only the URLs differ."""
    compose = load_yaml(ROOT / "grafana/provisioning/datasources/datasources.yaml")
    ours = _grafana_datasources()

    def without_urls(doc: dict[str, Any]) -> dict[str, Any]:
        stripped = copy.deepcopy(doc)
        for datasource in stripped["datasources"]:
            datasource.pop("url")
        return stripped

    assert without_urls(ours) == without_urls(compose)
    assert {d["uid"] for d in ours["datasources"]} == {
        "prometheus",
        "loki",
        "tempo",
        "alertmanager",
    }


def test_grafana_datasources_match_grafana_key_schema() -> None:
    """The data source file in the values passes the Grafana 13.2 provisioning key schema."""
    schema = KeySchema.load(SCHEMAS / "grafana-13.2.yaml")
    errors = schema.check(_grafana_datasources(), "helm/grafana/values.yaml datasources")
    assert not errors, "\n".join(errors)


def test_grafana_dashboards_provider_reads_the_dashboards_configmap() -> None:
    """The provider is compose's, reading the folder where the chart mounts the ConfigMap."""
    values = _values("grafana")
    (provider,) = values["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    (compose,) = load_yaml(ROOT / "grafana/provisioning/dashboards/dashboards.yaml")["providers"]
    assert {k: v for k, v in provider.items() if k != "options"} == {
        k: v for k, v in compose.items() if k != "options"
    }
    assert provider["options"]["path"] == f"/var/lib/grafana/dashboards/{provider['name']}"
    assert values["dashboardsConfigMaps"] == {provider["name"]: "lookout-dashboards"}


def test_grafana_dashboards_fit_in_one_configmap() -> None:
    """grafana/dashboards/*.json stay under the 1 MiB a ConfigMap may hold."""
    size = sum(p.stat().st_size for p in (ROOT / "grafana" / "dashboards").glob("*.json"))
    assert size < 1024 * 1024 * 0.9, f"{size} bytes: split the dashboards over two ConfigMaps"


# --- the Loki and Tempo configuration in the values, by the real binaries -----------------------


def _native_config(name: str, workdir: Path) -> dict[str, Any]:
    """Return the native test stack's config for a backend (the compose config, made native)."""
    require_binary(name)  # skip (fail under CI=true) before rendering when it is missing
    service = NativeStack(workdir, [name]).render(name)
    path = next(a.split("=", 1)[1] for a in service.argv if a.startswith("-config.file="))
    config: dict[str, Any] = load_yaml(Path(path))
    return config


def _verify(name: str, config: dict[str, Any], workdir: Path, *flags: str) -> str:
    """Run the real backend's config check on ``config``; return the output if it fails."""
    path = workdir / f"{name}-kubernetes.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [str(require_binary(name)), f"-config.file={path}", "-config.expand-env=true", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **BACKEND_ENV},
    )
    return "" if result.returncode == 0 else (result.stdout + result.stderr)[-2000:]


def _loki_with_values(workdir: Path) -> dict[str, Any]:
    """Loki's native config with the values' schema, limits and S3 storage put in."""
    return k8s.loki_with_values(_native_config("loki", workdir), _values("loki"))


def _tempo_with_values(workdir: Path) -> dict[str, Any]:
    """Tempo's native config with the values' storage, ingest block and overrides merged in."""
    return k8s.tempo_with_values(_native_config("tempo", workdir), _values("tempo-distributed"))


@pytest.mark.integration
def test_real_loki_accepts_the_values_schema_limits_and_storage(tmp_path: Path) -> None:
    """Loki 3.7.6 `-verify-config` accepts the schema, limits and S3 storage from the values."""
    failure = _verify("loki", _loki_with_values(tmp_path), tmp_path, "-verify-config")
    assert not failure, failure


@pytest.mark.integration
def test_real_tempo_accepts_the_values_structured_config(tmp_path: Path) -> None:
    """Tempo 3.0.3 `-config.verify` accepts the values' S3 storage, Kafka ingest and overrides."""
    failure = _verify("tempo", _tempo_with_values(tmp_path), tmp_path, "-config.verify=true")
    assert not failure, failure


@pytest.mark.integration
def test_real_tempo_rejects_a_misspelled_ingest_key(tmp_path: Path) -> None:
    """The ingest check can fail: a misspelled Kafka key in the rendered ingest block is refused."""
    config = _tempo_with_values(tmp_path)
    kafka = config["ingest"]["kafka"]
    kafka["topik"] = kafka.pop("topic")
    assert _verify("tempo", config, tmp_path, "-config.verify=true")


@pytest.mark.integration
def test_real_tempo_rejects_a_misspelled_storage_key(tmp_path: Path) -> None:
    """The Tempo check can fail: a misspelled S3 key in the structuredConfig is refused."""
    config = _tempo_with_values(tmp_path)
    config["storage"]["trace"]["s3"]["bukket"] = config["storage"]["trace"]["s3"].pop("bucket")
    assert _verify("tempo", config, tmp_path, "-config.verify=true")
