"""Single flight: one request to the token endpoint per (provider, account), however
many threads, processes and machines ask at once.

A per-key lock in the process, then the cache's per-key lock across processes
(a file lock for SQLite, a lease for Redis). The broker looks in the cache again
once it holds both. :class:`Unlocked` takes no lock at all: the same algorithm
without its mechanism, so a test can show the locks are what make it hold.

``hold(key)`` is the same for an event loop: the tasks of one loop queue on an
``asyncio.Lock``; the one in front takes the thread and cross-process locks
without blocking, trying again after a short ``asyncio.sleep`` while another
thread or process holds them. No thread waits, and the loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Protocol

from keyfob.cache import Key

#: how often a task that waits for another thread's or process's lock looks again
POLL = 0.01

SharedLock = Callable[[Key, bool], AbstractContextManager[bool]]


class Flight(Protocol):
    def __call__(self, key: Key) -> AbstractContextManager[None]: ...
    def hold(self, key: Key) -> AbstractAsyncContextManager[None]: ...


class SingleFlight:
    """The locks of one broker: ``with flight(key): ...``."""

    def __init__(self, shared: SharedLock, *, on_warning: Callable[[str], None]) -> None:
        self._shared = shared
        self._warn = on_warning
        self._locks: dict[Key, threading.Lock] = {}
        self._queues: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Key, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    def _local(self, key: Key) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _queue(self, key: Key) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            return self._queues.setdefault(loop, {}).setdefault(key, asyncio.Lock())

    def _across(self, key: Key, blocking: bool) -> AbstractContextManager[bool]:
        try:
            return self._shared(key, blocking)
        except Exception as exc:  # a lock folder gone since: go on unlocked
            self._warn(f"cannot lock the token cache ({type(exc).__name__})")
            return contextlib.nullcontext(True)

    @contextlib.contextmanager
    def __call__(self, key: Key) -> Iterator[None]:
        with self._local(key), self._across(key, True):
            yield

    @contextlib.asynccontextmanager
    async def hold(self, key: Key) -> AsyncIterator[None]:
        async with self._queue(key):
            local = self._local(key)
            while not local.acquire(blocking=False):
                await asyncio.sleep(POLL)
            try:
                while True:
                    with self._across(key, False) as held:
                        if held:
                            yield
                            return
                    await asyncio.sleep(POLL)
            finally:
                local.release()


class Unlocked:
    """No lock at all (tests: the single-flight tests fail with it)."""

    @contextlib.contextmanager
    def __call__(self, key: Key) -> Iterator[None]:
        yield

    @contextlib.asynccontextmanager
    async def hold(self, key: Key) -> AsyncIterator[None]:
        yield
