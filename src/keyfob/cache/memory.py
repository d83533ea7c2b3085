"""A process-local cache: the fallback when no other cache can be used, and for tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from keyfob.cache import Entry, Key
from keyfob.token import Token


class MemoryCache:
    def __init__(self) -> None:
        self._entries: dict[Key, Entry] = {}
        self._locks: dict[Key, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Key) -> Entry | None:
        return self._entries.get(key)

    def put(self, key: Key, entry: Entry) -> None:
        with self._guard:
            self._entries[key] = entry

    def drop(self, key: Key, token: Token) -> None:
        with self._guard:
            entry = self._entries.get(key)
            if entry is None or entry.token.access_token != token.access_token:
                return
            left = entry.without_access_token()
            if left is None:
                del self._entries[key]
            else:
                self._entries[key] = left

    def delete(self, key: Key) -> None:
        with self._guard:
            self._entries.pop(key, None)

    @contextlib.contextmanager
    def lock(self, key: Key, *, blocking: bool = True) -> Iterator[bool]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=blocking):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def entries(self) -> Iterator[tuple[Key, Entry]]:
        yield from list(self._entries.items())

    def describe(self) -> str:
        return "memory (this process only)"
