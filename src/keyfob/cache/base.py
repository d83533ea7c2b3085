"""The cache protocol; the implementations are in the sibling modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from keyfob.cache import Entry, Key


class CacheUnavailable(Exception):
    """The cache cannot be used at all; the broker warns once and goes on without it."""


class Cache(Protocol):
    def get(self, key: Key) -> Entry | None: ...
    def put(self, key: Key, entry: Entry) -> None: ...
    def delete(self, key: Key) -> None: ...
    def lock(self, key: Key) -> AbstractContextManager[object]: ...
    def entries(self) -> Iterator[tuple[Key, Entry]]: ...
    def describe(self) -> str: ...
