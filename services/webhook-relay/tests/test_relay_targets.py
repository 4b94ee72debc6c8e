"""Every target against local receivers: the exact payloads each API expects, and its limits."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from relay_support import Received, alert, free_port, payload, receiver
from webhook_relay.errors import PermanentDeliveryError, TransientDeliveryError
from webhook_relay.payload import Notification
from webhook_relay.targets import DeliveryContext, build_target
from webhook_relay.targets.base import parse_retry_after
from webhook_relay.targets.pagerduty import dedup_key
from webhook_relay.templating import Templates, render_message


class MemoryState:
    """An in-memory StateStore."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], dict[str, Any]] = {}

    async def get(self, target: str, key: str) -> dict[str, Any] | None:
        return self.values.get((target, key))

    async def put(self, target: str, key: str, value: dict[str, Any]) -> None:
        self.values[(target, key)] = value


def deliver(
    spec: dict[str, Any],
    body: dict[str, Any],
    state: MemoryState | None = None,
    delivery_id: int = 7,
) -> None:
    """Build a target from ``spec`` and deliver ``body`` through it."""
    target = build_target("t1", spec)
    notification = Notification.model_validate(body)

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            await target.deliver(
                DeliveryContext(
                    delivery_id=delivery_id,
                    notification=notification,
                    message=render_message(notification, Templates()),
                    http=client,
                    state=state or MemoryState(),
                    timeout=5.0,
                    headers={
                        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                    },
                )
            )

    asyncio.run(run())


def many(count: int, text: str = "x") -> dict[str, Any]:
    """Return a payload with ``count`` firing alerts, each with a long description."""
    alerts = [
        alert(fingerprint=f"f{i}") | {"annotations": {"summary": f"alert {i} " + text}}
        for i in range(count)
    ]
    return payload(alerts=alerts)


def test_slack_incoming_webhook_posts_block_kit() -> None:
    """An incoming webhook gets text plus header and section blocks."""
    with receiver() as slack:
        deliver({"type": "slack", "webhook_url": f"{slack.url}/services/T/B/X"}, payload())
        (request,) = slack.wait_for(1)
    body = request.json()
    assert request.path == "/services/T/B/X"
    assert body["text"] == "[FIRING:1] HighErrorRate"
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[FIRING:1] HighErrorRate"},
    }
    assert body["blocks"][1]["type"] == "section"
    assert body["blocks"][1]["text"]["type"] == "mrkdwn"
    assert "HighErrorRate is firing - error ratio above 5%" in body["blocks"][1]["text"]["text"]
    assert request.headers["traceparent"].startswith("00-0af7651916cd43dd")


def test_slack_limits_blocks_and_section_length() -> None:
    """80 alerts become at most 50 blocks ending in "+N more"; sections stay under 3,000 chars."""
    with receiver() as slack:
        deliver({"type": "slack", "webhook_url": f"{slack.url}/hook"}, many(80, "y" * 4000))
        (request,) = slack.wait_for(1)
    blocks = request.json()["blocks"]
    assert len(blocks) == 50
    assert all(len(block["text"]["text"]) <= 3000 for block in blocks if block["type"] == "section")
    assert blocks[-1]["elements"][0]["text"] == "+32 more in Alertmanager: http://alertmanager:9093"


def test_slack_bot_posts_then_updates_and_threads_on_resolve() -> None:
    """With a token: post while firing, keep ts, then chat.update and a thread reply on resolve."""
    state = MemoryState()

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps({"ok": True, "channel": "C1", "ts": "1700.0001"}).encode(),
        )

    spec = {"type": "slack", "token": "xoxb-test", "channel": "C1", "api_url": ""}
    with receiver() as slack:
        slack.responder = answer
        spec["api_url"] = slack.url
        deliver(spec, payload(), state)
        deliver(spec, payload(status="resolved", alerts=[alert(status="resolved")]), state)
        requests = slack.wait_for(3)
    assert [r.path for r in requests] == ["/chat.postMessage", "/chat.update", "/chat.postMessage"]
    assert requests[0].headers["authorization"] == "Bearer xoxb-test"
    assert requests[0].json()["channel"] == "C1"
    assert requests[1].json()["ts"] == "1700.0001"
    assert requests[1].json()["text"] == "[RESOLVED] HighErrorRate"
    assert requests[2].json()["thread_ts"] == "1700.0001"
    assert state.values[("t1", payload()["groupKey"])] == {"channel": "C1", "ts": "1700.0001"}


@pytest.mark.parametrize(
    ("error", "kind"),
    [("ratelimited", TransientDeliveryError), ("channel_not_found", PermanentDeliveryError)],
    ids=["ratelimited-transient", "not-found-permanent"],
)
def test_slack_api_errors_are_classified(error: str, kind: type[Exception]) -> None:
    """Slack's ok=false answers are transient when rate limited, else permanent."""
    with receiver() as slack:
        slack.responder = lambda _r: (200, {}, json.dumps({"ok": False, "error": error}).encode())
        with pytest.raises(kind):
            deliver(
                {"type": "slack", "token": "xoxb", "channel": "C1", "api_url": slack.url}, payload()
            )


def test_pagerduty_trigger_and_resolve_share_a_dedup_key() -> None:
    """Trigger then resolve go to Events v2 with the same stable dedup_key."""
    with receiver() as pd:
        pd.responder = lambda _r: (202, {}, b'{"status":"success"}')
        spec = {"type": "pagerduty", "routing_key": "R0UT1NGKEY", "url": f"{pd.url}/v2/enqueue"}
        deliver(spec, payload())
        deliver(spec, payload(status="resolved", alerts=[alert(status="resolved")]))
        trigger, resolve = (r.json() for r in pd.wait_for(2))
    key = dedup_key("t1", payload()["groupKey"])
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == "R0UT1NGKEY"
    assert trigger["dedup_key"] == key == resolve["dedup_key"]
    assert trigger["payload"]["summary"] == "[FIRING:1] HighErrorRate"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "alertmanager"
    assert trigger["payload"]["timestamp"].startswith("2026-11-25T10:00:00")
    assert trigger["links"] == [{"href": "http://alertmanager:9093", "text": "Alertmanager"}]
    assert resolve == {"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": key}


def test_pagerduty_summary_is_capped_and_unknown_severity_is_error() -> None:
    """The summary stays within 1,024 characters; a severity PagerDuty lacks maps to error."""
    body = payload(alerts=[alert(severity="page")])
    body["groupLabels"] = {"alertname": "A" * 3000}
    with receiver() as pd:
        deliver({"type": "pagerduty", "routing_key": "k", "url": pd.url}, body)
        (request,) = pd.wait_for(1)
    assert len(request.json()["payload"]["summary"]) == 1024
    assert request.json()["payload"]["severity"] == "error"


def test_teams_posts_adaptive_card_1_4_envelope() -> None:
    """Teams gets a message with one Adaptive Card 1.4 attachment."""
    with receiver() as teams:
        deliver({"type": "teams", "webhook_url": f"{teams.url}/workflows"}, payload())
        (request,) = teams.wait_for(1)
    body = request.json()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["body"][0]["text"] == "[FIRING:1] HighErrorRate"
    assert card["actions"][0] == {
        "type": "Action.OpenUrl",
        "title": "Open Alertmanager",
        "url": "http://alertmanager:9093",
    }


def test_teams_stays_under_28_kb() -> None:
    """A huge group is cut to fit 28 KB, ending with "+N more"."""
    with receiver() as teams:
        deliver({"type": "teams", "webhook_url": teams.url}, many(200, "z" * 500))
        (request,) = teams.wait_for(1)
    assert len(request.body) <= 28 * 1024
    assert request.json()["attachments"][0]["content"]["body"][-1]["text"].startswith("+")


def test_discord_embed_within_limits() -> None:
    """Discord gets one embed: at most 25 fields and 6,000 characters, then "+N more"."""
    with receiver() as discord:
        deliver(
            {"type": "discord", "webhook_url": f"{discord.url}/api/webhooks/1/abc"},
            many(40, "w" * 300),
        )
        (request,) = discord.wait_for(1)
    (embed,) = request.json()["embeds"]
    assert len(embed["fields"]) <= 25
    total = (
        len(embed["title"])
        + len(embed["footer"]["text"])
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= 6000
    assert embed["footer"]["text"].startswith("+")
    assert request.json()["allowed_mentions"] == {"parse": []}


def test_discord_429_is_transient_with_retry_after() -> None:
    """A 429 with Retry-After becomes a transient error carrying the delay."""
    with receiver() as discord:
        discord.responder = lambda _r: (429, {"Retry-After": "3"}, b'{"retry_after": 3.0}')
        with pytest.raises(TransientDeliveryError) as raised:
            deliver({"type": "discord", "webhook_url": discord.url}, payload())
    assert raised.value.retry_after == 3.0
    assert raised.value.reason == "rate_limited"


def test_generic_webhook_is_signed_with_timestamp() -> None:
    """The body is the payload; the signature is HMAC-SHA256 over "<timestamp>.<body>"."""
    with receiver() as hook:
        deliver(
            {
                "type": "webhook",
                "url": f"{hook.url}/in",
                "secret": "s3cret",
                "headers": {"X-Team": "ops"},
            },
            payload(),
        )
        (request,) = hook.wait_for(1)
    timestamp = request.headers["x-relay-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(
        b"s3cret", timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert request.headers["x-relay-signature"] == f"sha256={expected}"
    assert request.headers["idempotency-key"] == "t1-7"
    assert request.headers["x-team"] == "ops"
    assert request.json()["groupKey"] == payload()["groupKey"]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
        (408, TransientDeliveryError),
        (400, PermanentDeliveryError),
        (404, PermanentDeliveryError),
    ],
    ids=["500", "503", "408", "400", "404"],
)
def test_http_status_classification(status: int, kind: type[Exception]) -> None:
    """5xx, 408 and 429 are retried; other 4xx are permanent."""
    with receiver() as hook:
        hook.responder = lambda _r: (status, {}, b"no")
        with pytest.raises(kind):
            deliver({"type": "webhook", "url": hook.url}, payload())


def test_unreachable_target_is_transient() -> None:
    """A refused connection is a transient failure."""
    with pytest.raises(TransientDeliveryError) as raised:
        deliver({"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/"}, payload())
    assert raised.value.reason == "connection"


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP date is turned into seconds."""
    assert parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now=1795600800.0) == pytest.approx(
        30.0, abs=1
    )
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None


def test_email_over_smtp() -> None:
    """The e-mail reaches a local SMTP server with subject, text and HTML parts."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    received: list[Any] = []

    class Collect(MessageHandler):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        spec = {
            "type": "email",
            "host": "127.0.0.1",
            "port": port,
            "sender": "relay@example.test",
            "to": ["oncall@example.test"],
            "security": "none",
        }
        deliver(spec, payload())
    finally:
        controller.stop()
    (mail,) = received
    assert mail["Subject"] == "[FIRING:1] HighErrorRate"
    assert mail["To"] == "oncall@example.test"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in mail.walk()
        if not part.is_multipart()
    }
    assert "[firing] HighErrorRate is firing" in parts["text/plain"]
    assert "<h3>[FIRING:1] HighErrorRate</h3>" in parts["text/html"]


def test_apprise_json_url() -> None:
    """An apprise json:// URL posts title and body to the local receiver."""
    with receiver() as sink:
        host_port = sink.url.removeprefix("http://")
        deliver({"type": "apprise", "urls": [f"json://{host_port}/notify"]}, payload())
        (request,) = sink.wait_for(1)
    body = request.json()
    assert body["title"] == "[FIRING:1] HighErrorRate"
    assert "HighErrorRate is firing" in body["message"]


def test_apprise_failure_is_transient() -> None:
    """An apprise notification that fails is retried."""
    with receiver() as sink:
        sink.responder = lambda _r: (500, {}, b"")
        with pytest.raises(TransientDeliveryError):
            deliver(
                {"type": "apprise", "urls": [f"json://{sink.url.removeprefix('http://')}/n"]},
                payload(),
            )


def test_log_target_writes_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """The log target writes the title and alert lines as one record."""
    with caplog.at_level("WARNING", logger="webhook_relay.notifications"):
        deliver({"type": "log"}, payload())
    (record,) = caplog.records
    assert record.getMessage() == "[FIRING:1] HighErrorRate"
    assert record.alerts == ["HighErrorRate is firing - error ratio above 5%"]  # type: ignore[attr-defined]
