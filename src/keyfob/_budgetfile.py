"""The rate budget's SQLite file: its tables, and ``keyfob wait``'s fast path.

The windows are pyrate-limiter's ``SQLiteBucket`` tables (``name``,
``item_timestamp`` in ms), one per budget, locked with ``filelock`` on
``<file>.lock`` (an ``flock``); the learned blocks and the limits last used
(under config.toml's signature) are two tables of keyfob's own. ``take``
answers ``keyfob wait`` with budget left after importing only ``sqlite3`` and
``fcntl``: the same count as pyrate-limiter's sliding window log (no more than
``limit`` rows at or after ``now - window``), under the same lock, into the
same table. Anything it cannot answer at once goes to the full command line.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

FILE = "ratelimit.sqlite3"


class Corrupt(Exception):
    """The budget file is not a database."""


def table(key: str) -> str:
    """pyrate-limiter's table of one budget (the key hex-encoded: no quoting to get wrong)."""
    return "rate_" + key.encode().hex()


def prepare(folder: str) -> str:
    """The budget file's path, the file and its lock made 0600 in a 0700 folder."""
    from keyfob._paths import private_dir

    private_dir(folder)
    path = os.path.join(folder, FILE)
    for name in (path, path + ".lock"):
        fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    return path


def create_tables(db: sqlite3.Connection) -> None:
    import sqlite3

    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS keyfob_blocks "
            "(budget TEXT, scope TEXT, until REAL, PRIMARY KEY (budget, scope))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS keyfob_limits "
            "(budget TEXT PRIMARY KEY, limits TEXT, signature TEXT)"
        )
        db.commit()
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise Corrupt(str(exc)) from None


class FileLock:
    """An ``flock`` on ``path`` for processes, a thread lock for the threads of one
    (an flock on one descriptor does not exclude threads). Re-entrant, as
    pyrate-limiter takes it around a put and its wait."""

    def __init__(self, path: str) -> None:
        import threading

        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._lock = threading.RLock()
        self._depth = 0

    def __enter__(self) -> FileLock:
        import fcntl

        self._lock.acquire()
        if self._depth == 0:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def close(self) -> None:
        os.close(self._fd)


def create_bucket(db: sqlite3.Connection, key: str) -> None:
    """pyrate-limiter's table for one budget (its ``SQLiteBucket`` queries, same schema)."""
    name = table(key)
    db.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (name VARCHAR, item_timestamp INTEGER)')
    db.execute(f'CREATE INDEX IF NOT EXISTS "idx_{name}" ON "{name}" (item_timestamp)')
    db.commit()


def blocked_until(db: sqlite3.Connection, key: str, scopes: Sequence[str]) -> float:
    marks = ",".join("?" * len(scopes))
    row = db.execute(
        f"SELECT MAX(until) FROM keyfob_blocks WHERE budget = ? AND scope IN ({marks})",
        (key, *scopes),
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def block(db: sqlite3.Connection, key: str, scope: str, until: float) -> None:
    db.execute(
        "INSERT INTO keyfob_blocks (budget, scope, until) VALUES (?, ?, ?) "
        "ON CONFLICT (budget, scope) DO UPDATE SET until = MAX(until, excluded.until)",
        (key, scope, until),
    )
    db.commit()


def used(db: sqlite3.Connection, key: str, windows: Sequence[int], now_ms: int) -> list[int]:
    import sqlite3

    out = []
    for window in windows:
        try:
            row = db.execute(
                f'SELECT COUNT(*) FROM "{table(key)}" WHERE item_timestamp >= ?',
                (now_ms - window,),
            ).fetchone()
        except sqlite3.OperationalError:  # nothing taken yet: no table
            row = (0,)
        out.append(int(row[0]))
    return out


def remember(
    db: sqlite3.Connection, key: str, limits: Sequence[tuple[int, int]], signature: str
) -> None:
    text = ",".join(f"{count}/{window}" for count, window in limits)
    db.execute(
        "INSERT INTO keyfob_limits (budget, limits, signature) VALUES (?, ?, ?) "
        "ON CONFLICT (budget) DO UPDATE SET limits = excluded.limits, "
        "signature = excluded.signature",
        (key, text, signature),
    )
    db.commit()


def clamp(db: sqlite3.Connection, key: str, now_ms: int) -> None:
    import sqlite3

    try:
        db.execute(
            f'UPDATE "{table(key)}" SET item_timestamp = ? WHERE item_timestamp > ?',
            (now_ms, now_ms),
        )
        db.commit()
    except sqlite3.OperationalError:
        pass


def take(folder: str, key: str, signature: str, now_ms: int) -> bool | None:
    """``keyfob wait``'s fast path: ``True`` when one request was taken now;
    ``None`` when the full command line must answer (no file, limits not yet
    recorded under this config, a wait needed, a block, anything odd)."""
    import fcntl
    import sqlite3

    path = os.path.join(folder, FILE)
    if not os.path.exists(path):
        return None
    try:
        db = sqlite3.connect(path, timeout=10, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")  # as pyrate-limiter's file bucket: no fsync a take
    except sqlite3.Error:
        return None
    try:
        row = db.execute(
            "SELECT limits, signature FROM keyfob_limits WHERE budget = ?", (key,)
        ).fetchone()
        if row is None or row[1] != signature or not row[0]:
            return None
        if blocked_until(db, key, ("*",)) * 1000 > now_ms:
            return None
        limits = [tuple(int(n) for n in part.split("/")) for part in row[0].split(",")]
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            name = table(key)
            newest = db.execute(f'SELECT MAX(item_timestamp) FROM "{name}"').fetchone()[0]
            if newest is not None and newest > now_ms:
                return None  # the clock went back: the full path sorts it out
            for count, window in limits:
                n = db.execute(
                    f'SELECT COUNT(*) FROM "{name}" WHERE item_timestamp >= ?',
                    (now_ms - window,),
                ).fetchone()[0]
                if n >= count:
                    return None
            db.execute(f'INSERT INTO "{name}" (name, item_timestamp) VALUES (?, ?)', (key, now_ms))
            return True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    except (sqlite3.Error, ValueError, OSError):
        return None
    finally:
        db.close()
