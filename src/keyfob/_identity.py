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


def verdict(provider: str, entry: Entry, found: Mapping[str, str], total: int) -> bool | None:
    """Does ``entry`` belong to the identity whose names ``found`` holds (of ``total``)?
    True, False, or ``None`` when only the secret store can tell."""
    if not found:
        # Nothing named here: the identity is the stored one, which is what an
        # entry saved from the store belongs to.
        return True if entry.identity_source == "store" else None
    if len(found) < total:
        return None
    return fingerprint(provider, found) == entry.fingerprint


def trusts(provider: str, entry: Entry, environ: Mapping[str, str]) -> bool | None:
    """:func:`verdict` from the environment alone, as the cached-token path sees it
    (``entry.identity_env`` is ``"name=VAR,name=VAR"``)."""
    pairs = [item.split("=", 1) for item in entry.identity_env.split(",") if "=" in item]
    found = {name: environ[var] for name, var in pairs if environ.get(var)}
    return verdict(provider, entry, found, len(pairs))


class Identity:
    """Whose token is asked for: the identity names' values from the arguments and
    the environment, and only where those cannot tell, from the secret store.

    ``owns(entry)`` is the one answer to "is this cached token this identity's?",
    for the memory, the cache and the look under the lock alike.
    """

    __slots__ = ("_lookup", "_stored", "direct", "names", "provider")

    def __init__(
        self,
        provider: str,
        names: tuple[str, ...],
        direct: Mapping[str, str],
        lookup: Callable[[tuple[str, ...]], Mapping[str, str]],
    ) -> None:
        self.provider = provider
        self.names = names
        self.direct = direct
        self._lookup = lookup  # the store, asked only for the names not given directly
        self._stored: str | None = None

    def fingerprint(self) -> str:
        """The identity's fingerprint, "" when no name is known anywhere."""
        if self._stored is None:
            values = dict(self.direct)
            rest = tuple(n for n in self.names if n not in values)
            if rest:
                values.update(self._lookup(rest))
            self._stored = fingerprint(self.provider, values) if values else ""
        return self._stored

    def owns(self, entry: Entry) -> bool:
        if self.direct and len(self.direct) == len(self.names):
            return self.fingerprint() == entry.fingerprint  # computed once per identity
        said = verdict(self.provider, entry, self.direct, len(self.names))
        if said is not None:
            return said
        mine = self.fingerprint()
        return not mine or mine == entry.fingerprint
