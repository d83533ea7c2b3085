"""keyfob's budgets, measured side by side in one run (by hand, not in CI: timings are noisy).

    .venv/bin/python benchmarks/bench.py [--runs 40]

1. the installed `keyfob token local` with a config.toml and a valid cached token,
   against `python -c pass` from the same environment, interleaved:
   budget: median at most 2.5x, peak memory at most 20 MiB;
2. `get_token` with the token in memory: budget: a few microseconds;
3. the auth hook of `requests_auth` and `httpx_auth` on a prepared request, with
   the token alone (budget: at most 5 us per request) and with the rate budget
   of a provider without static limits (benchmarks/ratelimit.py measures a take
   from a static budget).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def run_child(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one child process."""
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def peak_rss(argv: list[str], env: dict[str, str]) -> float:
    """Peak RSS in MiB, by /usr/bin/time: a child forked from this (large) process
    would report this process's high-water mark, not its own."""
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def cli(runs: int, env: dict[str, str]) -> None:
    keyfob = [str(BIN / "keyfob"), "token", "local"]
    bare = [sys.executable, "-c", "pass"]
    for _ in range(5):  # warm the page cache
        run_child(keyfob, env)
        run_child(bare, env)
    k_times, p_times = [], []
    for _ in range(runs):
        k_times.append(run_child(keyfob, env))
        p_times.append(run_child(bare, env))
    k_rss = max(peak_rss(keyfob, env) for _ in range(5))
    p_rss = max(peak_rss(bare, env) for _ in range(5))
    k, p = statistics.median(k_times), statistics.median(p_times)
    print(f"1. cached `keyfob token local` vs `python -c pass`, {runs} interleaved runs each")
    print(f"   python -c pass      median {p * 1000:6.1f} ms   peak RSS {p_rss:5.1f} MiB")
    print(f"   keyfob token local  median {k * 1000:6.1f} ms   peak RSS {k_rss:5.1f} MiB")
    verdict = "ok" if k / p <= 2.5 and k_rss <= 20 else "OVER BUDGET"
    print(f"   ratio {k / p:.2f}x (budget 2.5x), peak {k_rss:.1f} MiB (budget 20 MiB): {verdict}")


def in_process(provider_url: str) -> None:
    import httpx
    import requests

    import keyfob
    from keyfob import wiring

    wiring.reset()
    keyfob.get_token("local")  # into memory
    n = 200_000
    per = timeit.timeit(lambda: keyfob.get_token("local"), number=n) / n
    print(f"2. get_token from memory: {per * 1e6:.2f} us per call (budget: a few us)")

    copy_only = 0.0
    prepared = requests.Request("GET", f"{provider_url}/std/api/me").prepare()
    request = httpx.Request("GET", f"{provider_url}/std/api/me")
    for rate_limit in (False, True):
        auth = keyfob.requests_auth("local", rate_limit=rate_limit)
        per_r = timeit.timeit(lambda a=auth: a(prepared.copy()), number=n // 4) / (n // 4)
        copy_only = timeit.timeit(lambda: prepared.copy(), number=n // 4) / (n // 4)
        hauth = keyfob.httpx_auth("local", rate_limit=rate_limit)

        def hook(h: Any = hauth) -> None:
            flow = h.sync_auth_flow(request)
            next(flow)
            flow.close()

        per_h = timeit.timeit(hook, number=n // 4) / (n // 4)
        what = (
            "with the rate budget (no static limits)"
            if rate_limit
            else "the token alone (rate_limit=False), budget 5 us"
        )
        print(
            f"3. auth hook per request, {what}: requests_auth "
            f"{(per_r - copy_only) * 1e6:.2f} us, httpx_auth {per_h * 1e6:.2f} us"
        )
    print(
        f"   (the benchmark's own request copy, taken off requests_auth: {copy_only * 1e6:.2f} us)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()

    from keyfob.testing import LocalProvider

    with tempfile.TemporaryDirectory() as home, LocalProvider() as provider:
        Path(home, "config.toml").write_text(provider.config_toml())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYFOB_", "LOCAL_"))}
        env.update(KEYFOB_HOME=home, KEYFOB_KEYRING="file", **provider.environ())
        subprocess.run(
            [str(BIN / "keyfob"), "token", "local"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        cli(args.runs, env)
        os.environ.update(env)
        in_process(provider.url)


if __name__ == "__main__":
    main()
