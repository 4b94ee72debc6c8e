"""The Loki ruler-API target against the REAL Loki 3.7.6 (../shared/backends), not a double.

Loki's ruler API only writes to an object-store ruler storage: this Loki keeps its rules in
``ruler_storage`` with the ``filesystem`` backend, which Loki 3.7 reads only with
``storage_config.use_thanos_objstore: true`` (without it Loki logs that ``ruler_storage`` is
ignored in favour of the read-only ``ruler.storage``). Multi-tenant (``auth_enabled``), so
the tenant header is required, as on a staging Loki.
https://grafana.com/docs/loki/v3.7.x/reference/loki-http-api/#ruler
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from deploy_support import running

from lookout_stack.deploy.model import DeployError, RulerApi
from lookout_stack.deploy.targets.rendered import rule_files
from lookout_stack.deploy.targets.ruler import RulerApiTarget
from stack_support import free_port, require_binary

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
TENANT = "staging"


def _config(data: Path, http_port: int, grpc_port: int) -> str:
    return f"""
auth_enabled: true
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http_port}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc_port}
  log_level: warn
common:
  path_prefix: {data}
  replication_factor: 1
  ring:
    instance_addr: 127.0.0.1
    kvstore:
      store: inmemory
schema_config:
  configs:
    - from: 2024-01-01
      store: tsdb
      object_store: filesystem
      schema: v13
      index:
        prefix: index_
        period: 24h
storage_config:
  use_thanos_objstore: true
  object_store:
    filesystem:
      dir: {data}/objects
ruler:
  enable_api: true
  rule_path: {data}/rules-temp
  wal:
    dir: {data}/ruler-wal
ruler_storage:
  backend: filesystem
  filesystem:
    dir: {data}/ruler-store
ingester:
  lifecycler:
    min_ready_duration: 0s
analytics:
  reporting_enabled: false
"""


@pytest.fixture(scope="module")
def loki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real multi-tenant Loki whose ruler API stores groups on the filesystem."""
    binary = require_binary("loki")
    work = tmp_path_factory.mktemp("loki")
    http_port, grpc_port = free_port(), free_port()
    config = work / "loki.yaml"
    config.write_text(_config(work / "data", http_port, grpc_port))
    url = f"http://127.0.0.1:{http_port}"
    with running([str(binary), f"-config.file={config}"], f"{url}/ready", work / "loki.log"):
        yield url


def _stored(url: str, namespace: str) -> dict[str, dict[str, object]]:
    response = httpx.get(
        f"{url}/loki/api/v1/rules/{namespace}", headers={"X-Scope-OrgID": TENANT}, timeout=10
    )
    if response.status_code == 404:
        return {}
    return {g["name"]: g for g in yaml.safe_load(response.text)[namespace]}


def test_repo_loki_rules_created_then_in_sync(loki: str) -> None:
    """The repo's Loki rule groups are stored in the namespace, and the next plan is empty
    although Loki prints them back re-marshalled (durations, key order, block scalars)."""
    section = RulerApi(url=loki, kind="loki", tenant=TENANT, namespace="lookout-repo")
    files = rule_files(REPO, "loki")
    names = [g["name"] for text in files.values() for g in yaml.safe_load(text)["groups"]]
    target = RulerApiTarget(section, files, REPO / "loki" / "rules")
    changes = target.plan()
    assert [c.kind for c in changes] == ["create"] * len(names)
    for change in changes:
        change.apply()
    target.finish()
    assert sorted(_stored(loki, "lookout-repo")) == sorted(names)
    assert RulerApiTarget(section, files, REPO / "loki" / "rules").plan() == []


def test_update_delete_and_refusal_on_real_loki(loki: str) -> None:
    """A changed group is one update, a dropped group one delete, and a group Loki refuses
    (bad LogQL) is a DeployError quoting Loki's answer."""
    section = RulerApi(url=loki, kind="loki", tenant=TENANT, namespace="lookout-edit")
    origin = Path("/rendered/loki/rules")
    group = (
        "  - name: {name}\n    rules:\n      - alert: {name}Burst\n"
        '        expr: sum(count_over_time({{service_name="shop"}}[5m])) > {threshold}\n'
        "        for: 120s\n"
    )
    two = {
        "fake/a.yaml": "groups:\n"
        + group.format(name="a", threshold=1)
        + group.format(name="b", threshold=1)
    }
    for change in RulerApiTarget(section, two, origin).plan():
        change.apply()
    one = {"fake/a.yaml": "groups:\n" + group.format(name="a", threshold=5)}
    changes = RulerApiTarget(section, one, origin).plan()
    assert [(c.kind, c.object) for c in changes] == [
        ("update", "rule group a (fake/a.yaml) in namespace lookout-edit"),
        ("delete", "rule group b in namespace lookout-edit"),
    ]
    assert "> 1\n" in changes[0].diff and "> 5\n" in changes[0].diff
    for change in changes:
        change.apply()
    stored = _stored(loki, "lookout-edit")
    assert list(stored) == ["a"]
    assert stored["a"]["rules"][0]["for"] == "2m"  # type: ignore[index]
    assert RulerApiTarget(section, one, origin).plan() == []
    bad = {
        "fake/a.yaml": "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: sum(\n"
    }
    change = RulerApiTarget(section, bad, origin).plan()[0]
    with pytest.raises(DeployError) as raised:
        change.apply()
    assert str(raised.value).startswith(
        "loki rules (loki ruler API): POST /loki/api/v1/rules/lookout-edit answered 400: "
    )
    assert list(_stored(loki, "lookout-edit")) == ["a"]
