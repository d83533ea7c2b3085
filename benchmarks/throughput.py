"""Tokens served per second from the SQLite cache and from the Redis cache, by 1, 4
and 16 concurrent processes (by hand, not in CI: timings are noisy).

    .venv/bin/python benchmarks/throughput.py [--seconds 2] [--procs 1 4 16]

Each process asks its cache for a valid cached token in a loop, as a cold worker
would after its in-memory copy is gone: `SQLiteCache.get` on the shared file, and
`RedisCache.get` with an empty local copy (every call goes to Redis; in use, a
local copy answers first and Redis is only asked on a miss). It starts a
`redis-server` of its own on a free loopback port.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import tempfile
import time

KEY = ("bench", "")


def _entry() -> object:
    from keyfob.cache import Entry
    from keyfob.token import Token

    token = Token("x" * 40, expires=time.time() + 3600, issued=time.time(), refresh_token="r" * 40)
    return Entry(token, fingerprint="f" * 32, label="bench")


def _cache(kind: str, target: str) -> object:
    from keyfob.cache.memory import MemoryCache
    from keyfob.cache.sqlite import SQLiteCache

    if kind == "sqlite":
        return SQLiteCache(target)
    from keyfob.cache.redis import RedisCache

    return RedisCache(target, local=MemoryCache())


def _worker(kind: str, target: str, seconds: float, start: object, out: object) -> None:
    cache = _cache(kind, target)
    local = getattr(cache, "local", None)
    start.wait()  # type: ignore[attr-defined]
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        if local is not None:
            local.delete(KEY)  # every call goes to Redis
        assert cache.get(KEY) is not None  # type: ignore[attr-defined]
        n += 1
    out.put(n)  # type: ignore[attr-defined]


def run(kind: str, target: str, procs: int, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(kind, target, seconds, start, out)) for _ in range(procs)
    ]
    for w in workers:
        w.start()
    time.sleep(1.5)  # imports
    start.set()
    total = sum(out.get(timeout=120) for _ in workers)
    for w in workers:
        w.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is missing: bash scripts/setup-redis.sh")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    folder = tempfile.mkdtemp()
    try:
        url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
        for kind, target in (("sqlite", folder), ("redis", url)):
            _cache(kind, target).put(KEY, _entry())  # type: ignore[attr-defined]
        print(f"tokens served per second from the cache ({os.cpu_count()} cores):\n")
        print("| processes | SQLite cache | Redis cache |")
        print("|---|---|---|")
        for procs in args.procs:
            sqlite = run("sqlite", folder, procs, args.seconds)
            shared = run("redis", url, procs, args.seconds)
            print(f"| {procs} | {sqlite:,.0f} | {shared:,.0f} |")
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
