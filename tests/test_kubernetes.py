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
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from keyschema_support import COMPOSE_SERVICE_PORTS, SCHEMAS_DIR, KeySchema, host_port, load_yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from lookout_demo.settings import CommonSettings, PaymentsSettings, ShopSettings
from lookout_demo.storefront.settings import StorefrontSettings
from stack_support import require_binary
from stack_support.native import NativeStack
from synthetic_monitor.settings import MonitorSettings
from webhook_relay.settings import Settings as RelaySettings

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
MANIFESTS = KUBE / "manifests"
HELM = KUBE / "helm"
SCHEMAS = SCHEMAS_DIR
# The Kubernetes version the manifests are written for: the oldest minor the Mimir chart 6.0
# supports is 1.29; 1.33 is the oldest release still in upstream support when this was written.
KUBERNETES_VERSION = "1.33.0"
# Fake object-storage credentials and Kafka address for the real Loki and Tempo to expand
# (never contacted: the config checks do not dial out).
BACKEND_ENV = {
    "S3_ENDPOINT": "minio.lookout.svc:9000",
    "S3_ACCESS_KEY_ID": "test-access-key",
    "S3_SECRET_ACCESS_KEY": "test-secret-key",
    "KAFKA_ADDRESS": "kafka.lookout.svc:9092",
}
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
# tempo-distributed 3.0.7's defaults for the `ingest.kafka` keys its config template renders
# (charts/tempo-distributed/values.yaml at f2a262d8;
# lookout_stack/validate/schemas/helm-tempo-distributed.yaml).
TEMPO_CHART_INGEST_DEFAULTS = {
    "topic": "tempo-traces",
    "auto_create_topic_enabled": True,
    "auto_create_topic_default_partitions": 3,
}
# OpenTelemetry SDK environment variables the services may be given: the spec's general and
# OTLP exporter ones (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/,
# https://opentelemetry.io/docs/specs/otel/protocol/exporter/).
OTEL_VARIABLES = {
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_TRACES_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
}
# Environment variable names that hold a secret: never a literal value in a manifest.
SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|SECRET|DSN|DATABASE_URL)$")
# Helm value keys that hold a credential: only ${ENV} references, never the credential.
CREDENTIAL_KEY = re.compile(r"(?i)(secret|password|access_?key)")
ENV_REFERENCE = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*\}$")


@dataclass(frozen=True)
class Service:
    """One of our services: its manifest, compose service, Dockerfile and settings."""

    name: str
    compose: str
    dockerfile: str
    settings: tuple[type[BaseSettings], ...]
    # Files that read further variables themselves (a CLI's os.environ, a journey's ${VAR}).
    readers: tuple[str, ...] = ()


SERVICES = [
    Service(
        "shop",
        "shop",
        "demo-app/Dockerfile",
        (CommonSettings, ShopSettings, StorefrontSettings),
        ("demo-app/src/lookout_demo/cli.py",),
    ),
    Service(
        "payments",
        "payments",
        "demo-app/Dockerfile",
        (CommonSettings, PaymentsSettings),
        ("demo-app/src/lookout_demo/cli.py",),
    ),
    Service(
        "webhook-relay", "webhook-relay", "services/webhook-relay/Dockerfile", (RelaySettings,)
    ),
    Service(
        "synthetic-monitor",
        "synthetic-monitor",
        "services/synthetic-monitor/Dockerfile",
        (MonitorSettings,),
        ("services/synthetic-monitor/journeys/shop.yml",),
    ),
]
SERVICE_IDS = [s.name for s in SERVICES]
# configMapGenerator copies (kustomize reads no file outside its folder) -> their originals.
CONFIG_COPIES = {
    "config/webhook-relay/routing.yml": "services/webhook-relay/routing.compose.yml",
    "config/synthetic-monitor/journeys/shop.yml": "services/synthetic-monitor/journeys/shop.yml",
}
# Helm values files -> their key tree (lookout_stack/validate/schemas/helm-<chart>.yaml).
CHARTS = ["mimir-distributed", "loki", "tempo-distributed", "grafana"]
# Image tags the values pin -> the .env variable that pins the same image for compose.
PINNED_TAGS = {
    "loki": (("loki", "image", "tag"), "LOKI_IMAGE"),
    "tempo-distributed": (("tempo", "image", "tag"), "TEMPO_IMAGE"),
    "grafana": (("image", "tag"), "GRAFANA_IMAGE"),
}


# --- loading ------------------------------------------------------------------------------------


def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def _manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


MANIFEST_DOCS = [(path, doc) for path in _manifest_files() for doc in _documents(path)]
BUILTIN_DOCS = [(p, d) for p, d in MANIFEST_DOCS if d["kind"] != "ServiceMonitor"]
SERVICE_MONITORS = [(p, d) for p, d in MANIFEST_DOCS if d["kind"] == "ServiceMonitor"]


def _doc_id(item: tuple[Path, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"


def _objects(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in MANIFEST_DOCS if d["kind"] == kind}


def _container(service: Service) -> dict[str, Any]:
    container: dict[str, Any] = _objects("Deployment")[service.name]["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def _env(service: Service) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container(service).get("env", [])}


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


def _settings_variables(settings: type[BaseSettings]) -> set[str]:
    """Return every environment variable a pydantic-settings class reads (prefix + aliases)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, info in settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def _read_by(service: Service, variable: str) -> bool:
    """Whether one of the service's own files reads the variable itself.

    A CLI reads "NAME" from os.environ; a journey file expands ${NAME} or takes a secret as
    {env: NAME} (services/synthetic-monitor/README.md).
    """
    pattern = re.compile(rf'"{variable}"|\$\{{{variable}\b|\{{env: *{variable}\}}')
    return any(pattern.search((ROOT / r).read_text(encoding="utf-8")) for r in service.readers)


# --- the manifests against the Kubernetes API and the CRD ---------------------------------------


@pytest.mark.parametrize(("path", "doc"), BUILTIN_DOCS, ids=[_doc_id(i) for i in BUILTIN_DOCS])
def test_manifest_is_valid_for_the_stated_kubernetes_version(
    path: Path, doc: dict[str, Any]
) -> None:
    """Each object validates, strictly (no unknown field), against the Kubernetes 1.33 schemas."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{path.relative_to(ROOT)}: {doc['kind']}/{doc['metadata']['name']}: {exc}")


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
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def _crd_schema() -> dict[str, Any]:
    schema: dict[str, Any] = load_yaml(SCHEMAS / "k8s-servicemonitor-crd.yaml")["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    ("path", "doc"), SERVICE_MONITORS, ids=[_doc_id(i) for i in SERVICE_MONITORS]
)
def test_service_monitor_matches_the_crd_schema(path: Path, doc: dict[str, Any]) -> None:
    """Each ServiceMonitor validates against the prometheus-operator CRD's schema."""
    errors = sorted(jsonschema.Draft7Validator(_crd_schema()).iter_errors(doc), key=str)
    assert not errors, f"{path.relative_to(ROOT)}: " + "; ".join(
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


@pytest.mark.parametrize(
    ("field", "value"), [("interval", "15 seconds"), ("targetPortt", "http"), ("scheme", "tcp")]
)
def test_crd_schema_rejects_a_broken_service_monitor(field: str, value: str) -> None:
    """A bad duration, a misspelled endpoint field or an unknown scheme fails the CRD schema."""
    broken = copy.deepcopy(SERVICE_MONITORS[0][1])
    broken["spec"]["endpoints"][0][field] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _crd_schema())


# --- kustomization: resources and the ConfigMaps it generates -----------------------------------


def test_kustomization_lists_every_manifest() -> None:
    """kustomization.yaml's resources are exactly the manifest files in its folder."""
    kustomization = load_yaml(MANIFESTS / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [p.name for p in _manifest_files()]


@pytest.mark.parametrize(("copy_path", "original"), CONFIG_COPIES.items())
def test_configmap_file_equals_the_repo_file(copy_path: str, original: str) -> None:
    """A config file copied for the configMapGenerator is byte for byte the repo's original."""
    copied = (MANIFESTS / copy_path).read_bytes()
    assert copied == (ROOT / original).read_bytes(), (
        f"deploy/kubernetes/manifests/{copy_path} differs from {original}: copy it again"
    )


def test_every_generated_configmap_file_is_a_checked_copy() -> None:
    """Every file the configMapGenerator reads is in the drift check above."""
    kustomization = load_yaml(MANIFESTS / "kustomization.yaml")
    sources = {
        entry.split("=", 1)[-1]
        for generator in kustomization["configMapGenerator"]
        for entry in generator["files"]
    }
    assert sources == set(CONFIG_COPIES)


def test_deployments_mount_only_generated_configmaps() -> None:
    """Every ConfigMap a Deployment mounts is one kustomization.yaml generates."""
    generated = {
        g["name"] for g in load_yaml(MANIFESTS / "kustomization.yaml")["configMapGenerator"]
    }
    for name, deployment in _objects("Deployment").items():
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in generated, f"{name}: {volume['name']}"


# --- each Deployment against compose, its Dockerfile and its settings ---------------------------


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_image_is_the_compose_image_at_the_env_version(service: Service) -> None:
    """The image is compose's repository at .env's LOOKOUT_VERSION."""
    repository = _compose_service(service.compose)["image"].split(":", 1)[0]
    assert _container(service)["image"] == f"{repository}:{_dotenv()['LOOKOUT_VERSION']}"


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_ports_and_probes_match_the_service(service: Service) -> None:
    """The port is compose's; liveness is the image's HEALTHCHECK path, readiness compose's."""
    container = _container(service)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == COMPOSE_SERVICE_PORTS[service.compose]
    port_variables = [v for n, v in _env(service).items() if n.endswith("_PORT")]
    assert [int(v["value"]) for v in port_variables] == [ports["http"]]
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    # Liveness is the image's own HEALTHCHECK path, readiness compose's healthcheck path.
    image_check = re.search(
        r"^HEALTHCHECK .*?(/health/\w+)", (ROOT / service.dockerfile).read_text(), re.S | re.M
    )
    compose_check = re.search(r"/health/\w+", str(_compose_service(service.compose)["healthcheck"]))
    assert image_check and compose_check, f"{service.name}: no health path in Dockerfile or compose"
    assert probes["startupProbe"]["path"] == image_check.group(1) == "/health/live"
    assert probes["livenessProbe"]["path"] == image_check.group(1)
    assert probes["readinessProbe"]["path"] == compose_check.group(0) == "/health/ready"
    assert {p["port"] for p in probes.values()} == {"http"}


def _mebibytes(limit: str) -> int:
    """Docker's mem_limit (`384m`) or a Kubernetes quantity (`384Mi`, `1Gi`) in MiB."""
    match = re.fullmatch(r"(\d+)(m|g|Mi|Gi)", limit)
    assert match, f"unexpected memory quantity {limit!r}"
    number, unit = int(match.group(1)), match.group(2)
    return number * 1024 if unit in {"g", "Gi"} else number


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_memory_limit_is_compose_mem_limit(service: Service) -> None:
    """The memory limit equals compose's mem_limit; requests are set and within the limits."""
    resources = _container(service)["resources"]
    limit = _mebibytes(resources["limits"]["memory"])
    assert limit == _mebibytes(_compose_service(service.compose)["mem_limit"])
    assert _mebibytes(resources["requests"]["memory"]) <= limit
    assert "cpu" in resources["requests"]
    assert "cpu" in resources["limits"]


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_pod_runs_as_the_dockerfile_user_read_only_without_capabilities(service: Service) -> None:
    """Non-root as the Dockerfile USER, read-only root, no privilege escalation, no capabilities."""
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / service.dockerfile).read_text(), re.M)
    assert user, f"{service.dockerfile}: no numeric USER"
    pod = _objects("Deployment")[service.name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        int(user.group(1)),
        int(user.group(2)),
    )
    context = _container(service)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_every_variable_set_is_one_the_service_reads(service: Service) -> None:
    """Each env var is a setting of the service, an OTEL_* SDK variable, or read by its own code."""
    settings = set().union(*(_settings_variables(s) for s in service.settings))
    unread = [
        name
        for name in _env(service)
        if name not in settings and name not in OTEL_VARIABLES and not _read_by(service, name)
    ]
    assert not unread, f"{service.name}: nothing in the service reads {unread}"


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_secrets_are_referenced_not_inlined(service: Service) -> None:
    """Every secret-looking variable comes from a secretKeyRef, never a literal value."""
    inlined = [n for n, e in _env(service).items() if SECRET_NAME.search(n) and "value" in e]
    assert not inlined, f"{service.name}: take {inlined} from a Secret (valueFrom.secretKeyRef)"


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_telemetry_goes_to_the_collector_service(service: Service) -> None:
    """OTLP goes to the otel-collector Service's OTLP/HTTP port, with the service's name."""
    env = _env(service)
    assert host_port(env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"]) == ("otel-collector", 4318)
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"]["value"] == service.name


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_service_pdb_and_monitor_select_the_pods(service: Service) -> None:
    """The Service, PodDisruptionBudget and ServiceMonitor all select this Deployment's pods."""
    deployment = _objects("Deployment")[service.name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    svc = _objects("Service")[service.name]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    pdb = _objects("PodDisruptionBudget")[service.name]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    monitor = _objects("ServiceMonitor")[service.name]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    service_ports = {p["name"] for p in svc["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports


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
    repositories = {r["name"] for r in helmfile["repositories"]}
    charts = []
    for release in helmfile["releases"]:
        repo, _, chart = release["chart"].partition("/")
        assert repo in repositories, f"{release['name']}: unknown repository {repo}"
        assert re.fullmatch(r"\d+\.\d+\.\d+", str(release["version"])), release["name"]
        assert [(KUBE / v).is_file() for v in release["values"]] == [True]
        assert release["values"] == [f"helm/{chart}/values.yaml"]
        charts.append(chart)
    assert sorted(charts) == sorted(CHARTS)


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
    path, variable = PINNED_TAGS[chart]
    assert str(_dig(_values(chart), path)) == _dotenv()[variable].rpartition(":")[2]


def _credential_values(data: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if CREDENTIAL_KEY.search(str(key)) and not isinstance(value, (dict, list)):
                found.append((child, value))
            found.extend(_credential_values(value, child))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found.extend(_credential_values(item, f"{path}[{index}]"))
    return found


@pytest.mark.parametrize("chart", CHARTS)
def test_values_carry_no_credentials(chart: str) -> None:
    """Credential keys hold ${ENV} references (from a Secret) or Secret key names, never secrets."""
    # Names of a Secret and of its key: where the credential is, not the credential.
    allowed_names = {"admin.existingSecret", "admin.passwordKey"}
    leaked = [
        path
        for path, value in _credential_values(_values(chart))
        if path not in allowed_names and not ENV_REFERENCE.match(str(value))
    ]
    assert not leaked, f"{chart}: take {leaked} from a Secret"


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
    loki = _values("loki")["loki"]
    config = _native_config("loki", workdir)
    config["schema_config"] = loki["schemaConfig"]
    config["limits_config"].update(loki["limits_config"])
    s3 = loki["storage"]["s3"]
    # What the chart's `loki.commonStorageConfig` helper (templates/_helpers.tpl) renders for
    # `storage.type: s3`: Loki's own s3 field names, bucketnames from bucketNames.chunks.
    config["common"]["storage"] = {
        "s3": {
            "endpoint": s3["endpoint"],
            "access_key_id": s3["accessKeyId"],
            "secret_access_key": s3["secretAccessKey"],
            "s3forcepathstyle": s3["s3ForcePathStyle"],
            "insecure": s3["insecure"],
            "bucketnames": loki["storage"]["bucketNames"]["chunks"],
        }
    }
    return config


def _tempo_ingest_block(values: dict[str, Any]) -> dict[str, Any]:
    """The `ingest:` block the chart's config template renders from `ingest.kafka` (no SASL/TLS)."""
    kafka = {**TEMPO_CHART_INGEST_DEFAULTS, **values["ingest"]["kafka"]}
    keys = ("address", *TEMPO_CHART_INGEST_DEFAULTS)
    return {"kafka": {key: kafka[key] for key in keys}}


def _tempo_with_values(workdir: Path) -> dict[str, Any]:
    """Tempo's native config with the values' storage, ingest block and overrides merged in."""
    values = _values("tempo-distributed")
    structured = values["tempo"]["structuredConfig"]
    config = _native_config("tempo", workdir)
    config["storage"]["trace"].update(structured["storage"]["trace"])
    config["storage"]["trace"].pop("local", None)
    config["ingest"] = _tempo_ingest_block(values)
    config["overrides"] = {"defaults": values["overrides"]["defaults"]}
    return config


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
