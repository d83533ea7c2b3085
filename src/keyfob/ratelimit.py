"""The rate budget: static and learned limits per (provider, account), shared like the cache.

A budget holds two things:

- **static limits** (``rate_limits = ["60/minute", "10000/day"]``): sliding
  windows kept by pyrate-limiter (its ``SlidingWindowLog`` in an
  ``SQLiteBucket`` file shared by the processes of a machine, or a
  ``RedisBucket`` shared by every machine; an ``InMemoryBucket`` when sharing
  is switched off or the file cannot be used);
- **learned blocks**: "nothing to this endpoint (method and path), or to any
  endpoint, until T", from the headers of the answers the adapters see. No
  library keeps those, so they are a small table (SQLite) or hash (Redis)
  beside the bucket; what one worker learns, every worker reads before it
  sends.

Every window is a little longer than declared (:func:`margin`): a request is
taken here but counted at the server when it arrives, a few milliseconds
later, and that delay must not let one request too many into a server window.

pyrate-limiter is imported only when a budget is first used; the command
line's ``keyfob wait`` answers from the same SQLite file without it
(:mod:`keyfob._budgetfile`), taking from the same table under the same lock.
"""

from __future__ import annotations

import asyncio
import calendar
import email.utils
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from keyfob import _budgetfile
from keyfob.errors import RateLimited

log = logging.getLogger("keyfob")

UNITS = {
    "s": 1,
    "second": 1,
    "m": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_LIMIT = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{0,9}(?:\.\d+)?)\s*([a-z]+)\s*$")
#: the longest a learned block may last; further is capped and warned about
MAX_LEARNED = 86400.0
#: the longest static window keyfob keeps (a week): longer is a ConfigError
MAX_WINDOW = 7 * 86400.0
#: methods a 429/503 may be retried for (RFC 9110 §9.2.2: idempotent)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: the whole budget's scope, beside "METHOD /path" scopes
ALL = "*"


@dataclass(frozen=True)
class Limit:
    """No more than ``count`` requests in any window of ``seconds``."""

    count: int
    seconds: float
    text: str

    def __str__(self) -> str:
        return self.text


def parse_limit(text: object) -> Limit:
    """``"60/minute"``, ``"20/10s"``, ``"10000/day"``; ``ValueError`` says what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f'{text!r} is not a string like "60/minute"')
    m = _LIMIT.match(text.lower())
    if not m or m.group(3) not in UNITS:
        raise ValueError(f'{text!r} is not N/UNIT ("60/minute", "20/10s")')
    count = int(m.group(1))
    seconds = float(m.group(2) or 1) * UNITS[m.group(3)]
    if count < 1:
        raise ValueError(f"{text!r} allows no request at all; use rate_limits = [] for none")
    if not 0 < seconds <= MAX_WINDOW:
        raise ValueError(f"{text!r} has a window outside 1 ms to 7 days")
    if seconds < 0.001:
        raise ValueError(f"{text!r} has a window shorter than a millisecond")
    return Limit(count, seconds, text.strip())


def margin(seconds: float) -> float:
    """How much longer than declared a window is kept: the time a taken request
    may take to reach the server (2 %, at least 50 ms, at most one second)."""
    return min(max(0.05, seconds * 0.02), 1.0)


# -- what the answers teach ----------------------------------------------------


@dataclass(frozen=True)
class Lesson:
    """Until when an endpoint, or the whole budget, must not be called (epoch seconds)."""

    endpoint: float | None = None
    everything: float | None = None
    capped: bool = False

    @property
    def until(self) -> float | None:
        times = [t for t in (self.endpoint, self.everything) if t is not None]
        return max(times) if times else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if not re.fullmatch(r"\d{1,15}(\.\d{1,9})?", value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as epoch seconds: delta seconds or an HTTP date; else ``None``."""
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return now + seconds
    try:
        parsed = email.utils.parsedate_tz(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    try:
        return float(calendar.timegm(parsed[:9]) - (parsed[9] or 0))
    except (ValueError, OverflowError, TypeError):
        return None


def _structured(value: str) -> dict[str, str]:
    """``limit=10, remaining=0, reset=30`` and the newer ``"name";r=0;t=30``."""
    out: dict[str, str] = {}
    for part in re.split(r"[,;]", value):
        name, sep, v = part.partition("=")
        if sep:
            out[name.strip().lower()] = v.strip().strip('"')
    return out


def learn(status: int, headers: Mapping[str, str], now: float) -> Lesson:
    """What an answer's headers say about when to call again. Malformed values
    are ignored, a reset in the past too, one further than a day is capped."""
    h = {str(k).lower(): str(v) for k, v in headers.items()}
    endpoint: float | None = None
    # X (epoch), GitHub (epoch), IETF (delta); a remaining of 0 blocks the endpoint
    for remaining, reset, delta in (
        ("x-rate-limit-remaining", "x-rate-limit-reset", False),
        ("x-ratelimit-remaining", "x-ratelimit-reset", False),
        ("ratelimit-remaining", "ratelimit-reset", True),
    ):
        left, at = _number(h.get(remaining)), _number(h.get(reset))
        if left == 0 and at is not None:
            endpoint = max(endpoint or 0.0, now + at if delta else at)
    if "ratelimit" in h:
        fields = _structured(h["ratelimit"])
        left = _number(fields.get("remaining", fields.get("r")))
        at = _number(fields.get("reset", fields.get("t")))
        if left == 0 and at is not None:
            endpoint = max(endpoint or 0.0, now + at)
    everything = retry_after(h.get("retry-after"), now) if status in (429, 503) else None
    if everything is not None and endpoint is not None:
        # the endpoint's own headers say which endpoint: Retry-After is its wait
        endpoint, everything = max(endpoint, everything), None
    capped = False
    times: list[float | None] = []
    for t in (endpoint, everything):
        if t is None or t <= now:
            times.append(None)
        elif t > now + MAX_LEARNED:
            times.append(now + MAX_LEARNED)
            capped = True
        else:
            times.append(t)
    return Lesson(times[0], times[1], capped)


# -- where a budget lives ----------------------------------------------------


class Store(Protocol):
    """Where the windows and the blocks of every budget live."""

    shared: str

    def bucket(self, key: str, limits: Sequence[Limit]) -> Any: ...
    def now_ms(self) -> int: ...
    def blocked_until(self, key: str, scopes: Sequence[str]) -> float: ...
    def block(self, key: str, scope: str, until: float) -> None: ...
    def used(self, key: str, limits: Sequence[Limit], now_ms: int) -> list[int]: ...


def rates(limits: Sequence[Limit]) -> list[Any]:
    from pyrate_limiter import Rate

    return [Rate(lim.count, round((lim.seconds + margin(lim.seconds)) * 1000)) for lim in limits]


def window_ms(limit: Limit) -> int:
    return round((limit.seconds + margin(limit.seconds)) * 1000)


class MemoryStore:
    """One process's budgets (pyrate-limiter's ``InMemoryBucket``): what a test
    passes to switch sharing off, and the stand-in when no file can be used."""

    shared = "this process"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._blocks: dict[tuple[str, str], float] = {}
        self._buckets: dict[str, Any] = {}

    def bucket(self, key: str, limits: Sequence[Limit]) -> Any:
        from pyrate_limiter import InMemoryBucket

        self._buckets[key] = InMemoryBucket(rates(limits))
        return self._buckets[key]

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def blocked_until(self, key: str, scopes: Sequence[str]) -> float:
        return max((self._blocks.get((key, s), 0.0) for s in scopes), default=0.0)

    def block(self, key: str, scope: str, until: float) -> None:
        self._blocks[(key, scope)] = max(until, self._blocks.get((key, scope), 0.0))

    def used(self, key: str, limits: Sequence[Limit], now_ms: int) -> list[int]:
        bucket = self._buckets.get(key)
        items = list(getattr(bucket, "items", ()))
        return [sum(1 for i in items if i.timestamp >= now_ms - window_ms(lim)) for lim in limits]


class SQLiteStore:
    """The machine's budgets: pyrate-limiter's ``SQLiteBucket`` (WAL, its file lock)
    in ``ratelimit.sqlite3``, 0600 in the 0700 cache folder; blocks in a table beside."""

    shared = "this machine"

    def __init__(self, folder: str, clock: Callable[[], float] = time.time) -> None:
        import sqlite3

        self.path = _budgetfile.prepare(folder)
        self.clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        try:
            _budgetfile.create_tables(self._db)
        except _budgetfile.Corrupt as exc:
            # Not a database: set it aside (it holds no secret) and start a new one.
            log.warning(
                "the rate budget file %s is damaged (%s); starting a new one", self.path, exc
            )
            self._db.close()
            os.replace(self.path, self.path + ".damaged")
            self.path = _budgetfile.prepare(folder)
            self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            _budgetfile.create_tables(self._db)

    def bucket(self, key: str, limits: Sequence[Limit]) -> Any:
        import sqlite3

        from pyrate_limiter import SQLiteBucket

        # pyrate-limiter's own file lock (filelock) costs ~80 µs a take; an flock on
        # one open descriptor behind a thread lock excludes the same peers in ~2 µs,
        # and is the lock keyfob wait's fast path takes.
        lock = _budgetfile.FileLock(self.path + ".lock")
        with lock:
            conn = sqlite3.connect(
                self.path, timeout=10, isolation_level="DEFERRED", check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            _budgetfile.create_bucket(conn, key)
        return SQLiteBucket(rates(limits), conn, _budgetfile.table(key), lock=lock)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def blocked_until(self, key: str, scopes: Sequence[str]) -> float:
        with self._lock:
            return _budgetfile.blocked_until(self._db, key, scopes)

    def block(self, key: str, scope: str, until: float) -> None:
        with self._lock:
            _budgetfile.block(self._db, key, scope, until)

    def used(self, key: str, limits: Sequence[Limit], now_ms: int) -> list[int]:
        with self._lock:
            return _budgetfile.used(self._db, key, [window_ms(lim) for lim in limits], now_ms)

    def remember(self, key: str, limits: Sequence[Limit], signature: str) -> None:
        """Record the limits under config.toml's signature, for ``keyfob wait``'s fast path."""
        with self._lock:
            _budgetfile.remember(
                self._db, key, [(lim.count, window_ms(lim)) for lim in limits], signature
            )

    def clamp(self, key: str, now_ms: int) -> None:
        """After the clock went back: what was taken "in the future" is taken now
        (counted, not lost; the windows restart from now)."""
        with self._lock:
            _budgetfile.clamp(self._db, key, now_ms)


class RedisStore:
    """Every machine's budgets on the Redis ``[cache] url``: pyrate-limiter's
    ``RedisBucket`` (one Lua script per take), timed by the Redis server's own
    clock (machines' clocks differ; one clock keeps one window); blocks in a hash.
    Redis down: each machine keeps to the budget in its own file, warned once."""

    shared = "every machine on Redis"

    def __init__(
        self, url: str, local: SQLiteStore | MemoryStore, on_warning: Callable[[str], None]
    ) -> None:
        import redis

        self.url = url
        self.local = local
        self.on_warning = on_warning
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._refused: type[BaseException] = redis.ResponseError
        #: EXPIREAT ... GT needs Redis 7; an older server is asked for the TTL instead
        self._gt = True

    def bucket(self, key: str, limits: Sequence[Limit]) -> Any:
        from pyrate_limiter import RedisBucket

        return RedisBucket.init(rates(limits), self.client, f"keyfob:rate:{key}")

    def now_ms(self) -> int:
        seconds, micro = self.client.time()
        return int(seconds) * 1000 + int(micro) // 1000

    def blocked_until(self, key: str, scopes: Sequence[str]) -> float:
        values = self.client.hmget(f"keyfob:rate-blocks:{key}", list(scopes))
        return max((float(v) for v in values if v is not None), default=0.0)

    def block(self, key: str, scope: str, until: float) -> None:
        name = f"keyfob:rate-blocks:{key}"
        old = self.client.hget(name, scope)
        if old is None or float(old) < until:
            self.client.hset(name, scope, repr(until))
        at = int(until) + 1
        if self._gt:
            try:
                self.client.expireat(name, at, gt=True)
            except self._refused:  # Redis < 7: no GT option
                self._gt = False
        if not self._gt:
            # the hash lives until its furthest block: extend, never shorten
            ttl = self.client.ttl(name)
            if ttl < 0 or ttl < at - int(self.local.clock()):
                self.client.expireat(name, at)
        elif self.client.ttl(name) < 0:
            self.client.expireat(name, at)

    def used(self, key: str, limits: Sequence[Limit], now_ms: int) -> list[int]:
        name = f"keyfob:rate:{key}"
        return [int(self.client.zcount(name, now_ms - window_ms(lim), "+inf")) for lim in limits]


# -- one budget --------------------------------------------------------------


#: how long a budget without static limits trusts that nothing blocks it, once the
#: shared store said so: what another worker learns is obeyed here this much later
CLEAR_FOR = 0.05


class Budget:
    """The rate budget of one (provider, account)."""

    def __init__(
        self,
        key: str,
        limits: Sequence[Limit],
        store: Store,
        *,
        max_wait: float,
        clock: Callable[[], float] = time.time,
        fallback: Callable[[], Store] | None = None,
        on_warning: Callable[[str], None] = log.warning,
    ) -> None:
        self.key = key
        self.limits = tuple(limits)
        self.max_wait = max_wait
        self.clock = clock
        self._store = store
        self._fallback = fallback
        self._warn = on_warning
        self._bucket: Any = None
        self._local: Any = None
        self._lock = threading.Lock()
        self._last_ms = 0
        self._takes = 0
        #: scope -> ``time.monotonic()`` until which this process takes it that nothing
        #: blocks that scope of a budget without static limits (see CLEAR_FOR)
        self._clear: dict[str | None, float] = {}

    @property
    def shared(self) -> str:
        return self._store.shared

    def _ensure(self) -> Any:
        if self._bucket is None and self.limits:
            self._bucket = self._store.bucket(self.key, self.limits)
        return self._bucket

    def _degrade(self, exc: BaseException) -> None:
        """The shared store failed: keep to the budget on this machine from now on."""
        if self._fallback is None:
            raise exc
        self._warn(
            f"the shared rate budget is unavailable ({type(exc).__name__}); "
            "each machine keeps to the limits on its own"
        )
        self._store, self._fallback, self._bucket = self._fallback(), None, None

    def try_take(self, scope: str | None = None) -> float:
        """Take one request if the budget allows it now (0.0); else the seconds to wait."""
        with self._lock:
            while True:
                try:
                    return self._try_take(scope)
                except Exception as exc:  # the store's own failures: Redis, SQLite
                    if self._fallback is None:
                        raise
                    self._degrade(exc)

    def _try_take(self, scope: str | None) -> float:
        if not self.limits and time.monotonic() < self._clear.get(scope, 0.0):
            return 0.0  # nothing to count, and no block seen a moment ago
        from pyrate_limiter import RateItem

        now = self.clock()
        scopes = (ALL, scope) if scope else (ALL,)
        blocked = self._store.blocked_until(self.key, scopes)
        if blocked > now:
            return blocked - now
        bucket = self._ensure()
        if bucket is None:
            # A block another worker learns is seen here within CLEAR_FOR; the auth
            # hook then costs microseconds, not a read of the shared store.
            self._clear[scope] = time.monotonic() + CLEAR_FOR
            return 0.0
        now_ms = self._store.now_ms()
        if now_ms < self._last_ms - 1000 and isinstance(self._store, SQLiteStore):
            self._store.clamp(self.key, now_ms)  # the clock went back
        self._last_ms = now_ms
        decision = bucket.put_decision(RateItem(self.key, now_ms))
        if decision.allowed:
            self._takes += 1
            if self._takes % 256 == 0:
                bucket.leak(now_ms)
            return 0.0
        wait_ms = decision.retry_after_ms
        return max(0.001, (wait_ms if wait_ms and wait_ms > 0 else 10) / 1000)

    def _limited(self, wait: float, limit: float) -> RateLimited:
        retry_at = self.clock() + wait
        when = time.strftime("%H:%M:%S", time.localtime(retry_at))
        return RateLimited(
            f"the rate budget of {self.key.replace(chr(0), ' ')} is spent until {when} "
            f"({wait:.1f} s, longer than max_wait {limit:g} s)",
            retry_at=retry_at,
        )

    def take(
        self,
        scope: str | None = None,
        *,
        max_wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> float:
        """Take one request, sleeping while the budget is spent; the seconds waited.
        ``RateLimited`` (nothing taken) when the wait would pass ``max_wait``."""
        limit = self.max_wait if max_wait is None else max_wait
        waited = 0.0
        while True:
            wait = self.try_take(scope)
            if wait <= 0:
                return waited
            if waited + wait > limit:
                raise self._limited(wait, limit)
            sleep(wait)
            waited += wait

    async def atake(self, scope: str | None = None, *, max_wait: float | None = None) -> float:
        """:meth:`take` for an event loop: waits with ``asyncio.sleep``."""
        limit = self.max_wait if max_wait is None else max_wait
        waited = 0.0
        while True:
            wait = self.try_take(scope)
            if wait <= 0:
                return waited
            if waited + wait > limit:
                raise self._limited(wait, limit)
            await asyncio.sleep(wait)
            waited += wait

    def learn(self, method: str, path: str, status: int, headers: Mapping[str, str]) -> Lesson:
        """Read an answer's rate headers into the shared blocks."""
        now = self.clock()
        lesson = learn(status, headers, now)
        if status in (429, 503) and lesson.until is None:
            lesson = Lesson(everything=now + 1.0)  # "too many", without a when: a second
        if lesson.capped:
            self._warn(f"{self.key.split(chr(0))[0]} asked to wait more than a day; waiting a day")
        with self._lock:
            self._clear.clear()
            for scope, until in (
                (scope_of(method, path), lesson.endpoint),
                (ALL, lesson.everything),
            ):
                if until is None:
                    continue
                try:
                    self._store.block(self.key, scope, until)
                except Exception as exc:
                    if self._fallback is None:
                        raise
                    self._degrade(exc)
                    self._store.block(self.key, scope, until)
        return lesson

    def left(self) -> list[tuple[Limit, int]]:
        """Requests left in each static limit now."""
        if not self.limits:
            return []
        with self._lock:
            try:
                used = self._store.used(self.key, self.limits, self._store.now_ms())
            except Exception as exc:
                if self._fallback is None:
                    raise
                self._degrade(exc)
                used = self._store.used(self.key, self.limits, self._store.now_ms())
        return [(lim, max(0, lim.count - n)) for lim, n in zip(self.limits, used, strict=True)]

    def blocked(self) -> float:
        """Until when the whole budget is blocked (epoch seconds; 0 for not)."""
        return self._store.blocked_until(self.key, (ALL,))


def scope_of(method: str, path: str) -> str:
    return f"{method.upper()} {path or '/'}"


def budget_key(provider: str, account: str | None) -> str:
    return f"{provider}\0{account or ''}"


# -- the budgets of a broker ---------------------------------------------------


class Limiter:
    """Every budget of one broker. ``store`` chooses where they live: by default
    the SQLite file in the cache folder (or Redis on ``cache_url``);
    ``MemoryStore()`` switches sharing off (tests that show it matters)."""

    def __init__(
        self,
        *,
        folder: str | None = None,
        cache_url: str | None = None,
        store: Store | None = None,
        max_wait: float = 60.0,
        retries: int = 2,
        signature: str = "",
        clock: Callable[[], float] = time.time,
        on_warning: Callable[[str], None] = log.warning,
    ) -> None:
        self.max_wait = max_wait
        self.retries = retries
        self.clock = clock
        self.signature = signature
        self._folder = folder
        self._cache_url = cache_url
        self._store = store
        self._warn = on_warning
        self._budgets: dict[str, Budget] = {}
        self._guard = threading.Lock()

    def _local(self) -> SQLiteStore | MemoryStore:
        if self._folder is None:
            return MemoryStore(self.clock)
        try:
            return SQLiteStore(self._folder, self.clock)
        except (OSError, _budgetfile.Corrupt) as exc:
            self._warn(f"the rate budget file cannot be used ({exc}); limits hold per process")
            return MemoryStore(self.clock)

    def store(self) -> Store:
        if self._store is None:
            local = self._local()
            store: Store = local
            if self._cache_url:
                try:
                    store = RedisStore(self._cache_url, local, self._warn)
                except ModuleNotFoundError:
                    store = local
            self._store = store
        return self._store

    def budget(
        self, provider: str, account: str | None, limits: Iterable[str], *, fast: bool = True
    ) -> Budget:
        """The budget of (provider, account). ``fast=False``: ``keyfob wait``'s fast path
        must not answer from it (its limits are recorded as none)."""
        key = budget_key(provider, account)
        budget = self._budgets.get(key)
        if budget is None:
            with self._guard:
                budget = self._budgets.get(key)
                if budget is None:
                    parsed = [parse_limit(t) for t in limits]
                    store = self.store()
                    fallback = None
                    if isinstance(store, RedisStore):
                        local = store.local
                        fallback = lambda: local  # noqa: E731
                    elif isinstance(store, SQLiteStore):
                        try:
                            store.remember(key, parsed if fast else [], self.signature)
                        except Exception as exc:  # a fast path less, nothing more
                            log.debug("could not record the limits: %s", exc)
                    budget = Budget(
                        key,
                        parsed,
                        store,
                        max_wait=self.max_wait,
                        clock=self.clock,
                        fallback=fallback,
                        on_warning=self._warn,
                    )
                    self._budgets[key] = budget
        return budget


__all__ = [
    "IDEMPOTENT",
    "Budget",
    "Lesson",
    "Limit",
    "Limiter",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "budget_key",
    "learn",
    "margin",
    "parse_limit",
    "retry_after",
    "scope_of",
]
