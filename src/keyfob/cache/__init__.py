"""Where tokens live between runs: a small protocol and its implementations.

Each cache keeps :class:`Entry` values by ``(provider, account)`` and offers a
cross-process ``lock`` on the same key (the broker's single flight). The
contract tests in ``tests/test_cache_contract.py`` run against every one.
"""

from __future__ import annotations

TYPE_CHECKING = False  # on the cached-token path: no typing import
if TYPE_CHECKING:
    from typing import Any

    from keyfob.token import Token

Key = tuple[str, str]  # (provider, account); account "" is the default account


class Entry:
    """A cached token and what is needed to trust it without the broker.

    ``fingerprint`` is a hash of the identity the token belongs to (never the
    identity or a secret itself); ``identity_env`` names the environment
    variables that identity is read from, and ``identity_source`` says whether
    it came from the environment/arguments ("direct") or the secret store
    ("store"). ``leeway`` and ``config_sig`` let the command line answer
    ``Token.state`` exactly as the broker would, without reading config.toml.
    """

    __slots__ = (
        "config_sig",
        "fingerprint",
        "identity_env",
        "identity_source",
        "label",
        "leeway",
        "saved",
        "token",
    )

    token: Token
    fingerprint: str
    label: str
    identity_env: str
    identity_source: str
    leeway: float
    config_sig: str
    saved: float

    def __init__(
        self,
        token: Token,
        *,
        fingerprint: str = "",
        label: str = "",
        identity_env: str = "",
        identity_source: str = "direct",
        leeway: float = 60.0,
        config_sig: str = "",
        saved: float = 0.0,
    ) -> None:
        # Frozen: a cache may hand the same entry to every caller.
        fields = {
            "token": token,
            "fingerprint": fingerprint,
            "label": label,
            "identity_env": identity_env,
            "identity_source": identity_source,
            "leeway": leeway,
            "config_sig": config_sig,
            "saved": saved,
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"an Entry is frozen: use entry.replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("an Entry is frozen")

    def replace(self, **changes: Any) -> Entry:
        """A copy with ``changes`` (keyword arguments of the constructor)."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return Entry(**fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Entry {self.label or '?'} {self.token!r}>"
