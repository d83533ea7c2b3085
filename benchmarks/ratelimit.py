"""The rate budget's budgets, measured side by side in one run (by hand, not in CI).

    .venv/bin/python benchmarks/ratelimit.py [--takes 2000] [--runs 30] [--redis]

1. one request taken with budget left, in process: the shared SQLite budget
   (budget: median at most 100 us), Redis on loopback with ``--redis`` (at most
   1 ms; starts its own redis-server), and the in-process bucket for scale;
2. ``keyfob wait X`` with budget left, new process, against ``python3 -c pass``,
   interleaved (budget: at most 3x);
3. a fleet: N processes (``--fleet 1 4 16``) each sending as fast as its limiter
   lets it to one emulated API for ``--seconds``; the most requests the server saw
   in any window of the limit's length (``20/1s``), for keyfob (one shared budget
   on the machine), pyinaturalist's limiter (requests-ratelimiter's
   ``LimiterSession``, one bucket per process, as pyinaturalist's session keeps
   it) and no limiter. Needs the ``bench`` extra.
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

from keyfob.ratelimit import Limiter, MemoryStore, margin, parse_limit
from keyfob.testing import worst_window

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
    ap.add_argument("--fleet", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--seconds", type=float, default=3.0)
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
    if args.fleet:
        fleet(args.fleet, args.seconds)


FLEET_LIMIT = "20/1s"
FLEET_WORKER = r"""
import os, sys, time
from pathlib import Path
kind, url, ready, start, per = sys.argv[1:6]
import requests
if kind == "keyfob":
    import keyfob
    keyfob.get_token("bench")  # the token before the start: the race is about the API
    session = keyfob.session("bench")
elif kind == "requests-ratelimiter":
    from requests_ratelimiter import LimiterSession
    count, seconds = int(sys.argv[6]), float(sys.argv[7])
    session = LimiterSession(per_second=count / seconds, max_delay=60)
else:
    session = requests.Session()
Path(ready).touch()
while not os.path.exists(start):
    time.sleep(0.001)
for _ in range(int(per)):
    session.get(url, timeout=30)
"""


def fleet_run(kind: str, n: int, provider: object, env: dict[str, str], seconds: float) -> int:
    """N processes of one kind for ``seconds``; the worst window the server saw."""
    limit = parse_limit(FLEET_LIMIT)
    path = "/std/api/me"
    url = f"{provider.url}{path}"  # type: ignore[attr-defined]
    provider.reset_counts()  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        start = os.path.join(tmp, "go")
        ready = [os.path.join(tmp, f"ready{i}") for i in range(n)]
        extra = [str(limit.count), str(limit.seconds)]
        children = [
            subprocess.Popen(
                [sys.executable, "-c", FLEET_WORKER, kind, url, r, start, "1000000", *extra],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for r in ready
        ]
        try:
            deadline = time.monotonic() + 60
            while not all(os.path.exists(r) for r in ready):
                if any(c.poll() not in (None, 0) for c in children) or time.monotonic() > deadline:
                    failed = next((c for c in children if c.poll()), children[0])
                    raise SystemExit(f"{kind} worker failed: {failed.stderr.read()[-300:]!r}")  # type: ignore[union-attr]
                time.sleep(0.01)
            Path(start).touch()
            time.sleep(seconds)
        finally:
            for c in children:  # the ones this run started, by their own handle
                if c.poll() is None:
                    c.kill()
                c.wait()
                c.stderr.close()  # type: ignore[union-attr]
    arrivals = provider.arrivals(path)  # type: ignore[attr-defined]
    return worst_window(arrivals, limit.seconds)


def fleet(sizes: list[int], seconds: float) -> None:
    from keyfob.testing import LocalProvider

    limit = parse_limit(FLEET_LIMIT)
    with LocalProvider(std_rate=(10**9, 60.0)) as provider, tempfile.TemporaryDirectory() as base:
        config = (
            f'[providers.bench]\ntoken_url = "{provider.url}/std/token"\n'
            f'grant = "client_credentials"\nenv_prefix = "LOCAL"\n'
            f'rate_limits = ["{FLEET_LIMIT}"]\n'
        )
        Path(base, "config.toml").write_text(config)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYFOB_", "LOCAL_"))}
        env.update(provider.environ(), KEYFOB_KEYRING="file", KEYFOB_HOME=base)
        rows = []
        for n in sizes:
            kinds = ("keyfob", "requests-ratelimiter", "none")
            rows.append((n, *(fleet_run(kind, n, provider, env, seconds) for kind in kinds)))
    print(
        f"3. a fleet on one machine, {seconds:g} s each: the most requests the server saw in "
        f"any {limit.seconds:g} s (limit {limit.count}; keyfob keeps each window "
        f"{margin(limit.seconds) * 1000:.0f} ms longer)"
    )
    print("   | processes | keyfob (shared) | requests-ratelimiter (per process) | no limiter |")
    print("   |---|---|---|---|")
    for n, k, r, none in rows:
        print(f"   | {n} | {k} | {r} | {none} |")


if __name__ == "__main__":
    main()
