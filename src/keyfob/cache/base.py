"""The cache protocol; the implementations are in the sibling modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from keyfob.cache import Entry, Key
from keyfob.token import Token


class CacheUnavailable(Exception):
    """The cache cannot be used at all; the broker warns once and goes on without it."""


class Cache(Protocol):
    """Stores entries; judges nothing (whether a token is good is the broker's
    question). ``tests/test_cache_contract.py`` pins every clause."""

    def get(self, key: Key) -> Entry | None:
        """The entry as last put (or dropped), or None."""

    def put(self, key: Key, entry: Entry) -> None:
        """Replace the entry, whatever its token's expiry."""

    def drop(self, key: Key, token: Token) -> None:
        """After a 401: only if the entry still holds ``token``'s access token,
        leave ``entry.without_access_token()`` (its refresh token), or nothing.
        A newer token saved meanwhile, by any process, is kept. Atomic."""

    def delete(self, key: Key) -> None:
        """Forget the entry, refresh token and all (logout)."""

    def lock(self, key: Key, *, blocking: bool = True) -> AbstractContextManager[bool]:
        """An exclusive lock on ``key``, across threads and the processes sharing the
        cache; it yields whether it is held (``blocking=False``: one try, no wait)."""

    def entries(self) -> Iterator[tuple[Key, Entry]]:
        """Every entry, with its key."""

    def describe(self) -> str:
        """Where the entries live, for a person; never a secret."""
