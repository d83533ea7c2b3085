"""The rate budget of a fleet: three "machines" (processes, each with its own cache
folder) share one budget on a real ``redis-server``, counted at the server.

Workers start behind a start file and a thread barrier (``release`` of the
single-flight tests); the server (the emulator) records each arrival, each
machine on its own path. No window of the limit's length holds more than the
limit and at least 90 % of the allowed rate is used; with sharing switched off
by an argument (``Limiter(store=MemoryStore())``) the same fleet goes over.
Redis stopped mid-run: each machine keeps to the limit on its own, warned once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyfob.ratelimit import MemoryStore, RedisStore, SQLiteStore, parse_limit
from keyfob.testing import LocalProvider, worst_window
from test_ratelimit import used_share
from test_redis_cache import RedisServer, own_server, server, shared_server
from test_single_flight import release

__all__ = ["own_server", "server", "shared_server"]  # fixtures, used by name

MACHINES = 3
THREADS = 2
LIMIT, COUNT, SECONDS = "10/2s", 10, 2.0

WORKER = textwrap.dedent(
    """
    import json, sys, threading, time, urllib.error, urllib.request
    from pathlib import Path
    from keyfob.ratelimit import Limiter, MemoryStore

    folder, cache_url, url, limit, threads, per, ready, start, mode = sys.argv[1:10]
    warnings = []
    if mode == "unshared":
        limiter = Limiter(store=MemoryStore(), on_warning=warnings.append)
    else:
        limiter = Limiter(folder=folder, cache_url=cache_url, on_warning=warnings.append)
    budget = limiter.budget("api", None, [limit])
    budget.left(); budget._ensure()  # connects before the race, taking nothing
    barrier = threading.Barrier(int(threads))
    errors = []

    def work():
        try:
            barrier.wait()
            for _ in range(int(per)):
                budget.take(max_wait=30)
                try:
                    urllib.request.urlopen(url, timeout=30).close()
                except urllib.error.HTTPError as err:
                    err.close()  # the emulator knows no such path: it counted it all the same
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    Path(ready).touch()
    while not Path(start).exists():
        time.sleep(0.005)
    pool = [threading.Thread(target=work) for _ in range(int(threads))]
    for t in pool: t.start()
    for t in pool: t.join()
    Path(folder, "warnings.json").write_text(json.dumps(warnings))
    print(json.dumps({"tokens": [], "errors": errors}))
    """
)


@pytest.fixture
def emulator() -> Iterator[LocalProvider]:
    with LocalProvider() as provider:
        yield provider


def fleet(
    tmp_path: Path,
    emulator: LocalProvider,
    cache_url: str,
    no_secret_leaks: Any,
    *,
    per: int,
    mode: str = "shared",
    during: Any = None,
) -> list[Path]:
    """Run the machines to the end; their cache folders."""
    start = tmp_path / "start"
    folders = [tmp_path / f"machine{i}" for i in range(MACHINES)]
    ready = [tmp_path / f"ready{i}" for i in range(MACHINES)]
    workers = []
    for i, folder in enumerate(folders):
        folder.mkdir(mode=0o700)
        args = [str(folder), cache_url, f"{emulator.url}/m{i}", LIMIT, str(THREADS), str(per)]
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, *args, str(ready[i]), str(start), mode],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    timer = threading.Timer(1.0, during) if during else None
    if timer:
        # started with the race: release() touches the start file at once
        threading.Thread(target=lambda: (wait_for(start), timer.start()), daemon=True).start()
    try:
        release(workers, ready, start, no_secret_leaks)
    finally:
        if timer:
            timer.cancel()
    return folders


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def arrivals(emulator: LocalProvider) -> list[list[float]]:
    return [emulator.arrivals(f"/m{i}") for i in range(MACHINES)]


@pytest.mark.slow
def test_three_machines_share_one_budget_on_redis(
    tmp_path: Path, server: RedisServer, emulator: LocalProvider, no_secret_leaks: Any
) -> None:
    # 30 requests: three full windows, so the share used is not diluted by a last partial one
    fleet(tmp_path, emulator, server.url, no_secret_leaks, per=5)
    times = [t for machine in arrivals(emulator) for t in machine]
    assert len(times) == MACHINES * THREADS * 5
    assert all(arrivals(emulator))  # every machine took its share
    assert worst_window(times, SECONDS) <= COUNT
    assert used_share(times, COUNT, SECONDS) >= 0.9


def test_three_machines_without_sharing_go_over_the_limit(
    tmp_path: Path, server: RedisServer, emulator: LocalProvider, no_secret_leaks: Any
) -> None:
    fleet(tmp_path, emulator, server.url, no_secret_leaks, per=5, mode="unshared")
    times = [t for machine in arrivals(emulator) for t in machine]
    assert worst_window(times, SECONDS) > COUNT


@pytest.mark.slow
def test_redis_down_mid_run_each_machine_keeps_to_the_limit_warned_once(
    tmp_path: Path, own_server: RedisServer, emulator: LocalProvider, no_secret_leaks: Any
) -> None:
    stopped: list[float] = []

    def stop() -> None:
        own_server.stop()
        stopped.append(time.time())

    # 20 a machine: more than the limit is left for each when Redis goes down
    folders = fleet(tmp_path, emulator, own_server.url, no_secret_leaks, per=10, during=stop)
    assert stopped, "Redis was never stopped"
    for machine, folder in zip(arrivals(emulator), folders, strict=True):
        assert len(machine) == THREADS * 10  # nothing lost, nothing failed
        after = [t for t in machine if t > stopped[0]]
        assert len(after) > COUNT, "too little was left when Redis went down"
        assert worst_window(after, SECONDS) <= COUNT  # on its own, the machine keeps the limit
        warnings = json.loads((folder / "warnings.json").read_text())
        assert len(warnings) == 1 and "unavailable" in warnings[0]


def test_a_block_learned_on_one_machine_is_obeyed_on_another(
    tmp_path: Path, server: RedisServer
) -> None:
    """Also: blocks work on the installed server (EXPIREAT ... GT, Redis 7), and a
    later block is never shortened by an earlier one."""
    one = RedisStore(server.url, SQLiteStore(str(tmp_path / "a")), lambda m: None)
    two = RedisStore(server.url, MemoryStore(), lambda m: None)
    until = time.time() + 30
    one.block("api\0", "GET /x", until)
    one.block("api\0", "GET /x", until - 20)
    assert two.blocked_until("api\0", ["*", "GET /x"]) == pytest.approx(until)
    assert 25 <= server.client().ttl("keyfob:rate-blocks:api\0") <= 32


def test_blocks_on_a_redis_without_expireat_gt(tmp_path: Path, server: RedisServer) -> None:
    """Redis before 7 refuses EXPIREAT's GT: the TTL is asked instead, only ever extended."""
    import redis

    store = RedisStore(server.url, MemoryStore(), lambda m: None)
    real = store.client.expireat

    def old_expireat(name: str, when: int, **kw: Any) -> Any:
        if kw:
            raise redis.ResponseError("ERR wrong number of arguments for 'expireat' command")
        return real(name, when)

    store.client.expireat = old_expireat  # type: ignore[method-assign]
    now = time.time()
    store.block("api\0", "*", now + 60)
    store.block("api\0", "*", now + 10)
    assert store.blocked_until("api\0", ["*"]) == pytest.approx(now + 60)
    assert 55 <= server.client().ttl("keyfob:rate-blocks:api\0") <= 62


def test_the_limit_parses() -> None:
    assert parse_limit(LIMIT).count == COUNT and parse_limit(LIMIT).seconds == SECONDS
