"""``keyfob demo``: the life of a token, offline, against the local provider.

Runs in a throw-away folder (its own config, cache and secrets file): it never
touches the person's keyring or cache. Each step runs the real ``keyfob``
command in a new process, as a person would, and shows what the local
provider saw.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import click

from keyfob.testing import LocalProvider, worst_window


def _short(token: str) -> str:
    return f"{token[:12]}…({len(token)} chars)" if len(token) > 16 else "…"


class _Demo:
    def __init__(self, provider: LocalProvider, home: str) -> None:
        self.provider = provider
        self.env = dict(os.environ)
        for name in list(self.env):
            if name.startswith(("KEYFOB_", "INAT_", "TWITTER_", "TREESNAP_", "LOCAL_")):
                del self.env[name]
        self.env.update(KEYFOB_HOME=home, KEYFOB_KEYRING="file")
        self.step_no = 0

    def step(self, title: str) -> None:
        self.step_no += 1
        click.secho(f"\n{self.step_no}. {title}", bold=True)

    def keyfob(
        self, *args: str, env: dict[str, str] | None = None, show: bool = True
    ) -> subprocess.CompletedProcess[str]:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "keyfob", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        took = (time.perf_counter() - started) * 1000
        if show:
            click.echo(f"   $ keyfob {' '.join(args)}    ({took:.0f} ms, exit {done.returncode})")
            out = done.stdout.strip()
            if args[0] in ("token", "header") and out:
                out = out.replace(out.split()[-1], _short(out.split()[-1]))
            for line in out.splitlines():
                click.echo(f"     {line}")
            for line in done.stderr.strip().splitlines():
                click.echo(f"     {line}")
        if done.returncode != 0:
            raise click.ClickException(f"demo step failed: keyfob {' '.join(args)}")
        return done

    def saw(self, *paths: str) -> None:
        counts = ", ".join(f"{p} x{self.provider.count(p)}" for p in paths)
        click.echo(f"   the local provider has seen: {counts}")


def _observation(url: str, authorization: str | None) -> dict[str, object]:
    request = urllib.request.Request(f"{url}/v1/observations/1")
    if authorization:
        request.add_header("Authorization", authorization)
    with urllib.request.urlopen(request, timeout=10) as response:
        data = json.load(response)
    result: dict[str, object] = data["results"][0]
    return result


#: iNaturalist's throttle (100 a minute) and keyfob's default for it (60 a minute), both
#: on a 1-second scale so the demo's burst is paced within seconds
DEMO_WINDOW = 1.0
DEMO_THROTTLE = 10
DEMO_LIMIT = 6
BURST = 12

_BURST_SCRIPT = """
import sys, time, keyfob
keyfob.get_token("inaturalist")
start = time.perf_counter()
with keyfob.session("inaturalist") as s:
    for i in range(int(sys.argv[2])):
        sent = time.perf_counter()
        status = s.get(sys.argv[1], timeout=10).status_code
        done = time.perf_counter()
        waited = f"waited {done - sent:.2f} s for the budget" if done - sent > 0.2 else ""
        print(f"call {i + 1:2}: {status} at {done - start:5.2f} s  {waited}".rstrip(), flush=True)
"""


def _config(provider: LocalProvider) -> str:
    # The demo's provider runs on this machine: no proxy of the person's can reach it.
    return '[http]\nproxy = ""\n\n' + re.sub(
        r"^\[providers\.inaturalist\]$",
        f'[providers.inaturalist]\nrate_limits = ["{DEMO_LIMIT}/{DEMO_WINDOW:g}s"]',
        provider.config_toml(),
        count=1,
        flags=re.M,
    )


def run(*, keep: bool = False) -> None:
    home = tempfile.mkdtemp(prefix="keyfob-demo-")
    try:
        with LocalProvider(inat_rate=(DEMO_THROTTLE, DEMO_WINDOW)) as provider:
            with open(os.path.join(home, "config.toml"), "w") as fh:
                fh.write(_config(provider))
            _tour(_Demo(provider, home), provider, home)
    finally:
        if keep:
            click.echo(
                f"\nthe demo's folder is kept: {home}\n"
                f"   `KEYFOB_HOME={home} keyfob status` shows what it holds. Its config.toml "
                "points at the demo's local provider, which has stopped: commands that need "
                "the provider fail there. `python -m keyfob.testing` runs a local provider "
                "until Ctrl-C, to try commands by hand."
            )
        else:
            shutil.rmtree(home, ignore_errors=True)


def _tour(demo: _Demo, provider: LocalProvider, home: str) -> None:
    click.secho(
        f"keyfob demo: a local iNaturalist, TreeSnap, Twitter and OAuth2 server at {provider.url}",
        bold=True,
    )
    click.echo(f"   (a throw-away KEYFOB_HOME: {home}; your keyring and cache are not touched)")
    secrets = provider.environ()

    demo.step("log in to iNaturalist: the secrets come from INAT_* variables this once")
    inat = {k: v for k, v in secrets.items() if k.startswith("INAT_")}
    demo.keyfob("login", "inaturalist", env=inat)
    demo.saw("/oauth/token", "/users/api_token")

    demo.step("a token, with no variables set: the secrets are stored now, the JWT cached")
    demo.keyfob("token", "inaturalist")
    demo.saw("/oauth/token", "/users/api_token")

    demo.step("the same in new processes: answered from the cache, nothing sent")
    for _ in range(3):
        demo.keyfob("token", "inaturalist")
    demo.saw("/oauth/token", "/users/api_token")

    demo.step("the JWT unlocks private fields of the v1 API; the plain OAuth token does not")
    jwt = demo.keyfob("token", "inaturalist", show=False).stdout.strip()
    with_jwt = _observation(provider.url, f"Bearer {jwt}")
    anonymous = _observation(provider.url, None)
    for who, seen in (("without a token", anonymous), ("with the JWT   ", with_jwt)):
        private = seen.get("private_geojson")
        click.echo(f"   {who}: private_geojson {private if private else 'absent'}")

    demo.step(
        f"a burst of {BURST} API calls, paced by the rate budget: the local iNaturalist answers "
        f"429 past {DEMO_THROTTLE} in {DEMO_WINDOW:g} s, keyfob keeps to {DEMO_LIMIT} "
        f"(its 60 a minute against 100, on a {DEMO_WINDOW:g}-second scale)"
    )
    path = "/v1/users/me"
    provider.reset_counts()
    done = subprocess.run(
        [sys.executable, "-c", _BURST_SCRIPT, f"{provider.url}{path}", str(BURST)],
        env=demo.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in (done.stdout.strip() or done.stderr.strip()[-500:]).splitlines():
        click.echo(f"   {line}")
    worst = worst_window(provider.arrivals(path), DEMO_WINDOW)
    calls = provider.count(path)
    verdict = (
        f"never over its {DEMO_THROTTLE}, never a 429"
        if worst <= DEMO_THROTTLE and calls == BURST
        else "over its limit!"
    )
    click.echo(
        f"   the local provider saw {calls} calls, at most {worst} in any "
        f"{DEMO_WINDOW:g} s: {verdict}"
    )

    demo.step("refresh now: the OAuth token buys a new JWT; the password is not sent again")
    demo.keyfob("refresh", "inaturalist")
    demo.saw("/oauth/token", "/users/api_token")

    demo.step("an authenticated request with keyfob.requests_auth, and a retry after a 401")
    demo.keyfob("login", "local", env={k: v for k, v in secrets.items() if k.startswith("LOCAL_")})
    first = demo.keyfob("token", "local", show=False).stdout.strip()
    provider.revoke(first)
    click.echo("   the server revokes the token behind keyfob's back…")
    script = (
        "import keyfob, requests;"
        "r = requests.get(__import__('sys').argv[1], auth=keyfob.requests_auth('local'),"
        " timeout=10);"
        "print(r.status_code, r.json()['sub'], 'after', len(r.history), 'refused attempt(s)')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, f"{provider.url}/std/api/me"],
        env=demo.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    click.echo(f"   GET /std/api/me -> {done.stdout.strip() or done.stderr.strip()[-200:]}")
    demo.saw("/std/token", "/std/api/me")

    demo.step("TreeSnap: a personal token in its last tenth of life is refreshed once")
    year = 365 * 86400
    old = provider.issue_treesnap_token(lifetime=year, age=year - 10 * 86400)
    click.echo("   TREESNAP_TOKEN holds a year-long token issued 355 days ago")
    demo.keyfob("header", "treesnap", env={"TREESNAP_TOKEN": old})
    demo.keyfob("header", "treesnap", env={"TREESNAP_TOKEN": old})
    demo.saw("/web-services/v1/refresh-tokens")

    demo.step("status: what is cached and where each secret lives")
    demo.keyfob("status")

    demo.step("log out: forget the tokens and the stored secrets (and revoke at the server)")
    demo.keyfob("logout", "local", "--revoke")
    demo.keyfob("logout", "inaturalist")
    demo.keyfob("status")
    click.secho(
        "\ndone: that was the whole life of a token. See README.md for your own APIs.", bold=True
    )
