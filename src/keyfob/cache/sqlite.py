"""The default token cache: one SQLite file, 0600 in a 0700 folder.

``read_entry`` is what the command line's cached-token path calls; it imports
only ``sqlite3`` and never writes. ``SQLiteCache`` is the full cache: atomic
writes (one transaction each), a corrupt or foreign file set aside and
rebuilt, a file of another schema version rebuilt quietly (it is a cache: the
tokens are fetched again), and a per-key file lock (``filelock``) for the
broker's single flight. Rows are ``Entry.to_dict``, one column per field.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time

from keyfob.cache import FIELDS, Entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from keyfob.cache import Key
    from keyfob.token import Token

APPLICATION_ID = 0x6B666F62  # "kfob": tells our file from a foreign SQLite database
SCHEMA_VERSION = 3  # 2: one column per Entry.to_dict field, no "saved"; 3: endpoint, checked
# How long SQLite waits for another connection's lock on the file. A keyfob
# transaction holds it for milliseconds; longer is someone else's (a sqlite3
# shell, a backup), and waiting for it costs more than what it saves. The
# cached-token path waits FAST_BUSY at most (its budget is 2.5x `python -c
# pass`), then the full command line; the full cache waits BUSY_TIMEOUT, then
# answers a miss: the broker then takes the single-flight lock (a file of its own
# that the database's lock does not block) and gets the token, one process at
# a time, instead of each giving up the cache for the run.
FAST_BUSY = 0.02
BUSY_TIMEOUT = 1.0
#: the longest a process waits for another's single-flight lock, then goes on
#: without it (warned): as long as the Redis lease's wait
LOCK_WAIT = 120.0

# One column per field of the entry's serialization, without a declared type:
# SQLite keeps each value as Entry.to_dict gave it (text, a float or NULL).
_COLUMNS = ", ".join(FIELDS)
_SCHEMA = (
    f"CREATE TABLE tokens (provider TEXT NOT NULL, account TEXT NOT NULL, {_COLUMNS}, "
    "PRIMARY KEY (provider, account))"
)
_SELECT = f"SELECT {_COLUMNS} FROM tokens"
_ONE = " WHERE provider = ? AND account = ?"
_INSERT = (
    f"INSERT OR REPLACE INTO tokens (provider, account, {_COLUMNS}) "
    f"VALUES (?, ?{', ?' * len(FIELDS)})"
)


def _entry(row: tuple[object, ...]) -> Entry:
    return Entry.from_dict(dict(zip(FIELDS, row, strict=True)))


def _row(key: Key, entry: Entry) -> tuple[object, ...]:
    data = entry.to_dict()
    return (*key, *(data[name] for name in FIELDS))


def read_entry(path: str, key: Key) -> Entry | None:
    """Read one entry, or ``None`` on any trouble (the slow path then decides,
    and refuses a file or folder another user could change: exit 2)."""
    from keyfob import _paths

    try:
        # SQLite opens the file by its name and follows links, so the folders on the way
        # are checked first: when only this user (or root) can change them, the file
        # checked below (no link followed, then fstat) is the one SQLite opens, and no
        # one else can have put a hot journal beside it for SQLite to roll back into it.
        if _paths.unsafe_folder(os.path.dirname(path)) is not None:
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if _paths.unsafe_file(os.fstat(fd), path) is not None:
                return None
        finally:
            os.close(fd)
    except OSError:
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=FAST_BUSY)
    except sqlite3.Error:
        return None
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            return None  # another version's file: the full cache rebuilds it
        row = conn.execute(_SELECT + _ONE, key).fetchone()
        return _entry(row) if row else None
    except (sqlite3.Error, TypeError, ValueError):
        return None
    finally:
        conn.close()


class SQLiteCache:
    """Tokens in ``<folder>/tokens.sqlite3``; locks in ``<folder>/locks/``."""

    def __init__(self, folder: str, *, on_warning: object = None, wait: float = LOCK_WAIT) -> None:
        from keyfob.cache.base import CacheUnavailable

        self.folder = folder
        self.wait = wait
        self.path = os.path.join(folder, "tokens.sqlite3")
        self._warn = on_warning if callable(on_warning) else (lambda message: None)
        try:
            _private_dir(folder)
            _private_dir(os.path.join(folder, "locks"))
            self._checked = self._check_unless_busy()
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise CacheUnavailable(f"cannot use the token cache in {folder}: {reason}") from exc

    # -- file handling -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # Create the file 0600 before SQLite sees it; SQLite gives its journal
        # the database's permissions. Never through a link (a link would have us
        # write tokens, or chmod, where it points), and refused when another user
        # owns it or may write it; SQLite then opens it by name in a folder that
        # __init__ found only this user (or root) can change.
        from keyfob import _paths

        try:
            fd = _paths.open_private(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _paths.refuse_link(self.path)
            raise
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        return conn

    def _check_unless_busy(self) -> bool:
        """Check the file (``_open_checked``); False when another connection holds it
        past BUSY_TIMEOUT: the check is made at the next use, the cache stays."""
        try:
            self._open_checked()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            self._say_busy()
            return False
        return True

    def _say_busy(self) -> None:
        self._warn(
            f"the token cache {self.path} is locked by another process; going on without it for now"
        )

    def _open_checked(self) -> None:
        try:
            conn = self._connect()
            try:
                self._ensure_schema(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                raise
            self._set_aside(f"it is not a keyfob cache ({exc})")
            conn = self._connect()
            try:
                self._ensure_schema(conn)
            finally:
                conn.close()

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
            return
        # Another process may be creating the schema this very moment: look again
        # inside a write transaction, where its work is either all done or not begun,
        # so a half-made cache is never taken for a foreign database and set aside.
        conn.execute("BEGIN IMMEDIATE")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id == APPLICATION_ID or (app_id == 0 and tables == 0):
                # Empty, or another version of ours: it is a cache, rebuilt
                # quietly (the tokens are simply fetched again).
                conn.execute("DROP TABLE IF EXISTS tokens")
                conn.execute(_SCHEMA)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
                return
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        raise sqlite3.DatabaseError("foreign database")

    def _set_aside(self, why: str) -> None:
        # Unique per process and call: a second set-aside must not overwrite the first.
        stem = aside = f"{self.path}.broken-{int(time.time())}-{os.getpid()}"
        n = 1
        while os.path.lexists(aside):
            n += 1
            aside = f"{stem}-{n}"
        os.replace(self.path, aside)
        for suffix in ("-journal", "-wal", "-shm"):
            try:  # noqa: SIM105 - contextlib would cost the cached-token path 1 ms
                os.remove(self.path + suffix)
            except FileNotFoundError:
                pass
        self._warn(f"the token cache {self.path} was set aside as {aside}: {why}; starting afresh")

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        return self._use(lambda conn: conn.execute(sql, params).fetchall())

    def _use(
        self, work: Callable[[sqlite3.Connection], list[tuple[object, ...]]]
    ) -> list[tuple[object, ...]]:
        if not self._checked:
            try:
                self._checked = self._check_unless_busy()
            except (OSError, sqlite3.Error):
                return []
            if not self._checked:
                return []  # a miss: the broker goes on to its single-flight lock
        try:
            conn = self._connect()
        except (OSError, sqlite3.Error):
            return []
        try:
            return work(conn)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                self._say_busy()
                return []  # as above
            if isinstance(exc, sqlite3.OperationalError):
                raise
            conn.close()
            self._set_aside(f"it became unreadable ({exc})")
            self._open_checked()
            return []
        finally:
            conn.close()

    # -- the protocol --------------------------------------------------------

    def get(self, key: Key) -> Entry | None:
        rows = self._run(_SELECT + _ONE, key)
        try:
            return _entry(rows[0]) if rows else None
        except (TypeError, ValueError):
            return None

    def put(self, key: Key, entry: Entry) -> None:
        self._run(_INSERT, _row(key, entry))

    def drop(self, key: Key, token: Token) -> None:
        def work(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
            # One write transaction: a newer token saved by another process
            # between the look and the change is not lost.
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(_SELECT + _ONE, key).fetchone()
                try:
                    entry = _entry(row) if row else None
                except (TypeError, ValueError):
                    entry = None
                if entry is not None and entry.token.access_token == token.access_token:
                    left = entry.without_access_token()
                    if left is None:
                        conn.execute("DELETE FROM tokens" + _ONE, key)
                    else:
                        conn.execute(_INSERT, _row(key, left))
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return []

        self._use(work)

    def delete(self, key: Key) -> None:
        self._run("DELETE FROM tokens WHERE provider = ? AND account = ?", key)

    def entries(self) -> Iterator[tuple[Key, Entry]]:
        for row in self._run(f"SELECT provider, account, {_COLUMNS} FROM tokens ORDER BY 1, 2"):
            try:
                yield (str(row[0]), str(row[1])), _entry(row[2:])
            except (TypeError, ValueError):
                continue

    def lock(self, key: Key, *, blocking: bool = True) -> AbstractContextManager[bool]:
        import hashlib

        name = hashlib.sha256(f"{key[0]}\0{key[1]}".encode()).hexdigest()[:24]
        path = os.path.join(self.folder, "locks", f"{name}.lock")
        return _file_lock(path, blocking, self.wait, self._warn)

    def describe(self) -> str:
        return self.path


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite gave up waiting for another connection's lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def _file_lock(
    path: str, blocking: bool, wait: float, warn: Callable[[str], None]
) -> AbstractContextManager[bool]:
    """An exclusive ``flock`` on ``path`` (per open file, so two brokers of one
    process exclude each other too), waited for at most ``wait`` seconds.

    A holder that drips or is stopped (SIGSTOP) must not hold every other process
    for ever: past ``wait`` the waiter goes on without the lock, saying which
    process holds it (the holder writes its PID into the file), as the Redis lease
    does past its wait. The worst that costs is one more token request; waiting
    for ever costs the program. Not ``filelock``: it truncates the file on every
    open, so no holder's PID would survive a waiter.
    """
    import contextlib

    try:
        import fcntl
    except ImportError:  # Windows: filelock's own lock, bounded alike, no holder named
        return _filelock(path, blocking, wait, warn)

    @contextlib.contextmanager
    def held() -> Iterator[bool]:
        from keyfob import _paths

        try:
            fd = _paths.open_private(path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _paths.refuse_link(path)
            raise
        try:
            deadline = time.monotonic() + wait
            pause = 0.002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking:
                        yield False
                        return
                    left = deadline - time.monotonic()
                    if left <= 0:
                        warn(
                            f"waited {wait:g} s for the token cache lock {path}, held by "
                            f"{_holder(fd)}; going on without it"
                        )
                        yield False
                        return
                    time.sleep(min(pause, left))
                    pause = min(pause * 2, 0.05)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    return held()


def _filelock(
    path: str, blocking: bool, wait: float, warn: Callable[[str], None]
) -> AbstractContextManager[bool]:
    import contextlib

    from filelock import FileLock, Timeout

    @contextlib.contextmanager
    def held() -> Iterator[bool]:
        lock = FileLock(path, mode=0o600)
        try:
            lock.acquire(timeout=wait if blocking else 0)
        except Timeout:
            if blocking:
                warn(f"waited {wait:g} s for the token cache lock {path}; going on without it")
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    return held()


def _holder(fd: int) -> str:
    """Which process holds the lock on ``fd``, for a person."""
    try:
        pid = int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return "another process"
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return f"process {pid}"
    return f"process {pid} (stopped)" if state in ("T", "t") else f"process {pid}"


def _private_dir(path: str) -> None:
    from keyfob._paths import check_folder, private_dir

    private_dir(path)
    check_folder(path)  # another user's folder, or one others may write: exit 2
    st = os.stat(path)
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        os.chmod(path, 0o700)  # readable by others: only taken back
