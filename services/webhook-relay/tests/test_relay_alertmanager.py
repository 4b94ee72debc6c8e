"""Debian's real Alertmanager sends to the relay (bearer token from a file); the relay delivers."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from relay_support import (
    TOKEN,
    alertmanager_binary,
    free_port,
    receiver,
    require,
    start_relay,
    wait_http,
)

pytestmark = pytest.mark.integration


def test_real_alertmanager_fires_and_resolves_through_the_relay(tmp_path: Path) -> None:
    """An alert posted to Alertmanager reaches the relay's target firing, then resolved."""
    binary = alertmanager_binary()
    require(binary is not None, "the alertmanager binary (Debian package prometheus-alertmanager)")
    assert binary is not None
    relay_port, am_port = free_port(), free_port()
    token_file = tmp_path / "relay_token"
    token_file.write_text(TOKEN + "\n")
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: relay
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: relay
    webhook_configs:
      - url: http://127.0.0.1:{relay_port}/webhook
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token_file}
"""
    )
    with receiver() as target:
        routing = tmp_path / "routing.yml"
        routing.write_text(
            f"targets:\n  sink: {{type: webhook, url: '{target.url}/in'}}\n"
            "rules:\n  - name: from-am\n"
            "    match: {receiver: relay, severity: critical}\n    targets: [sink]\n"
        )
        log = tmp_path / "relay.log"
        relay = start_relay(
            {
                "RELAY_ROUTING_FILE": str(routing),
                "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}",
                "RELAY_TOKEN_FILE": str(token_file),
                "RELAY_HOST": "127.0.0.1",
                "RELAY_PORT": str(relay_port),
                "RELAY_POLL_INTERVAL_SECONDS": "0.1",
                "OTEL_SDK_DISABLED": "true",
            },
            log,
        )
        am_log = (tmp_path / "alertmanager.log").open("wb")
        alertmanager = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # no gossip: a single, isolated instance
            ],
            stdout=am_log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{relay_port}/health/ready", timeout=30, process=relay)
            wait_http(f"http://127.0.0.1:{am_port}/-/ready", timeout=30, process=alertmanager)
            alert = {
                "labels": {
                    "alertname": "RelayIntegration",
                    "severity": "critical",
                    "service": "shop",
                },
                "annotations": {"summary": "relay integration test"},
                "generatorURL": "http://prometheus:9090/graph",
            }
            api = f"http://127.0.0.1:{am_port}/api/v2/alerts"
            assert httpx.post(api, json=[alert], timeout=5).status_code == 200
            firing = target.wait_for(1, timeout=20)[0].json()
            assert firing["receiver"] == "relay"
            assert firing["status"] == "firing"
            assert firing["alerts"][0]["labels"]["alertname"] == "RelayIntegration"
            assert firing["alerts"][0]["fingerprint"]
            ended = {**alert, "endsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
            time.sleep(1.1)
            assert httpx.post(api, json=[ended], timeout=5).status_code == 200
            resolved = target.wait_for(2, timeout=20)[1].json()
            assert resolved["status"] == "resolved"
            assert resolved["groupKey"] == firing["groupKey"]
        except AssertionError:
            print(log.read_text()[-3000:], (tmp_path / "alertmanager.log").read_text()[-3000:])
            raise
        finally:
            alertmanager.terminate()
            relay.terminate()
            alertmanager.wait(timeout=10)
            relay.wait(timeout=15)
            am_log.close()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert all("Bearer " + TOKEN not in json.dumps(line) for line in lines)
    assert relay.returncode == 0
