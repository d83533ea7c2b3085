"""Opening the token cache the settings name: the SQLite file in the user cache
folder, or Redis with the SQLite file in front (its values encrypted with the key
from ``KEYFOB_CACHE_KEY`` or the keyring). The broker opens it on first use."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from keyfob import _paths, config
from keyfob.cache import Entry
from keyfob.cache.base import Cache, CacheUnavailable
from keyfob.secretstore import open_store

#: the keyring entry (service, name) of the key that encrypts what rests in Redis
CACHE_KEY_ENTRY = ("keyfob:cache", "key")


def cache_opener(
    settings: config.Settings, environ: Mapping[str, str] | None = None
) -> Callable[[Callable[[str], None], Callable[[Entry], bool]], Cache]:
    """How to open the cache ``settings`` name: warnings go to ``on_warning``;
    ``fresh`` is the broker's judgement of whether a local copy may answer."""
    env = os.environ if environ is None else environ

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
        key, source = cache_key(env)
        return RedisCache(
            settings.cache_url,
            local=local,
            trust_local=fresh,
            on_warning=on_warning,
            key=key,
            key_source=source,
        )

    return open_cache


def cache_key(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The key that encrypts what keyfob writes to Redis, and where it came from:
    ``KEYFOB_CACHE_KEY``, else the keyring entry ``keyfob:cache``/``key``."""
    value = environ.get("KEYFOB_CACHE_KEY")
    if value:
        return value, "KEYFOB_CACHE_KEY"
    service, name = CACHE_KEY_ENTRY
    return open_store(environ).get(service, name), f"the keyring entry {service}/{name}"
