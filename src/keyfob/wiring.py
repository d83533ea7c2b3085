"""Building the parts from the settings, and the process's default broker.

The broker decides; this module only chooses what it decides over: the token
cache the settings name (SQLite in the user cache folder, or Redis with the
SQLite file in front), the secret store, and one broker per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from keyfob import _paths, config
from keyfob.cache import Entry
from keyfob.cache.base import Cache, CacheUnavailable
from keyfob.secretstore import SecretStore
from keyfob.secretstore import open_store as _open_store

if TYPE_CHECKING:
    from keyfob.accounts import Accounts
    from keyfob.broker import Broker
    from keyfob.ratelimit import Limiter


def cache_opener(
    settings: config.Settings,
) -> Callable[[Callable[[str], None], Callable[[Entry], bool]], Cache]:
    """How to open the cache ``settings`` name: warnings go to ``on_warning``;
    ``fresh`` is the broker's judgement of whether a local copy may answer."""

    def open_cache(on_warning: Callable[[str], None], fresh: Callable[[Entry], bool]) -> Cache:
        from keyfob.cache.memory import MemoryCache
        from keyfob.cache.sqlite import SQLiteCache

        local: Cache
        try:
            local = SQLiteCache(_paths.cache_dir(), on_warning=on_warning)
        except CacheUnavailable as exc:
            on_warning(f"{exc}; tokens are not cached between runs")
            local = MemoryCache()
        if not settings.cache_url:
            return local
        try:
            from keyfob.cache.redis import RedisCache  # imports redis: only when configured
        except ModuleNotFoundError as exc:
            if exc.name != "redis" and not (exc.name or "").startswith("redis."):
                raise
            # As with Redis down: one warning, and this machine's cache alone.
            on_warning(
                f"the cache URL {config.safe_url(settings.cache_url)} needs the redis package: "
                "pip install 'keyfob[redis]'; tokens are cached on this machine only"
            )
            return local
        return RedisCache(settings.cache_url, local=local, trust_local=fresh, on_warning=on_warning)

    return open_cache


def limiter(settings: config.Settings, on_warning: Callable[[str], None]) -> Limiter:
    """The rate budgets the settings name: the SQLite file in the cache folder,
    shared by every machine on the Redis cache URL when there is one."""
    from keyfob.ratelimit import Limiter

    return Limiter(
        folder=_paths.cache_dir(),
        cache_url=settings.cache_url,
        max_wait=settings.limits.max_wait,
        retries=settings.limits.retries,
        signature=settings.signature,
        on_warning=on_warning,
    )


def open_store(environ: Mapping[str, str]) -> SecretStore:
    return _open_store(environ)


_default: Broker | None = None
_requests: Broker | None = None
_default_lock = threading.Lock()


def default() -> Broker:
    """The process's broker, made on first use from the environment and config.toml."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from keyfob.broker import Broker

                _default = Broker()
    return _default


def via_requests() -> Broker:
    """The process's broker whose requests go out on ``requests``
    (:mod:`keyfob.requests_transport`): ``keyfob.inaturalist``'s, so that the
    tools pyinaturalist users test with see them. Same cache and secret store."""
    global _requests
    if _requests is None:
        with _default_lock:
            if _requests is None:
                from keyfob.broker import Broker
                from keyfob.requests_transport import RequestsTransport

                settings = config.load()
                _requests = Broker(settings=settings, transport=RequestsTransport(settings.http))
    return _requests


def accounts() -> Accounts:
    """Login, logout and the stored secrets, on the process's broker."""
    from keyfob.accounts import Accounts

    return Accounts(default())


def reset() -> None:
    """Forget the process's broker (tests that change KEYFOB_HOME call this)."""
    global _default, _requests
    with _default_lock:
        for broker in (_default, _requests):
            if broker is not None:
                broker.transport.close()
        _default = _requests = None
