"""The token cache contract, written once and run against every cache.

Like keyring's shared backend suite: ``CacheContract`` holds the tests, each
cache's class only says how to make one. A Redis cache joins with::

    class TestRedisCache(CacheContract):
        def make(self, tmp_path: Path) -> Cache:
            return RedisCache(REDIS_URL)

Below the contract: what only the SQLite file promises (permissions, a corrupt
or foreign file set aside, the command line's reader, the cross-process lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import keyfob.cache
from conftest import CliRun
from keyfob.broker import Broker
from keyfob.cache import FIELDS, Entry, Key
from keyfob.cache.base import Cache, CacheUnavailable
from keyfob.cache.memory import MemoryCache
from keyfob.cache.sqlite import SCHEMA_VERSION, SQLiteCache, read_entry
from keyfob.config import Settings
from keyfob.testing import LocalProvider
from keyfob.token import Token, TokenState

ENTRY_FIELDS = (
    "fingerprint",
    "label",
    "identity_env",
    "identity_source",
    "leeway",
    "config_sig",
    "endpoint",
    "checked",
)
TOKEN_FIELDS = (
    "access_token",
    "token_type",
    "expires",
    "issued",
    "refresh_token",
    "refresh_expires",
    "scope",
    "refresh_ratio",
)


def full_entry(access_token: str = "access-token-value-1") -> Entry:
    """An entry with every field set to something other than its default."""
    token = Token(
        access_token,
        "DPoP",
        expires=1_900_000_000.5,
        issued=1_899_996_400.25,
        refresh_token="refresh-token-value-1",
        refresh_expires=1_902_592_000.0,
        scope="read write",
        refresh_ratio=0.1,
    )
    return Entry(
        token,
        fingerprint="f" * 32,
        label="demo-user",
        identity_env="client_id=LOCAL_CLIENT_ID,username=LOCAL_USERNAME",
        identity_source="store",
        leeway=30.0,
        config_sig="/somewhere/config.toml|123|45",
        endpoint="https://auth.example.test/token",
        checked=1_899_996_401.5,
    )


def bare_entry(access_token: str = "access-token-value-2") -> Entry:
    """A token that never expires, with every optional field empty."""
    return Entry(Token(access_token))


def assert_same_entry(got: Entry | None, want: Entry) -> None:
    assert got is not None
    for name in TOKEN_FIELDS:
        assert getattr(got.token, name) == getattr(want.token, name), name
    for name in ENTRY_FIELDS:
        assert getattr(got, name) == getattr(want, name), name


class CacheContract:
    """Every cache passes these; subclasses say how to make one."""

    def make(self, tmp_path: Path) -> Cache:
        raise NotImplementedError

    @pytest.fixture
    def cache(self, tmp_path: Path) -> Cache:
        return self.make(tmp_path)

    def test_get_on_empty_cache_is_none(self, cache: Cache) -> None:
        assert cache.get(("local", "")) is None

    def test_round_trip_keeps_every_token_and_entry_field(self, cache: Cache) -> None:
        want = full_entry()
        cache.put(("local", ""), want)
        assert_same_entry(cache.get(("local", "")), want)

    def test_round_trip_keeps_empty_optional_fields(self, cache: Cache) -> None:
        want = bare_entry()
        cache.put(("twitter", ""), want)
        got = cache.get(("twitter", ""))
        assert_same_entry(got, want)
        assert got is not None and got.token.expires_at is None

    def test_put_replaces_the_entry(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry("first-access-token"))
        cache.put(("local", ""), bare_entry("second-access-token"))
        assert_same_entry(cache.get(("local", "")), bare_entry("second-access-token"))
        assert len(list(cache.entries())) == 1

    def test_delete_removes_the_entry(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry())
        cache.delete(("local", ""))
        assert cache.get(("local", "")) is None

    def test_delete_of_a_missing_entry_is_quiet(self, cache: Cache) -> None:
        cache.delete(("local", "nobody"))
        assert cache.get(("local", "nobody")) is None

    def test_entries_lists_every_entry(self, cache: Cache) -> None:
        keys: list[Key] = [("local", ""), ("local", "work"), ("twitter", "")]
        for i, key in enumerate(keys):
            cache.put(key, full_entry(f"access-token-{i}"))
        listed = dict(cache.entries())
        assert sorted(listed) == sorted(keys)
        for i, key in enumerate(keys):
            assert listed[key].token.access_token == f"access-token-{i}"

    def test_provider_and_account_keys_are_independent(self, cache: Cache) -> None:
        keys: list[Key] = [("local", ""), ("local", "work"), ("other", ""), ("other", "work")]
        for key in keys:
            cache.put(key, full_entry(f"token-of-{key[0]}-{key[1]}"))
        cache.delete(("local", "work"))
        assert cache.get(("local", "work")) is None
        for key in keys:
            if key != ("local", "work"):
                got = cache.get(key)
                assert got is not None and got.token.access_token == f"token-of-{key[0]}-{key[1]}"

    def test_put_of_an_expired_token_replaces_the_entry_like_any_other(self, cache: Cache) -> None:
        # An expired token is no message to a cache ("drop the newer one"): it stores.
        cache.put(("local", ""), full_entry("newer-access-token"))
        old = full_entry("refused-access-token")
        old = old.replace(
            token=old.token.replace(expires=1000.5, issued=0.25, refresh_token="refresh-of-old")
        )
        cache.put(("local", ""), old)
        got = cache.get(("local", ""))
        assert got is not None
        assert got.token.access_token != "newer-access-token"
        assert got.token.refresh_token == "refresh-of-old"

    # -- drop: after a 401 ----------------------------------------------------------

    def test_drop_forgets_the_access_token_and_keeps_the_refresh_token(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry())
        cache.drop(("local", ""), full_entry().token)

        got = cache.get(("local", ""))
        assert got is not None
        assert got.token.access_token == ""
        assert got.token.state(now=1.0) is TokenState.EXPIRED  # under any clock
        assert got.token.state() is TokenState.EXPIRED
        for name in ("refresh_token", "refresh_expires", "scope", "token_type", "refresh_ratio"):
            assert getattr(got.token, name) == getattr(full_entry().token, name), name
        for name in ENTRY_FIELDS:
            assert getattr(got, name) == getattr(full_entry(), name), name
        assert got == full_entry().without_access_token()
        assert dict(cache.entries()) == {("local", ""): got}

    def test_drop_of_a_token_without_refresh_token_forgets_the_entry(self, cache: Cache) -> None:
        cache.put(("twitter", ""), bare_entry())
        cache.drop(("twitter", ""), bare_entry().token)
        assert cache.get(("twitter", "")) is None
        assert list(cache.entries()) == []

    def test_drop_of_a_token_replaced_meanwhile_keeps_the_newer_one(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry("refused-access-token"))
        cache.put(("local", ""), full_entry("newer-access-token"))  # another process saved it
        cache.drop(("local", ""), full_entry("refused-access-token").token)
        assert_same_entry(cache.get(("local", "")), full_entry("newer-access-token"))

    def test_drop_compares_the_access_token_alone(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry())
        # The adapters hand back the token they sent: equal access token, whatever else.
        cache.drop(("local", ""), Token("access-token-value-1"))
        got = cache.get(("local", ""))
        assert got is not None and got.token.access_token == ""

    def test_a_put_while_drop_looks_at_the_entry_waits_and_is_kept(
        self, cache: Cache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A newer token saved in the middle of a drop: with drop as one atomic
        # step the put waits for it and lands after it; otherwise drop loses it.
        cache.put(("local", ""), full_entry("refused-access-token"))
        original = Entry.without_access_token
        putters: list[threading.Thread] = []

        def in_the_middle(entry: Entry) -> Entry | None:
            if not putters:
                newer = full_entry("newer-access-token")
                putters.append(threading.Thread(target=cache.put, args=(("local", ""), newer)))
                putters[0].start()
                putters[0].join(0.5)  # done by now unless the drop keeps it waiting
            return original(entry)

        monkeypatch.setattr(Entry, "without_access_token", in_the_middle)
        cache.drop(("local", ""), full_entry("refused-access-token").token)
        if not putters:  # its drop looks inside Redis alone, in one Lua script
            cache.put(("local", ""), full_entry("newer-access-token"))
        for putter in putters:
            putter.join(30)
        assert_same_entry(cache.get(("local", "")), full_entry("newer-access-token"))

    def test_drop_of_a_missing_entry_is_quiet(self, cache: Cache) -> None:
        cache.drop(("local", "nobody"), full_entry().token)
        assert cache.get(("local", "nobody")) is None

    def test_drop_touches_no_other_key(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry())
        cache.put(("local", "work"), full_entry())
        cache.drop(("local", ""), full_entry().token)
        assert_same_entry(cache.get(("local", "work")), full_entry())

    def test_drop_twice_is_the_same_as_once(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry())
        cache.drop(("local", ""), full_entry().token)
        cache.drop(("local", ""), full_entry().token)
        assert cache.get(("local", "")) == full_entry().without_access_token()

    def test_an_entry_left_by_drop_is_replaced_by_the_next_put(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry("refused-access-token"))
        cache.drop(("local", ""), full_entry("refused-access-token").token)
        cache.put(("local", ""), full_entry("renewed-access-token"))
        assert_same_entry(cache.get(("local", "")), full_entry("renewed-access-token"))

    def test_delete_forgets_the_refresh_token_too(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry())
        cache.drop(("local", ""), full_entry().token)
        cache.delete(("local", ""))
        assert cache.get(("local", "")) is None
        assert list(cache.entries()) == []

    def test_entries_it_returns_are_frozen(self, cache: Cache) -> None:
        cache.put(("local", ""), full_entry())
        got = cache.get(("local", ""))
        listed = dict(cache.entries())[("local", "")]
        for entry in (got, listed):
            assert entry is not None
            for name in ("token", *ENTRY_FIELDS):
                with pytest.raises(AttributeError):
                    setattr(entry, name, getattr(entry, name))
        assert_same_entry(cache.get(("local", "")), full_entry())

    def test_lock_is_exclusive_across_threads(self, cache: Cache) -> None:
        # A read-modify-write with a pause inside loses updates unless the lock
        # really keeps the threads apart.
        counter = {"value": 0}
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                barrier.wait()
                for _ in range(15):
                    with cache.lock(("local", "")):
                        seen = counter["value"]
                        time.sleep(0.001)
                        counter["value"] = seen + 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert counter["value"] == 6 * 15

    def test_lock_without_blocking_is_not_held_while_another_thread_holds_it(
        self, cache: Cache
    ) -> None:
        taken, tried = threading.Event(), threading.Event()
        seen: list[bool] = []

        def holder() -> None:
            with cache.lock(("local", "")) as held:
                seen.append(held)
                taken.set()
                tried.wait(10)

        t = threading.Thread(target=holder)
        t.start()
        assert taken.wait(10)
        with cache.lock(("local", ""), blocking=False) as held:
            seen.append(held)
        tried.set()
        t.join()
        with cache.lock(("local", ""), blocking=False) as held:
            seen.append(held)

        assert seen == [True, False, True]  # held; busy; free again once released

    def test_lock_on_one_key_does_not_block_another(self, cache: Cache) -> None:
        got_other = threading.Event()

        def other() -> None:
            with cache.lock(("local", "work")):
                got_other.set()

        with cache.lock(("local", "")):
            t = threading.Thread(target=other)
            t.start()
            # Deadlock guard, not a timing assertion: it is set at once or never.
            assert got_other.wait(10)
        t.join()


class TestMemoryCache(CacheContract):
    def make(self, tmp_path: Path) -> Cache:
        return MemoryCache()


class TestSQLiteCache(CacheContract):
    def make(self, tmp_path: Path) -> Cache:
        return SQLiteCache(str(tmp_path / "cache"))


# -- the entry itself ---------------------------------------------------------------


def test_an_entry_cannot_be_changed_in_place() -> None:
    entry = full_entry()
    with pytest.raises(AttributeError):
        entry.label = "someone-else"
    with pytest.raises(AttributeError):
        del entry.fingerprint
    assert entry.label == "demo-user" and entry.fingerprint == "f" * 32


def test_replace_makes_a_changed_copy() -> None:
    entry = full_entry()
    other = entry.replace(label="someone-else", token=Token("another-access-token"))
    assert (other.label, other.token.access_token) == ("someone-else", "another-access-token")
    assert_same_entry(entry, full_entry())
    for name in ENTRY_FIELDS:
        if name != "label":
            assert getattr(other, name) == getattr(entry, name), name


def test_to_dict_names_every_field_once() -> None:
    assert sorted(full_entry().to_dict()) == sorted(TOKEN_FIELDS + ENTRY_FIELDS)
    assert sorted(FIELDS) == sorted(TOKEN_FIELDS + ENTRY_FIELDS)


@pytest.mark.parametrize("make", [full_entry, bare_entry])
def test_from_dict_of_to_dict_is_the_same_entry(make: Callable[[], Entry]) -> None:
    again = Entry.from_dict(make().to_dict())
    assert_same_entry(again, make())
    assert again == make()


@pytest.mark.parametrize("make", [full_entry, bare_entry])
def test_to_dict_survives_json(make: Callable[[], Entry]) -> None:
    assert Entry.from_dict(json.loads(json.dumps(make().to_dict()))) == make()


@pytest.mark.parametrize(
    "change",
    [
        {"saved": 1_899_996_401.0},  # a field of another version
        {"leeway": "30"},
        {"expires": True},
        {"label": None},
        {"access_token": 12345},
        {"refresh_ratio": None},
    ],
    ids=repr,
)
def test_from_dict_refuses_what_to_dict_never_gives(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Entry.from_dict({**full_entry().to_dict(), **change})


def test_from_dict_refuses_a_missing_field() -> None:
    data = full_entry().to_dict()
    del data["config_sig"]
    with pytest.raises(ValueError):
        Entry.from_dict(data)


def test_without_access_token_keeps_everything_but_the_access_token() -> None:
    left = full_entry().without_access_token()
    assert left is not None
    assert (left.token.access_token, left.token.expires, left.token.issued) == ("", 0.0, None)
    want = full_entry()
    for name in ("refresh_token", "refresh_expires", "scope", "token_type", "refresh_ratio"):
        assert getattr(left.token, name) == getattr(want.token, name), name
    for name in ENTRY_FIELDS:
        assert getattr(left, name) == getattr(want, name), name
    assert_same_entry(full_entry(), want)  # a copy: the entry itself is unchanged


def test_without_access_token_of_a_token_without_refresh_token_is_nothing() -> None:
    assert bare_entry().without_access_token() is None


def test_entries_are_equal_by_value() -> None:
    assert full_entry() == full_entry()
    assert full_entry() != full_entry("another-access-token")
    assert full_entry() != full_entry().replace(leeway=5.0)


def test_no_cache_judges_a_token() -> None:
    # Caches store; whether a token is good is the broker's question alone.
    folder = Path(keyfob.cache.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert {p.name for p in modules} >= {"memory.py", "sqlite.py", "redis.py"}
    for path in modules:
        text = path.read_text()
        for judgement in (".state(", "TokenState", ".fresh_until(", ".can_refresh("):
            assert judgement not in text, f"{path.name} asks {judgement}"


# -- the broker's side: after a 401 it drops, it writes nothing --------------------


class Recording(MemoryCache):
    """A memory cache that notes which writes it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def put(self, key: Key, entry: Entry) -> None:
        self.writes.append("put")
        super().put(key, entry)

    def drop(self, key: Key, token: Token) -> None:
        self.writes.append("drop")
        super().drop(key, token)

    def delete(self, key: Key) -> None:
        self.writes.append("delete")
        super().delete(key)


def invalidate(cache: Cache, token: Token) -> None:
    b = Broker(settings=Settings(path="/nowhere/config.toml", signature="test"), cache=cache)
    b.invalidate("local", token)


def test_invalidate_asks_the_cache_to_drop_and_writes_no_expired_copy() -> None:
    cache = Recording()
    cache.put(("local", ""), full_entry())
    cache.writes.clear()

    invalidate(cache, full_entry().token)

    assert cache.writes == ["drop"]
    assert cache.get(("local", "")) == full_entry().without_access_token()


def test_invalidate_of_a_token_replaced_meanwhile_keeps_the_newer_one() -> None:
    cache = Recording()
    cache.put(("local", ""), full_entry("newer-access-token"))

    invalidate(cache, full_entry("refused-access-token").token)

    assert_same_entry(cache.get(("local", "")), full_entry("newer-access-token"))


# -- what only the SQLite file promises ------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_sqlite_file_is_0600_in_a_0700_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    SQLiteCache(str(folder)).put(("local", ""), full_entry())
    assert mode(folder) == 0o700
    assert mode(folder / "tokens.sqlite3") == 0o600


@pytest.mark.usefixtures("umask_zero")
def test_sqlite_file_is_0600_in_a_0700_folder_even_with_umask_zero(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    cache = SQLiteCache(str(folder))
    cache.put(("local", ""), full_entry())
    with cache.lock(("local", "")):
        pass
    assert mode(folder) == 0o700
    assert mode(folder / "locks") == 0o700
    assert mode(folder / "tokens.sqlite3") == 0o600
    for lock_file in (folder / "locks").iterdir():
        assert mode(lock_file) & 0o077 == 0, lock_file.name


def test_sqlite_tightens_an_existing_open_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    SQLiteCache(str(folder)).put(("local", ""), full_entry())
    assert mode(folder) == 0o700


def test_sqlite_tightens_an_existing_open_file(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    SQLiteCache(str(folder))
    (folder / "tokens.sqlite3").chmod(0o644)
    SQLiteCache(str(folder)).put(("local", ""), full_entry())
    assert mode(folder / "tokens.sqlite3") == 0o600


def test_corrupt_sqlite_file_is_set_aside_with_a_warning_and_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    garbage = b"this is not SQLite at all \x00\xff\xfe" * 200
    (folder / "tokens.sqlite3").write_bytes(garbage)
    warnings: list[str] = []

    cache = SQLiteCache(str(folder), on_warning=warnings.append)

    assert len(warnings) == 1 and "set aside" in warnings[0]
    aside = [p for p in folder.iterdir() if p.name.startswith("tokens.sqlite3.broken-")]
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert cache.get(("local", "")) is None
    cache.put(("local", ""), full_entry())
    assert_same_entry(cache.get(("local", "")), full_entry())


def test_file_corrupted_while_in_use_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    warnings: list[str] = []
    cache = SQLiteCache(str(folder), on_warning=warnings.append)
    cache.put(("local", ""), full_entry())
    (folder / "tokens.sqlite3").write_bytes(b"\x00garbage\xff" * 1000)

    assert cache.get(("local", "")) is None
    assert len(warnings) == 1 and "set aside" in warnings[0]
    cache.put(("local", ""), bare_entry())
    assert_same_entry(cache.get(("local", "")), bare_entry())


def test_foreign_sqlite_database_is_set_aside_and_never_modified(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    path = folder / "tokens.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE bookmarks (url TEXT, title TEXT)")
    conn.execute("INSERT INTO bookmarks VALUES ('https://example.org', 'Example')")
    conn.commit()
    conn.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    warnings: list[str] = []

    cache = SQLiteCache(str(folder), on_warning=warnings.append)
    cache.put(("local", ""), full_entry())

    assert len(warnings) == 1 and "set aside" in warnings[0]
    aside = [p for p in folder.iterdir() if p.name.startswith("tokens.sqlite3.broken-")]
    assert len(aside) == 1
    assert hashlib.sha256(aside[0].read_bytes()).hexdigest() == before
    conn = sqlite3.connect(aside[0])
    assert conn.execute("SELECT url, title FROM bookmarks").fetchall() == [
        ("https://example.org", "Example")
    ]
    conn.close()
    assert_same_entry(cache.get(("local", "")), full_entry())


#: the cache file of keyfob before SCHEMA_VERSION 2, as it wrote it
VERSION_1 = """
CREATE TABLE tokens (
    provider TEXT NOT NULL, account TEXT NOT NULL, fingerprint TEXT NOT NULL,
    label TEXT NOT NULL, identity_env TEXT NOT NULL, identity_source TEXT NOT NULL,
    leeway REAL NOT NULL, config_sig TEXT NOT NULL, saved REAL NOT NULL,
    access_token TEXT NOT NULL, token_type TEXT NOT NULL, expires REAL, issued REAL,
    refresh_token TEXT, refresh_expires REAL, scope TEXT, refresh_ratio REAL NOT NULL,
    PRIMARY KEY (provider, account)
);
INSERT INTO tokens VALUES ('local', '', 'ffff', 'demo-user', '', 'direct', 60.0, 'sig',
    1899996401.0, 'version-1-access-token', 'Bearer', 1900000000.0, NULL, NULL, NULL,
    NULL, 0.0);
PRAGMA application_id = 1801875298;  -- APPLICATION_ID
PRAGMA user_version = 1;
"""


def test_a_cache_file_of_an_older_version_is_rebuilt_quietly(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    conn = sqlite3.connect(folder / "tokens.sqlite3")
    conn.executescript(VERSION_1)
    conn.close()
    path = str(folder / "tokens.sqlite3")
    # Its columns would even do: the version alone says it is not this one.
    assert read_entry(path, ("local", "")) is None
    warnings: list[str] = []

    cache = SQLiteCache(str(folder), on_warning=warnings.append)

    assert warnings == []
    assert [p.name for p in folder.iterdir() if ".broken-" in p.name] == []
    assert cache.get(("local", "")) is None  # the token is simply fetched again
    cache.put(("local", ""), full_entry())
    assert_same_entry(cache.get(("local", "")), full_entry())
    assert_same_entry(read_entry(path, ("local", "")), full_entry())


def test_the_sqlite_columns_are_the_fields_of_the_entry(tmp_path: Path) -> None:
    cache = SQLiteCache(str(tmp_path / "cache"))
    conn = sqlite3.connect(cache.path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(tokens)")]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    assert columns == ["provider", "account", *FIELDS]
    assert version == SCHEMA_VERSION == 3  # a change of FIELDS: bump both


def test_every_set_aside_file_is_kept(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    first, second = b"first garbage \xff" * 100, b"second garbage \xfe" * 100
    (folder / "tokens.sqlite3").write_bytes(first)
    SQLiteCache(str(folder))
    (folder / "tokens.sqlite3").write_bytes(second)  # within the same second, usually
    SQLiteCache(str(folder))

    aside = [p for p in folder.iterdir() if p.name.startswith("tokens.sqlite3.broken-")]
    assert sorted(p.read_bytes() for p in aside) == sorted([first, second])


CONCURRENT_OPENER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from keyfob.cache.sqlite import SQLiteCache

    folder, start, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    warnings = []
    ready.touch()
    while not start.exists():
        time.sleep(0.001)
    SQLiteCache(folder, on_warning=warnings.append)
    print(len(warnings))
    """
)


def test_processes_creating_the_cache_at_once_never_set_it_aside(tmp_path: Path) -> None:
    # A fresh cache made by one process while another looks at it is not "foreign".
    script = tmp_path / "opener.py"
    script.write_text(CONCURRENT_OPENER)
    for attempt in range(4):
        folder = tmp_path / f"cache-{attempt}"
        start = tmp_path / f"start-{attempt}"
        ready = [tmp_path / f"ready-{attempt}-{i}" for i in range(6)]
        openers = [
            subprocess.Popen(
                [sys.executable, str(script), str(folder), str(start), str(r)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for r in ready
        ]
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            time.sleep(0.005)
        start.touch()
        for o in openers:
            out, err = o.communicate(timeout=60)
            assert o.returncode == 0, err
            assert out.strip() == "0", err
        assert not [p for p in folder.iterdir() if ".broken-" in p.name]


def test_read_entry_returns_the_same_entry_as_get(tmp_path: Path) -> None:
    cache = SQLiteCache(str(tmp_path / "cache"))
    cache.put(("local", ""), full_entry())
    cache.put(("twitter", ""), bare_entry())
    for key, want in ((("local", ""), full_entry()), (("twitter", ""), bare_entry())):
        fast = read_entry(cache.path, key)
        assert_same_entry(fast, want)
        assert_same_entry(fast, cache.get(key))  # type: ignore[arg-type]
    assert read_entry(cache.path, ("local", "nobody")) is None


def test_read_entry_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert read_entry(str(tmp_path / "nothing.sqlite3"), ("local", "")) is None
    assert not (tmp_path / "nothing.sqlite3").exists()


def test_sqlite_cache_under_a_regular_file_is_unavailable(tmp_path: Path, no_secret_leaks) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file")
    with pytest.raises(CacheUnavailable) as caught:
        SQLiteCache(str(blocker / "cache"))
    no_secret_leaks.add("CacheUnavailable", str(caught.value))
    assert "cannot use the token cache" in str(caught.value)


CROSS_PROCESS_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from keyfob.cache.sqlite import SQLiteCache

    folder, counter, start, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    cache = SQLiteCache(folder)
    Path(ready).touch()
    while not start.exists():
        time.sleep(0.005)
    for _ in range(20):
        with cache.lock(("local", "")):
            seen = int(counter.read_text())
            time.sleep(0.002)
            counter.write_text(str(seen + 1))
    """
)


def test_sqlite_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    SQLiteCache(str(folder))
    counter = tmp_path / "counter"
    counter.write_text("0")
    start = tmp_path / "start"
    script = tmp_path / "worker.py"
    script.write_text(CROSS_PROCESS_WORKER)
    ready = [tmp_path / f"ready-{i}" for i in range(4)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(folder), str(counter), str(start), str(r)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        assert all(w.poll() is None for w in workers), "a worker died before the start"
        time.sleep(0.01)
    start.touch()
    for w in workers:
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
    assert int(counter.read_text()) == 4 * 20


def test_sqlite_lock_waits_for_a_stopped_holder_only_so_long_then_names_it(
    stopped_holder: tuple[Path, int],
) -> None:
    folder, pid = stopped_holder
    warnings: list[str] = []
    cache = SQLiteCache(str(folder), on_warning=warnings.append, wait=1.0)

    started = time.monotonic()
    with cache.lock(("local", "")) as held:
        waited = time.monotonic() - started

    assert not held
    assert 1.0 <= waited < 5
    assert len(warnings) == 1
    assert f"held by process {pid} (stopped); going on without it" in warnings[0]


HOLD_EXCLUSIVE = textwrap.dedent(
    """
    import sqlite3, sys, time

    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")  # a sqlite3 shell, a backup: not keyfob
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_a_foreign_exclusive_lock_on_the_cache_costs_about_a_second(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    assert cli("token", "local").returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_EXCLUSIVE, str(home / "cache" / "tokens.sqlite3")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = time.monotonic()
        done = cli("token", "local", timeout=60)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in configured.issued()
    assert took < 8, f"took {took:.1f} s"  # 20 s and more when SQLite waited 10 s twice
    assert "is locked by another process; going on without it for now" in done.stderr
    assert configured.count("/std/token") == 2  # it could not read the cached one
