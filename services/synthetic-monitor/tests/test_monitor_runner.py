"""Running journeys against local servers: steps, extraction, secrets, cleanup, retries, TLS."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lookout_telemetry.logs import capture_json_logs
from monitor_support import PASSWORD, DnsServer, Target, make_certs, target, write
from synthetic_monitor.config import Journey, load_config
from synthetic_monitor.report import render_json, render_text
from synthetic_monitor.results import RunResult
from synthetic_monitor.runner import JourneyRunner


def journey(tmp_path: Path, text: str, name: str | None = None) -> Journey:
    """Load ``text`` and return its journey (the only one, or ``name``)."""
    config = load_config(write(tmp_path / "j.yml", text), {})
    return config.journeys[name] if name else next(iter(config.journeys.values()))


def run(
    item: Journey,
    provider: TracerProvider | None = None,
    environ: dict[str, str] | None = None,
) -> RunResult:
    """Run one journey to completion."""
    return asyncio.run(JourneyRunner(provider, environ=environ or {}).run(item))


LOGIN = """
journeys:
  - name: login
    variables: {{base: "{base}"}}
    secrets:
      password: {{env: TEST_PASSWORD}}
    steps:
      - name: login
        method: POST
        url: "{{{{ base }}}}/login"
        json: {{password: "{{{{ secrets.password }}}}"}}
        conditions: ["[STATUS] == 200"]
        extract:
          token: {{json: "$.token"}}
          path: {{header: X-Request-Path}}
      - name: me
        url: "{{{{ base }}}}/me"
        headers: {{Authorization: "Bearer {{{{ token }}}}"}}
        conditions: ["[STATUS] == 200", "[BODY].email == alice@example.com"]
    cleanup:
      - name: logout
        method: POST
        url: "{{{{ base }}}}/logout"
        headers: {{Authorization: "Bearer {{{{ token }}}}"}}
        conditions: ["[STATUS] == 204"]
"""


def test_a_journey_extracts_a_token_and_uses_it_in_later_steps(tmp_path: Path) -> None:
    """Log in, take the token from the JSON body, send it on; cleanup runs after."""
    with target() as server:
        result = run(
            journey(tmp_path, LOGIN.format(base=server.url)), environ={"TEST_PASSWORD": PASSWORD}
        )
        paths = [(s.method, s.path) for s in server.seen]
    assert result.success, result.failure_reason()
    assert result.outcome == "success"
    assert [s.name for s in result.steps] == ["login", "me", "logout"]
    assert result.steps[-1].cleanup
    assert paths == [("POST", "/login"), ("GET", "/me"), ("POST", "/logout")]


def test_a_failing_step_stops_the_attempt_but_cleanup_still_runs(tmp_path: Path) -> None:
    """Later steps are skipped with the reason; cleanup whose input exists still runs."""
    text = LOGIN.replace('"[BODY].email == alice@example.com"', '"[BODY].email == bob"')
    with target() as server:
        result = run(
            journey(tmp_path, text.format(base=server.url)), environ={"TEST_PASSWORD": PASSWORD}
        )
    assert not result.success
    assert result.failing_step is not None and result.failing_step.name == "me"
    assert "[BODY].email (alice@example.com) == bob" in result.failure_reason()
    logout = result.steps[-1]
    assert logout.cleanup and logout.success


def test_cleanup_is_skipped_with_a_reason_when_its_input_was_never_extracted(
    tmp_path: Path,
) -> None:
    """A failed login leaves no token: logout is skipped, naming the missing value."""
    with target() as server:
        result = run(
            journey(tmp_path, LOGIN.format(base=server.url)), environ={"TEST_PASSWORD": "wrong-one"}
        )
    assert not result.success
    names = {s.name: s for s in result.steps}
    assert names["me"].skipped
    assert names["logout"].skipped
    assert "needs token" in (names["logout"].error or "")


def test_secrets_never_reach_logs_reports_or_errors(tmp_path: Path) -> None:
    """The target echoes a wrong password in its error; the monitor redacts it everywhere."""
    text = LOGIN.replace(
        'conditions: ["[STATUS] == 200"]', 'conditions: ["[STATUS] == 200", "[BODY] == x"]'
    )
    wrong = "wrong-but-secret-9"
    with target() as server, capture_json_logs() as lines:
        result = run(
            journey(tmp_path, text.format(base=server.url)), environ={"TEST_PASSWORD": wrong}
        )
    assert not result.success
    everything = render_text([result]) + render_json([result]) + repr(lines)
    assert wrong not in everything
    assert "[REDACTED]" in render_text([result])


def test_a_missing_secret_fails_the_run_naming_the_variable(tmp_path: Path) -> None:
    """An unset secret variable is a failed run whose reason names the variable."""
    result = run(journey(tmp_path, LOGIN.format(base="http://127.0.0.1:9")))
    assert not result.success
    assert "environment variable TEST_PASSWORD is not set" in result.failure_reason()


def test_a_secret_can_come_from_a_file(tmp_path: Path) -> None:
    """secrets: {file: PATH} reads the file (trailing newline dropped)."""
    secret = write(tmp_path / "pw", PASSWORD + "\n")
    text = LOGIN.replace("{{env: TEST_PASSWORD}}", f"{{{{file: {secret}}}}}")
    with target() as server:
        result = run(journey(tmp_path, text.format(base=server.url)))
    assert result.success, result.failure_reason()


def test_every_request_carries_traceparent_and_synthetic_baggage(
    tmp_path: Path, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    """Each request's traceparent belongs to the run's trace and its step span."""
    with target() as server:
        result = run(
            journey(tmp_path, LOGIN.format(base=server.url)),
            tracer_provider,
            {"TEST_PASSWORD": PASSWORD},
        )
        seen = list(server.seen)
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert set(spans) == {"journey login", "step login", "step me", "cleanup logout"}
    for request, step in zip(seen, ("step login", "step me", "cleanup logout"), strict=True):
        _, trace_id, span_id, _ = request.headers["traceparent"].split("-")
        assert trace_id == result.trace_id
        assert span_id == format(spans[step].context.span_id, "016x")
        assert "synthetic=true" in request.headers["baggage"]
        assert "synthetic.journey=login" in request.headers["baggage"]
    root = spans["journey login"]
    assert root.attributes is not None and root.attributes["synthetic"] is True
    assert spans["step me"].parent is not None
    assert spans["step me"].parent.span_id == root.context.span_id


def test_retries_are_visible_a_pass_after_a_retry_is_flaky(tmp_path: Path) -> None:
    """A run that passed at its second attempt is reported flaky with 2 attempts."""
    with target() as server:
        text = f"""
checks:
  - name: flaky
    url: "{server.url}/flaky?key=r1&fail=1"
    retries: 2
    retry_delay: 0s
    conditions: ["[STATUS] == 200"]
"""
        result = run(journey(tmp_path, text))
    assert result.success
    assert result.outcome == "flaky"
    assert result.attempts == 2
    assert not result.first_attempt_success


def test_retries_run_out_and_the_run_fails(tmp_path: Path) -> None:
    """A target failing more often than the retries allow fails the run."""
    with target() as server:
        text = f"""
checks:
  - name: down
    url: "{server.url}/status/503"
    retries: 1
    retry_delay: 0s
"""
        result = run(journey(tmp_path, text))
    assert not result.success
    assert result.attempts == 2
    assert "[STATUS] (503) < 400" in result.failure_reason()


def test_a_hanging_target_is_cut_at_the_step_timeout(tmp_path: Path) -> None:
    """A server that never answers fails the step after its timeout, not later."""
    with target() as server:
        text = f"""
journeys:
  - name: hang
    timeout: 5s
    steps:
      - name: wait
        url: "{server.url}/hang"
        timeout: 300ms
      - name: after
        url: "{server.url}/ok"
"""
        started = time.monotonic()
        result = run(journey(tmp_path, text))
        elapsed = time.monotonic() - started
    assert not result.success
    assert elapsed < 2.0
    assert "timed out after 0.3s" in result.failure_reason()
    assert result.steps[1].skipped


def test_the_journey_timeout_bounds_the_whole_attempt(tmp_path: Path) -> None:
    """Steps share the journey's timeout: later steps get only what is left."""
    with target() as server:
        text = f"""
journeys:
  - name: budget
    timeout: 600ms
    steps:
      - {{name: one, url: "{server.url}/slow?ms=400"}}
      - {{name: two, url: "{server.url}/slow?ms=400"}}
"""
        started = time.monotonic()
        result = run(journey(tmp_path, text))
        elapsed = time.monotonic() - started
    assert not result.success
    assert result.failing_step is not None and result.failing_step.name == "two"
    assert elapsed < 1.5


def test_https_steps_report_certificate_expiry_from_a_test_ca(tmp_path: Path) -> None:
    """Against a CA-signed certificate with a known expiry, days left are measured."""
    certs = make_certs(tmp_path / "pki", days_left=10)
    with target(certs) as server:
        text = f"""
checks:
  - name: tls-ok
    url: "{server.url}/ok"
    tls: {{ca_file: {certs.ca_file}}}
    conditions: ["[STATUS] == 200", "[CERT_DAYS_LEFT] > 9", "[CERT_DAYS_LEFT] < 11"]
  - name: tls-soon
    url: "{server.url}/ok"
    tls: {{ca_file: {certs.ca_file}}}
    conditions: ["[CERT_DAYS_LEFT] > 14"]
  - name: untrusted
    url: "{server.url}/ok"
  - name: insecure
    url: "{server.url}/ok"
    tls: {{verify: false}}
    conditions: ["[CERT_DAYS_LEFT] < 11"]
  - name: handshake
    type: tls
    host: 127.0.0.1
    port: {server.port}
    tls: {{ca_file: {certs.ca_file}}}
    conditions: ["[CERT_DAYS_LEFT] < 11"]
"""
        path = write(tmp_path / "tls.yml", text)
        config = load_config(path, {})

        async def all_runs() -> dict[str, RunResult]:
            runner = JourneyRunner()
            results = await asyncio.gather(*(runner.run(j) for j in config.journeys.values()))
            return {r.journey: r for r in results}

        results = asyncio.run(all_runs())
    assert results["tls-ok"].success, results["tls-ok"].failure_reason()
    expiry = results["tls-ok"].steps[0].cert_expiry
    assert expiry is not None and abs(expiry - certs.not_after.timestamp()) < 1
    assert not results["tls-soon"].success
    assert "[CERT_DAYS_LEFT] (9.9" in results["tls-soon"].failure_reason()
    assert not results["untrusted"].success
    assert "CERTIFICATE_VERIFY_FAILED" in results["untrusted"].failure_reason()
    assert results["insecure"].success, results["insecure"].failure_reason()
    assert results["handshake"].success, results["handshake"].failure_reason()
    assert results["handshake"].steps[0].cert_expiry == expiry


def test_tcp_checks_connect_or_report_refusal(tmp_path: Path) -> None:
    """TCP checks pass when something listens and fail, with the reason, when not."""
    with Target() as server:
        text = f"""
checks:
  - {{name: open, type: tcp, host: 127.0.0.1, port: {server.port}}}
  - {{name: closed, type: tcp, host: 127.0.0.1, port: 9, timeout: 1s}}
"""
        config = load_config(write(tmp_path / "t.yml", text), {})
        runner = JourneyRunner()
        opened = asyncio.run(runner.run(config.journeys["open"]))
        closed = asyncio.run(runner.run(config.journeys["closed"]))
    assert opened.success
    assert not closed.success
    assert "connect to 127.0.0.1:9 failed" in closed.failure_reason()


def test_dns_checks_resolve_at_a_chosen_nameserver(tmp_path: Path) -> None:
    """A DNS check asks the given nameserver; NXDOMAIN is a readable failure."""
    with DnsServer({"shop.lookout.test": "10.1.2.3"}) as dns_server:
        text = f"""
checks:
  - name: found
    type: dns
    query: shop.lookout.test
    nameserver: 127.0.0.1
    port: {dns_server.port}
    conditions: ["[DNS_RCODE] == NOERROR", "[BODY] == 10.1.2.3"]
  - name: missing
    type: dns
    query: nope.lookout.test
    nameserver: 127.0.0.1
    port: {dns_server.port}
"""
        config = load_config(write(tmp_path / "d.yml", text), {})
        runner = JourneyRunner()
        found = asyncio.run(runner.run(config.journeys["found"]))
        missing = asyncio.run(runner.run(config.journeys["missing"]))
    assert found.success, found.failure_reason()
    assert not missing.success
    assert "[DNS_RCODE] (NXDOMAIN) == NOERROR" in missing.failure_reason()


def test_each_step_and_run_is_logged_as_json_with_trace_ids(tmp_path: Path) -> None:
    """One JSON line per step and per run, with the run's trace id."""
    with target() as server, capture_json_logs() as lines:
        result = run(journey(tmp_path, f"checks: [{{name: home, url: '{server.url}/ok'}}]"))
    events = [line for line in lines if line["logger"] == "synthetic_monitor.run"]
    assert [e["message"] for e in events] == ["step finished", "journey finished"]
    assert all(e["trace_id"] == result.trace_id for e in events)
    assert events[0]["step"] == "check" and events[0]["status_code"] == 200
    assert events[1]["outcome"] == "success"


def test_form_query_and_raw_bodies_are_sent(tmp_path: Path) -> None:
    """Form bodies, query parameters and raw bodies reach the target as written."""
    with target() as server:
        text = f"""
journeys:
  - name: bodies
    variables: {{who: alice}}
    steps:
      - {{name: form, method: POST, url: "{server.url}/ok", form: {{user: "{{{{ who }}}}"}}}}
      - {{name: query, url: "{server.url}/ok", query: {{q: "{{{{ who }}}}"}}}}
      - {{name: raw, method: PUT, url: "{server.url}/ok", body: "hello {{{{ who }}}}"}}
"""
        result = run(journey(tmp_path, text))
        seen = list(server.seen)
    assert result.success, result.failure_reason()
    assert seen[0].body == b"user=alice"
    assert seen[1].path == "/ok?q=alice"
    assert seen[2].body == b"hello alice"


def test_cleanup_sends_the_cookies_the_attempt_collected(tmp_path: Path) -> None:
    """A session cookie set by a step goes with the cleanup logout, as a browser would."""
    text = """
journeys:
  - name: session
    steps:
      - name: open
        url: "{base}/session"
        conditions: ["[STATUS] == 200"]
    cleanup:
      - name: logout
        method: POST
        url: "{base}/logout"
        conditions: ["[STATUS] == 204"]
"""
    with target() as server:
        result = run(journey(tmp_path, text.format(base=server.url)))
        seen = {s.path: s.headers for s in server.seen}
    assert result.success, result.failure_reason()
    assert seen["/logout"].get("cookie") == "session=sess-42"
