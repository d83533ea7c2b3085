"""Where tokens live between runs: a small protocol and its implementations.

Each cache keeps :class:`Entry` values by ``(provider, account)`` and offers a
cross-process ``lock`` on the same key (the broker's single flight). The
contract tests in ``tests/test_cache_contract.py`` run against every one.
"""

from __future__ import annotations

from keyfob.token import Token

TYPE_CHECKING = False  # on the cached-token path: no typing import
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

Key = tuple[str, str]  # (provider, account); account "" is the default account

# What each field of the serialized entry holds: "text" or "number", "?" if it
# may be None. Changing these changes the SQLite file's columns: bump its
# SCHEMA_VERSION (keyfob.cache.sqlite) and Redis's FORMAT (keyfob.cache.redis).
_KINDS = {
    "access_token": "text",
    "token_type": "text",
    "expires": "number?",
    "issued": "number?",
    "refresh_token": "text?",
    "refresh_expires": "number?",
    "scope": "text?",
    "refresh_ratio": "number",
    "fingerprint": "text",
    "label": "text",
    "identity_env": "text",
    "identity_source": "text",
    "leeway": "number",
    "config_sig": "text",
    "endpoint": "text",
    "checked": "number",
}
#: the keys of ``Entry.to_dict``: the token's fields, then the entry's own
FIELDS = tuple(_KINDS)
_META = (
    "fingerprint",
    "label",
    "identity_env",
    "identity_source",
    "leeway",
    "config_sig",
    "endpoint",
    "checked",
)


class Entry:
    """A cached token and what is needed to trust it without the broker.

    ``fingerprint`` is a hash of the identity the token belongs to (never the
    identity or a secret itself); ``identity_env`` names the environment
    variables that identity is read from, and ``identity_source`` says whether
    it came from the environment/arguments ("direct") or the secret store
    ("store"). ``leeway`` and ``config_sig`` let the command line answer
    ``Token.state`` exactly as the broker would, without reading config.toml.

    Frozen (``replace`` makes a changed copy); ``to_dict``/``from_dict`` are its
    one serialization, which every cache stores.
    """

    __slots__ = ("token", *_META)

    token: Token
    fingerprint: str
    label: str
    identity_env: str
    identity_source: str
    leeway: float
    config_sig: str
    endpoint: str
    checked: float

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
        endpoint: str = "",
        checked: float = 0.0,
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
            "endpoint": endpoint,
            "checked": checked,
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

    def without_access_token(self) -> Entry | None:
        """What is left once the access token is forgotten (after a 401): the
        refresh token and the rest of the entry, with an empty access token that
        expired at the epoch, so that ``Token.state`` answers EXPIRED under any
        clock; ``None`` if there is no refresh token, so nothing is left."""
        if not self.token.refresh_token:
            return None
        return self.replace(token=self.token.replace(access_token="", expires=0.0, issued=None))

    def to_dict(self) -> dict[str, Any]:
        """A flat dict of text, numbers and None, keyed by ``FIELDS``."""
        data = self.token.to_dict()
        for name in _META:
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        """The entry ``to_dict`` described; ``ValueError`` if ``data`` is not one
        (a cache answers that as a miss)."""
        if len(data) != len(FIELDS) or not all(name in data for name in FIELDS):
            raise ValueError("not a keyfob cache entry: its fields differ")
        fields: dict[str, Any] = {}
        for name, kind in _KINDS.items():
            value = data[name]
            if value is None and kind.endswith("?"):
                fields[name] = None
            elif kind.startswith("text") and isinstance(value, str):
                fields[name] = value
            elif (
                kind.startswith("number")
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                fields[name] = float(value)
            else:
                raise ValueError(f"not a keyfob cache entry: {name} is not {kind}")
        meta = {name: fields.pop(name) for name in _META}
        return cls(Token.from_dict(fields), **meta)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Entry {self.label or '?'} {self.token!r}>"
