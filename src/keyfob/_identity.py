"""Whose token is this? The identity fingerprint shared by the broker and the CLI.

An identity is a few non-secret names (username, client id, app id). Its
fingerprint, a truncated SHA-256, is what a cache entry records, so tokens
never cross accounts and no cache key or row holds the identity in the clear.
A personal token (TreeSnap) is itself a secret: its identity is the JWT's
``sub`` claim, else a fingerprint of the token.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from keyfob.cache import Entry

# Secret names whose value is a token: the identity is derived, never used raw.
TOKEN_NAMES = frozenset({"token"})

#: Seconds the command line's cached-token path trusts an entry whose identity is
#: the secret store's after the library last compared the two (``Entry.checked``).
#: Reading the keyring costs the command line 100 ms and more (its import, D-Bus),
#: so it cannot ask on every call; within this bound, another tool that changes the
#: stored account (pyinaturalist, `keyring set`) is noticed by the next call that
#: goes through the library, which compares and stamps the entry again. A minute:
#: a loop of `keyfob token` calls pays one slow call a minute, and a person who
#: switches accounts elsewhere gets the new one's token within that minute. The
#: library itself compares at first use in a process, and again after this long.
STORE_TRUST = 60.0


def _digest(text: str) -> str:
    # hashlib loads OpenSSL (2-4 ms on the cached-token path); CPython's own
    # SHA-256 module gives the same digest for a fraction of that.
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # other Pythons, and 3.12+ (_sha2)
        from hashlib import sha256
    digest: str = sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:32]


def part(name: str, value: str) -> str:
    if name in TOKEN_NAMES:
        from keyfob import _jwt

        data = _jwt.claims(value)
        sub = data.get("sub") if data else None
        if isinstance(sub, str | int) and not isinstance(sub, bool):
            return f"sub:{sub}"
        return "sha:" + _digest(value)
    return value


def fingerprint(provider: str, values: Mapping[str, str]) -> str:
    """``values``: identity name -> value, for every identity name."""
    text = "\0".join([provider] + [f"{k}={part(k, v)}" for k, v in sorted(values.items())])
    return _digest("keyfob-identity\0" + text)


def trusts(provider: str, entry: Entry, environ: Mapping[str, str], now: float) -> bool | None:
    """Does ``entry`` belong to the identity the environment names, as the cached-token
    path sees it (``entry.identity_env`` is ``"name=VAR,name=VAR"``)? True, False, or
    ``None`` when only the secret store can tell (the full command line then asks)."""
    pairs = [item.split("=", 1) for item in entry.identity_env.split(",") if "=" in item]
    found = {}
    for name, names in pairs:  # "token=GH_TOKEN|GITHUB_TOKEN": the first one set
        for var in names.split("|"):
            if environ.get(var):
                found[name] = environ[var]
                break
    if not found:
        # Nothing named here: the identity is the stored one. An entry saved from
        # the store is trusted while the library's last comparison is recent.
        if entry.identity_source == "store" and 0 <= now - entry.checked < STORE_TRUST:
            return True
        return None
    if len(found) < len(pairs):
        return None
    return fingerprint(provider, found) == entry.fingerprint


class Identity:
    """Whose token is asked for, and from where: the identity names' values from the
    arguments and the environment, the rest from the secret store (compared again
    after ``STORE_TRUST`` seconds), and the provider's endpoint.

    ``owns(entry)`` is the one answer to "is this cached token this identity's?",
    for the memory, the cache and the look under the lock alike.
    """

    __slots__ = (
        "_asked",
        "_clock",
        "_lookup",
        "_mine",
        "direct",
        "endpoint",
        "from_store",
        "names",
        "provider",
    )

    def __init__(
        self,
        provider: str,
        names: tuple[str, ...],
        direct: Mapping[str, str],
        lookup: Callable[[tuple[str, ...]], Mapping[str, str]],
        *,
        endpoint: str = "",
        clock: Callable[[], float],
    ) -> None:
        self.provider = provider
        self.names = names
        self.direct = direct
        self.endpoint = endpoint
        self._lookup = lookup  # the store, asked only for the names not given directly
        self._clock = clock
        #: whether some of its names come from the secret store
        self.from_store = len(direct) < len(names)
        self._mine: str | None = None
        self._asked = 0.0  # when the store was asked

    def fingerprint(self) -> str:
        """The identity's fingerprint, "" when no name is known anywhere."""
        stale = self.from_store and self._clock() - self._asked >= STORE_TRUST
        if self._mine is None or stale:
            values = dict(self.direct)
            rest = tuple(n for n in self.names if n not in values)
            if rest:
                values.update(self._lookup(rest))
                self._asked = self._clock()
            self._mine = fingerprint(self.provider, values) if values else ""
        return self._mine

    def owns(self, entry: Entry) -> bool:
        if entry.endpoint != self.endpoint:
            return False  # a token of another server (token_url or issuer changed)
        mine = self.fingerprint()
        return mine == entry.fingerprint if self.direct else (not mine or mine == entry.fingerprint)
