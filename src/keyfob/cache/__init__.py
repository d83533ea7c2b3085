"""Where tokens live between runs: a small protocol and its implementations.

Each cache keeps :class:`Entry` values by ``(provider, account)`` and offers a
cross-process ``lock`` on the same key (the broker's single flight). The
contract tests in ``tests/test_cache_contract.py`` run against every one.
"""

from __future__ import annotations

TYPE_CHECKING = False  # on the cached-token path: no typing import
if TYPE_CHECKING:
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
        self.token = token
        self.fingerprint = fingerprint
        self.label = label
        self.identity_env = identity_env
        self.identity_source = identity_source
        self.leeway = leeway
        self.config_sig = config_sig
        self.saved = saved

    def __repr__(self) -> str:
        return f"<Entry {self.label or '?'} {self.token!r}>"
