"""deploy/kubernetes/: our services' manifests and the Grafana Helm charts' values, no cluster.

``kubernetes-manifests``: every object validated strictly (an unknown field fails) against the
Kubernetes OpenAPI schemas of :data:`KUBERNETES_VERSION` (kubernetes-validate), each
ServiceMonitor against the prometheus-operator CRD's schema, then cross-checked with what it
describes: compose's images, ports and memory limits, the Dockerfiles' users and HEALTHCHECK,
the variables each service's settings read, and the configMapGenerator's copies of repo files.

``helm-values``: helmfile.yaml pins each chart, every key a values file sets is a key of the
pinned chart (lookout_stack/validate/schemas/helm-<chart>.yaml), image tags are .env's, no
credential is written literally, and the Loki and Tempo configuration inside the values is
handed to the real Loki 3.7.6 and Tempo 3.0.3 (merged into loki/loki.yaml and tempo/tempo.yaml
as the charts render it).

The functions are shared with tests/test_kubernetes.py: one implementation of each rule.
"""

from __future__ import annotations

import importlib
import re
import tempfile
from collections.abc import Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dependencies
import kubernetes_validate  # type: ignore[import-untyped]  # no py.typed marker
import yaml
from pydantic import AliasChoices

from lookout_stack.validate.checks.key_schemas import key_findings
from lookout_stack.validate.checks.stack_wiring import container_ports
from lookout_stack.validate.dotenv import ENV_FILE, read_env_file
from lookout_stack.validate.keyschema import SCHEMAS_DIR, KeySchema
from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import (
    ToolMissing,
    backend_binary,
    checkouts,
    findings_from,
    run,
)
from lookout_stack.validate.tree import (
    BadFile,
    absent,
    field_findings,
    node_line,
    outcome,
    read_yaml,
    skipped,
)

__all__ = [
    "BACKEND_ENV",
    "CHARTS",
    "CONFIG_COPIES",
    "HELM",
    "KUBERNETES_VERSION",
    "MANIFESTS",
    "OTEL_VARIABLES",
    "PINNED_TAGS",
    "SERVICES",
    "HelmValues",
    "KubernetesManifests",
    "Manifest",
    "Service",
    "container",
    "crd_problems",
    "crd_schema",
    "credential_values",
    "env_entries",
    "helmfile_problems",
    "image_problems",
    "image_tag_problem",
    "kubernetes_problems",
    "kustomization_problems",
    "leaked_credentials",
    "load_manifests",
    "loki_with_values",
    "mebibytes",
    "memory_problems",
    "port_problems",
    "probe_problems",
    "read_by",
    "secret_problems",
    "security_problems",
    "selector_problems",
    "settings_variables",
    "telemetry_problems",
    "tempo_with_values",
    "unread_variables",
]

KUBE = "deploy/kubernetes"
MANIFESTS = f"{KUBE}/manifests"
HELM = f"{KUBE}/helm"
HELMFILE = f"{KUBE}/helmfile.yaml"
KUSTOMIZATION = f"{MANIFESTS}/kustomization.yaml"
# The Kubernetes version the manifests are written for: the oldest minor the Mimir chart 6.0
# supports is 1.29; 1.33 is the oldest release still in upstream support when this was written.
KUBERNETES_VERSION = "1.33.0"
CRD_SCHEMA = "k8s-servicemonitor-crd.yaml"
# OpenTelemetry SDK environment variables the services may be given: the spec's general and
# OTLP exporter ones (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/,
# https://opentelemetry.io/docs/specs/otel/protocol/exporter/).
OTEL_VARIABLES = frozenset(
    {
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
)
# Environment variable names that hold a secret: never a literal value in a manifest.
SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|SECRET|DSN|DATABASE_URL)$")
# Helm value keys that hold a credential: only ${ENV} references, never the credential.
CREDENTIAL_KEY = re.compile(r"(?i)(secret|password|access_?key)")
HELM_ENV_REFERENCE = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*\}$")
#: Credential-named keys that hold where the credential is (a Secret and its key), not it.
CREDENTIAL_LOCATIONS = frozenset({"admin.existingSecret", "admin.passwordKey"})
#: Fake object-storage credentials and Kafka address for the real Loki and Tempo to expand
#: (never contacted: the config checks do not dial out).
BACKEND_ENV = {
    "S3_ENDPOINT": "minio.lookout.svc:9000",
    "S3_ACCESS_KEY_ID": "test-access-key",
    "S3_SECRET_ACCESS_KEY": "test-secret-key",
    "KAFKA_ADDRESS": "kafka.lookout.svc:9092",
}


@dataclass(frozen=True)
class Service:
    """One of our services: its manifest, compose service, Dockerfile and settings."""

    name: str
    compose: str
    dockerfile: str
    #: ``module:Class`` of each pydantic-settings class whose variables the service reads.
    settings: tuple[str, ...]
    # Files that read further variables themselves (a CLI's os.environ, a journey's ${VAR}).
    readers: tuple[str, ...] = ()


SERVICES = (
    Service(
        "shop",
        "shop",
        "demo-app/Dockerfile",
        (
            "lookout_demo.settings:CommonSettings",
            "lookout_demo.settings:ShopSettings",
            "lookout_demo.storefront.settings:StorefrontSettings",
        ),
        ("demo-app/src/lookout_demo/cli.py",),
    ),
    Service(
        "payments",
        "payments",
        "demo-app/Dockerfile",
        ("lookout_demo.settings:CommonSettings", "lookout_demo.settings:PaymentsSettings"),
        ("demo-app/src/lookout_demo/cli.py",),
    ),
    Service(
        "webhook-relay",
        "webhook-relay",
        "services/webhook-relay/Dockerfile",
        ("webhook_relay.settings:Settings",),
    ),
    Service(
        "synthetic-monitor",
        "synthetic-monitor",
        "services/synthetic-monitor/Dockerfile",
        ("synthetic_monitor.settings:MonitorSettings",),
        ("services/synthetic-monitor/journeys/shop.yml",),
    ),
)
# configMapGenerator copies (kustomize reads no file outside its folder) -> their originals.
CONFIG_COPIES = {
    "config/webhook-relay/routing.yml": "services/webhook-relay/routing.compose.yml",
    "config/synthetic-monitor/journeys/shop.yml": "services/synthetic-monitor/journeys/shop.yml",
}
# Helm values files -> their key tree (lookout_stack/validate/schemas/helm-<chart>.yaml).
CHARTS = ("mimir-distributed", "loki", "tempo-distributed", "grafana")
# Image tags the values pin -> the .env variable that pins the same image for compose.
PINNED_TAGS = {
    "loki": (("loki", "image", "tag"), "LOKI_IMAGE"),
    "tempo-distributed": (("tempo", "image", "tag"), "TEMPO_IMAGE"),
    "grafana": (("image", "tag"), "GRAFANA_IMAGE"),
}
# tempo-distributed 3.0.7's defaults for the `ingest.kafka` keys its config template renders
# (charts/tempo-distributed/values.yaml at f2a262d8; schemas/helm-tempo-distributed.yaml).
TEMPO_CHART_INGEST_DEFAULTS = {
    "topic": "tempo-traces",
    "auto_create_topic_enabled": True,
    "auto_create_topic_default_partitions": 3,
}

Problem = tuple[str, str]


# --- the manifests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """One object of a manifest file, with its YAML node for line numbers."""

    file: str
    doc: dict[str, Any]
    node: yaml.Node

    @property
    def id(self) -> str:
        """``Kind/name``, as kubectl names an object."""
        return f"{self.doc.get('kind')}/{(self.doc.get('metadata') or {}).get('name')}"

    def finding(self, field: str, message: str) -> Finding:
        """Return a finding at ``field`` (``spec.replicas``) of this object, at its line."""
        line = node_line(self.node, f"$.{field}" if field else "$")
        where = f"{self.file}:{line}" if line else self.file
        return Finding(f"{where}: {self.id}" + (f" {field}" if field else ""), message)


def manifest_files(root: Path) -> list[Path]:
    """Return the manifest files kustomization.yaml may list (every *.yaml but itself)."""
    folder = root / MANIFESTS
    return sorted(p for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")


def load_manifests(root: Path) -> list[Manifest]:
    """Return every object of every manifest file (empty documents skipped)."""
    found = []
    for path in manifest_files(root):
        text = path.read_text(encoding="utf-8")
        try:
            nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
            docs = list(yaml.safe_load_all(text))
        except yaml.MarkedYAMLError as error:
            line = error.problem_mark.line + 1 if error.problem_mark else None
            raise BadFile(path, line, f"not valid YAML: {error.problem}") from error
        file = f"{MANIFESTS}/{path.name}"
        for doc, node in zip(docs, nodes, strict=True):
            if not doc:
                continue
            if not isinstance(doc, dict):
                raise BadFile(path, node.start_mark.line + 1, "a document is not a mapping")
            found.append(Manifest(file, doc, node))
    return found


def _field(path: Iterable[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def kubernetes_problems(doc: Mapping[str, Any], version: str = KUBERNETES_VERSION) -> list[Problem]:
    """Return the schema error of one object for ``version``, strict (unknown fields fail)."""
    try:
        kubernetes_validate.validate(dict(doc), version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [(_field(error.absolute_path), error.message)]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
        return [("apiVersion", f"no Kubernetes {version} schema for it: {e}")]
    return []


def crd_schema() -> dict[str, Any]:
    """Return the prometheus-operator ServiceMonitor CRD's openAPIV3Schema."""
    schema: dict[str, Any] = read_yaml(SCHEMAS_DIR / CRD_SCHEMA)["openAPIV3Schema"]
    return schema


def crd_problems(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> list[Problem]:
    """Return each error of a ServiceMonitor against the CRD's schema."""
    errors = jsonschema.Draft7Validator(schema).iter_errors(doc)
    return [(_field(e.absolute_path), e.message) for e in sorted(errors, key=str)]


def kustomization_problems(root: Path, manifests: list[Manifest]) -> list[Finding]:
    """Resources list every manifest; each generated file is a byte-equal copy; mounts exist."""
    kustomization = read_yaml(root / KUSTOMIZATION)
    findings = []
    listed, present = kustomization.get("resources") or [], [p.name for p in manifest_files(root)]
    if sorted(listed) != present:
        message = f"resources {sorted(listed)} are not the manifest files {present}"
        findings.append(Finding(f"{KUSTOMIZATION}: resources", message))
    generators = kustomization.get("configMapGenerator") or []
    sources = {e.split("=", 1)[-1] for g in generators for e in g.get("files") or []}
    findings += [
        Finding(f"{KUSTOMIZATION}: configMapGenerator", f"{s} is no checked copy of a repo file")
        for s in sorted(sources - set(CONFIG_COPIES))
    ]
    for copy, original in CONFIG_COPIES.items():
        copied, source = root / MANIFESTS / copy, root / original
        if not copied.is_file() or not source.is_file():
            missing = copied if not copied.is_file() else source
            findings.append(Finding(f"{MANIFESTS}/{copy}", f"{missing.name} is missing"))
        elif copied.read_bytes() != source.read_bytes():
            findings.append(
                Finding(f"{MANIFESTS}/{copy}", f"differs from {original}: copy it again")
            )
    generated = {g.get("name") for g in generators}
    for manifest in manifests:
        if manifest.doc.get("kind") != "Deployment":
            continue
        pod = ((manifest.doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        volumes = pod.get("volumes") or []
        for index, volume in enumerate(volumes):
            name = (volume.get("configMap") or {}).get("name")
            if name is not None and name not in generated:
                field = f"spec.template.spec.volumes[{index}]"
                findings.append(manifest.finding(field, f"ConfigMap {name} is not generated"))
    return findings


# --- each Deployment against compose, its Dockerfile and its settings ---------------------------

CONTAINER = "spec.template.spec.containers[0]"


def container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """Return the Deployment's (first, only) container."""
    found: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def env_entries(deployment: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the container's env entries by name."""
    return {e["name"]: e for e in container(deployment).get("env") or []}


def image_problems(
    deployment: Mapping[str, Any], compose_service: Mapping[str, Any], env: Mapping[str, str]
) -> list[Problem]:
    """The image is compose's repository at .env's LOOKOUT_VERSION."""
    repository = str(compose_service.get("image", "")).split(":", 1)[0]
    expected = f"{repository}:{env.get('LOOKOUT_VERSION')}"
    image = container(deployment).get("image")
    return [] if image == expected else [(f"{CONTAINER}.image", f"{image}, not {expected}")]


def port_problems(
    deployment: Mapping[str, Any], compose_service: Mapping[str, Any]
) -> list[Problem]:
    """The container ports are compose's; the *_PORT variable is the `http` port."""
    ports = {
        p.get("name"): p.get("containerPort") for p in container(deployment).get("ports") or []
    }
    problems = []
    if set(ports.values()) != container_ports(compose_service):
        compose = sorted(container_ports(compose_service))
        problems.append((f"{CONTAINER}.ports", f"{sorted(ports.values())}, compose has {compose}"))
    variables = [
        (n, e.get("value")) for n, e in env_entries(deployment).items() if n.endswith("_PORT")
    ]
    if [str(v) for _, v in variables] != [str(ports.get("http"))]:
        problems.append(
            (f"{CONTAINER}.env", f"{variables} is not the http port {ports.get('http')}")
        )
    return problems


def probe_problems(
    deployment: Mapping[str, Any], dockerfile: str, compose_service: Mapping[str, Any]
) -> list[Problem]:
    """Startup and liveness probe the image's HEALTHCHECK path; readiness compose's; port http."""
    image_check = re.search(r"^HEALTHCHECK .*?(/health/\w+)", dockerfile, re.S | re.M)
    compose_check = re.search(r"/health/\w+", str(compose_service.get("healthcheck")))
    if not image_check or not compose_check:
        return [(CONTAINER, "no health path in the Dockerfile's HEALTHCHECK or compose's")]
    expected = {
        "startupProbe": image_check.group(1),
        "livenessProbe": image_check.group(1),
        "readinessProbe": compose_check.group(0),
    }
    problems = []
    for kind, path in expected.items():
        probe = (container(deployment).get(kind) or {}).get("httpGet") or {}
        if probe.get("path") != path or probe.get("port") != "http":
            found = f"{probe.get('path')} on {probe.get('port')}"
            problems.append((f"{CONTAINER}.{kind}", f"probes {found}, not {path} on http"))
    return problems


def mebibytes(limit: str) -> int:
    """Docker's mem_limit (`384m`) or a Kubernetes quantity (`384Mi`, `1Gi`) in MiB."""
    match = re.fullmatch(r"(\d+)(m|g|Mi|Gi)", str(limit))
    if match is None:
        raise ValueError(f"unexpected memory quantity {limit!r}: use m, g, Mi or Gi")
    number, unit = int(match.group(1)), match.group(2)
    return number * 1024 if unit in {"g", "Gi"} else number


def memory_problems(
    deployment: Mapping[str, Any], compose_service: Mapping[str, Any]
) -> list[Problem]:
    """The memory limit is compose's mem_limit; requests are set and within the limits."""
    resources = container(deployment).get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    field = f"{CONTAINER}.resources"
    try:
        limit = mebibytes(limits.get("memory", ""))
        request = mebibytes(requests.get("memory", ""))
        compose = mebibytes(compose_service.get("mem_limit", ""))
    except ValueError as error:
        return [(field, str(error))]
    problems = []
    if limit != compose:
        problems.append((f"{field}.limits.memory", f"{limit} MiB, compose's mem_limit {compose}"))
    if request > limit:
        problems.append((f"{field}.requests.memory", f"{request} MiB is above the limit"))
    problems += [
        (field, f"no cpu in {k}")
        for k, v in (("requests", requests), ("limits", limits))
        if "cpu" not in v
    ]
    return problems


def security_problems(deployment: Mapping[str, Any], dockerfile: str) -> list[Problem]:
    """Non-root as the Dockerfile USER, read-only root, no privilege escalation, no capabilities."""
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    if user is None:
        return [(CONTAINER, "the Dockerfile has no numeric USER uid:gid")]
    pod = (deployment["spec"]["template"]["spec"].get("securityContext")) or {}
    problems = []
    if pod.get("runAsNonRoot") is not True:
        problems.append(("spec.template.spec.securityContext", "set runAsNonRoot: true"))
    if (pod.get("runAsUser"), pod.get("runAsGroup")) != (int(user.group(1)), int(user.group(2))):
        message = (
            f"runAsUser/runAsGroup are not the Dockerfile's USER {user.group(1)}:{user.group(2)}"
        )
        problems.append(("spec.template.spec.securityContext", message))
    context = container(deployment).get("securityContext") or {}
    wanted = {
        "readOnlyRootFilesystem": context.get("readOnlyRootFilesystem") is True,
        "allowPrivilegeEscalation: false": context.get("allowPrivilegeEscalation") is False,
        "capabilities.drop [ALL]": (context.get("capabilities") or {}).get("drop") == ["ALL"],
    }
    problems += [(f"{CONTAINER}.securityContext", f"set {w}") for w, ok in wanted.items() if not ok]
    return problems


def secret_problems(deployment: Mapping[str, Any]) -> list[Problem]:
    """Every secret-looking variable comes from a secretKeyRef, never a literal value."""
    return [
        (f"{CONTAINER}.env", f"take {name} from a Secret (valueFrom.secretKeyRef)")
        for name, entry in env_entries(deployment).items()
        if SECRET_NAME.search(name) and "value" in entry
    ]


def telemetry_problems(deployment: Mapping[str, Any], service: str) -> list[Problem]:
    """OTLP goes to the otel-collector Service's OTLP/HTTP port, named after the service."""
    values = {n: e.get("value") for n, e in env_entries(deployment).items()}
    endpoint = str(values.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    expected = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": service,
    }
    endpoint = endpoint.rstrip("/")
    found = {**values, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    return [
        (f"{CONTAINER}.env", f"{name} is {found.get(name)!r}, not {value!r}")
        for name, value in expected.items()
        if found.get(name) != value
    ]


def settings_variables(settings: Any) -> set[str]:
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


def load_settings(reference: str) -> Any:
    """Import ``module:Class``; a missing package fails naming how to install it."""
    module, _, name = reference.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        msg = (
            f"{reference} is not importable ({error}): run `uv sync --all-packages` so the "
            f"services' settings classes, whose variables the manifests set, are installed"
        )
        raise ToolMissing(msg) from error


def read_by(variable: str, texts: Iterable[str]) -> bool:
    """Whether one of a service's own files reads the variable itself.

    A CLI reads "NAME" from os.environ; a journey file expands ${NAME} or takes a secret as
    {env: NAME} (services/synthetic-monitor/README.md).
    """
    pattern = re.compile(rf'"{variable}"|\$\{{{variable}\b|\{{env: *{variable}\}}')
    return any(pattern.search(text) for text in texts)


def unread_variables(
    deployment: Mapping[str, Any], settings: set[str], reader_texts: Iterable[str]
) -> list[Problem]:
    """Each env var is a setting, an OTEL_* SDK variable, or read by the service's own code."""
    texts = list(reader_texts)
    return [
        (f"{CONTAINER}.env", f"nothing in the service reads {name}")
        for name in env_entries(deployment)
        if name not in settings and name not in OTEL_VARIABLES and not read_by(name, texts)
    ]


def selector_problems(objects: Mapping[str, Mapping[str, Any]], name: str) -> list[Problem]:
    """The Service, PodDisruptionBudget and ServiceMonitor select this Deployment's pods."""
    pods = objects[f"Deployment/{name}"]["spec"]["template"]["metadata"].get("labels") or {}
    problems = []
    service = objects.get(f"Service/{name}")
    pdb = objects.get(f"PodDisruptionBudget/{name}")
    monitor = objects.get(f"ServiceMonitor/{name}")
    if service is None or pdb is None or monitor is None:
        return [
            ("metadata.name", f"{name} needs a Service, PodDisruptionBudget and ServiceMonitor")
        ]
    if not service["spec"].get("selector", {}).items() <= pods.items():
        problems.append(("spec.selector", f"Service/{name} does not select the pods"))
    if not pdb["spec"]["selector"].get("matchLabels", {}).items() <= pods.items():
        problems.append(("spec.selector", f"PodDisruptionBudget/{name} does not select the pods"))
    labels = service["metadata"].get("labels") or {}
    if not monitor["spec"]["selector"].get("matchLabels", {}).items() <= labels.items():
        problems.append(("spec.selector", f"ServiceMonitor/{name} does not select Service/{name}"))
    ports = {p.get("name") for p in service["spec"].get("ports") or []}
    if not {e.get("port") for e in monitor["spec"].get("endpoints") or []} <= ports:
        problems.append(
            ("spec.endpoints", f"ServiceMonitor/{name} names a port Service/{name} lacks")
        )
    return problems


def _service_findings(
    root: Path, service: Service, by_id: Mapping[str, Manifest], env: Mapping[str, str]
) -> list[Finding]:
    deployment = by_id.get(f"Deployment/{service.name}")
    if deployment is None:
        return [Finding(MANIFESTS, f"no Deployment/{service.name}")]
    compose = (read_yaml(root / "docker-compose.yml").get("services") or {}).get(service.compose)
    if compose is None:
        return [deployment.finding("", f"docker-compose.yml has no service {service.compose}")]
    dockerfile = (root / service.dockerfile).read_text(encoding="utf-8")
    settings = set().union(*(settings_variables(load_settings(s)) for s in service.settings))
    readers = [(root / r).read_text(encoding="utf-8") for r in service.readers]
    doc = deployment.doc
    objects = {m.id: m.doc for m in by_id.values()}
    try:
        problems = (
            image_problems(doc, compose, env)
            + port_problems(doc, compose)
            + probe_problems(doc, dockerfile, compose)
            + memory_problems(doc, compose)
            + security_problems(doc, dockerfile)
            + secret_problems(doc)
            + telemetry_problems(doc, service.name)
            + unread_variables(doc, settings, readers)
        )
        selected = selector_problems(objects, service.name)
    except (KeyError, IndexError, TypeError) as error:
        # The schema allows an empty spec; the cross-checks need a pod template and container.
        return [deployment.finding("spec", f"lacks what the cross-checks read: {error!r}")]
    findings = [deployment.finding(field, message) for field, message in problems]
    for field, message in selected:
        kind = message.split("/", 1)[0] if "/" in message.split(" ", 1)[0] else "Deployment"
        owner = by_id.get(f"{kind}/{service.name}", deployment)
        findings.append(owner.finding(field, message))
    return findings


class KubernetesManifests:
    """Kubernetes 1.33 schemas (strict), the ServiceMonitor CRD, then the cross-checks."""

    name = "kubernetes-manifests"

    def run(self, root: Path) -> CheckResult:
        """Validate every object; a finding per problem at its file, line and field."""
        needed = (KUSTOMIZATION, "docker-compose.yml", ENV_FILE, *(s.dockerfile for s in SERVICES))
        if reason := absent(root, *needed):
            return skipped(self.name, reason)
        manifests = load_manifests(root)
        schema = crd_schema()
        findings, invalid = [], set()
        for manifest in manifests:
            if manifest.doc.get("kind") == "ServiceMonitor":
                problems = crd_problems(manifest.doc, schema)
            else:
                problems = kubernetes_problems(manifest.doc)
            findings += [manifest.finding(field, message) for field, message in problems]
            invalid |= {manifest.id} if problems else set()
        findings += kustomization_problems(root, manifests)
        by_id = {m.id: m for m in manifests}
        env = read_env_file(root / ENV_FILE)
        for service in SERVICES:
            kinds = ("Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor")
            # An object that breaks its schema is reported above; its cross-checks would only
            # trip over the same mistake.
            if not any(f"{kind}/{service.name}" in invalid for kind in kinds):
                findings += _service_findings(root, service, by_id, env)
        detail = (
            f"{len(manifests)} objects, Kubernetes {KUBERNETES_VERSION} strict "
            f"(kubernetes-validate), ServiceMonitor CRD, {len(SERVICES)} services cross-checked"
        )
        return outcome(self.name, detail, findings)


# --- Helm values --------------------------------------------------------------------------------


def values_file(chart: str) -> str:
    """Return the values file of ``chart``, relative to the repository."""
    return f"{HELM}/{chart}/values.yaml"


def helmfile_problems(root: Path, helmfile: Mapping[str, Any]) -> list[Problem]:
    """Each release names a known repo's chart, an exact version and its values file, once."""
    repositories = {r.get("name") for r in helmfile.get("repositories") or []}
    problems, charts = [], []
    for index, release in enumerate(helmfile.get("releases") or []):
        field = f"releases[{index}]"
        repo, _, chart = str(release.get("chart", "")).partition("/")
        if repo not in repositories:
            problems.append((f"{field}.chart", f"unknown repository {repo!r}"))
        if not re.fullmatch(r"\d+\.\d+\.\d+", str(release.get("version"))):
            problems.append((f"{field}.version", "pin an exact chart version (X.Y.Z)"))
        if release.get("values") != [f"helm/{chart}/values.yaml"]:
            problems.append((f"{field}.values", f"take exactly helm/{chart}/values.yaml"))
        elif not (root / values_file(chart)).is_file():
            problems.append((f"{field}.values", f"{values_file(chart)} does not exist"))
        charts.append(chart)
    if sorted(charts) != sorted(CHARTS):
        problems.append(("releases", f"charts {sorted(charts)}, expected {sorted(CHARTS)}"))
    return problems


def _dig(data: Any, path: Iterable[str]) -> Any:
    for key in path:
        data = data[key] if isinstance(data, Mapping) else None
    return data


def image_tag_problem(
    chart: str, values: Mapping[str, Any], env: Mapping[str, str]
) -> Problem | None:
    """Loki, Tempo and Grafana run exactly the image tag .env pins for compose."""
    path, variable = PINNED_TAGS[chart]
    tag, pinned = str(_dig(values, path)), env.get(variable, "").rpartition(":")[2]
    if tag == pinned:
        return None
    return (".".join(path), f"tag {tag}, but {ENV_FILE} pins {variable}={env.get(variable)}")


def credential_values(data: Any, path: str = "") -> list[tuple[str, Any]]:
    """Return (dotted path, value) of every scalar under a credential-named key."""
    found: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if CREDENTIAL_KEY.search(str(key)) and not isinstance(value, (dict, list)):
                found.append((child, value))
            found.extend(credential_values(value, child))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found.extend(credential_values(item, f"{path}[{index}]"))
    return found


def leaked_credentials(values: Any) -> list[Problem]:
    """Credential keys hold ${ENV} references or Secret key names, never a credential."""
    return [
        (path, "take it from a Secret as ${ENV}; the value is not shown")
        for path, value in credential_values(values)
        if path not in CREDENTIAL_LOCATIONS and not HELM_ENV_REFERENCE.match(str(value))
    ]


def loki_with_values(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Loki config with the values' schema, limits and S3 storage put in."""
    loki = values["loki"]
    merged = deepcopy(dict(config))
    merged["schema_config"] = loki["schemaConfig"]
    merged.setdefault("limits_config", {}).update(loki["limits_config"])
    s3 = loki["storage"]["s3"]
    # What the chart's `loki.commonStorageConfig` helper (templates/_helpers.tpl) renders for
    # `storage.type: s3`: Loki's own s3 field names, bucketnames from bucketNames.chunks.
    merged.setdefault("common", {})["storage"] = {
        "s3": {
            "endpoint": s3["endpoint"],
            "access_key_id": s3["accessKeyId"],
            "secret_access_key": s3["secretAccessKey"],
            "s3forcepathstyle": s3["s3ForcePathStyle"],
            "insecure": s3["insecure"],
            "bucketnames": loki["storage"]["bucketNames"]["chunks"],
        }
    }
    return merged


def tempo_ingest_block(values: Mapping[str, Any]) -> dict[str, Any]:
    """The `ingest:` block the chart's config template renders from `ingest.kafka` (no SASL/TLS)."""
    kafka = {**TEMPO_CHART_INGEST_DEFAULTS, **values["ingest"]["kafka"]}
    keys = ("address", *TEMPO_CHART_INGEST_DEFAULTS)
    return {"kafka": {key: kafka[key] for key in keys}}


def tempo_with_values(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Tempo config with the values' storage, ingest block and overrides merged in."""
    structured = values["tempo"]["structuredConfig"]
    merged = deepcopy(dict(config))
    trace = merged.setdefault("storage", {}).setdefault("trace", {})
    trace.update(structured["storage"]["trace"])
    trace.pop("local", None)
    merged["ingest"] = tempo_ingest_block(values)
    merged["overrides"] = {"defaults": values["overrides"]["defaults"]}
    return merged


#: chart -> (backend, its compose config the values are merged into, merge, verify flag).
BACKEND_VALUES = {
    "loki": ("loki", "loki/loki.yaml", loki_with_values, "-verify-config"),
    "tempo-distributed": ("tempo", "tempo/tempo.yaml", tempo_with_values, "-config.verify=true"),
}


class HelmValues:
    """helmfile pins, chart key trees, image tags vs .env, no credentials, real Loki and Tempo."""

    name = "helm-values"

    def run(self, root: Path) -> CheckResult:
        """Check each chart's values; a finding per problem at its file, line and field."""
        needed = (HELMFILE, ENV_FILE, *(values_file(c) for c in CHARTS))
        if reason := absent(root, *needed, *(b[1] for b in BACKEND_VALUES.values())):
            return skipped(self.name, reason)
        helmfile = read_yaml(root / HELMFILE)
        findings = field_findings(root, HELMFILE, helmfile_problems(root, helmfile))
        pinned = {
            str(r.get("chart", "")).partition("/")[2]: str(r.get("version"))
            for r in helmfile.get("releases") or []
        }
        env = read_env_file(root / ENV_FILE)
        for chart in CHARTS:
            file, schema_file = values_file(chart), f"helm-{chart}.yaml"
            values = read_yaml(root / file)
            version = KeySchema.load(SCHEMAS_DIR / schema_file).version
            if pinned.get(chart) != version:
                message = f"pins {chart} {pinned.get(chart)}; the key tree is of {version}"
                findings.append(Finding(HELMFILE, message))
            findings += key_findings(root, file, schema_file)
            problems = leaked_credentials(values)
            if chart in PINNED_TAGS and (problem := image_tag_problem(chart, values, env)):
                problems.append(problem)
            findings += field_findings(root, file, problems)
        for chart, backend in BACKEND_VALUES.items():
            findings += _backend_findings(root, chart, backend)
        detail = f"{len(CHARTS)} charts' key trees, image tags, credentials; Loki and Tempo verify"
        return outcome(self.name, detail, findings)


def _backend_findings(root: Path, chart: str, how: tuple[str, str, Any, str]) -> list[Finding]:
    """Verify the compose config with the chart's values merged in, by the real backend."""
    backend, base_file, merge, flag = how
    file = values_file(chart)
    try:
        config = merge(read_yaml(root / base_file), read_yaml(root / file))
    except (KeyError, TypeError) as error:
        return [Finding(file, f"lacks a key the {backend} config is rendered from: {error}")]
    binary = backend_binary(backend, checkouts(root))
    with tempfile.TemporaryDirectory(prefix="lookout-validate-") as workdir:
        rendered = Path(workdir) / f"{backend}.yaml"
        rendered.write_text(yaml.safe_dump(config), encoding="utf-8")
        argv: list[str | Path] = [
            binary,
            f"-config.file={rendered}",
            "-config.expand-env=true",
            flag,
        ]
        result = run(argv, cwd=root, env=BACKEND_ENV)
    if result.returncode == 0:
        return []
    # Lines of the rendered file mean nothing in the values file: name the file, keep the text.
    said = findings_from(result.stdout + result.stderr, str(rendered))
    prefix = f"{backend} rejects {base_file} with these values"
    return [Finding(file, f"{prefix}: {f.message}") for f in said] or [
        Finding(file, f"{prefix} ({backend} exited {result.returncode})")
    ]


MANIFESTS_CHECK = KubernetesManifests()
HELM_CHECK = HelmValues()
