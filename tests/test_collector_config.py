"""otel-collector/config.yaml: keys, pipeline wiring and addresses, checked without the collector.

The collector cannot run here (no Docker, no binary): its config is checked against a key schema
kept from the pinned version's docs
(services/lookout/src/lookout_stack/validate/schemas/otelcol-contrib-<version>.yaml) and
cross-referenced with itself and the compose service table. Where Docker runs, the real image
validates it (`otelcol-contrib validate`).
"""

from __future__ import annotations

import copy
import functools
import operator
import re
from pathlib import Path
from typing import Any

import pytest
from keyschema_support import (
    COMPOSE_SERVICE_PORTS,
    ENV_REFERENCE,
    SCHEMAS_DIR,
    KeySchema,
    host_port,
    load_yaml,
    resolve_env_defaults,
)

from lookout_stack.validate.checks.key_schemas import key_findings

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / "otel-collector" / "config.yaml"
SCHEMA_PATH = SCHEMAS_DIR / "otelcol-contrib-0.159.0.yaml"
SOURCE = "otel-collector/config.yaml"
SIGNALS = ("traces", "metrics", "logs")
# The browser origins the shop serves the storefront from: the only ones CORS may allow.
STOREFRONT_ORIGINS = ["http://localhost:8000", "http://127.0.0.1:8000"]
# Which exporter type and compose service each signal goes to (contract: Signal flow).
SIGNAL_DESTINATIONS = {"traces": ("otlp_grpc", "tempo"), "logs": ("otlp_http", "loki")}
SECTIONS = ("receivers", "processors", "exporters")


@pytest.fixture(scope="module")
def raw_config() -> dict[str, Any]:
    """Return the collector config as written (environment references unresolved)."""
    data: dict[str, Any] = load_yaml(CONFIG_PATH)
    return data


@pytest.fixture(scope="module")
def config(raw_config: dict[str, Any]) -> dict[str, Any]:
    """Return the collector config with every ${env:NAME:-default} replaced by its default."""
    resolved: dict[str, Any] = resolve_env_defaults(raw_config)
    return resolved


@pytest.fixture(scope="module")
def schema() -> KeySchema:
    """Return the key schema of the pinned collector version."""
    return KeySchema.load(SCHEMA_PATH)


def _pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    pipelines: dict[str, dict[str, list[str]]] = config["service"]["pipelines"]
    return pipelines


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _walk_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _walk_strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _walk_strings(item)]
    return [value] if isinstance(value, str) else []


# --- key schema ----------------------------------------------------------------------------------
def test_config_uses_only_keys_of_the_pinned_collector_version() -> None:
    """Every key in the config is one the pinned collector version documents (lookout validate)."""
    findings = key_findings(ROOT, SOURCE, SCHEMA_PATH.name)
    assert not findings, "\n".join(f"{f.where}: {f.message}" for f in findings)


@pytest.mark.parametrize(
    ("parent", "key", "typo"),
    [
        (("processors", "tail_sampling"), "policies", "polices"),
        (("receivers", "otlp"), "protocols", "protocol"),
        (("receivers", "otlp", "protocols", "http", "cors"), "allowed_origins", "allowed_origin"),
        (("exporters", "otlp_grpc/tempo"), "endpoint", "endpont"),
        (("exporters", "otlp_grpc/tempo", "tls"), "insecure", "insecure_"),
        (("service", "telemetry", "metrics"), "readers", "reader"),
    ],
    ids=["policies", "protocols", "cors-origins", "endpoint", "tls-insecure", "readers"],
)
def test_key_schema_rejects_a_misspelled_key(
    config: dict[str, Any], schema: KeySchema, parent: tuple[str, ...], key: str, typo: str
) -> None:
    """A copy of the config with one key misspelled fails the schema check, naming its path."""
    broken = copy.deepcopy(config)
    body = functools.reduce(operator.getitem, parent, broken)
    body[typo] = body.pop(key)
    errors = schema.check(broken, SOURCE)
    where = ".".join((*parent, typo))
    assert any(e.startswith(f"{SOURCE}: {where}: unknown key {typo!r}") for e in errors), errors


def test_key_schema_rejects_a_nested_misspelling_and_cites_the_doc(
    config: dict[str, Any], schema: KeySchema
) -> None:
    """A misspelled key deep in a policy fails with its path and the pinned README's link."""
    broken = copy.deepcopy(config)
    policy = next(p for p in broken["processors"]["tail_sampling"]["policies"] if "latency" in p)
    policy["latency"]["treshold_ms"] = policy["latency"].pop("threshold_ms")
    errors = schema.check(broken, SOURCE)
    assert len(errors) == 1, errors
    assert "latency.treshold_ms: unknown key" in errors[0]
    assert (
        "opentelemetry-collector-contrib/blob/v0.159.0/processor/tailsamplingprocessor" in errors[0]
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [("otlp_grpc/tempo", "otlp/tempo"), ("otlp_http/loki", "otlphttp/loki")],
    ids=["otlp-is-otlp_grpc", "otlphttp-is-otlp_http"],
)
def test_key_schema_rejects_the_pre_0_144_exporter_names(
    config: dict[str, Any], schema: KeySchema, old: str, new: str
) -> None:
    """The deprecated exporter names fail the schema check with the name to use instead."""
    broken = copy.deepcopy(config)
    broken["exporters"][new] = broken["exporters"].pop(old)
    errors = schema.check(broken, SOURCE)
    assert any(f"exporters.{new}" in e and f"`{_type(old)}`" in e for e in errors), errors


def test_key_schema_rejects_an_unknown_component_type(
    config: dict[str, Any], schema: KeySchema
) -> None:
    """A component type the schema does not know fails, rather than passing unchecked."""
    broken = copy.deepcopy(config)
    broken["processors"]["batchh"] = broken["processors"].pop("batch")
    errors = schema.check(broken, SOURCE)
    assert any("processors.batchh: no processor type 'batchh'" in e for e in errors), errors


def test_key_schema_links_every_component_to_the_pinned_version(schema: KeySchema) -> None:
    """Every component in the key schema cites a doc page at the pinned release tag."""
    tag = f"v{schema.version}"
    for section, name, node in schema.components():
        url = schema.doc_url(node.get("doc", ""))
        assert url.startswith("https://"), f"{section}.{name}: no doc link"
        if "deprecated" not in node:
            assert f"/blob/{tag}/" in url, f"{section}.{name}: doc {url} is not at {tag}"


# --- pipelines -----------------------------------------------------------------------------------
def test_every_component_a_pipeline_names_is_defined(config: dict[str, Any]) -> None:
    """Each receiver, processor and exporter in a pipeline, and each enabled extension, exists."""
    missing = [
        f"service.pipelines.{name}.{section}: {component!r} is not defined under {section}:"
        for name, pipeline in _pipelines(config).items()
        for section in SECTIONS
        for component in pipeline.get(section, [])
        if component not in (config.get(section) or {})
    ]
    missing += [
        f"service.extensions: {ext!r} is not defined under extensions:"
        for ext in config["service"].get("extensions", [])
        if ext not in (config.get("extensions") or {})
    ]
    assert not missing, "\n".join(missing)


def test_every_defined_component_is_used(config: dict[str, Any]) -> None:
    """No receiver, processor, exporter or extension is defined without being used."""
    used = {
        section: {c for p in _pipelines(config).values() for c in p.get(section, [])}
        for section in SECTIONS
    }
    used["extensions"] = set(config["service"].get("extensions", []))
    unused = [
        f"{section}.{component} is defined but no pipeline (or service.extensions) uses it"
        for section in (*SECTIONS, "extensions")
        for component in config.get(section) or {}
        if component not in used[section]
    ]
    assert not unused, "\n".join(unused)


@pytest.mark.parametrize("signal", ["traces", "logs"])
def test_signal_has_a_pipeline(config: dict[str, Any], signal: str) -> None:
    """Traces and logs each have a pipeline (metrics are scraped by Prometheus instead)."""
    assert signal in _pipelines(config), f"service.pipelines has no {signal} pipeline"


def test_memory_limiter_runs_first_and_batch_last(config: dict[str, Any]) -> None:
    """In every pipeline memory_limiter is the first processor and batch the last."""
    wrong = []
    for name, pipeline in _pipelines(config).items():
        kinds = [_type(p) for p in pipeline.get("processors", [])]
        if not kinds or kinds[0] != "memory_limiter":
            wrong.append(
                f"service.pipelines.{name}: first processor must be memory_limiter: {kinds}"
            )
        if not kinds or kinds[-1] != "batch":
            wrong.append(f"service.pipelines.{name}: last processor must be batch: {kinds}")
    assert not wrong, "\n".join(wrong)


def test_tail_sampling_is_only_in_trace_pipelines(config: dict[str, Any]) -> None:
    """tail_sampling groups spans by trace, so it appears in trace pipelines only, and in one."""
    placed = {
        name: [p for p in pipeline.get("processors", []) if _type(p) == "tail_sampling"]
        for name, pipeline in _pipelines(config).items()
    }
    wrong = [name for name, found in placed.items() if found and _type(name) != "traces"]
    assert not wrong, f"tail_sampling in non-trace pipelines: {wrong}"
    assert placed.get("traces"), "the traces pipeline has no tail_sampling processor"


@pytest.mark.parametrize("signal", sorted(SIGNAL_DESTINATIONS))
def test_signal_is_exported_to_its_backend(config: dict[str, Any], signal: str) -> None:
    """Traces go to Tempo over OTLP gRPC and logs to Loki's OTLP endpoint over OTLP HTTP."""
    exporter_type, service = SIGNAL_DESTINATIONS[signal]
    exporters = _pipelines(config)[signal]["exporters"]
    assert [_type(e) for e in exporters] == [exporter_type], exporters
    endpoint = config["exporters"][exporters[0]]["endpoint"]
    assert host_port(endpoint)[0] == service, f"{exporters[0]}.endpoint {endpoint} is not {service}"


def test_logs_exporter_targets_lokis_otlp_path(config: dict[str, Any]) -> None:
    """The logs exporter's base URL is Loki's /otlp (the exporter appends /v1/logs)."""
    assert config["exporters"]["otlp_http/loki"]["endpoint"] == "http://loki:3100/otlp"


# --- addresses -----------------------------------------------------------------------------------
def test_exporter_endpoints_are_compose_service_ports(config: dict[str, Any]) -> None:
    """Every exporter endpoint is <compose service>:<one of its container ports>."""
    wrong = []
    for component, body in (config.get("exporters") or {}).items():
        for key in ("endpoint", "traces_endpoint", "logs_endpoint", "metrics_endpoint"):
            if key not in body:
                continue
            host, port = host_port(body[key])
            if port not in COMPOSE_SERVICE_PORTS.get(host, set()):
                wrong.append(f"exporters.{component}.{key}: {body[key]} is not a service:port")
    assert not wrong, "\n".join(wrong)


def test_listeners_bind_all_interfaces_on_the_collectors_ports(config: dict[str, Any]) -> None:
    """Receivers, the health check and own metrics listen on 0.0.0.0 at the contract's ports."""
    protocols = config["receivers"]["otlp"]["protocols"]
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    listeners = {
        "receivers.otlp.protocols.grpc": protocols["grpc"]["endpoint"],
        "receivers.otlp.protocols.http": protocols["http"]["endpoint"],
        "extensions.health_check": config["extensions"]["health_check"]["endpoint"],
        "service.telemetry.metrics": "{host}:{port}".format(**reader["prometheus"]),
    }
    expected = {
        "receivers.otlp.protocols.grpc": 4317,
        "receivers.otlp.protocols.http": 4318,
        "extensions.health_check": 13133,
        "service.telemetry.metrics": 8888,
    }
    for where, endpoint in listeners.items():
        host, port = host_port(endpoint)
        assert host == "0.0.0.0", f"{where}: listens on {host}, not 0.0.0.0"
        assert port == expected[where], f"{where}: port {port}, the contract says {expected[where]}"
        assert port in COMPOSE_SERVICE_PORTS["otel-collector"]


def test_cors_allows_only_the_storefront_origins(config: dict[str, Any]) -> None:
    """The OTLP/HTTP receiver allows exactly the storefront's origins, never a wildcard."""
    cors = config["receivers"]["otlp"]["protocols"]["http"]["cors"]
    assert cors["allowed_origins"] == STOREFRONT_ORIGINS
    assert not any("*" in origin for origin in cors.get("allowed_headers", []) + STOREFRONT_ORIGINS)


# --- sampling and environment --------------------------------------------------------------------
def test_tail_sampling_keeps_errors_slow_traces_and_a_configured_share(
    config: dict[str, Any], raw_config: dict[str, Any]
) -> None:
    """Errors and slow traces are always kept; the rest by a percentage from the environment."""
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] > 0
    raw = {p["type"]: p for p in raw_config["processors"]["tail_sampling"]["policies"]}
    percentage = raw["probabilistic"]["probabilistic"]["sampling_percentage"]
    match = ENV_REFERENCE.fullmatch(str(percentage))
    assert match, f"sampling_percentage {percentage!r} is not an ${{env:NAME:-default}} reference"
    # The dev default keeps every trace.
    assert policies["probabilistic"]["probabilistic"]["sampling_percentage"] == 100


def test_environment_references_use_the_env_provider_syntax(raw_config: dict[str, Any]) -> None:
    """Every $-reference is ${env:NAME:-default}: a default, and the provider spelled out."""
    wrong = [
        text
        for text in _walk_strings(raw_config)
        if "$" in text
        and (
            ENV_REFERENCE.sub("", text).count("$")
            or any(m.group("default") is None for m in ENV_REFERENCE.finditer(text))
        )
    ]
    assert not wrong, f"write ${{env:NAME:-default}} (the provider and a default): {wrong}"
    names = {m.group("name") for t in _walk_strings(raw_config) for m in ENV_REFERENCE.finditer(t)}
    assert names == {
        "LOOKOUT_ENVIRONMENT",
        "STOREFRONT_HOST_PORT",
        "TAIL_SAMPLING_LATENCY_THRESHOLD_MS",
        "TAIL_SAMPLING_PERCENTAGE",
    }, f"document new variables in the compose proposal and here: {sorted(names)}"


def test_pinned_image_matches_the_key_schema(dotenv: dict[str, str], schema: KeySchema) -> None:
    """The collector image pinned in .env is the version the key schema was written from."""
    pins = [
        v.split("@", 1)[0]  # a digest may follow the tag
        for v in dotenv.values()
        if v.startswith("otel/opentelemetry-collector-contrib:")
    ]
    if not pins:
        pytest.skip(".env pins no otel/opentelemetry-collector-contrib image yet (compose change)")
    assert pins == [schema.data["image"]], (
        f".env pins {pins}, the key schema is for {schema.data['image']}: re-read the linked docs "
        "at the new tag and write lookout_stack/validate/schemas/otelcol-contrib-<version>.yaml"
    )


def test_config_file_starts_with_its_reference_link() -> None:
    """The config's first line names the pinned version and its second links the reference docs."""
    head = CONFIG_PATH.read_text(encoding="utf-8").splitlines()[:3]
    assert "0.159.0" in head[0]
    assert re.search(r"https://opentelemetry\.io/docs/collector/configuration/", head[1])
