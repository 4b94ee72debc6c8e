"""deploy/scale-out/: the scale-out profile, checked as far as this machine allows.

No Docker engine runs here (DESIGN.md, "What runs where"), so:
- compose.yaml: the compose-spec JSON schema, and every name it uses (services, volumes,
  secrets, networks, .env variables, files) cross-referenced with docker-compose.yml, read with
  compose's merge rules; the variant files (Prometheus, Grafana, Loki, Tempo) are kept in sync
  with their base files.
- mimir.yaml: no Mimir binary can run here; its keys are checked against
  lookout_stack/validate/schemas/mimir-3.2.0.yaml, written from the pinned version's reference.
- loki.yaml and tempo.yaml: the real Loki 3.7.6 and Tempo 3.0.3 verify them, then run from them
  against an S3 API on loopback: moto's server mode (PyPI `moto[server]`), an S3-COMPATIBLE
  STAND-IN, NOT MinIO (no MinIO binary installs from PyPI, Debian or npm). Each proves its data
  is in the bucket by losing its local disk and answering from S3 alone.
- The Alertmanager HA pair: two real (Debian) Alertmanagers gossiping on loopback, in front of
  two real relay processes sharing one Postgres queue; the synthetic monitor writes its runs
  to Postgres. All `integration`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # no stubs; moto's client
import httpx
import pytest
import yaml
from keyschema_support import SCHEMAS_DIR, KeySchema, host_port, load_yaml

from lookout_stack.validate.checks import scale_out
from lookout_stack.validate.checks.compose_schema import schema_findings
from lookout_stack.validate.dotenv import read_env_file, variables_in
from stack_support import free_port, poll_until, require_binary, require_listening
from stack_support.compose import container_ports
from stack_support.receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
SCALE_OUT = ROOT / "deploy" / "scale-out"
OVERRIDE_FILE = SCALE_OUT / "compose.yaml"
OVERRIDE_TEXT = OVERRIDE_FILE.read_text(encoding="utf-8")
OVERRIDE: dict[str, Any] = yaml.safe_load(OVERRIDE_TEXT)
BASE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
MIMIR_SCHEMA = SCHEMAS_DIR / "mimir-3.2.0.yaml"
GRAFANA_SCHEMA = SCHEMAS_DIR / "grafana-13.2.yaml"
# Tempo 3.0.3 may ignore SIGTERM for over a minute (DESIGN.md): a few seconds, then SIGKILL.
STOP_GRACE_SECONDS = 5.0
S3_KEY, S3_SECRET = "scale-out-test", "scale-out-test-secret"
PG_ADMIN = ("127.0.0.1", 5432, "postgres")

integration = pytest.mark.integration


# compose's merge rules and every cross-check below that needs no process are the package's
# (lookout_stack/validate/checks/scale_out.py): `lookout validate` runs the same code.
MERGED = scale_out.merged_services(BASE, OVERRIDE)
NEW_SERVICES = sorted(set(OVERRIDE["services"]) - set(BASE["services"]))
ONE_SHOT = ["minio-buckets", "mimir-rules", "postgres-databases"]


def _env_value(service: str, variable: str) -> str:
    return str(MERGED[service]["environment"][variable])


# --- the override file: schema, names, pins ---------------------------------------------------


def test_override_matches_the_compose_spec_schema() -> None:
    """deploy/scale-out/compose.yaml validates against the compose-spec JSON schema."""
    findings = schema_findings(ROOT, "deploy/scale-out/compose.yaml")
    assert not findings, findings


def test_a_misspelled_override_key_fails_the_compose_spec_schema(tmp_path: Path) -> None:
    """A key compose does not know in the override is reported at its line and field."""
    broken = tmp_path / "deploy" / "scale-out" / "compose.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(OVERRIDE_TEXT.replace("    mem_limit:", "    mem_limt:", 1), encoding="utf-8")
    findings = schema_findings(tmp_path, "deploy/scale-out/compose.yaml")
    assert any("mem_limt" in f.message for f in findings), findings


def test_every_variable_the_override_uses_is_set_in_env() -> None:
    """Every ${VAR} in the override has its value in .env, defaults notwithstanding."""
    missing = sorted(set(variables_in(OVERRIDE_TEXT)) - set(read_env_file(ROOT / ".env")))
    assert not missing, f"set these in .env: {missing}"


def test_new_service_images_are_pinned_in_env() -> None:
    """Each new service's image comes from .env and resolves to a version tag, never `latest`."""
    assert [s for s in NEW_SERVICES if "image" in OVERRIDE["services"][s]]
    problems = scale_out.image_pin_problems(BASE, OVERRIDE, read_env_file(ROOT / ".env"))
    assert not problems, problems


@pytest.mark.parametrize(
    ("image", "env", "expected"),
    [
        ("minio/minio:latest", {}, "put the image tag in .env"),
        ("${MINIO_IMAGE}", {"MINIO_IMAGE": "quay.io/minio/minio:latest"}, "not pinned"),
        ("${MINIO_IMAGE}", {"MINIO_IMAGE": "quay.io/minio/minio"}, "not pinned"),
    ],
    ids=["literal", "latest", "no-tag"],
)
def test_an_unpinned_new_image_is_reported(image: str, env: dict[str, str], expected: str) -> None:
    """A new service's image written literally or resolving to no version tag is a problem."""
    override = {"services": {"minio": {"image": image}}}
    problems = scale_out.image_pin_problems(BASE, override, env)
    assert [field for field, _ in problems] == ["services.minio.image"]
    assert expected in problems[0][1]


def test_every_reference_names_something_defined() -> None:
    """Each depends_on, named volume, secret and network of the override exists in one file."""
    problems = scale_out.reference_problems(ROOT, BASE, OVERRIDE)
    assert not problems, problems


def test_an_undefined_reference_is_reported() -> None:
    """An unknown depends_on, volume, bind source, secret or network is named with its field."""
    override = {
        "services": {
            "extra": {
                "depends_on": {"nowhere": {"condition": "service_healthy"}},
                "volumes": ["undeclared:/data", "./no/such/dir:/etc/x:ro"],
                "secrets": ["no_secret"],
                "networks": {"elsewhere": {}},
            }
        }
    }
    fields = [field for field, _ in scale_out.reference_problems(ROOT, BASE, override)]
    assert fields == [
        "services.extra.depends_on.nowhere",
        "services.extra.volumes[0]",
        "services.extra.volumes[1]",
        "services.extra.secrets",
        "services.extra.networks.elsewhere",
    ]


def test_override_holds_no_credential_literally() -> None:
    """Every password, secret, key or credential-bearing URL in the override comes from .env."""
    literal = scale_out.credential_literals(OVERRIDE)
    assert not literal, f"put these in .env and reference them: {literal}"
    leaked = {
        "services": {"x": {"environment": {"MINIO_ROOT_PASSWORD": "hunter2", "A_FILE": "/f"}}}
    }
    assert scale_out.credential_literals(leaked) == [
        ("services.x.environment.MINIO_ROOT_PASSWORD", "x: take MINIO_ROOT_PASSWORD from .env")
    ]


@pytest.mark.parametrize("service", [s for s in NEW_SERVICES if s not in ONE_SHOT])
def test_new_long_running_service_has_limits_restart_and_health(service: str) -> None:
    """New services restart, have a memory limit and a healthcheck (Mimir says why not)."""
    spec = MERGED[service]
    assert spec.get("restart") == "unless-stopped", service
    assert spec.get("mem_limit"), service
    if service == "mimir":
        assert "healthcheck" not in spec
        assert "Mimir has no `-health` command" in OVERRIDE_TEXT
    else:
        assert spec.get("healthcheck", {}).get("test"), service


@pytest.mark.parametrize("service", ONE_SHOT)
def test_one_shot_job_is_bounded_and_waited_for(service: str) -> None:
    """A one-shot job has a memory limit, never restarts forever, and some service waits for it."""
    spec = MERGED[service]
    assert spec.get("mem_limit"), service
    assert spec.get("restart") in {"no", "on-failure"}, service
    waiters = [
        name
        for name, other in MERGED.items()
        if (other.get("depends_on") or {}).get(service, {}).get("condition")
        == "service_completed_successfully"
    ]
    # mimir-rules has no waiters: nothing needs the rules to start, only to alert.
    assert waiters or service == "mimir-rules", f"nothing waits for {service}"


def test_host_ports_bind_loopback_only() -> None:
    """Every port the override publishes binds 127.0.0.1, as in the base file."""
    assert any(spec.get("ports") for spec in OVERRIDE["services"].values())
    assert not scale_out.unpublished_loopback(OVERRIDE)
    exposed = {"services": {"x": {"ports": ["9000:9000", "127.0.0.1:9001:9001"]}}}
    assert [f for f, _ in scale_out.unpublished_loopback(exposed)] == ["services.x.ports[0]"]


# --- the HA pair and the replicas: same settings as the base service ----------------------------


def test_second_alertmanager_is_the_first_with_its_own_volume_and_peer() -> None:
    """alertmanager-2 runs the base Alertmanager's image, config and secret; the two peer up."""
    first, second = MERGED["alertmanager"], MERGED["alertmanager-2"]
    for key in ("image", "mem_limit", "secrets", "healthcheck"):
        assert second[key] == first[key], key
    assert (
        "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in second["volumes"]
    )
    assert "alertmanager-2-data:/alertmanager" in second["volumes"]
    assert "--cluster.peer=alertmanager-2:9094" in first["command"]
    assert "--cluster.peer=alertmanager:9094" in second["command"]
    same = [a for a in first["command"] if not a.startswith("--cluster.peer")]
    assert same == [a for a in second["command"] if not a.startswith("--cluster.peer")]
    assert "ports" not in second, "one published Alertmanager: the pair shares its state"


def test_second_relay_is_the_first_on_the_same_postgres_queue() -> None:
    """webhook-relay-2 is webhook-relay's image, settings and Postgres queue, under its name too."""
    first, second = MERGED["webhook-relay"], MERGED["webhook-relay-2"]
    for key in ("image", "build", "command", "secrets", "healthcheck", "environment"):
        assert second[key] == first[key], key
    assert first["environment"]["RELAY_DATABASE_URL"].startswith("postgresql://")
    assert second["networks"]["default"]["aliases"] == ["webhook-relay"]
    routing = [v for v in first["volumes"] if v.endswith(":/etc/webhook-relay/routing.yml:ro")]
    assert routing and routing[0] in second["volumes"]


def test_relay_dedup_window_covers_the_ha_pair_and_every_repeat() -> None:
    """The relay's dedup window outlasts the HA pair's peer delay, not the shortest repeat."""
    window = float(_env_value("webhook-relay", "RELAY_DEDUP_WINDOW_SECONDS"))
    config = load_yaml(ROOT / "alertmanager" / "alertmanager.yml")
    routes = [config["route"], *config["route"].get("routes", [])]
    seconds = {"s": 1, "m": 60, "h": 3600}
    shortest = min(
        int(r["repeat_interval"][:-1]) * seconds[r["repeat_interval"][-1]]
        for r in routes
        if "repeat_interval" in r
    )
    # Alertmanager's default --cluster.peer-timeout is 15 s per position in the pair.
    assert 2 * 15 < window < shortest, (window, shortest)


def test_relay_and_monitor_databases_are_created_by_the_sql_file() -> None:
    """The databases the relay's and monitor's URLs name are the ones databases.sql creates."""
    sql = (SCALE_OUT / "postgres" / "databases.sql").read_text(encoding="utf-8")
    created = set(re.findall(r"'CREATE DATABASE (\w+)'", sql))
    named = {
        _env_value("webhook-relay", "RELAY_DATABASE_URL").rsplit("/", 1)[1],
        _env_value("webhook-relay-2", "RELAY_DATABASE_URL").rsplit("/", 1)[1],
        _env_value("synthetic-monitor", "MONITOR_DATABASE_URL").rsplit("/", 1)[1],
    }
    assert named == created
    assert _env_value("synthetic-monitor", "MONITOR_DATABASE_URL").startswith(
        "postgresql+asyncpg://"
    )


# --- the variant files, in sync with their base files -------------------------------------------


def test_prometheus_variant_scrapes_every_base_job_alike() -> None:
    """Every base scrape job is in the variant, unchanged but for added targets; global alike."""
    base = load_yaml(ROOT / "prometheus" / "prometheus.yml")
    variant = load_yaml(SCALE_OUT / "prometheus.yml")
    problems = scale_out.prometheus_variant_problems(variant, base)
    assert not problems, problems
    variant["scrape_configs"][0]["scrape_interval"] = "1m"
    variant["scrape_configs"][0]["static_configs"] = []
    lost = scale_out.prometheus_variant_problems(variant, base)
    assert [field for field, _ in lost] == ["scrape_configs[0]", "scrape_configs[0]"], lost


def test_prometheus_variant_targets_and_remote_write_are_compose_services() -> None:
    """Every scrape target and the remote-write URL name one service's port (name or alias)."""
    variant = load_yaml(SCALE_OUT / "prometheus.yml")
    addresses = [
        t for job in variant["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    addresses += [w["url"] for w in variant["remote_write"]]
    # A name answers for every service that has it as its name or a network alias.
    owners: dict[str, list[str]] = {}
    for service, spec in MERGED.items():
        aliases = [a for net in (spec.get("networks") or {}).values() for a in net["aliases"]]
        for name in (service, *aliases):
            owners.setdefault(name, []).append(service)
    unknown, ambiguous = [], []
    for address in addresses:
        host, port = host_port(address)
        if len(owners.get(host, [])) > 1:
            ambiguous.append(address)
        elif not any(port in container_ports(MERGED[s]) for s in owners.get(host, [])):
            unknown.append(address)
    assert not unknown, f"not a service:port of the scale-out stack: {unknown}"
    assert not ambiguous, f"names several replicas (mixed series): {ambiguous}"
    assert variant["remote_write"][0]["url"] == "http://mimir:8080/api/v1/push"


def test_rules_move_from_prometheus_to_the_mimir_ruler() -> None:
    """The variant evaluates no rules; mimir-rules syncs the folder the base Prometheus reads."""
    base = load_yaml(ROOT / "prometheus" / "prometheus.yml")
    variant = load_yaml(SCALE_OUT / "prometheus.yml")
    assert "rule_files" not in variant
    assert "alerting" not in variant
    assert base["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert "./prometheus:/etc/prometheus:ro" in BASE["services"]["prometheus"]["volumes"]
    job = MERGED["mimir-rules"]
    assert job["volumes"] == ["./prometheus/rules:/etc/prometheus/rules:ro"]
    assert job["command"][:2] == ["rules", "sync"]
    assert "--rule-dirs=/etc/prometheus/rules" in job["command"]
    assert "--id=anonymous" in job["command"]
    # mimirtool reads each file strictly (namespace, groups) and, with no `namespace:`, names
    # the namespace after the file (pkg/mimirtool/rules/parser.go): one per file, no clash.
    files = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
    assert all(set(load_yaml(f)) <= {"namespace", "groups"} for f in files)
    assert len({f.stem for f in files}) == len(files)
    assert load_yaml(SCALE_OUT / "mimir.yaml")["multitenancy_enabled"] is False
    assert "--storage.tsdb.retention.time=1d" in MERGED["prometheus"]["command"]


def test_promtool_accepts_the_prometheus_variant() -> None:
    """Debian's promtool checks deploy/scale-out/prometheus.yml (fields 2.42 and 3.x share)."""
    require_binary("promtool")
    findings = scale_out.promtool_findings(ROOT)
    assert not findings, findings


def test_loki_variant_differs_from_the_base_only_in_storage_and_alertmanagers() -> None:
    """The Loki variant is loki/loki.yaml but for object storage and both Alertmanagers."""
    base = load_yaml(ROOT / "loki" / "loki.yaml")
    variant = load_yaml(SCALE_OUT / "loki.yaml")
    assert not scale_out.loki_variant_problems(variant, base)
    variant["limits_config"]["retention_period"] = "1h"
    assert scale_out.loki_variant_problems(variant, base) == [
        ("limits_config.retention_period", "differs from loki/loki.yaml (change both, or neither)")
    ]
    variant = load_yaml(SCALE_OUT / "loki.yaml")
    assert variant["common"]["storage"]["s3"]["endpoint"] == "minio:9000"
    urls = variant["ruler"]["alertmanager_url"].split(",")
    assert urls == ["http://alertmanager:9093", "http://alertmanager-2:9093"]


def test_tempo_variant_differs_from_the_base_only_in_storage_and_remote_write() -> None:
    """deploy/scale-out/tempo.yaml is tempo/tempo.yaml but for S3 and remote-writing to Mimir."""
    base = load_yaml(ROOT / "tempo" / "tempo.yaml")
    variant = load_yaml(SCALE_OUT / "tempo.yaml")
    assert not scale_out.tempo_variant_problems(variant, base)
    writes = variant["metrics_generator"]["storage"]["remote_write"]
    writes[0]["send_exemplars"] = not writes[0].get("send_exemplars")
    assert [f for f, _ in scale_out.tempo_variant_problems(variant, base)] == [
        "metrics_generator.storage.remote_write"
    ]
    assert writes[0]["url"] == "http://mimir:8080/api/v1/push"
    assert variant["storage"]["trace"]["backend"] == "s3"


def test_grafana_variant_points_only_the_prometheus_uid_at_mimir() -> None:
    """The data sources file is the base one but for `prometheus` reading Mimir, same uid."""
    base = load_yaml(ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yaml")
    variant = load_yaml(SCALE_OUT / "grafana" / "datasources.yaml")
    problems = scale_out.grafana_variant_problems(variant, base)
    assert not problems, problems
    prometheus = next(d for d in variant["datasources"] if d["uid"] == "prometheus")
    assert prometheus["url"] == "http://mimir:8080/prometheus"
    assert prometheus["jsonData"]["prometheusType"] == "Mimir"
    errors = KeySchema.load(GRAFANA_SCHEMA).check(
        variant, "deploy/scale-out/grafana/datasources.yaml"
    )
    assert not errors, "\n".join(errors)
    mounted = MERGED["grafana"]["volumes"]
    target = "/etc/grafana/provisioning/datasources/datasources.yaml"
    assert f"./deploy/scale-out/grafana/datasources.yaml:{target}:ro" in mounted


def test_buckets_job_creates_every_bucket_the_configs_use() -> None:
    """minio-buckets makes exactly the buckets mimir.yaml, loki.yaml and tempo.yaml name."""
    used = {
        load_yaml(SCALE_OUT / "mimir.yaml")["common"]["storage"]["s3"]["bucket_name"],
        load_yaml(SCALE_OUT / "loki.yaml")["common"]["storage"]["s3"]["bucketnames"],
        load_yaml(SCALE_OUT / "tempo.yaml")["storage"]["trace"]["s3"]["bucket"],
    }
    made = {arg.removeprefix("local/") for arg in MERGED["minio-buckets"]["command"][2:]}
    assert made == used


# --- Mimir: key schema only (no binary here) ----------------------------------------------------


def test_mimir_config_uses_only_keys_of_the_pinned_version() -> None:
    """Every key of deploy/scale-out/mimir.yaml is in the Mimir 3.2.0 key schema."""
    errors = KeySchema.load(MIMIR_SCHEMA).check(
        load_yaml(SCALE_OUT / "mimir.yaml"), "deploy/scale-out/mimir.yaml"
    )
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"common": {"storage": {"s3": {"bucketnames": "mimir"}}}}, "unknown key 'bucketnames'"),
        ({"ruler": {"enable_api": True}}, "unknown key 'enable_api'"),
        ({"limits": {"max_global_exemplars_per_user": "lots"}}, "expected integer"),
    ],
    ids=["loki-spelling", "removed-in-mimir", "mistyped"],
)
def test_mimir_key_schema_rejects_a_wrong_key(config: dict[str, Any], expected: str) -> None:
    """The schema names the path and the reference section of a wrong key."""
    errors = KeySchema.load(MIMIR_SCHEMA).check(config, "mimir.yaml")
    assert len(errors) == 1 and expected in errors[0], errors
    assert "https://grafana.com/docs/mimir/v3.2.x/" in errors[0]


def test_mimir_pin_matches_the_key_schema_and_its_tool(dotenv: dict[str, str]) -> None:
    """.env pins the Mimir image the schema was written from, and mimirtool of the same version."""
    schema = KeySchema.load(MIMIR_SCHEMA)
    assert dotenv["MIMIR_IMAGE"] == schema.data["image"]
    assert dotenv["MIMIRTOOL_IMAGE"].rpartition(":")[2] == schema.version


def test_mimir_addresses_are_services_of_the_stack() -> None:
    """The ruler's Alertmanagers and the S3 endpoint are service ports of the merged stack."""
    config = load_yaml(SCALE_OUT / "mimir.yaml")
    addresses = [
        *config["ruler"]["alertmanager_url"].split(","),
        config["common"]["storage"]["s3"]["endpoint"],
    ]
    for address in addresses:
        host, port = host_port(address)
        assert port in container_ports(MERGED[host]), address
    assert MERGED["mimir"]["volumes"][0] == "./deploy/scale-out/mimir.yaml:/etc/mimir/mimir.yaml:ro"


# --- real Loki and Tempo on an S3 API (moto: a stand-in, not MinIO) ------------------------------


@dataclass
class S3:
    """An S3-compatible server on loopback and a client for it."""

    hostport: str
    client: Any

    def keys(self, bucket: str) -> list[str]:
        """Return every object key in ``bucket``."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    """Run moto's S3 server mode on a loopback port with the profile's buckets."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        )
        for bucket in MERGED["minio-buckets"]["command"][2:]:
            client.create_bucket(Bucket=bucket.removeprefix("local/"))
        yield S3(f"127.0.0.1:{port}", client)
    finally:
        server.stop()


@dataclass
class Rendered:
    """A scale-out config made native: its file and the loopback ports it listens on."""

    path: Path
    ports: dict[str, int]


def _render(name: str, workdir: Path, s3_hostport: str, *receivers: str) -> Rendered:
    """Write loki.yaml or tempo.yaml with addresses, ports and paths moved onto this machine.

    ``receivers`` stand in for the two Alertmanagers (Loki; one may serve for both) or for
    Mimir (Tempo: the first).
    """
    receiver = receivers[0]
    alertmanagers = ",".join(f"http://{r}" for r in (receivers * 2)[:2])
    text = (SCALE_OUT / f"{name}.yaml").read_text(encoding="utf-8")
    data = workdir / "data"
    if name == "loki":
        ports = {"http": free_port(), "grpc": free_port()}
        swaps = {
            "http_listen_port: 3100": f"http_listen_port: {ports['http']}",
            "grpc_listen_port: 9096": f"grpc_listen_port: {ports['grpc']}",
            " /loki": f" {data}",
            "/etc/loki/rules": str(ROOT / "loki" / "rules"),
            "http://alertmanager:9093,http://alertmanager-2:9093": alertmanagers,
        }
    else:
        ports = {
            "http": free_port(),
            "grpc": free_port(),
            "otlp": free_port(),
            "otlp_grpc": free_port(),
        }
        swaps = {
            "0.0.0.0:4317": f"127.0.0.1:{ports['otlp_grpc']}",
            "0.0.0.0:4318": f"127.0.0.1:{ports['otlp']}",
            "http_listen_port: 3200": f"http_listen_port: {ports['http']}",
            "9095": str(ports["grpc"]),
            "/var/tempo": str(data),
            "http://mimir:8080": f"http://{receiver}",
        }
    swaps |= {"minio:9000": s3_hostport, "0.0.0.0": "127.0.0.1"}
    for old, new in swaps.items():
        assert old in text, f"{name}.yaml no longer contains {old!r}: update the test's render"
        text = text.replace(old, new)
    path = workdir / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return Rendered(path, ports)


def _backend_env() -> dict[str, str]:
    return {**os.environ, "S3_ACCESS_KEY_ID": S3_KEY, "S3_SECRET_ACCESS_KEY": S3_SECRET}


@dataclass
class Running:
    """A started backend process."""

    process: subprocess.Popen[bytes]
    ready_after: float
    log: Path

    def rss_mib(self) -> float:
        """Return the process' resident memory in MiB (from /proc)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8")
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024  # type: ignore[union-attr]


def _stop(process: subprocess.Popen[bytes], signum: int, grace: float) -> None:
    """Send ``signum`` to a process still running; SIGKILL it if it outlives ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def _started(name: str, rendered: Rendered, log: Path, kill: bool = False) -> Iterator[Running]:
    """Start the real backend from ``rendered``; stop it (SIGTERM, or SIGKILL if ``kill``)."""
    binary = require_binary(name)
    args = [str(binary), f"-config.file={rendered.path}", "-config.expand-env=true"]
    started = time.monotonic()
    with log.open("ab") as sink:
        process = subprocess.Popen(args, env=_backend_env(), stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{rendered.ports['http']}/ready"

        def ready() -> bool:
            assert process.poll() is None, f"{name} exited: {log.read_text()[-2000:]}"
            return httpx.get(url, timeout=2).status_code == 200

        poll_until(ready, f"{name} /ready (log: {log})", timeout=60)
        yield Running(process, time.monotonic() - started, log)
    finally:
        _stop(process, signal.SIGKILL if kill else signal.SIGTERM, STOP_GRACE_SECONDS)


@integration
@pytest.mark.parametrize("name", ["loki", "tempo"])
def test_backend_verifies_its_scale_out_config(name: str) -> None:
    """The real Loki and Tempo accept their scale-out config, environment expanded."""
    require_binary(name)
    findings = scale_out.backend_findings(ROOT, name)
    assert not findings, findings


@integration
def test_loki_refuses_to_start_without_the_s3_credentials(tmp_path: Path, s3: S3) -> None:
    """With S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY unset, Loki stops at start-up on them."""
    rendered = _render("loki", tmp_path, s3.hostport, "127.0.0.1:9")
    env = {k: v for k, v in _backend_env().items() if not k.startswith(("S3_", "AWS_"))}
    result = subprocess.run(
        [str(require_binary("loki")), f"-config.file={rendered.path}", "-config.expand-env=true"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    # The empty keys send the S3 client to the AWS credential chain, which has nothing here.
    assert result.returncode != 0
    assert "get credentials" in result.stderr, result.stderr[-2000:]


#: The OTLP resource of the shop, as its SDK sends it.
SHOP_RESOURCE = {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]}


def _otlp_log(line: str, **attributes: str | bool) -> dict[str, Any]:
    """Return an OTLP/JSON logs request with one line from the shop (and its attributes)."""
    record: dict[str, Any] = {"timeUnixNano": str(time.time_ns()), "body": {"stringValue": line}}
    record["attributes"] = [
        {"key": k, "value": {"boolValue": v} if isinstance(v, bool) else {"stringValue": v}}
        for k, v in attributes.items()
    ]
    return {"resourceLogs": [{"resource": SHOP_RESOURCE, "scopeLogs": [{"logRecords": [record]}]}]}


@integration
@pytest.mark.timeout(180)
def test_loki_ruler_alerts_reach_both_alertmanagers(tmp_path: Path, s3: S3) -> None:
    """A brute-force log line fires the Loki ruler's alert at both members of the HA pair."""
    with WebhookReceiver() as first, WebhookReceiver() as second:
        rendered = _render("loki", tmp_path, s3.hostport, first.hostport, second.hostport)
        base = f"http://127.0.0.1:{rendered.ports['http']}"
        with _started("loki", rendered, tmp_path / "loki.log"):
            body = _otlp_log("bruteforce detected", security=True, event="bruteforce_detected")
            assert httpx.post(f"{base}/otlp/v1/logs", json=body, timeout=10).status_code == 204

            def fired(receiver: WebhookReceiver) -> bool:
                return any(
                    alert["labels"]["alertname"] == "LogBruteForceDetected"
                    for d in receiver.snapshot()
                    if d.path == "/api/v2/alerts"
                    for alert in d.json
                )

            # The ruler evaluates every 15 s (loki.yaml); the alert has no `for`.
            poll_until(lambda: fired(first) and fired(second), "the alert at both", timeout=90)


@integration
@pytest.mark.timeout(240)
def test_loki_log_survives_the_loss_of_its_local_disk(tmp_path: Path, s3: S3) -> None:
    """An OTLP log is found by LogQL, flushed to the S3 bucket, and found again after a wipe."""
    with WebhookReceiver() as ruler_sink:
        rendered = _render("loki", tmp_path, s3.hostport, ruler_sink.hostport)
        base = f"http://127.0.0.1:{rendered.ports['http']}"
        line = f"scale-out {uuid.uuid4().hex}"
        query = {
            "query": f'{{service_name="shop"}} |= "{line}"',
            "start": str(time.time_ns() - 600 * 10**9),
        }

        def found() -> bool:
            body = httpx.get(f"{base}/loki/api/v1/query_range", params=query, timeout=10).json()
            return any(v[1] == line for s in body["data"]["result"] for v in s["values"])

        with _started("loki", rendered, tmp_path / "loki.log") as loki:
            response = httpx.post(f"{base}/otlp/v1/logs", json=_otlp_log(line), timeout=10)
            assert response.status_code == 204, response.text
            poll_until(found, "the line by LogQL", timeout=30)
            assert httpx.post(f"{base}/flush", timeout=10).status_code == 204
            print(
                f"\nloki (S3): ready after {loki.ready_after:.1f} s, RSS {loki.rss_mib():.0f} MiB"
            )
        # A graceful stop uploads the day's tsdb index next to the chunks.
        keys = s3.keys("loki")
        assert any(k.startswith("fake/") for k in keys), keys
        assert any(k.startswith("index/") for k in keys), keys
        shutil.rmtree(tmp_path / "data")
        with _started("loki", rendered, tmp_path / "loki-again.log"):
            poll_until(found, "the line by LogQL, read back from S3 alone", timeout=60)


def _otlp_span(trace_id: str) -> dict[str, Any]:
    """Return an OTLP/JSON traces request with one server span of the shop."""
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": SHOP_RESOURCE,
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": os.urandom(8).hex(),
                                "name": "GET /products",
                                "kind": 2,
                                "startTimeUnixNano": str(now),
                                "endTimeUnixNano": str(now + 20_000_000),
                            }
                        ]
                    }
                ],
            }
        ]
    }


@integration
@pytest.mark.timeout(240)
def test_tempo_trace_survives_the_loss_of_its_local_disk(tmp_path: Path, s3: S3) -> None:
    """An OTLP trace is found by id, written as a block to S3, and found again after a wipe."""
    with WebhookReceiver() as mimir:
        rendered = _render("tempo", tmp_path, s3.hostport, mimir.hostport)
        base = f"http://127.0.0.1:{rendered.ports['http']}"
        trace_id = os.urandom(16).hex()

        def by_id() -> bool:
            return httpx.get(f"{base}/api/v2/traces/{trace_id}", timeout=10).status_code == 200

        # SIGKILL: the WAL is on the disk about to be wiped; only the bucket may answer later.
        with _started("tempo", rendered, tmp_path / "tempo.log", kill=True) as tempo:
            otlp = f"http://127.0.0.1:{rendered.ports['otlp']}/v1/traces"
            assert httpx.post(otlp, json=_otlp_span(trace_id), timeout=10).status_code == 200
            poll_until(by_id, f"trace {trace_id} by id", timeout=15)
            figures = f"ready after {tempo.ready_after:.1f} s, RSS {tempo.rss_mib():.0f} MiB"
            print(f"\ntempo (S3): {figures}")
            # The live store cuts a block after max_block_duration (30 s) and flushes it.
            poll_until(
                lambda: any(k.endswith("/meta.json") for k in s3.keys("tempo")),
                "a complete block in the tempo bucket",
                timeout=120,
                interval=2,
            )
            poll_until(
                lambda: any(d.path == "/api/v1/push" for d in mimir.snapshot()),
                "the metrics-generator's remote write to Mimir's push path",
                timeout=60,
            )
        shutil.rmtree(tmp_path / "data")
        with _started("tempo", rendered, tmp_path / "tempo-again.log", kill=True):
            poll_until(by_id, f"trace {trace_id} by id, read back from S3 alone", timeout=60)


# --- Alertmanager HA pair -> two relays on one Postgres queue -> one delivery --------------------


def _psql(sql: str, database: str = "postgres") -> str:
    host, port, user = PG_ADMIN
    result = subprocess.run(
        [
            str(require_binary("psql")),
            f"--host={host}",
            f"--port={port}",
            f"--username={user}",
            f"--dbname={database}",
            "--set=ON_ERROR_STOP=1",
            "--no-psqlrc",
            "--tuples-only",
            "--no-align",
        ],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def databases() -> Iterator[dict[str, str]]:
    """Run deploy/scale-out/postgres/databases.sql twice (names made unique); drop them after."""
    require_listening("Postgres", PG_ADMIN[0], PG_ADMIN[1])
    suffix = uuid.uuid4().hex[:8]
    names = {
        "webhook_relay": f"webhook_relay_{suffix}",
        "synthetic_monitor": f"synthetic_monitor_{suffix}",
    }
    sql = (SCALE_OUT / "postgres" / "databases.sql").read_text(encoding="utf-8")
    for old, new in names.items():
        sql = sql.replace(old, new)
    try:
        _psql(sql)
        _psql(sql)  # idempotent: the second run finds both and creates nothing
        yield names
    finally:
        for name in names.values():
            _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


@integration
def test_databases_sql_creates_both_databases_and_can_run_again(databases: dict[str, str]) -> None:
    """databases.sql creates the relay's and the monitor's databases, and a rerun is harmless."""
    listed = _psql("SELECT datname FROM pg_database;").splitlines()
    assert set(databases.values()) <= set(listed)


class _Pair:
    """Two gossiping Alertmanagers, each posting to its own relay; both relays on one queue."""

    def __init__(self, workdir: Path, database: str, target: WebhookReceiver) -> None:
        self.workdir = workdir
        self.database = database
        self.target = target
        self.processes: list[subprocess.Popen[bytes]] = []
        self.relay_ports = [free_port(), free_port()]
        self.am_ports = [free_port(), free_port()]
        self.cluster_ports = [free_port(), free_port()]

    def relay_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.relay_ports[index]}"

    def am_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.am_ports[index]}"

    def _spawn(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        with (self.workdir / log).open("ab") as sink:
            process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    @staticmethod
    def _wait_ok(url: str, description: str) -> None:
        """Poll ``url`` until it answers 200."""
        poll_until(lambda: httpx.get(url, timeout=2).status_code == 200, description, timeout=60)

    def start(self) -> None:
        """Start both relays together, then both Alertmanagers, and wait until they are a pair."""
        token = self.workdir / "relay_token"
        token.write_text("scale-out-test-token\n", encoding="utf-8")
        routing = self.workdir / "routing.yml"
        routing.write_text(
            f"targets:\n  sink:\n    type: webhook\n    url: http://{self.target.hostport}/hook\n"
            "rules:\n  - name: all\n    match: {receiver: [page, chat, log, watchdog]}\n"
            "    targets: [sink]\nfallback: [sink]\n",
            encoding="utf-8",
        )
        for index in (0, 1):
            env = {
                **os.environ,
                "RELAY_HOST": "127.0.0.1",
                "RELAY_PORT": str(self.relay_ports[index]),
                "RELAY_ROUTING_FILE": str(routing),
                "RELAY_TOKEN_FILE": str(token),
                "RELAY_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.database}",
                # The profile's own window (deploy/scale-out/compose.yaml).
                "RELAY_DEDUP_WINDOW_SECONDS": _env_value(
                    "webhook-relay", "RELAY_DEDUP_WINDOW_SECONDS"
                ),
                "RELAY_POLL_INTERVAL_SECONDS": "0.1",
                "RELAY_LOG_LEVEL": "WARNING",
            }
            self._spawn([sys.executable, "-m", "webhook_relay", "serve"], env, f"relay-{index}.log")
        # Both start at once on the empty database, as compose starts them.
        for index in (0, 1):
            self._wait_ok(f"{self.relay_url(index)}/health/ready", f"relay {index} ready")
        binary = str(require_binary("alertmanager"))
        shipped = (ROOT / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
        for index in (0, 1):
            config = shipped.replace("http://webhook-relay:8080", self.relay_url(index))
            config = config.replace("/run/secrets/relay_token", str(token))
            path = self.workdir / f"alertmanager-{index}.yml"
            path.write_text(config, encoding="utf-8")
            cluster = f"127.0.0.1:{self.cluster_ports[index]}"
            args = [
                binary,
                f"--config.file={path}",
                f"--storage.path={self.workdir / f'am-{index}'}",
                f"--web.listen-address=127.0.0.1:{self.am_ports[index]}",
                f"--cluster.listen-address={cluster}",
                f"--cluster.advertise-address={cluster}",
                f"--cluster.peer=127.0.0.1:{self.cluster_ports[1 - index]}",
            ]
            self._spawn(args, dict(os.environ), f"alertmanager-{index}.log")
        for index in (0, 1):
            self._wait_ok(f"{self.am_url(index)}/-/ready", f"alertmanager {index} ready")

        def clustered() -> bool:
            status = httpx.get(f"{self.am_url(0)}/api/v2/status", timeout=5).json()
            return len(status["cluster"]["peers"]) == 2 and status["cluster"]["status"] == "ready"

        poll_until(clustered, "the two Alertmanagers to see each other", timeout=60)

    def stop(self) -> None:
        """Stop every process this pair started (relays drain for up to 10 s)."""
        for process in self.processes:
            _stop(process, signal.SIGTERM, 15)


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, databases: dict[str, str]
) -> Iterator[tuple[_Pair, WebhookReceiver]]:
    """The HA pair and both relays, delivering to a receiver the test owns."""
    with WebhookReceiver() as target:
        running = _Pair(tmp_path_factory.mktemp("ha"), databases["webhook_relay"], target)
        try:
            running.start()
            yield running, target
        finally:
            running.stop()


@integration
def test_silence_made_on_one_alertmanager_shows_on_the_other(
    pair: tuple[_Pair, WebhookReceiver],
) -> None:
    """A silence created through the first member is served by the second (gossip)."""
    running, _ = pair
    now = time.time()
    silence = {
        "matchers": [{"name": "alertname", "value": "ScaleOutSilenced", "isRegex": False}],
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
        "createdBy": "tests/test_scale_out.py",
        "comment": "gossip check",
    }
    response = httpx.post(f"{running.am_url(0)}/api/v2/silences", json=silence, timeout=10)
    assert response.status_code == 200, response.text
    silence_id = response.json()["silenceID"]

    def on_second() -> bool:
        listed = httpx.get(f"{running.am_url(1)}/api/v2/silences", timeout=10).json()
        return any(s["id"] == silence_id and s["status"]["state"] == "active" for s in listed)

    poll_until(on_second, f"silence {silence_id} on the second Alertmanager", timeout=30)


@integration
@pytest.mark.timeout(180)
def test_alert_sent_to_both_members_reaches_the_target_once(
    pair: tuple[_Pair, WebhookReceiver],
) -> None:
    """An alert posted to both Alertmanagers is delivered once through the two relays."""
    running, target = pair
    name = f"ScaleOut{uuid.uuid4().hex[:8]}"
    alert = [
        {
            # Routed like the Watchdog (group_wait 0s): the test needs no 30 s group wait.
            "labels": {"alertname": "Watchdog", "severity": "info", "check": name},
            "annotations": {"summary": "HA pair check"},
        }
    ]
    for index in (0, 1):
        response = httpx.post(f"{running.am_url(index)}/api/v2/alerts", json=alert, timeout=10)
        assert response.status_code == 200, response.text

    def ours() -> list[Any]:
        return [
            d
            for d in target.snapshot()
            if any(a["labels"].get("check") == name for a in (d.json or {}).get("alerts", []))
        ]

    poll_until(ours, f"the {name} notification at the target", timeout=60)
    # The second member would send after its peer timeout (15 s) had it missed the first's
    # notification log; give it that and a margin before counting.
    time.sleep(25)
    assert len(ours()) == 1, [d.json for d in ours()]


@integration
def test_same_notification_at_both_relays_is_delivered_once(
    pair: tuple[_Pair, WebhookReceiver],
) -> None:
    """Two relays sharing the Postgres queue deliver a notification posted to both once."""
    running, target = pair
    group = f'{{}}:{{alertname="Partition{uuid.uuid4().hex[:8]}"}}'
    body = {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "chat",
        "groupLabels": {"alertname": "Partition"},
        "commonLabels": {"alertname": "Partition"},
        "commonAnnotations": {},
        "externalURL": running.am_url(0),
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Partition"},
                "annotations": {},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }
    headers = {"Authorization": "Bearer scale-out-test-token"}
    answers = [
        httpx.post(f"{running.relay_url(i)}/webhook", json=body, headers=headers, timeout=10).json()
        for i in (0, 1)
    ]
    assert [a["status"] for a in answers] == ["accepted", "duplicate"], answers

    def delivered() -> list[Any]:
        return [d for d in target.snapshot() if (d.json or {}).get("groupKey") == group]

    poll_until(delivered, "the notification at the target", timeout=30)
    time.sleep(2)  # both replicas poll the queue every 0.1 s: room for a wrong second delivery
    assert len(delivered()) == 1


# --- the synthetic monitor's history in Postgres ------------------------------------------------


@contextmanager
def _http_target() -> Iterator[str]:
    """Serve GET / with 200 on a loopback port (the monitor's check target)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@integration
def test_monitor_stores_its_runs_in_postgres(tmp_path: Path, databases: dict[str, str]) -> None:
    """The monitor started with a postgresql+asyncpg URL writes each run to that database."""
    database = databases["synthetic_monitor"]
    with _http_target() as url:
        journeys = tmp_path / "journeys"
        journeys.mkdir()
        (journeys / "check.yml").write_text(
            f"checks:\n  - {{name: scale-out-home, url: '{url}/', interval: 0.5}}\n",
            encoding="utf-8",
        )
        port = free_port()
        env = {
            **os.environ,
            "MONITOR_HOST": "127.0.0.1",
            "MONITOR_PORT": str(port),
            "MONITOR_CONFIG_PATH": str(journeys),
            "MONITOR_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
            "MONITOR_SHUTDOWN_GRACE_SECONDS": "2",
        }
        log = tmp_path / "monitor.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "synthetic_monitor", "serve"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            poll_until(
                lambda: (
                    httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200
                ),
                f"the monitor ready (log: {log})",
                timeout=60,
            )
            count = poll_until(
                lambda: int(
                    _psql(
                        "SELECT count(*) FROM synthetic_runs WHERE journey = 'scale-out-home' "
                        "AND success;",
                        database,
                    )
                    or 0
                ),
                "a successful run stored in Postgres",
                timeout=30,
            )
            assert count >= 1
        finally:
            _stop(process, signal.SIGTERM, 15)
