"""Single flight: one request to the token endpoint per (provider, account), however
many threads, processes and machines ask at once.

A per-key lock in the process, then the cache's per-key lock across processes
(a file lock for SQLite, a lease for Redis). The broker looks in the cache again
once it holds both. :class:`Unlocked` takes no lock at all: the same algorithm
without its mechanism, so a test can show the locks are what make it hold.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from keyfob.cache import Key


class Flight(Protocol):
    def __call__(self, key: Key) -> AbstractContextManager[None]: ...


class SingleFlight:
    """The locks of one broker: ``with flight(key): ...``."""

    def __init__(
        self,
        shared: Callable[[Key], AbstractContextManager[object]],
        *,
        on_warning: Callable[[str], None],
    ) -> None:
        self._shared = shared
        self._warn = on_warning
        self._locks: dict[Key, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, key: Key) -> Iterator[None]:
        with self._guard:
            local = self._locks.setdefault(key, threading.Lock())
        with local:
            try:
                shared = self._shared(key)
            except Exception as exc:  # a lock folder gone since: go on unlocked
                self._warn(f"cannot lock the token cache ({type(exc).__name__})")
                shared = contextlib.nullcontext()
            with shared:
                yield


class Unlocked:
    """No lock at all (tests: the single-flight tests fail with it)."""

    @contextlib.contextmanager
    def __call__(self, key: Key) -> Iterator[None]:
        yield
