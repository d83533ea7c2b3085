"""Redis for fleets: machines that use one account share its token.

What lives in Redis, under names that hash the provider and account (a key
never holds a name or a secret)::

    keyfob:2:token:<h>    the entry without its refresh token; expires with the token
    keyfob:2:refresh:<h>  the entry without its access token; expires on its own
                          schedule, so it outlives the access token
    keyfob:lock:<h>       the single-flight lock: a lease, renewed while its holder lives

Each value is JSON: ``{"key": [provider, account], "entry": Entry.to_dict()}``
(the key guards against a hash collision). ``2`` is the format: keys of
another format are never read, so versions side by side each keep their own.

At rest in Redis, every client of that Redis could read the JSON: with a key
(``KEYFOB_CACHE_KEY``, or the keyring entry ``keyfob:cache``/``key``), each value
is ``kf1:<key id>:<base64 of nonce + AES-256-GCM ciphertext>``, the Redis key's
name as associated data (a value copied under another account's name does not
decrypt). The key is ``<key id>:<base64 of 32 bytes>``; several, separated by
commas, rotate: the first encrypts, every one decrypts. A value that does not
decrypt (an unknown key id, a wrong key, a value in clear while a key is set)
is a miss, warned once. Without a key, values rest in clear, warned once.

A local cache (the SQLite file) stands in front: an entry found there that the
broker's ``trust_local`` accepts (a FRESH token) is answered without a Redis
round trip, which also keeps the command line's cached-token path (it reads
the SQLite file) working. The cache itself judges no token. Redis down is a warning,
once; the local cache then serves alone, and Redis is tried again every few
seconds.

This module imports ``redis`` (150 ms): it is imported only when a cache URL
is configured.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Literal

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from keyfob.cache import Entry, Key
from keyfob.cache.base import Cache
from keyfob.errors import ConfigError
from keyfob.token import Token

log = logging.getLogger("keyfob")

PREFIX = "keyfob"
FORMAT = 3  # of the stored values; change it with keyfob.cache.FIELDS
DEFAULT_LEASE = 30.0  # a killed holder blocks the others at most this long
DEFAULT_WAIT = 120.0  # then go on under the local lock alone, with a warning
DEFAULT_RETRY_AFTER = 5.0  # while Redis is down, try it again at most this often
DEFAULT_TIMEOUT = 1.0  # connect and read: Redis answers in microseconds or not at all

# Delete the token key only if it still holds the value read (and found to hold
# the token being dropped): after a 401, another machine may already have saved
# a newer one. The comparison is of the stored text: Redis cannot read an
# encrypted value, so the client decides, and Redis only checks it is unchanged.
_DELETE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

#: what marks an encrypted value; the number is the envelope's format
SEALED = "kf1"
_KID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
KEY_HINT = (
    "KEYFOB_CACHE_KEY is KEY_ID:BASE64 (32 bytes), several separated by commas, the "
    'first encrypting; make one: python3 -c "import base64, os; '
    "print('k1:' + base64.b64encode(os.urandom(32)).decode())\""
)


class Sealer:
    """AES-256-GCM over the values keyfob writes to Redis (``cryptography``)."""

    def __init__(self, spec: str, source: str = "KEYFOB_CACHE_KEY") -> None:
        self.keys: dict[str, AESGCM] = {}
        for item in spec.replace(",", " ").split():
            kid, _, encoded = item.partition(":")
            try:
                raw = base64.b64decode(encoded.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if not _KID.fullmatch(kid) or len(raw) != 32:
                # The message names where the key came from, never any part of it.
                raise ConfigError(f"{source} is not a list of KEY_ID:BASE64 keys", hint=KEY_HINT)
            self.keys.setdefault(kid, AESGCM(raw))
        if not self.keys:
            raise ConfigError(f"{source} is empty", hint=KEY_HINT)
        self.current = next(iter(self.keys))

    def seal(self, name: str, plain: str) -> str:
        nonce = os.urandom(12)
        sealed = self.keys[self.current].encrypt(nonce, plain.encode(), name.encode())
        return f"{SEALED}:{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, name: str, value: str) -> str:
        """The plain text, or ``ValueError`` saying why not (never a secret)."""
        mark, _, rest = value.partition(":")
        if mark != SEALED:
            raise ValueError("it rests in clear, and a key is set")
        kid, _, body = rest.partition(":")
        key = self.keys.get(kid)
        if key is None:
            raise ValueError(f"its key id {kid[:32]!r} is not among the keys given")
        try:
            data = base64.b64decode(body, validate=True)
            return key.decrypt(data[:12], data[12:], name.encode()).decode()
        except (binascii.Error, InvalidTag, ValueError):
            raise ValueError(f"it does not decrypt with the key {kid!r}") from None


def key_hash(key: Key) -> str:
    return hashlib.sha256(f"{key[0]}\0{key[1]}".encode()).hexdigest()[:32]


def key_names(key: Key) -> tuple[str, str]:
    """The Redis keys of an entry: its access token's, its refresh token's."""
    return _names(key_hash(key))


def _names(h: str) -> tuple[str, str]:
    return f"{PREFIX}:{FORMAT}:token:{h}", f"{PREFIX}:{FORMAT}:refresh:{h}"


def where(url: str) -> str:
    """``scheme://host:port`` of a Redis URL: never its password, user or database."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 6379
    except ValueError:
        return "<invalid Redis URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}"


class RedisCache:
    """Tokens in Redis, with ``local`` (the SQLite cache) in front of it.

    ``trust_local(entry)`` says whether an entry of the local copy may be
    answered without asking Redis: the broker's judgement (by default, never).
    """

    def __init__(
        self,
        url: str,
        *,
        local: Cache,
        trust_local: Callable[[Entry], bool] = lambda entry: False,
        on_warning: Callable[[str], None] | None = None,
        key: str | None = None,
        key_source: str = "KEYFOB_CACHE_KEY",
        lease: float = DEFAULT_LEASE,
        wait: float = DEFAULT_WAIT,
        retry_after: float = DEFAULT_RETRY_AFTER,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.where = where(url)  # which URLs may be configured: keyfob.config.Settings
        self.local = local
        self.trust_local = trust_local
        self.lease = lease
        self.wait = wait
        self.retry_after = retry_after
        self._warn = on_warning or (lambda message: None)
        self._warned = False
        self._warned_value = False
        self._sealer = Sealer(key, key_source) if key else None
        self._said_clear = False
        self._down_until: float | None = None
        options: dict[str, object] = {}
        try:  # redis-py >= 7 asks every server for these on connect: one round trip less
            from redis.maint_notifications import MaintNotificationsConfig

            options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
        except ImportError:
            pass
        try:
            self._redis = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # down is down: the local cache answers
                **options,
            )
        except ValueError:
            raise ConfigError(
                f"the cache URL {self.where} is not a valid Redis URL",
                hint="fix [cache] url in config.toml, or KEYFOB_CACHE_URL",
            ) from None
        self._delete_if_same = self._redis.register_script(_DELETE_IF_SAME)

    # -- Redis up or down --------------------------------------------------------

    def _usable(self) -> bool:
        down_until = self._down_until
        return down_until is None or time.monotonic() >= down_until

    def _answered(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.info("the shared cache at %s answers again", self.where)

    def _failed(self, exc: RedisError) -> None:
        self._down_until = time.monotonic() + self.retry_after
        log.debug("the shared cache at %s failed: %s", self.where, type(exc).__name__)
        if self._warned:
            return
        self._warned = True
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            self._warn(
                f"the shared cache at {self.where} is down; getting tokens from the provider"
            )
        else:
            self._warn(
                f"the shared cache at {self.where} failed ({type(exc).__name__}); "
                "getting tokens from the provider"
            )

    # -- the protocol --------------------------------------------------------------

    def get(self, key: Key) -> Entry | None:
        entry = self.local.get(key)
        if entry is not None and self.trust_local(entry):
            return entry  # no Redis round trip
        if not self._usable():
            return entry
        try:
            found = self._read(key_hash(key))
        except RedisError as exc:
            self._failed(exc)
            return entry
        self._answered()
        if found is None or found[0] != key:
            return None
        if found[1].token.access_token:
            self.local.put(key, found[1])
        return found[1]

    def put(self, key: Key, entry: Entry) -> None:
        self.local.put(key, entry)
        if not self._usable():
            return
        try:
            self._write(key, entry)
        except RedisError as exc:
            self._failed(exc)
        else:
            self._answered()

    def drop(self, key: Key, token: Token) -> None:
        # Redis first: a reader that misses the local copy meanwhile must not
        # copy the refused token back into it from Redis.
        if self._usable():
            name = key_names(key)[0]
            try:
                value = self._redis.get(name)
                if isinstance(value, str):  # decode_responses: text, or None
                    found = self._merge(name, value, "", None)
                    if found is not None and found[1].token.access_token == token.access_token:
                        self._delete_if_same(keys=[name], args=[value])
            except RedisError as exc:
                self._failed(exc)
            else:
                self._answered()
        self.local.drop(key, token)

    def delete(self, key: Key) -> None:
        self.local.delete(key)
        if not self._usable():
            return
        try:
            self._redis.delete(*key_names(key))
        except RedisError as exc:
            self._failed(exc)
        else:
            self._answered()

    def entries(self) -> Iterator[tuple[Key, Entry]]:
        if self._usable():
            try:
                found = self._read_all()
            except RedisError as exc:
                self._failed(exc)
            else:
                self._answered()
                yield from found
                return
        yield from self.local.entries()

    def lock(self, key: Key, *, blocking: bool = True) -> AbstractContextManager[bool]:
        return self._lock(key, blocking)

    def describe(self) -> str:
        return f"{self.where} (Redis), in front of it {self.local.describe()}"

    def close(self) -> None:
        """Close the connections to Redis (a later call opens them again)."""
        self._redis.close()

    # -- reading and writing -------------------------------------------------------

    def _read(self, h: str) -> tuple[Key, Entry] | None:
        with self._redis.pipeline(transaction=True) as pipe:
            for name in _names(h):
                pipe.get(name)
            token_value, refresh_value = pipe.execute()
        token_name, refresh_name = _names(h)
        return self._merge(token_name, token_value, refresh_name, refresh_value)

    def _merge(
        self, token_name: str, token_value: str | None, refresh_name: str, refresh_value: str | None
    ) -> tuple[Key, Entry] | None:
        """The entry from the token key, with the refresh token from its own key;
        only the refresh key left: an expired token that can still be refreshed.
        A value keyfob did not write, or cannot decrypt, is a miss."""
        try:
            if token_value is not None:
                key, data = _load(self._open(token_name, token_value))
                if refresh_value is not None:
                    refresh = _load(self._open(refresh_name, refresh_value))[1]
                    data["refresh_token"] = refresh["refresh_token"]
                    data["refresh_expires"] = refresh["refresh_expires"]
            elif refresh_value is not None:
                key, data = _load(self._open(refresh_name, refresh_value))
            else:
                return None
            return key, Entry.from_dict(data)
        except _Sealed as exc:
            if not self._warned_value:
                self._warned_value = True
                self._warn(
                    f"a token in the shared cache at {self.where} cannot be read: {exc}; "
                    "treating it as missing"
                )
            return None
        except (KeyError, ValueError, TypeError):
            return None  # not written by keyfob: a miss

    def _seal(self, name: str, plain: str) -> str:
        return plain if self._sealer is None else self._sealer.seal(name, plain)

    def _open(self, name: str, value: str) -> str:
        if self._sealer is not None:
            try:
                return self._sealer.open(name, value)
            except ValueError as exc:
                raise _Sealed(str(exc)) from None
        if value.startswith(SEALED + ":"):
            raise _Sealed("it is encrypted, and no key is set (KEYFOB_CACHE_KEY)")
        return value

    def _read_all(self) -> list[tuple[Key, Entry]]:
        hashes = set()
        for kind in ("token", "refresh"):
            prefix = f"{PREFIX}:{FORMAT}:{kind}:"
            for name in self._redis.scan_iter(match=f"{prefix}*", count=500):
                hashes.add(str(name)[len(prefix) :])
        found = []
        for h in sorted(hashes):
            item = self._read(h)
            if item is not None and key_hash(item[0]) == h:
                found.append(item)
        return sorted(found, key=lambda item: item[0])

    def _write(self, key: Key, entry: Entry) -> None:
        token_key, refresh_key = key_names(key)
        t = entry.token
        data = entry.to_dict()
        left = entry.without_access_token()
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(token_key, refresh_key)
            if t.access_token:
                access_only = {**data, "refresh_token": None, "refresh_expires": None}
                pipe.set(token_key, self._seal(token_key, _dump(key, access_only)))
                if t.expires is not None:
                    pipe.pexpireat(token_key, _ms(t.expires))
            if left is not None:
                pipe.set(refresh_key, self._seal(refresh_key, _dump(key, left.to_dict())))
                if t.refresh_expires is not None:
                    pipe.pexpireat(refresh_key, _ms(t.refresh_expires))
            pipe.execute()
        if self._sealer is None and not self._said_clear:
            self._said_clear = True
            self._warn(
                f"tokens rest in clear in the shared cache at {self.where}, readable by every "
                "client of it; set KEYFOB_CACHE_KEY to encrypt them (see the README)"
            )

    # -- the lock --------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, key: Key, blocking: bool) -> Iterator[bool]:
        lease = self._acquire(key, blocking) if self._usable() else None
        if lease is None:
            with self.local.lock(key, blocking=blocking) as held:
                yield held
            return
        if lease == BUSY:
            yield False
            return
        try:
            yield True
        finally:
            lease.release()

    def _acquire(self, key: Key, blocking: bool = True) -> _Lease | Literal["busy"] | None:
        """The lease; ``"busy"`` when another holds it and ``blocking`` is off; None
        when Redis cannot lock (down, or waited too long): then the local lock."""
        lock = self._redis.lock(
            f"{PREFIX}:lock:{key_hash(key)}",
            timeout=self.lease,
            sleep=0.02,
            blocking_timeout=self.wait,
            thread_local=False,  # renewed from another thread
        )
        try:
            got = lock.acquire(blocking=blocking)
        except RedisError as exc:
            self._failed(exc)
            return None
        self._answered()
        if not got and not blocking:
            return BUSY
        if not got:
            self._warn(
                f"waited {self.wait:g} s for the lock in the shared cache at {self.where}; "
                "going on without it"
            )
            return None
        return _Lease(lock, self.lease)


BUSY: Literal["busy"] = "busy"  # another holds the Redis lock, and the caller would not wait


class _Lease:
    """A held Redis lock, renewed every third of its lease while this process lives."""

    def __init__(self, lock: redis.lock.Lock, lease: float) -> None:
        self._lock = lock
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, args=(lease / 3,), name="keyfob-lock-lease", daemon=True
        )
        self._thread.start()

    def _renew(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self._lock.reacquire()
            except Exception as exc:  # lost or unreachable: the lease runs out by itself
                log.debug("cannot renew the shared cache lock: %s", type(exc).__name__)
                return

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self._lock.release()
        except RedisError as exc:  # expired while held, or Redis gone: nothing to free
            log.debug("cannot release the shared cache lock: %s", type(exc).__name__)


def _ms(epoch: float) -> int:
    """An expiry for PEXPIREAT: Redis forgets the key then, by its own clock
    (at once if that is past)."""
    return max(int(epoch * 1000), 1)


def _dump(key: Key, data: dict[str, object]) -> str:
    return json.dumps({"key": list(key), "entry": data}, separators=(",", ":"))


def _load(value: str) -> tuple[Key, dict[str, object]]:
    document = json.loads(value)
    provider, account = document["key"]
    if not isinstance(provider, str) or not isinstance(account, str):
        raise ValueError("not a keyfob cache key")
    return (provider, account), dict(document["entry"])


class _Sealed(Exception):
    """A value that does not decrypt here; its message says why, never a secret."""
