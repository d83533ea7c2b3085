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
    from collections.abc import Mapping

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


def from_environment(
    provider: str, identity_env: str, environ: Mapping[str, str]
) -> tuple[str | None, bool]:
    """The fingerprint from the environment alone, as the cached-token path sees it.

    ``identity_env`` is ``"name=VAR,name=VAR"``. Returns ``(fingerprint, complete)``:
    ``(None, True)`` when no variable is set (the identity is in the store),
    ``(None, False)`` when only some are (only the full lookup can tell).
    """
    pairs = [item.split("=", 1) for item in identity_env.split(",") if "=" in item]
    found = {name: environ[var] for name, var in pairs if environ.get(var)}
    if not found:
        return None, True
    if len(found) < len(pairs):
        return None, False
    return fingerprint(provider, found), True


def trusts(provider: str, entry: Entry, environ: Mapping[str, str]) -> bool | None:
    """Whether a cache entry belongs to the identity the environment names:
    True, False, or ``None`` when only the secret store can tell. The broker
    and the cached-token path both ask this."""
    fingerprint_now, complete = from_environment(provider, entry.identity_env, environ)
    if not complete:
        return None
    if fingerprint_now is None:
        # Nothing in the environment: the identity is the stored one, which is
        # what an entry saved from the store belongs to.
        return True if entry.identity_source == "store" else None
    return fingerprint_now == entry.fingerprint
