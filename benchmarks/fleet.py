"""Token-endpoint requests made by N cold clients at once: keyfob against Authlib and
requests-oauthlib, side by side in one run, against the same loopback server.

    .venv/bin/pip install authlib requests-oauthlib     # the libraries compared (bench extra)
    .venv/bin/python benchmarks/fleet.py [--sizes 1 8 32 128]

Each client is its own process, started behind a shared start file so they
really race, with no token cached: a worker of a fleet starting cold. keyfob's
clients share one KEYFOB_HOME (one machine); Authlib's `OAuth2Session` and
requests-oauthlib's `OAuth2Session` + `BackendApplicationClient` each do what
their documentation shows for the client-credentials grant.

With --redis URL, keyfob's clients each get their own KEYFOB_HOME (one machine
each) and share the Redis cache instead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import os, sys, time
start = sys.argv[2]
while not os.path.exists(start):
    time.sleep(0.001)
kind, url = sys.argv[1], sys.argv[3]
cid, secret = os.environ["LOCAL_CLIENT_ID"], os.environ["LOCAL_CLIENT_SECRET"]
if kind == "keyfob":
    import keyfob
    token = keyfob.get_token("bench").access_token
elif kind == "authlib":
    from authlib.integrations.requests_client import OAuth2Session
    client = OAuth2Session(cid, secret)
    token = client.fetch_token(url, grant_type="client_credentials")["access_token"]
else:
    from oauthlib.oauth2 import BackendApplicationClient
    from requests_oauthlib import OAuth2Session
    client = OAuth2Session(client=BackendApplicationClient(client_id=cid))
    token = client.fetch_token(token_url=url, client_id=cid, client_secret=secret)["access_token"]
print(len(token))
"""


def race(kind: str, n: int, provider: object, env: dict[str, str], homes: list[str]) -> int:
    url = f"{provider.url}/std/token"  # type: ignore[attr-defined]
    provider.reset_counts()  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        start = os.path.join(tmp, "go")
        children = []
        for i in range(n):
            child_env = dict(env, KEYFOB_HOME=homes[i % len(homes)])
            children.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, kind, start, url],
                    env=child_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        time.sleep(1.0 + n * 0.12)  # let them import and reach the start line
        Path(start).touch()
        for child in children:
            _, err = child.communicate(timeout=300)
            if child.returncode != 0:
                raise SystemExit(f"{kind} worker failed: {err.strip()[-300:]}")
    return int(provider.count("/std/token"))  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--redis", default=None, help="redis:// URL: keyfob shares it")
    args = parser.parse_args()

    from keyfob.testing import LocalProvider

    with LocalProvider() as provider, tempfile.TemporaryDirectory() as base:
        config = (
            f'[providers.bench]\ntoken_url = "{provider.url}/std/token"\n'
            'grant = "client_credentials"\nenv_prefix = "LOCAL"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYFOB_", "LOCAL_"))}
        env.update(provider.environ(), KEYFOB_KEYRING="file", KEYFOB_CONFIG=f"{base}/config.toml")
        # oauthlib refuses http:// unless told; the server is on loopback (its docs say so)
        env["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        Path(base, "config.toml").write_text(config)
        if args.redis:
            env["KEYFOB_CACHE_URL"] = args.redis
        rows = []
        for n in args.sizes:
            homes = [tempfile.mkdtemp(dir=base) for _ in range(n if args.redis else 1)]
            if args.redis:
                import redis

                redis.Redis.from_url(args.redis).flushdb()
            counts = [
                race(kind, n, provider, env, homes)
                for kind in ("keyfob", "authlib", "requests-oauthlib")
            ]
            rows.append((n, *counts))
            print(
                f"  N={n}: keyfob {counts[0]}, authlib {counts[1]}, requests-oauthlib {counts[2]}",
                file=sys.stderr,
            )
        where = "separate KEYFOB_HOMEs sharing Redis" if args.redis else "one KEYFOB_HOME"
        print(f"\ntoken requests made by N cold client processes at once ({where}):\n")
        print("| N | keyfob | Authlib OAuth2Session | requests-oauthlib |")
        print("|---|---|---|---|")
        for n, k, a, r in rows:
            print(f"| {n} | {k} | {a} | {r} |")


if __name__ == "__main__":
    main()
