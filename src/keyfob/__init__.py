"""keyfob gets, keeps, refreshes and applies API access tokens.

    >>> import keyfob, requests
    >>> token = keyfob.get_token("inaturalist")
    >>> requests.get(url, auth=keyfob.requests_auth("twitter"))

Names load on first use, so that ``import keyfob`` (and the command line's
cached-token path) stays cheap.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs 2.6 ms: not on the cached-token path

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "CredentialsMissing",
    "InvalidCredentials",
    "KeyfobError",
    "Provider",
    "ProviderError",
    "RateLimited",
    "StorageError",
    "Token",
    "TokenState",
    "TransportError",
    "get_credentials",
    "get_token",
    "httpx_auth",
    "login",
    "logout",
    "providers",
    "requests_auth",
    "session",
    "set_credentials",
    "wait",
]

_WHERE = {
    "ConfigError": "keyfob.errors",
    "CredentialsMissing": "keyfob.errors",
    "InvalidCredentials": "keyfob.errors",
    "KeyfobError": "keyfob.errors",
    "ProviderError": "keyfob.errors",
    "RateLimited": "keyfob.errors",
    "StorageError": "keyfob.errors",
    "TransportError": "keyfob.errors",
    "Provider": "keyfob.provider",
    "Token": "keyfob.token",
    "TokenState": "keyfob.token",
    "get_credentials": "keyfob._api",
    "get_token": "keyfob._api",
    "login": "keyfob._api",
    "logout": "keyfob._api",
    "providers": "keyfob._api",
    "set_credentials": "keyfob._api",
    "wait": "keyfob._api",
    "httpx_auth": "keyfob.adapters",
    "requests_auth": "keyfob.adapters",
    "session": "keyfob.adapters",
}

if TYPE_CHECKING:
    from typing import Any

    from keyfob._api import (
        get_credentials,
        get_token,
        login,
        logout,
        providers,
        set_credentials,
        wait,
    )
    from keyfob.adapters import httpx_auth, requests_auth, session
    from keyfob.errors import (
        ConfigError,
        CredentialsMissing,
        InvalidCredentials,
        KeyfobError,
        ProviderError,
        RateLimited,
        StorageError,
        TransportError,
    )
    from keyfob.provider import Provider
    from keyfob.token import Token, TokenState


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'keyfob' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
