"""The module-level functions of the public interface, on the process's broker."""

from __future__ import annotations

from typing import Any

from keyfob import wiring
from keyfob.provider import Provider
from keyfob.token import Token


def get_token(
    provider: str, *, account: str | None = None, refresh: bool = False, **credentials: Any
) -> Token:
    """A valid token for ``provider``: from memory, else the cache, else
    refreshed, else newly acquired with the provider's grant.

    ``credentials`` are secrets by name (``username=``, ``client_secret=`` ...);
    they win over the environment and the keyring. ``refresh=True`` skips every
    cache and gets a new token.
    """
    return wiring.default().get_token(provider, account=account, refresh=refresh, **credentials)


def login(
    provider: str, *, account: str | None = None, flow: str | None = None, **credentials: Any
) -> Token:
    """Get a first token with the given (or found) secrets, then store them in the keyring."""
    return wiring.accounts().login(provider, account=account, flow=flow, **credentials)


def logout(provider: str, *, account: str | None = None, revoke: bool = False) -> None:
    """Forget cached tokens and stored secrets; ``revoke=True`` first revokes at the
    server (RFC 7009, or the provider's own endpoint) where the provider can. If
    revoking fails (the provider or the network), everything is forgotten here all
    the same, then the failure is raised."""
    done = wiring.accounts().logout(provider, account=account, revoke=revoke)
    if done.revoke_failed is not None:
        raise done.revoke_failed


def set_credentials(provider: str, *, account: str | None = None, **secrets: str) -> None:
    """Store secrets in the secret store (the keyring, or the 0600 file without one)."""
    wiring.accounts().set_credentials(provider, account=account, **secrets)


def get_credentials(provider: str, *, account: str | None = None) -> dict[str, str]:
    """The secrets stored for ``provider``, by name."""
    return wiring.accounts().get_credentials(provider, account=account)


def providers() -> list[Provider]:
    """Built-in providers and those declared in config.toml."""
    known = wiring.default().providers
    return [known[name] for name in sorted(known)]


def wait(provider: str, *, account: str | None = None, max_wait: float | None = None) -> float:
    """Take one request from ``provider``'s rate budget, waiting while it is spent;
    the seconds waited. ``RateLimited`` (nothing taken) when the wait would pass
    ``max_wait`` (default: ``[limits] max_wait``). For HTTP clients keyfob has no
    adapter for."""
    return wiring.default().budget(provider, account).take(max_wait=max_wait)
