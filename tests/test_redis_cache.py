"""The Redis cache, against a real ``redis-server`` on loopback.

Each test module run starts its own server on a free port (no saving, no
append-only file) and stops it by PID. ``redis-server`` missing: the tests are
skipped, or fail when ``CI`` is set (``scripts/setup-redis.sh`` installs it).

"Machines" are processes with separate ``KEYFOB_HOME`` folders (so separate
SQLite caches and file locks) that share one Redis through ``KEYFOB_CACHE_URL``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

import keyfob
from conftest import CliRun
from keyfob import broker, wiring
from keyfob.cache import Entry, Key
from keyfob.cache.base import Cache
from keyfob.cache.memory import MemoryCache
from keyfob.cache.redis import RedisCache, key_hash, key_names
from keyfob.cache.sqlite import SQLiteCache
from keyfob.config import Settings
from keyfob.errors import ConfigError
from keyfob.testing import LocalProvider
from keyfob.token import Token, TokenState
from test_cache_contract import CacheContract, assert_same_entry, full_entry
from test_single_flight import release

KEY: Key = ("local", "")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process; ``stop`` and ``start`` again keep the port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.redis = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.redis.ping():
                    break
            except redis.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.redis.close()
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def client(self) -> redis.Redis:
        return self.redis

    def commands(self) -> int:
        """Commands processed so far; the INFO that asks counts one."""
        return int(self.redis.info("stats")["total_commands_processed"])


def stored_access_token(server: RedisServer, name: str) -> object:
    """The access token in a token key, as keyfob wrote it there."""
    value = server.client().get(name)
    return json.loads(str(value))["entry"]["access_token"] if value else None


def need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (run scripts/setup-redis.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    need_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(shared_server: RedisServer) -> Iterator[RedisServer]:
    """The module's server, emptied for each test."""
    shared_server.redis.flushall()
    yield shared_server


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test alone, which it may stop and start again."""
    need_redis_server()
    server = RedisServer(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.stop()


_OPEN: list[RedisCache] = []
_BROKERS: list[broker.Broker] = []


def redis_cache(url: str, *, local: Cache, **options: Any) -> RedisCache:
    """A RedisCache that is closed after the test."""
    cache = RedisCache(url, local=local, **options)
    _OPEN.append(cache)
    return cache


def machine(cache: RedisCache) -> broker.Broker:
    """A broker of its own (another machine), closed after the test."""
    b = broker.Broker(cache=cache)
    _BROKERS.append(b)
    return b


@pytest.fixture(autouse=True)
def close_caches() -> Iterator[None]:
    yield
    while _BROKERS:
        _BROKERS.pop().transport.close()
    while _OPEN:
        _OPEN.pop().close()


class NullCache:
    """A local copy that keeps nothing: every read goes to Redis."""

    def get(self, key: Key) -> Entry | None:
        return None

    def put(self, key: Key, entry: Entry) -> None:
        pass

    def drop(self, key: Key, token: Token) -> None:
        pass

    def delete(self, key: Key) -> None:
        pass

    def lock(self, key: Key) -> AbstractContextManager[object]:
        return nullcontext()

    def entries(self) -> Iterator[tuple[Key, Entry]]:
        yield from ()

    def describe(self) -> str:
        return "nothing"


# -- the contract, twice: with the SQLite copy in front, and Redis alone ------------


def fresh(entry: Entry) -> bool:
    """What the broker trusts in the local copy (``Broker._fresh``)."""
    return entry.token.state(None, entry.leeway) is TokenState.FRESH


class TestRedisCache(CacheContract):
    @pytest.fixture
    def cache(self, tmp_path: Path, server: RedisServer) -> Cache:
        local = SQLiteCache(str(tmp_path / "cache"))
        return redis_cache(server.url, local=local, trust_local=fresh)


class TestRedisCacheWithoutLocalCopy(CacheContract):
    @pytest.fixture
    def cache(self, server: RedisServer) -> Cache:
        return redis_cache(server.url, local=NullCache())


# -- what is in Redis ----------------------------------------------------------------


def entry_expiring(access: float, refresh: float | None, name: str = "access-1") -> Entry:
    now = time.time()
    token = Token(
        f"token-{name}",
        expires=now + access,
        issued=now,
        refresh_token=f"refresh-{name}" if refresh is not None else None,
        refresh_expires=now + refresh if refresh else None,
    )
    return Entry(token, fingerprint="f" * 32)


def test_token_key_expires_with_the_access_token_and_refresh_key_on_its_own(
    server: RedisServer,
) -> None:
    redis_cache(server.url, local=NullCache()).put(KEY, entry_expiring(600, 86400))
    client = server.client()
    h = key_hash(KEY)
    assert abs(client.ttl(f"keyfob:3:token:{h}") - 600) <= 2
    assert abs(client.ttl(f"keyfob:3:refresh:{h}") - 86400) <= 2


def test_a_token_that_never_expires_has_no_ttl(server: RedisServer) -> None:
    cache = redis_cache(server.url, local=NullCache())
    cache.put(KEY, Entry(Token("never-expiring-token")))
    assert server.client().ttl(f"keyfob:3:token:{key_hash(KEY)}") == -1


def test_a_refresh_token_without_expiry_has_no_ttl(server: RedisServer) -> None:
    redis_cache(server.url, local=NullCache()).put(KEY, entry_expiring(600, 0))
    assert server.client().ttl(f"keyfob:3:refresh:{key_hash(KEY)}") == -1


def test_redis_keys_hold_neither_names_nor_secrets(server: RedisServer) -> None:
    cache = redis_cache(server.url, local=NullCache())
    cache.put(("local", "alice@example.org"), full_entry())
    with cache.lock(("local", "alice@example.org")):
        keys = set(server.client().keys("*"))
    h = key_hash(("local", "alice@example.org"))
    assert keys == {f"keyfob:3:token:{h}", f"keyfob:3:refresh:{h}", f"keyfob:lock:{h}"}


def test_the_access_token_and_the_refresh_token_live_in_separate_keys(
    server: RedisServer,
) -> None:
    redis_cache(server.url, local=NullCache()).put(KEY, entry_expiring(600, 86400))
    client = server.client()
    h = key_hash(KEY)
    in_token_key = str(client.get(f"keyfob:3:token:{h}"))
    in_refresh_key = str(client.get(f"keyfob:3:refresh:{h}"))
    assert "token-access-1" in in_token_key and "refresh-access-1" not in in_token_key
    assert "refresh-access-1" in in_refresh_key and "token-access-1" not in in_refresh_key


def test_refresh_token_outlives_its_expired_access_token(server: RedisServer) -> None:
    redis_cache(server.url, local=NullCache()).put(KEY, entry_expiring(600, 86400))
    server.client().delete(f"keyfob:3:token:{key_hash(KEY)}")  # as its TTL would

    got = redis_cache(server.url, local=NullCache()).get(KEY)

    assert got is not None
    assert got.token.refresh_token == "refresh-access-1"
    assert got.token.state() is TokenState.EXPIRED
    assert got.fingerprint == "f" * 32


@pytest.mark.parametrize(
    "value",
    [
        "not json at all",
        '["a", "list"]',
        '{"key": ["local", ""], "entry": {"access_token": "only-this"}}',
        '{"key": ["local", 7], "entry": {}}',
    ],
)
def test_a_value_keyfob_did_not_write_is_a_miss(server: RedisServer, value: str) -> None:
    server.client().set(f"keyfob:3:token:{key_hash(KEY)}", value)
    assert redis_cache(server.url, local=NullCache()).get(KEY) is None


def test_keys_of_another_format_are_left_alone(server: RedisServer) -> None:
    h = key_hash(KEY)
    old_hash = {"provider": "local", "account": "", "access_token": "format-1-token"}
    server.client().hset(f"keyfob:token:{h}", mapping=old_hash)
    cache = redis_cache(server.url, local=NullCache())

    assert cache.get(KEY) is None
    assert list(cache.entries()) == []
    cache.put(KEY, full_entry())
    assert_same_entry(cache.get(KEY), full_entry())
    assert server.client().hgetall(f"keyfob:token:{h}") == old_hash


def test_dropping_a_refused_token_keeps_a_newer_one_saved_by_another_machine(
    server: RedisServer, tmp_path: Path
) -> None:
    a = redis_cache(server.url, local=SQLiteCache(str(tmp_path / "a")))
    b = redis_cache(server.url, local=SQLiteCache(str(tmp_path / "b")))
    old = entry_expiring(600, 86400, "old")
    a.put(KEY, old)
    b.put(KEY, entry_expiring(600, 86400, "new"))

    a.drop(KEY, old.token)  # what the broker does on a 401

    got = a.get(KEY)
    assert got is not None and got.token.access_token == "token-new"


def test_dropping_a_refused_token_keeps_its_refresh_token(server: RedisServer) -> None:
    cache = redis_cache(server.url, local=NullCache())
    entry = entry_expiring(600, 86400)
    cache.put(KEY, entry)
    cache.drop(KEY, entry.token)

    got = cache.get(KEY)
    assert got is not None
    assert got.token.state() is TokenState.EXPIRED
    assert got.token.refresh_token == "refresh-access-1"


def test_drop_leaves_a_value_keyfob_did_not_write_alone(server: RedisServer) -> None:
    name = f"keyfob:3:token:{key_hash(KEY)}"
    server.client().set(name, "not json at all")
    warnings: list[str] = []
    cache = redis_cache(server.url, local=NullCache(), on_warning=warnings.append)

    cache.drop(KEY, full_entry().token)

    assert warnings == []
    assert server.client().get(name) == "not json at all"


def test_drop_reaches_redis_behind_a_local_copy(server: RedisServer, tmp_path: Path) -> None:
    a = redis_cache(server.url, local=SQLiteCache(str(tmp_path / "a")))
    a.put(KEY, full_entry())
    a.drop(KEY, full_entry().token)

    from_redis = redis_cache(server.url, local=NullCache()).get(KEY)
    assert from_redis == full_entry().without_access_token()
    assert SQLiteCache(str(tmp_path / "a")).get(KEY) == full_entry().without_access_token()


def test_a_miss_in_the_local_copy_is_read_from_redis_and_copied(
    server: RedisServer, tmp_path: Path
) -> None:
    redis_cache(server.url, local=NullCache()).put(KEY, full_entry())
    local = SQLiteCache(str(tmp_path / "cache"))

    assert_same_entry(redis_cache(server.url, local=local).get(KEY), full_entry())
    assert_same_entry(local.get(KEY), full_entry())


def redis_commands_for(server: RedisServer, ask: Callable[[], T]) -> tuple[T, int]:
    """What ``ask`` answered, and how many commands it sent to Redis."""
    idle = -server.commands() + server.commands()
    before = server.commands()
    answer = ask()
    return answer, server.commands() - before - idle


def test_a_local_entry_the_broker_trusts_is_served_without_a_redis_round_trip(
    server: RedisServer, tmp_path: Path
) -> None:
    local = SQLiteCache(str(tmp_path / "cache"))
    redis_cache(server.url, local=local).put(KEY, full_entry())
    asked: list[Entry] = []

    def trust(entry: Entry) -> bool:
        asked.append(entry)
        return True

    cache = redis_cache(server.url, local=local, trust_local=trust)
    got, commands = redis_commands_for(server, lambda: cache.get(KEY))

    assert_same_entry(got, full_entry())
    assert commands == 0
    assert len(asked) == 1
    assert_same_entry(asked[0], full_entry())


def test_a_local_entry_the_broker_does_not_trust_is_looked_up_in_redis(
    server: RedisServer, tmp_path: Path
) -> None:
    local = SQLiteCache(str(tmp_path / "cache"))
    local.put(KEY, full_entry("local-access-token"))
    redis_cache(server.url, local=NullCache()).put(KEY, full_entry("shared-access-token"))
    cache = redis_cache(server.url, local=local, trust_local=lambda entry: False)

    got, commands = redis_commands_for(server, lambda: cache.get(KEY))

    assert got is not None and got.token.access_token == "shared-access-token"
    assert commands > 0


def test_the_cache_judges_no_token_itself(server: RedisServer, tmp_path: Path) -> None:
    # Long expired, yet trusted: served as it is. By default, nothing is trusted.
    local = SQLiteCache(str(tmp_path / "cache"))
    expired = entry_expiring(-3600, 86400, "expired")
    local.put(KEY, expired)
    trusting = redis_cache(server.url, local=local, trust_local=lambda entry: True)
    assert redis_commands_for(server, lambda: trusting.get(KEY)) == (expired, 0)

    local.put(KEY, full_entry())  # FRESH, yet not trusted by default: Redis is asked
    default = redis_cache(server.url, local=local)
    got, commands = redis_commands_for(server, lambda: default.get(KEY))
    assert got is None and commands > 0


def test_describe_names_the_server_but_never_its_password(no_secret_leaks) -> None:
    no_secret_leaks.plant("hunter2-redis-password")
    cache = redis_cache("redis://:hunter2-redis-password@127.0.0.1:6390/2", local=MemoryCache())
    no_secret_leaks.add("describe", cache.describe())
    assert "redis://127.0.0.1:6390" in cache.describe()


def test_a_url_redis_cannot_read_is_a_config_error(no_secret_leaks) -> None:
    no_secret_leaks.plant("hunter2-memcached-password")
    with pytest.raises(ConfigError) as caught:
        RedisCache("memcached://user:hunter2-memcached-password@127.0.0.1/", local=MemoryCache())
    no_secret_leaks.add("ConfigError", str(caught.value))
    assert "not a valid Redis URL" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "memcached://:hunter2-cache-password@127.0.0.1/",
        "unix://:hunter2-cache-password@/run/redis.sock",  # redis-py would take it
        "http://:hunter2-cache-password@127.0.0.1:6379/",
        "REDIS-ish://:hunter2-cache-password@127.0.0.1/",
    ],
)
def test_settings_refuse_a_cache_url_that_is_not_redis(url: str, no_secret_leaks) -> None:
    no_secret_leaks.plant("hunter2-cache-password")
    with pytest.raises(ConfigError) as caught:
        Settings(path="/cfg/config.toml", signature="test", cache_url=url)
    no_secret_leaks.add("ConfigError", str(caught.value))
    assert "is not a redis:// or rediss:// URL" in str(caught.value)
    assert caught.value.hint == "fix [cache] url in /cfg/config.toml, or KEYFOB_CACHE_URL"


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://cache.example.org:6380/1"])
def test_settings_take_a_redis_url(url: str) -> None:
    assert Settings(path="/cfg/config.toml", signature="test", cache_url=url).cache_url == url


# -- Redis down ------------------------------------------------------------------------


def test_redis_down_is_one_warning_without_the_password(no_secret_leaks) -> None:
    no_secret_leaks.plant("hunter2-redis-password")
    port = free_port()  # nothing listens there
    warnings: list[str] = []
    cache = redis_cache(
        f"redis://:hunter2-redis-password@127.0.0.1:{port}/0",
        local=MemoryCache(),
        on_warning=warnings.append,
        retry_after=0,
    )
    cache.put(KEY, full_entry())
    with cache.lock(KEY):
        got = cache.get(KEY)
    cache.delete(KEY)
    list(cache.entries())

    for text in warnings:
        no_secret_leaks.add("warning", text)
    assert warnings == [
        f"the shared cache at redis://127.0.0.1:{port} is down; getting tokens from the provider"
    ]
    assert_same_entry(got, full_entry())  # from the local copy


def test_get_token_goes_on_while_redis_is_down_and_uses_it_again_when_back(
    configured: LocalProvider, own_server: RedisServer, home: Path
) -> None:
    warnings: list[str] = []
    cache = redis_cache(
        own_server.url,
        local=SQLiteCache(str(home / "cache")),
        on_warning=warnings.append,
        retry_after=0.2,
    )
    b = machine(cache)
    token_key = f"keyfob:3:token:{key_hash(KEY)}"
    first = b.get_token("local")
    assert stored_access_token(own_server, token_key) == first.access_token

    own_server.stop()
    during = [b.get_token("local", refresh=True) for _ in range(2)]

    assert configured.count("/std/token") == 3
    assert all(configured.is_active(t.access_token) for t in during)
    others = [w for w in warnings if "in clear" not in w]  # that one is tested on its own
    assert len(others) == 1 and "is down" in others[0]

    own_server.start()  # same port, empty
    time.sleep(0.3)  # past retry_after: the next call tries Redis again
    after = b.get_token("local", refresh=True)

    assert stored_access_token(own_server, token_key) == after.access_token
    assert [w for w in warnings if "in clear" not in w] == others


# -- the lock --------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from keyfob.cache.memory import MemoryCache
    from keyfob.cache.redis import RedisCache

    url, ready, lease = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    cache = RedisCache(url, local=MemoryCache(), lease=lease)
    with cache.lock(("local", "")):
        ready.touch()
        time.sleep(120)
    """
)


def test_a_lock_holder_killed_with_sigkill_frees_the_lock_after_its_lease(
    server: RedisServer, tmp_path: Path
) -> None:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [sys.executable, str(script), server.url, str(ready), "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert holder.poll() is None, holder.stderr.read() if holder.stderr else ""
            assert time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.01)
        warnings: list[str] = []
        impatient = redis_cache(server.url, local=MemoryCache(), on_warning=warnings.append, wait=3)
        with impatient.lock(KEY) as held:  # longer than the lease: the holder renews it
            assert held  # under the local lock alone, as the warning says
        assert len(warnings) == 1 and "going on without it" in warnings[0]

        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        patient = redis_cache(server.url, local=MemoryCache(), on_warning=warnings.append, wait=30)
        with patient.lock(KEY) as held:
            assert held
        assert len(warnings) == 1  # the lease ran out: the lock was had in Redis
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        if holder.stderr:
            holder.stderr.close()


# -- through the broker ----------------------------------------------------------------


@pytest.fixture
def shared(
    configured: LocalProvider, server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> LocalProvider:
    monkeypatch.setenv("KEYFOB_CACHE_URL", server.url)
    wiring.reset()
    return configured


def test_broker_uses_redis_when_a_cache_url_is_configured(
    shared: LocalProvider, server: RedisServer
) -> None:
    token = keyfob.get_token("local")
    assert stored_access_token(server, f"keyfob:3:token:{key_hash(KEY)}") == token.access_token
    assert f"127.0.0.1:{server.port}" in wiring.default().cache.describe()


def test_broker_refuses_a_cache_url_that_is_not_redis(
    configured: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks
) -> None:
    no_secret_leaks.plant("hunter2-cache-password")
    monkeypatch.setenv("KEYFOB_CACHE_URL", "memcached://:hunter2-cache-password@127.0.0.1/")
    wiring.reset()
    with pytest.raises(ConfigError) as caught:
        keyfob.get_token("local")
    no_secret_leaks.add("ConfigError", str(caught.value))
    assert "memcached://127.0.0.1" in str(caught.value)


def test_the_brokers_redis_cache_trusts_a_fresh_local_token_and_no_other(
    shared: LocalProvider, server: RedisServer
) -> None:
    cache = wiring.default().cache
    assert isinstance(cache, RedisCache)
    stale = entry_expiring(30, 86400, "stale")
    stale = stale.replace(token=stale.token.replace(issued=None))  # 30 s of unknown life: STALE
    assert stale.token.state() is TokenState.STALE
    cache.local.put(KEY, stale)
    redis_cache(server.url, local=NullCache()).put(KEY, entry_expiring(3600, 86400, "shared"))

    got, commands = redis_commands_for(server, lambda: cache.get(KEY))
    assert got is not None and got.token.access_token == "token-shared"
    assert commands > 0

    cache.local.put(KEY, entry_expiring(3600, 86400, "local"))
    got, commands = redis_commands_for(server, lambda: cache.get(KEY))
    assert got is not None and got.token.access_token == "token-local"
    assert commands == 0


def test_second_machine_reuses_the_shared_token(
    shared: LocalProvider, tmp_path: Path, server: RedisServer
) -> None:
    first = keyfob.get_token("local")
    other = machine(redis_cache(server.url, local=SQLiteCache(str(tmp_path / "other-machine"))))

    assert other.get_token("local").access_token == first.access_token
    assert shared.count("/std/token") == 1


def test_after_a_401_a_machine_takes_the_newer_token_from_redis(
    shared: LocalProvider, tmp_path: Path, server: RedisServer
) -> None:
    a = machine(redis_cache(server.url, local=SQLiteCache(str(tmp_path / "a"))))
    b = machine(redis_cache(server.url, local=SQLiteCache(str(tmp_path / "b"))))
    old = a.get_token("local")
    new = b.get_token("local", refresh=True)
    assert new.access_token != old.access_token
    shared.revoke(old.access_token)
    requests = shared.count("/std/token")

    a.invalidate("local", old)  # what the adapters do on a 401
    again = a.get_token("local")

    assert again.access_token == new.access_token
    assert shared.count("/std/token") == requests


def test_valid_token_in_the_local_copy_needs_no_redis_round_trip(
    shared: LocalProvider, server: RedisServer
) -> None:
    first = keyfob.get_token("local")
    wiring.reset()  # a new process: nothing in memory, the local SQLite copy on disk

    idle = -server.commands() + server.commands()
    before = server.commands()
    again = keyfob.get_token("local")
    after = server.commands()

    assert again.access_token == first.access_token
    assert after - before == idle


def test_command_line_fast_path_answers_from_the_local_copy_with_redis_configured(
    shared: LocalProvider, server: RedisServer, cli
) -> None:
    first = keyfob.get_token("local")
    idle = -server.commands() + server.commands()
    before = server.commands()
    done = cli("token", "local")
    after = server.commands()

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == first.access_token
    assert after - before == idle


# -- a fleet: processes with separate homes, one Redis -------------------------------

PROCESSES = 3
THREADS = 8

WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path

    import httpx, redis  # the heavy imports before the start: the race is about tokens
    import keyfob
    from keyfob import wiring

    threads, ready, start = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    wiring.default().cache
    barrier = threading.Barrier(threads)
    tokens, errors = [], []

    def ask():
        try:
            barrier.wait()
            tokens.append(keyfob.get_token("local").access_token)
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    ready.touch()
    while not start.exists():
        time.sleep(0.002)
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print(json.dumps({"tokens": tokens, "errors": errors}))
    """
)


def race_machines(
    local: LocalProvider, tmp_path: Path, no_secret_leaks, cache_url: str | None
) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start = tmp_path / "start"
    workers = []
    ready = []
    for i in range(PROCESSES):
        home = tmp_path / f"machine-{i}"
        home.mkdir()
        (home / "config.toml").write_text(local.config_toml())
        env = {**os.environ, "KEYFOB_HOME": str(home)}
        env.pop("KEYFOB_CACHE_URL", None)
        if cache_url:
            env["KEYFOB_CACHE_URL"] = cache_url
        ready.append(tmp_path / f"ready-{i}")
        workers.append(
            subprocess.Popen(
                [sys.executable, str(script), str(THREADS), str(ready[-1]), str(start)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return release(workers, ready, start, no_secret_leaks)


def test_machines_sharing_redis_from_cold_make_one_token_request(
    configured: LocalProvider, server: RedisServer, tmp_path: Path, no_secret_leaks
) -> None:
    configured.delay("/std/token", 0.2)  # the race stays open while the first one asks
    tokens = race_machines(configured, tmp_path, no_secret_leaks, server.url)

    assert len(tokens) == PROCESSES * THREADS
    assert configured.count("/std/token") == 1
    assert len(set(tokens)) == 1


def test_machines_without_redis_each_ask_for_their_own_token(
    configured: LocalProvider, tmp_path: Path, no_secret_leaks
) -> None:
    # Shows the test above can fail: separate homes share no file lock and no cache.
    configured.delay("/std/token", 0.2)
    tokens = race_machines(configured, tmp_path, no_secret_leaks, None)

    assert len(tokens) == PROCESSES * THREADS
    assert configured.count("/std/token") == PROCESSES


# -- at rest: encrypted with KEYFOB_CACHE_KEY ----------------------------------------

#: made-up keys for the tests (base64 of 32 bytes each)
KEY_1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
KEY_2 = "k2:" + base64.b64encode(bytes(range(32, 64))).decode()
KEY_1_WRONG = "k1:" + base64.b64encode(bytes(range(64, 96))).decode()


class TestRedisCacheEncrypted(CacheContract):
    @pytest.fixture
    def cache(self, tmp_path: Path, server: RedisServer) -> Cache:
        local = SQLiteCache(str(tmp_path / "cache"))
        return redis_cache(server.url, local=local, trust_local=fresh, key=KEY_1)


def test_another_client_of_redis_reads_no_token_label_or_name(server: RedisServer) -> None:
    key = ("local", "alice@example.org")
    entry = full_entry().replace(label="alice@example.org")
    redis_cache(server.url, local=NullCache(), key=KEY_1).put(key, entry)

    values = [str(server.client().get(name)) for name in server.client().keys("keyfob:3:*")]

    assert len(values) == 2
    for value in values:
        assert value.startswith("kf1:k1:")
        for secret in ("access-token-value-1", entry.token.refresh_token, "alice", "local"):
            assert secret is not None and secret not in value
    assert redis_cache(server.url, local=NullCache(), key=KEY_1).get(key) == entry


def test_without_a_key_keyfob_warns_once_that_tokens_rest_in_clear(server: RedisServer) -> None:
    warnings: list[str] = []
    cache = redis_cache(server.url, local=NullCache(), on_warning=warnings.append)
    cache.put(KEY, full_entry())
    cache.get(KEY)
    assert warnings == [
        f"tokens rest in clear in the shared cache at {cache.where}, readable by every client "
        "of it; set KEYFOB_CACHE_KEY to encrypt them (see the README)"
    ]


@pytest.mark.parametrize(
    ("writer", "reader", "why"),
    [
        (KEY_1, KEY_1_WRONG, "it does not decrypt with the key 'k1'"),
        (KEY_1, KEY_2, "its key id 'k1' is not among the keys given"),
        (KEY_1, None, "it is encrypted, and no key is set (KEYFOB_CACHE_KEY)"),
        (None, KEY_1, "it rests in clear, and a key is set"),
    ],
)
def test_a_value_that_does_not_decrypt_is_a_miss_warned_once(
    server: RedisServer, writer: str | None, reader: str | None, why: str
) -> None:
    redis_cache(server.url, local=NullCache(), key=writer).put(KEY, full_entry())
    warnings: list[str] = []
    cache = redis_cache(server.url, local=NullCache(), key=reader, on_warning=warnings.append)

    assert cache.get(KEY) is None
    assert cache.get(KEY) is None
    assert list(cache.entries()) == []

    said = [w for w in warnings if "cannot be read" in w]
    where = cache.where
    assert said == [
        f"a token in the shared cache at {where} cannot be read: {why}; treating it as missing"
    ]


def test_keys_rotate_the_first_encrypts_every_one_decrypts(server: RedisServer) -> None:
    redis_cache(server.url, local=NullCache(), key=KEY_1).put(KEY, full_entry())
    rotated = redis_cache(server.url, local=NullCache(), key=f"{KEY_2}, {KEY_1}")

    assert rotated.get(KEY) == full_entry()  # written with k1, still read
    rotated.put(KEY, full_entry("access-token-value-2"))
    assert str(server.client().get(key_names(KEY)[0])).startswith("kf1:k2:")
    assert redis_cache(server.url, local=NullCache(), key=KEY_2).get(KEY) is not None
    assert redis_cache(server.url, local=NullCache(), key=KEY_1).get(KEY) is None


def test_a_value_copied_under_another_accounts_name_does_not_decrypt(
    server: RedisServer,
) -> None:
    # A client of Redis that cannot read the tokens moves one account's value to another's
    # name; the Redis key's name is the associated data, so it no longer decrypts.
    cache = redis_cache(server.url, local=NullCache(), key=KEY_1)
    cache.put(("local", "alice"), full_entry())
    client = server.client()
    client.set(key_names(("local", "bob"))[0], str(client.get(key_names(("local", "alice"))[0])))

    assert cache.get(("local", "bob")) is None


@pytest.mark.parametrize(
    "spec", ["k1", "k1:not-base64!", "k1:" + base64.b64encode(b"short").decode(), ":AAAA", " , "]
)
def test_a_malformed_key_is_a_config_error_that_shows_no_key(
    server: RedisServer, spec: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        redis_cache(server.url, local=NullCache(), key=spec)
    assert "KEYFOB_CACHE_KEY" in caught.value.one_line()
    secret = spec.partition(":")[2].strip()
    assert not secret or secret not in caught.value.one_line()


def other_machine(local: LocalProvider, tmp_path: Path, name: str) -> dict[str, str]:
    home = tmp_path / name
    home.mkdir()
    (home / "config.toml").write_text(local.config_toml())
    return {"KEYFOB_HOME": str(home)}


def test_machines_share_a_token_encrypted_with_keyfob_cache_key(
    shared: LocalProvider, server: RedisServer, tmp_path: Path, cli: CliRun
) -> None:
    first = cli("token", "local", env={"KEYFOB_CACHE_KEY": KEY_1})
    assert first.returncode == 0, first.stderr
    assert "in clear" not in first.stderr

    stored = str(server.client().get(key_names(KEY)[0]))
    assert stored.startswith("kf1:k1:") and first.stdout.strip() not in stored

    env = {**other_machine(shared, tmp_path, "b"), "KEYFOB_CACHE_KEY": f"{KEY_2},{KEY_1}"}
    second = cli("token", "local", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert shared.count("/std/token") == 1


def test_the_cache_key_may_rest_in_the_keyring(
    shared: LocalProvider, server: RedisServer, home: Path, cli: CliRun
) -> None:
    # KEYFOB_KEYRING=file here: the secrets file stands for the keyring
    keyfob.set_credentials("local", client_id="unused")  # makes the file
    secrets = home / "secrets.json"
    data = json.loads(secrets.read_text())
    data["keyfob:cache"] = {"key": KEY_1}
    secrets.write_text(json.dumps(data))

    done = cli("token", "local")

    assert done.returncode == 0, done.stderr
    assert str(server.client().get(key_names(KEY)[0])).startswith("kf1:k1:")


def test_without_a_key_the_command_line_says_tokens_rest_in_clear(
    shared: LocalProvider, server: RedisServer, cli: CliRun
) -> None:
    done = cli("token", "local")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("tokens rest in clear in the shared cache") == 1
