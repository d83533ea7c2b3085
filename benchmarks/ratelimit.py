"""The rate budget's budgets, measured side by side in one run (by hand, not in CI).

    .venv/bin/python benchmarks/ratelimit.py [--takes 2000] [--runs 30] [--redis]

1. one request taken with budget left, in process: the shared SQLite budget
   (budget: median at most 100 us), Redis on loopback with ``--redis`` (at most
   1 ms; starts its own redis-server), and the in-process bucket for scale;
2. ``keyfob wait X`` with budget left, new process, against ``python3 -c pass``,
   interleaved (budget: at most 3x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keyfob.ratelimit import Limiter, MemoryStore

BIN = Path(sys.executable).parent
LIMITS = ["1000000/minute", "10000000/day"]  # never spent: every take is "budget left"


def per_take(limiter: Limiter, takes: int) -> float:
    budget = limiter.budget("bench", None, LIMITS)
    budget.take()
    times = []
    for _ in range(takes):
        t = time.perf_counter()
        budget.try_take("GET /v1/observations")
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def redis_url(folder: str) -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    return f"redis://127.0.0.1:{port}/0", proc


def child(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--takes", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--redis", action="store_true")
    args = ap.parse_args()
    folder = tempfile.mkdtemp()
    print("1. one request taken, budget left (median per take)")
    print(
        f"   in process (InMemoryBucket)   "
        f"{per_take(Limiter(store=MemoryStore()), args.takes):8.1f} us"
    )
    sqlite = per_take(Limiter(folder=folder + "/a"), args.takes)
    print(f"   shared, SQLite file           {sqlite:8.1f} us   (budget 100 us)")
    if args.redis and shutil.which("redis-server"):
        url, proc = redis_url(folder)
        try:
            r = per_take(Limiter(folder=folder + "/b", cache_url=url), args.takes)
            print(f"   shared, Redis on loopback     {r:8.1f} us   (budget 1000 us)")
        finally:
            proc.terminate()
            proc.wait()

    home = Path(folder) / "home"
    home.mkdir()
    (home / "config.toml").write_text('[providers.inaturalist]\nrate_limits = ["1000000/minute"]\n')
    env = {**os.environ, "KEYFOB_HOME": str(home)}
    env.pop("KEYFOB_CACHE_URL", None)
    keyfob = [str(BIN / "keyfob"), "wait", "inaturalist"]
    child(keyfob, env)  # the full path once: it records the limits for the fast path
    waits, passes = [], []
    for _ in range(args.runs):
        waits.append(child(keyfob, env))
        passes.append(child([sys.executable, "-c", "pass"], env))
    w, p = statistics.median(waits) * 1e3, statistics.median(passes) * 1e3
    print("2. new process, median of", args.runs)
    print(f"   keyfob wait inaturalist       {w:8.1f} ms")
    print(f"   python3 -c pass               {p:8.1f} ms   ratio {w / p:.2f}x (budget 3x)")


if __name__ == "__main__":
    main()
