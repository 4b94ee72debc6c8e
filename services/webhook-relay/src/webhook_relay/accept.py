"""Group commit: many concurrent writers share one durable transaction.

Each request hands its validated notification to one writer thread and waits; the thread
takes everything queued (up to ``max_batch``), commits it in one fsync'd transaction and
answers every waiter. A request is answered 202 only after that commit; a failed commit
answers each of its waiters with StoreUnavailableError (503, Alertmanager retries). The
delivery workers record their outcomes through a second batcher of the same kind.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from webhook_relay.errors import StoreUnavailableError
from webhook_relay.store import AcceptItem, AcceptResult, Store

__all__ = ["Batcher", "Committer"]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("webhook_relay.accept")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    loop: asyncio.AbstractEventLoop


def _resolve(future: asyncio.Future[R], result: R | BaseException) -> None:
    if future.done():  # the client went away; the commit stands all the same
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class Batcher(Generic[T, R]):
    """A writer thread that applies queued items in batches, one transaction per batch."""

    def __init__(
        self, apply: Callable[[Sequence[T]], Sequence[R]], name: str, max_batch: int = 256
    ) -> None:
        self.apply = apply
        self.name = name
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending[T, R] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    async def submit(self, item: T) -> R:
        """Queue an item and wait for its commit."""
        if self._thread is None:
            msg = "the relay is not accepting (starting or stopping)"
            raise StoreUnavailableError(msg)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put(_Pending(item, future, loop))
        return await asyncio.shield(future)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[_Pending[T, R]]) -> None:
        try:
            results: list[R | BaseException] = list(self.apply([p.item for p in batch]))
        except StoreUnavailableError as error:
            results = [error] * len(batch)
        except Exception as error:
            if len(batch) > 1:  # one bad item must not fail its neighbours: commit one by one
                for pending in batch:
                    self._commit([pending])
                return
            log.exception("a batched write failed", extra={"batcher": self.name})
            results = [StoreUnavailableError(f"commit failed: {type(error).__name__}")]
        for pending, result in zip(batch, results, strict=True):
            pending.loop.call_soon_threadsafe(_resolve, pending.future, result)


class Committer(Batcher[AcceptItem, AcceptResult]):
    """The accept path's batcher: notifications in, their commit results out."""

    def __init__(self, store: Store, max_batch: int = 256) -> None:
        super().__init__(store.accept, "relay-committer", max_batch)
        self.store = store
