"""The cache: Redis when ``REDIS_URL`` is set, else a bounded in-process LRU with expiry.

Both sit behind one small protocol. A failing Redis never fails a request: look-ups fall
back to the loader and the failure is counted (``cache_errors_total``).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from redis.exceptions import RedisError

from lookout_demo.telemetry.metrics import CacheMetrics

__all__ = ["Cache", "MemoryCache", "RedisCache", "build_cache", "read_through"]

log = logging.getLogger(__name__)


class Cache(Protocol):
    """What the services need of a cache."""

    backend: str
    #: Look-ups through ``read_through`` in this process that found a value, and did not.
    hits: int
    misses: int

    async def get(self, key: str) -> str | None:
        """Return the value stored under key, or None."""

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store value under key for ttl_seconds."""

    async def delete(self, key: str) -> None:
        """Remove key."""

    async def incr(self, key: str, ttl_seconds: float) -> int:
        """Add one to the counter under key (created with this TTL); return the new value."""

    async def ping(self) -> None:
        """Raise when the cache does not answer."""

    async def stats(self) -> dict[str, object]:
        """Return what the backend says about itself (memory used, its own hit counts)."""

    async def close(self) -> None:
        """Release connections."""


class MemoryCache:
    """An in-process LRU cache with per-key expiry (one per process: not shared)."""

    backend = "memory"

    def __init__(self, max_entries: int = 10_000) -> None:
        self.hits = self.misses = 0
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires <= time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    async def get(self, key: str) -> str | None:
        """Return the value stored under key, or None."""
        return self._live(key)

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store value under key for ttl_seconds, evicting the least recently used."""
        self._data[key] = (value, time.monotonic() + ttl_seconds)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def delete(self, key: str) -> None:
        """Remove key."""
        self._data.pop(key, None)

    async def incr(self, key: str, ttl_seconds: float) -> int:
        """Add one to the counter under key; the TTL runs from the first increment."""
        current = self._live(key)
        if current is None:
            await self.set(key, "1", ttl_seconds)
            return 1
        _, expires = self._data[key]
        value = int(current) + 1
        self._data[key] = (str(value), expires)
        return value

    async def ping(self) -> None:
        """Always answers: it is this process's memory."""

    async def stats(self) -> dict[str, object]:
        """Return the entry count and bound (memory is the process's own)."""
        return {"entries": len(self._data), "max_entries": self.max_entries}

    async def close(self) -> None:
        """Drop everything."""
        self._data.clear()


class RedisCache:
    """A Redis-backed cache, shared by every replica and worker."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 1.0,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.hits = self.misses = 0
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            decode_responses=True,
        )
        if tracer_provider is not None:
            RedisInstrumentor.instrument_client(self.client, tracer_provider=tracer_provider)

    async def get(self, key: str) -> str | None:
        """Return the value stored under key, or None."""
        value = await self.client.get(key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store value under key for ttl_seconds."""
        await self.client.set(key, value, px=max(1, int(ttl_seconds * 1000)))

    async def delete(self, key: str) -> None:
        """Remove key."""
        await self.client.delete(key)

    async def incr(self, key: str, ttl_seconds: float) -> int:
        """Add one to the counter under key; the TTL is set when the counter is created."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, max(1, int(ttl_seconds * 1000)), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def ping(self) -> None:
        """Raise when Redis does not answer PING."""
        await self.client.ping()

    async def stats(self) -> dict[str, object]:
        """Return Redis's memory use and its server-wide keyspace hit rate (INFO)."""
        memory = await self.client.info("memory")
        counts = await self.client.info("stats")
        hits, misses = int(counts.get("keyspace_hits", 0)), int(counts.get("keyspace_misses", 0))
        return {
            "memory_used_bytes": int(memory.get("used_memory", 0)),
            "memory_max_bytes": int(memory.get("maxmemory", 0)) or None,
            "server_hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        }

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def build_cache(url: str | None, *, tracer_provider: TracerProvider | None = None) -> Cache:
    """Return a Redis cache for a URL, else the in-process one."""
    if url:
        return RedisCache(url, tracer_provider=tracer_provider)
    return MemoryCache()


async def read_through(
    cache: Cache,
    metrics: CacheMetrics | None,
    *,
    name: str,
    key: str,
    ttl_seconds: float,
    loader: Callable[[], Awaitable[str]],
) -> str:
    """Return the cached value for key, else load, store and return it; count hit or miss."""
    try:
        cached = await cache.get(key)
    except (TimeoutError, RedisError, OSError) as exc:
        if metrics is not None:
            metrics.errors.labels(name).inc()
        log.warning(
            "cache read failed; reading the source", extra={"cache": name, "error": str(exc)}
        )
        return await loader()
    if cached is not None:
        cache.hits += 1
        if metrics is not None:
            metrics.hits.labels(name).inc()
        return cached
    cache.misses += 1
    if metrics is not None:
        metrics.misses.labels(name).inc()
    value = await loader()
    try:
        await cache.set(key, value, ttl_seconds)
    except (TimeoutError, RedisError, OSError) as exc:
        if metrics is not None:
            metrics.errors.labels(name).inc()
        log.warning("cache write failed", extra={"cache": name, "error": str(exc)})
    return value
