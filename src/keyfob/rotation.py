"""Refresh tokens the server rotates (X, GitHub apps): which one to send, and keeping the new one.

Each refresh answers a new refresh token and the one sent stops working, so
the one that works exists in one place at first: the answer. The broker keeps
it in the secret store before the new access token is used or returned, then
in the cache; a crash between the two leaves the cache one refresh token
behind the store. So the store also keeps a short list of the refresh tokens
it has seen spent (their digests, never the tokens), and the one that came
from an argument or the environment (``TWITTER_REFRESH_TOKEN``) that a stored
one supersedes: a spent one is never sent again.

Which to send: the cache's (a fleet on Redis shares the newest there), then
the one the secrets name (argument, environment, store), then the store's;
each only if not known spent. The single-flight lock makes this one refresh
at a time for every thread and process sharing the cache.
"""

from __future__ import annotations

import hashlib

from keyfob.secretstore import Credentials, SecretStore
from keyfob.token import Token

#: store entries beside the secrets (digests only); logout deletes them
SPENT = "spent_refresh_tokens"
SUPERSEDED = "superseded_refresh_token"
BOOKKEEPING = (SPENT, SUPERSEDED)
#: how many spent refresh tokens the store remembers (a crash leaves the cache one behind)
KEEP = 8


def digest(value: str) -> str:
    """A refresh token's digest: enough to recognise it, useless to send."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class Book:
    """What the store knows of one account's rotated refresh tokens."""

    def __init__(self, store: SecretStore, service: str) -> None:
        self.store = store
        self.service = service
        self.spent = (store.get(service, SPENT) or "").split()
        self.superseded = store.get(service, SUPERSEDED) or ""
        self.current = store.get(service, "refresh_token")

    def is_spent(self, value: str) -> bool:
        known = digest(value)
        return known in self.spent or known == self.superseded

    def candidates(self, old: Token | None, creds: Credentials) -> list[tuple[str, str]]:
        """The refresh tokens worth sending, best first, with where each came from."""
        found = [
            (old.refresh_token if old is not None else None, "token cache"),
            (creds.get("refresh_token"), creds.sources.get("refresh_token", "")),
            (self.current, self.store.kind),
        ]
        out: list[tuple[str, str]] = []
        for value, source in found:
            value = value.strip() if value else None
            if value and not self.is_spent(value) and value not in (v for v, _ in out):
                out.append((value, source))
        return out

    def known(self, old: Token | None, creds: Credentials) -> bool:
        """Whether any refresh token is known at all (spent ones included)."""
        return bool((old and old.refresh_token) or creds.get("refresh_token") or self.current)

    def record(self, sent: str, new: str, *, direct: bool) -> None:
        """The server rotated ``sent`` into ``new``: the new one first (it is the only
        one that works), then that ``sent`` is spent."""
        self.store.set(self.service, "refresh_token", new)
        self.current = new
        self.spent = [digest(sent), *(d for d in self.spent if d != digest(sent))][:KEEP]
        self.store.set(self.service, SPENT, " ".join(self.spent))
        if direct:
            self.superseded = digest(sent)
            self.store.set(self.service, SUPERSEDED, self.superseded)
