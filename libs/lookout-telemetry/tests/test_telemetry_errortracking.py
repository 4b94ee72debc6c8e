"""Error tracking without a server: sentry-sdk with an in-memory transport, every escape path."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading

import sentry_sdk

from lookout_telemetry import errortracking
from lookout_telemetry.context import request_id_var, user_id_var
from lookout_telemetry.logs import capture_json_logs
from lookout_telemetry.tasks import TaskSupervisor, report_task_failure
from lookout_telemetry.testing import MemoryTransport, error_tracking

PASSWORD = "Sw0rdfish-secret"
CARD = "5555 5555 5555 4444"
SECRETS = (PASSWORD, CARD, CARD.replace(" ", ""))


def _fail(password: str, card_number: str) -> None:
    """Raise with secrets in the message and in the frame's local variables."""
    body = {"password": password, "card": card_number}
    msg = f"login failed for password={password} card {card_number} ({len(body)})"
    raise ValueError(msg)


def _no_secret(event: dict[str, object]) -> bool:
    text = json.dumps(event)
    return not any(secret in text for secret in SECRETS)


def test_off_without_dsn_and_silent() -> None:
    """Without SENTRY_DSN nothing starts, nothing is reported and nothing is logged about it."""
    with capture_json_logs() as lines:
        assert (
            errortracking.setup_error_tracking(
                None, service="shop", release="shop@1+r", environment="test"
            )
            is False
        )
        assert errortracking.report_exception(RuntimeError("x")) is None
    assert not sentry_sdk.is_initialized()
    assert lines == []


def test_event_carries_ids_release_and_no_secret() -> None:
    """A reported error has release, environment, request/trace ids, the user, and no secret."""
    transport = MemoryTransport()
    rid, uid = request_id_var.set("req-42"), user_id_var.set("7")
    try:
        with error_tracking(transport=transport, release="shop@1+deadbee"):
            logging.getLogger("lookout_telemetry.test").warning(
                "retrying with password=%s", PASSWORD
            )
            try:
                _fail(PASSWORD, CARD)
            except ValueError as exc:
                assert errortracking.report_exception(exc) is not None
    finally:
        user_id_var.reset(uid)
        request_id_var.reset(rid)
    (event,) = transport.events
    assert event["release"].endswith("+deadbee")
    assert event["environment"] == "test"
    assert event["tags"]["request_id"] == "req-42"
    assert event["user"] == {"id": "7"}
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "_fail"
    assert frames[-1]["vars"]["password"] == "[REDACTED]"
    assert event["breadcrumbs"]["values"], "the WARNING line became a breadcrumb"
    assert _no_secret(event)


def test_thread_excepthook_logs_and_reports() -> None:
    """An error that ends a thread is logged as JSON with its stack and reported."""
    transport = MemoryTransport()
    previous = threading.excepthook
    errortracking.install_process_hooks()
    try:
        with error_tracking(transport=transport), capture_json_logs() as lines:
            thread = threading.Thread(target=_fail, args=(PASSWORD, CARD), name="worker-1")
            thread.start()
            thread.join(timeout=5)
    finally:
        threading.excepthook = previous
        sys.excepthook = sys.__excepthook__
    (line,) = [ln for ln in lines if ln["logger"] == errortracking.ERROR_LOGGER]
    assert line["path"] == "thread"
    assert line["thread_name"] == "worker-1"
    assert "_fail" in line["exception"]["stack"]
    assert line["sentry_event_id"].replace("-", "") == transport.events[0]["event_id"]
    assert PASSWORD not in json.dumps(line)
    assert _no_secret(transport.events[0])


def test_asyncio_loop_handler_logs_and_reports() -> None:
    """An error the asyncio loop could not hand to anyone is logged and reported."""
    transport = MemoryTransport()

    async def main() -> None:
        errortracking.install_loop_handler()
        try:
            _fail(PASSWORD, CARD)
        except ValueError as exc:
            asyncio.get_running_loop().call_exception_handler(
                {"message": "Future exception was never retrieved", "exception": exc}
            )

    with error_tracking(transport=transport), capture_json_logs() as lines:
        asyncio.run(main())
    (line,) = [ln for ln in lines if ln["logger"] == errortracking.ERROR_LOGGER]
    assert line["path"] == "asyncio"
    assert "never retrieved" in line["message"]
    assert len(transport.events) == 1
    assert _no_secret(transport.events[0])


def test_supervised_task_failure_reports_and_critical_shuts_down() -> None:
    """A failed background task is logged and reported; a critical one starts the shutdown."""
    transport = MemoryTransport()
    shutdowns: list[bool] = []

    async def boom() -> None:
        _fail(PASSWORD, CARD)

    async def main() -> None:
        supervisor = TaskSupervisor(on_critical_failure=lambda: shutdowns.append(True))
        ok = supervisor.spawn(asyncio.sleep(0), name="fine")
        plain = supervisor.spawn(boom(), name="plain")
        critical = supervisor.spawn(boom(), name="vital", critical=True)
        await asyncio.wait([ok, plain, critical])
        await asyncio.sleep(0)
        assert supervisor.failures == 2
        assert not supervisor.tasks
        await supervisor.close()

    with error_tracking(transport=transport), capture_json_logs() as lines:
        asyncio.run(main())
    assert shutdowns == [True]
    failed = [ln for ln in lines if ln["message"] == "background task failed"]
    assert sorted(ln["task"] for ln in failed) == ["plain", "vital"]
    assert {e["tags"]["task"] for e in transport.events} == {"plain", "vital"}


def test_sys_excepthook_logs_json_and_exits_nonzero() -> None:
    """An uncaught error in the main thread is written as one JSON line with its stack."""
    code = (
        "from lookout_telemetry.logs import configure_logging\n"
        "from lookout_telemetry.errortracking import install_process_hooks\n"
        "configure_logging('shop')\n"
        "install_process_hooks()\n"
        f"raise RuntimeError('boom password={PASSWORD}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1
    lines = [json.loads(ln) for ln in done.stdout.splitlines() if ln.startswith("{")]
    (line,) = [ln for ln in lines if ln["logger"] == errortracking.ERROR_LOGGER]
    assert line["level"] == "critical"
    assert line["exception"]["type"] == "RuntimeError"
    assert "Traceback" in line["exception"]["stack"]
    assert PASSWORD not in done.stdout + done.stderr


def test_done_callback_reports_a_plain_task() -> None:
    """A task started without the supervisor is still logged and reported by the callback."""
    transport = MemoryTransport()

    async def boom() -> None:
        _fail(PASSWORD, CARD)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(boom(), name="loose")
        task.add_done_callback(report_task_failure)
        await asyncio.wait([task])
        await asyncio.sleep(0)

    with error_tracking(transport=transport), capture_json_logs() as lines:
        asyncio.run(main())
    (line,) = [ln for ln in lines if ln["message"] == "background task failed"]
    assert line["task"] == "loose"
    assert line["sentry_event_id"].replace("-", "") == transport.events[0]["event_id"]
    assert _no_secret(transport.events[0])


class _SecretDsn:
    """A stand-in for pydantic's SecretStr."""

    def get_secret_value(self) -> str:
        """Return the DSN."""
        return "http://public@127.0.0.1:9/1"


def test_start_error_tracking_reads_a_secret_dsn_and_installs_the_hooks() -> None:
    """The entry points' one call: a secret DSN turns sentry-sdk on; the hooks are in place."""
    previous = threading.excepthook
    try:
        assert errortracking.start_error_tracking(
            _SecretDsn(),
            service="svc",
            package="pkg",
            version="1.2",
            revision="abc",
            environment="test",
        )
        assert sentry_sdk.get_client().options["release"] == "pkg@1.2+abc"
        assert sys.excepthook is not sys.__excepthook__
        assert threading.excepthook is not previous
    finally:
        sentry_sdk.get_client().close(timeout=1)
        sentry_sdk.get_global_scope().set_client(None)
        threading.excepthook = previous
        sys.excepthook = sys.__excepthook__


def test_start_error_tracking_without_dsn_is_off() -> None:
    """No DSN: nothing starts (the hooks still log escaped errors as JSON)."""
    previous = threading.excepthook
    try:
        assert not errortracking.start_error_tracking(
            None, service="svc", package="pkg", version="1", revision="r", environment="test"
        )
        assert not sentry_sdk.is_initialized()
    finally:
        threading.excepthook = previous
        sys.excepthook = sys.__excepthook__
