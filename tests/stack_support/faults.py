"""Faults a chaos test injects into the native stack: a network partition, the apps' fault API.

``TcpProxy`` sits between one service and a dependency (the shop and the machine's Postgres:
``NativeStack(service_endpoints={"shop": {"postgres:5432": proxy.hostport}})``) and can cut
the path the way a network partition does: nothing is refused or reset, bytes simply stop
arriving in both directions, on open connections and on new ones (which are accepted, as a
SYN to a host behind a dead switch port is retransmitted, and then hear nothing). ``heal()``
lets the held bytes and connections through again, as TCP's retransmissions would. Written by
hand on asyncio streams because the test needs exactly this one behaviour on loopback: the
proxies on PyPI (toxiproxy's Python client needs its Go server) add a process or a protocol
for it.

``set_faults`` and ``clear_faults`` drive the demo apps' own fault-injection API
(demo-app/src/lookout_demo/web/faults.py, ``/admin/faults`` with ``X-Fault-Token``): 5xx on
a route, latency, payment declines, switched at run time without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import httpx

__all__ = ["TcpProxy", "clear_faults", "set_faults"]

#: Bytes read per step from either side of a proxied connection.
CHUNK = 65536


class TcpProxy:
    """A loopback TCP proxy to ``upstream`` that a test can partition and heal."""

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = 0
        #: Connections accepted so far (a test can check its service really goes through).
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._flowing: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def hostport(self) -> str:
        """Return ``host:port`` where the proxy listens."""
        return f"{self.host}:{self.port}"

    @property
    def partitioned(self) -> bool:
        """Return whether the path is cut."""
        return self._flowing is not None and not self._flowing.is_set()

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def partition(self) -> None:
        """Stop every byte in both directions, on open and on new connections (on return)."""
        self._switch(flowing=False)

    def heal(self) -> None:
        """Let the held bytes and connections through again (from the moment it returns)."""
        self._switch(flowing=True)

    def _switch(self, *, flowing: bool) -> None:
        event = self._flowing
        assert event is not None, "the proxy is not running (use it as a context manager)"

        async def switch() -> None:
            if flowing:
                event.set()
            else:
                event.clear()

        asyncio.run_coroutine_threadsafe(switch(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._flowing is not None:
            self._flowing.set()  # release anything held, so its task ends

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        self.accepted += 1
        self._writers.add(client_w)
        try:
            # A new connection during a partition: accepted, then nothing (no upstream yet).
            await self._flowing.wait()
            try:
                upstream_r, upstream_w = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            self._writers.add(upstream_w)
            try:
                await asyncio.gather(
                    self._pipe(client_r, upstream_w), self._pipe(upstream_r, client_w)
                )
            finally:
                self._writers.discard(upstream_w)
                upstream_w.close()
        finally:
            self._writers.discard(client_w)
            client_w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()  # a partition holds the bytes here
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()


def _headers(token: str) -> dict[str, str]:
    return {"X-Fault-Token": token}


def set_faults(base_url: str, token: str, rules: Sequence[dict[str, Any]]) -> None:
    """Put fault rules in force in a demo app (replacing its current ones)."""
    response = httpx.put(
        f"{base_url}/admin/faults", json={"rules": list(rules)}, headers=_headers(token), timeout=10
    )
    response.raise_for_status()


def clear_faults(base_url: str, token: str) -> None:
    """Remove every fault rule from a demo app."""
    response = httpx.delete(f"{base_url}/admin/faults", headers=_headers(token), timeout=10)
    response.raise_for_status()
