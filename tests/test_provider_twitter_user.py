"""X's OAuth 2.0 user context (``twitter-user``): the provider contract, then its quirks.

The browser login follows the emulator's ``/i/oauth2/authorize`` with urllib (it
approves at once as a signed-in user) back to keyfob's listener on the registered
callback. Refresh tokens rotate: the emulator counts every request that presents
one already rotated away (``twitter_spent_uses``), which must stay 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

import keyfob
from conftest import CliRun, Leaks
from keyfob import wiring
from keyfob.broker import Broker
from keyfob.cache import Entry, Key
from keyfob.cache.sqlite import SQLiteCache
from keyfob.errors import ConfigError
from keyfob.flight import Unlocked
from keyfob.flow import HttpResponse
from keyfob.provider import BUILTINS, twitter_user
from keyfob.testing import DEMO_TWITTER_CLIENT_ID, LocalProvider
from provider_contract import Case, ProviderContract, requests_made
from test_inaturalist_auth_code import Browser, query_of

WRONG_SECRET = "wrong-x-client-secret-0123456789"
ME = "/2/users/me"
TOKEN = "/2/oauth2/token"


def browser() -> dict[str, Any]:
    return {"flow": "browser", "person": Browser()}


class TestTwitterUser(ProviderContract):
    case = Case(
        name="twitter-user",
        variables=("TWITTER_CLIENT_ID", "TWITTER_CLIENT_SECRET", "TWITTER_REFRESH_TOKEN"),
        api=ME,
        cold={TOKEN: 1},  # the refresh token given (TWITTER_REFRESH_TOKEN), rotated
        renew={TOKEN: 1},
        grant={TOKEN: 1},  # the rotated refresh token is the only grant without a person
        revoke={"/2/oauth2/revoke": 2},  # the refresh token, then the access token
        wrong=lambda local: {"TWITTER_CLIENT_SECRET": WRONG_SECRET},
        extra=lambda local: {"TWITTER_REFRESH_TOKEN": local.twitter_refresh_token()},
        login=browser,
    )


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def x(configured: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> LocalProvider:
    """The emulator, the demo X client in the environment, nobody logged in yet."""
    monkeypatch.delenv("TWITTER_REFRESH_TOKEN", raising=False)
    wiring.reset()
    return configured


def login(**kw: Any) -> tuple[keyfob.Token, Browser]:
    person = Browser()
    token = keyfob.login("twitter-user", flow="browser", person=person, **kw)
    return token, person


def me(local: LocalProvider, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(local.url + ME, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err)


def stored_refresh_token(account: str = "") -> str | None:
    return keyfob.get_credentials("twitter-user", account=account or None).get("refresh_token")


def cached(key: Key = ("twitter-user", "")) -> Entry | None:
    return wiring.default().cache.get(key)


# --------------------------------------------------------------------------- browser login
def test_browser_login_gives_a_user_token_that_reads_users_me(x: LocalProvider) -> None:
    token, _ = login()

    status, body = me(x, token.access_token)
    assert status == 200
    assert body["data"]["username"] == "demo_user"
    assert token.refresh_token and token.expires is not None
    assert 7100 < token.expires - time.time() <= 7200  # X: two hours


def test_browser_login_sends_the_registered_callback_pkce_s256_and_the_default_scope(
    x: LocalProvider,
) -> None:
    _, person = login()

    asked = query_of(person.opened[0])
    assert person.opened[0].startswith(x.url + "/i/oauth2/authorize?")
    assert asked["redirect_uri"] == x.twitter_redirect_uri
    assert asked["code_challenge_method"] == "S256"
    assert asked["scope"] == "tweet.read users.read offline.access"
    assert asked["client_id"] == DEMO_TWITTER_CLIENT_ID
    assert asked["state"]


def test_browser_login_keeps_the_refresh_token_and_the_username(x: LocalProvider) -> None:
    token, _ = login()

    kept = keyfob.get_credentials("twitter-user")
    assert kept["refresh_token"] == token.refresh_token
    assert kept["client_id"] == DEMO_TWITTER_CLIENT_ID
    assert kept["username"] == "demo_user"


def test_a_public_client_logs_in_and_refreshes_without_a_secret(
    x: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    x.add_twitter_client("public-x-client", None, x.twitter_redirect_uri)
    monkeypatch.setenv("TWITTER_CLIENT_ID", "public-x-client")
    monkeypatch.delenv("TWITTER_CLIENT_SECRET")
    wiring.reset()

    first, _ = login()
    renewed = wiring.default().renew("twitter-user")

    assert renewed.access_token != first.access_token
    assert me(x, renewed.access_token)[0] == 200
    assert "client_secret" not in keyfob.get_credentials("twitter-user")


def test_a_denied_authorization_is_exit_3_and_stores_nothing(x: LocalProvider) -> None:
    x.twitter_deny = True

    with pytest.raises(keyfob.InvalidCredentials) as caught:
        login()

    assert caught.value.exit_code == 3
    assert "refused in the browser" in caught.value.message
    assert keyfob.get_credentials("twitter-user") == {}
    assert x.count(TOKEN) == 0


class Forger(Browser):
    """Sends the callback back with another state, as a forged one would."""

    changes = {"state": "forged-state"}

    def _visit(self, url: str) -> None:
        class Stop(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(Stop)
        try:
            opener.open(url, timeout=10)
        except urllib.error.HTTPError as err:
            with err:
                location = err.headers["Location"]
        parts = urllib.parse.urlsplit(location)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query.update(self.changes)
        super()._visit(parts._replace(query=urllib.parse.urlencode(query)).geturl())


class SpentCode(Forger):
    """Sends the callback back with a code X does not know (spent, or expired)."""

    changes = {"code": "spent-code"}


def test_a_forged_callback_is_exit_3_its_code_unused_and_nothing_stored(
    x: LocalProvider,
) -> None:
    with pytest.raises(keyfob.InvalidCredentials) as caught:
        keyfob.login("twitter-user", flow="browser", person=Forger())

    assert caught.value.exit_code == 3
    assert "state" in caught.value.message
    assert x.count(TOKEN) == 0
    assert keyfob.get_credentials("twitter-user") == {}


def test_a_code_x_does_not_know_is_exit_3_and_nothing_stored(x: LocalProvider) -> None:
    # X answers it with invalid_request, not invalid_grant: the provider's refusal hook
    with pytest.raises(keyfob.InvalidCredentials) as caught:
        keyfob.login("twitter-user", flow="browser", person=SpentCode())

    assert caught.value.exit_code == 3
    assert caught.value.error == "invalid_request"
    assert "authorization code was invalid" in caught.value.message
    assert x.count(TOKEN) == 1
    assert keyfob.get_credentials("twitter-user") == {}


def test_login_without_redirect_uri_says_what_to_register_exit_2(
    x: LocalProvider, home: Path, cli: CliRun
) -> None:
    config = home / "config.toml"
    config.write_text(
        "\n".join(
            line for line in config.read_text().splitlines() if not line.startswith("redirect_uri")
        )
    )

    done = cli("login", "twitter-user")

    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert "redirect_uri" in done.stderr and "developer.x.com" in done.stderr


@pytest.mark.parametrize(
    "uri",
    ["https://app.example.com/callback", "http://127.0.0.1/callback", "http://[::1]:8765/cb"],
)
def test_a_redirect_uri_keyfob_cannot_listen_on_is_exit_2(
    x: LocalProvider, home: Path, cli: CliRun, uri: str
) -> None:
    config = home / "config.toml"
    config.write_text(config.read_text().replace(x.twitter_redirect_uri, uri))

    done = cli("login", "twitter-user")

    assert done.returncode == 2, done.stderr
    assert "loopback" in done.stderr


def test_cli_login_follows_the_printed_address_and_leaks_nothing_at_debug(
    x: LocalProvider, no_secret_leaks: Leaks
) -> None:
    from conftest import KEYFOB

    child = subprocess.Popen(
        [KEYFOB, "--debug", "login", "twitter-user", "--no-browser", "--timeout", "30"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    lines = []
    for line in child.stderr:
        lines.append(line)
        if line.strip().startswith(x.url + "/i/oauth2/authorize?"):
            with urllib.request.urlopen(line.strip(), timeout=10) as tab:
                assert "Logged in" in tab.read().decode()
            break
    out, err = child.communicate(timeout=30)
    no_secret_leaks.add("keyfob --debug login twitter-user", out + "".join(lines) + err)

    assert child.returncode == 0, "".join(lines) + err
    assert "logged in to twitter-user" in err
    assert keyfob.get_credentials("twitter-user")["refresh_token"]


# --------------------------------------------------------------------------- rotation
def test_every_refresh_sends_the_newest_refresh_token_and_keeps_it_first_in_the_store(
    x: LocalProvider,
) -> None:
    login()
    for _ in range(3):
        renewed = wiring.default().renew("twitter-user")
        assert stored_refresh_token() == renewed.refresh_token
        entry = cached()
        assert entry is not None and entry.token.refresh_token == renewed.refresh_token
        wiring.reset()  # a new process each time

    assert x.count(TOKEN) == 4
    assert x.twitter_spent_uses() == 0
    assert x.is_active(renewed.refresh_token or "")


def test_a_rotated_environment_refresh_token_is_superseded_and_never_sent_again(
    x: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = x.twitter_refresh_token()
    monkeypatch.setenv("TWITTER_REFRESH_TOKEN", given)
    wiring.reset()
    first = keyfob.get_token("twitter-user")
    assert stored_refresh_token() == first.refresh_token != given

    for _ in range(2):  # the cache lost each time: only the store knows the new one
        wiring.default().cache.delete(("twitter-user", ""))
        wiring.reset()
        assert me(x, keyfob.get_token("twitter-user").access_token)[0] == 200

    assert x.count(TOKEN) == 3
    assert x.twitter_spent_uses() == 0


class PutFails(SQLiteCache):
    """A cache that cannot save: the process 'crashes' between the store and the cache."""

    def put(self, key: Key, entry: Entry) -> None:
        raise OSError("disk full")


def stale(local: LocalProvider) -> None:
    """From now on the emulator's tokens live 2 s: after a second they are STALE."""
    local.twitter_token_lifetime = 2


def test_a_cache_that_fails_after_the_store_write_loses_no_refresh_token(
    x: LocalProvider, home: Path
) -> None:
    stale(x)
    login()
    time.sleep(1.1)
    broken = Broker(cache=PutFails(str(home / "cache")))

    renewed = broken.get_token("twitter-user")  # the cache still holds the old one

    assert stored_refresh_token() == renewed.refresh_token
    wiring.reset()
    again = wiring.default().renew("twitter-user")
    assert me(x, again.access_token)[0] == 200
    assert x.count(TOKEN) == 3  # the login, the broken refresh, the next one
    assert x.twitter_spent_uses() == 0


KILLED = textwrap.dedent(
    """
    import os
    from keyfob.broker import Broker

    class Crash:
        def __init__(self, broker):
            self.broker = broker
            self.cache = broker.cache

        def __getattr__(self, name):
            return getattr(self.cache, name)

        def put(self, key, entry):
            os._exit(9)  # killed right after the store write, before the cache's

    broker = Broker()
    broker._cache = Crash(broker)
    broker.renew("twitter-user")
    """
)


def test_a_process_killed_after_the_store_write_loses_no_refresh_token(
    x: LocalProvider, tmp_path: Path, no_secret_leaks: Leaks
) -> None:
    login()
    script = tmp_path / "killed.py"
    script.write_text(KILLED)

    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    no_secret_leaks.add("the killed process", done.stdout + done.stderr)
    assert done.returncode == 9, done.stderr
    assert x.count(TOKEN) == 2

    wiring.reset()
    renewed = wiring.default().renew("twitter-user")

    assert me(x, renewed.access_token)[0] == 200
    assert x.count(TOKEN) == 3
    assert x.twitter_spent_uses() == 0


def test_a_refresh_token_the_server_invalidated_asks_for_a_login_exit_3_nothing_changed(
    x: LocalProvider, cli: CliRun
) -> None:
    stale(x)
    login()
    time.sleep(1.1)
    x.revoke(stored_refresh_token() or "")
    kept, entry = keyfob.get_credentials("twitter-user"), cached()

    done = cli("--debug", "token", "twitter-user")

    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("keyfob: error:") and "keyfob login twitter-user" in last
    assert "Value passed for the token was invalid." in last
    wiring.reset()
    assert keyfob.get_credentials("twitter-user") == kept
    assert cached() == entry


RACER = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path

    from keyfob.broker import Broker
    from keyfob.flight import Unlocked

    threads, ready, start = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    mode = sys.argv[4]
    broker = Broker(flight=Unlocked()) if mode == "unlocked" else Broker()
    barrier = threading.Barrier(threads)
    tokens, errors = [], []

    def ask():
        try:
            barrier.wait()
            tokens.append(broker.get_token("twitter-user").access_token)
        except Exception as exc:
            errors.append(type(exc).__name__)

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    ready.touch()
    while not start.exists():
        time.sleep(0.002)
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print(json.dumps({"tokens": tokens, "errors": errors}))
    """
)


def race(tmp_path: Path, leaks: Leaks, mode: str, processes: int = 4, threads: int = 6) -> Any:
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    start = tmp_path / f"start-{mode}"
    ready = [tmp_path / f"ready-{mode}-{i}" for i in range(processes)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(threads), str(r), str(start), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    results = []
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers)
            time.sleep(0.01)
        start.touch()
        for w in workers:
            out, err = w.communicate(timeout=60)
            leaks.add(f"stderr of a racer ({mode})", err)
            assert w.returncode == 0, err[-2000:]
            results.append(json.loads(out))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    return results


def test_processes_and_threads_with_a_stale_token_make_exactly_one_refresh(
    x: LocalProvider, tmp_path: Path, no_secret_leaks: Leaks
) -> None:
    stale(x)
    login()
    time.sleep(1.1)
    x.delay(TOKEN, 0.3)
    before = x.count(TOKEN)

    results = race(tmp_path, no_secret_leaks, "locked")

    tokens = [t for r in results for t in r["tokens"]]
    assert [e for r in results for e in r["errors"]] == []
    assert len(tokens) == 24 and len(set(tokens)) == 1
    assert x.count(TOKEN) == before + 1
    assert x.twitter_spent_uses() == 0


def test_without_locks_the_same_race_spends_the_refresh_token_twice(
    x: LocalProvider, tmp_path: Path, no_secret_leaks: Leaks
) -> None:
    # Proves the test above can fail: the same race, the broker's locks switched off.
    stale(x)
    login()
    time.sleep(1.1)
    x.delay(TOKEN, 0.3)
    before = x.count(TOKEN)

    race(tmp_path, no_secret_leaks, "unlocked")

    assert x.count(TOKEN) > before + 1
    assert x.twitter_spent_uses() > 0


def test_threads_in_one_process_without_locks_would_refresh_more_than_once(
    x: LocalProvider,
) -> None:
    stale(x)
    login()
    time.sleep(1.1)
    x.delay(TOKEN, 0.2)
    broker = Broker(flight=Unlocked())
    before = x.count(TOKEN)
    threads = [
        threading.Thread(target=lambda: _quietly(broker.get_token, "twitter-user"))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert x.count(TOKEN) > before + 1


def _quietly(fn: Any, *args: Any) -> None:
    with contextlib.suppress(keyfob.KeyfobError):
        fn(*args)


# --------------------------------------------------------------------------- revoke, status
def test_logout_revoke_revokes_both_tokens_with_their_type_hints(
    x: LocalProvider, cli: CliRun
) -> None:
    token, _ = login()

    done = cli("logout", "twitter-user", "--revoke")

    assert done.returncode == 0, done.stderr
    assert x.count("/2/oauth2/revoke") == 2
    assert not x.is_active(token.refresh_token or "")
    assert me(x, token.access_token)[0] == 401
    assert keyfob.get_credentials("twitter-user") == {}


def test_status_names_user_and_app_only_tokens(x: LocalProvider, cli: CliRun) -> None:
    login()
    assert cli("token", "twitter").returncode == 0

    done = cli("status")

    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "user (OAuth 2.0)" in rows["twitter-user"]
    assert "@demo_user" in rows["twitter-user"]
    assert "app-only" in rows["twitter"]


def test_users_me_refuses_the_app_only_token_with_403(x: LocalProvider) -> None:
    status, body = me(x, keyfob.get_token("twitter").access_token)

    assert status == 403
    assert body["title"] == "Unsupported Authentication"


# --------------------------------------------------------------------------- rate budget
WATCHER = textwrap.dedent(
    """
    import sys, requests, keyfob
    url, account = sys.argv[1], sys.argv[2]
    try:
        answer = requests.get(url, auth=keyfob.requests_auth("twitter-user", account=account))
        print(answer.status_code)
    except keyfob.RateLimited:
        print("limited")
    """
)


def test_each_user_has_its_own_budget_shared_by_its_processes(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> None:
    with LocalProvider(twitter_rate=(4, 60.0)) as tight:
        no_secret_leaks.providers.append(tight)
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(tight.config_toml() + "\n[limits]\nmax_wait = 1\n")
        for name, value in tight.environ().items():
            monkeypatch.setenv(name, value)
        tight.add_twitter_user("1460000000000000002", "Other User", "other_user")
        for account, user in (("alice", "1460000000000000001"), ("bob", "1460000000000000002")):
            tight.twitter_authorize_as = user
            wiring.reset()
            login(account=account)
        url = tight.url + ME

        alice = [
            requests.get(url, auth=keyfob.requests_auth("twitter-user", account="alice"))
            for _ in range(3)
        ]
        script = tmp_path / "watcher.py"
        script.write_text(WATCHER)

        def process(account: str) -> str:
            done = subprocess.run(
                [sys.executable, str(script), url, account], capture_output=True, text=True
            )
            no_secret_leaks.add("a watcher", done.stdout + done.stderr)
            return done.stdout.strip()

        assert [a.status_code for a in alice] == [200, 200, 200]
        assert process("alice") == "limited"  # what this process learned, another obeys
        assert process("bob") == "200"  # another user: another budget, at X too
        assert requests_made(tight).get(ME) == 6  # two logins asked whose, then 3 + 1


# --------------------------------------------------------------------------- a real browser
def test_cli_login_in_headless_chromium_leaves_a_working_user_token(
    x: LocalProvider, cli: CliRun, tmp_path: Path, no_secret_leaks: Leaks
) -> None:
    from test_browser_e2e import LAB, _node

    node = _node()  # skips (fails under CI) without node, Chromium and playwright-core
    out = tmp_path / "browse.out"
    launcher = tmp_path / "browser"
    launcher.write_text(
        f'#!/bin/sh\n"{node}" "{LAB / "browse.mjs"}" login "$1" > "{out}" 2>&1 < /dev/null &\n'
    )
    launcher.chmod(0o755)

    done = cli(
        "login",
        "twitter-user",
        "--timeout",
        "30",
        env={"BROWSER": str(launcher)},
        unset=("DISPLAY", "WAYLAND_DISPLAY"),
    )

    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 30
    while "Logged in" not in (out.read_text() if out.exists() else ""):
        assert time.monotonic() < deadline, out.read_text() if out.exists() else "no output"
        time.sleep(0.05)
    no_secret_leaks.add("browse.mjs output", out.read_text())
    token = cli("token", "twitter-user")
    assert token.returncode == 0
    assert me(x, token.stdout.strip())[0] == 200


# --------------------------------------------------------------------------- parsers
@given(st.text(max_size=80))
def test_any_redirect_uri_is_a_listenable_loopback_address_or_a_config_error(text: str) -> None:
    p = dataclasses.replace(BUILTINS["twitter-user"], redirect_uri=text or None)
    try:
        uri = twitter_user.redirect_uri(p)
    except ConfigError as exc:
        assert exc.exit_code == 2 and "\n" not in exc.one_line()
        return
    parts = urllib.parse.urlsplit(uri)
    assert parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
    assert parts.port is not None


@given(st.binary(max_size=300), st.integers(min_value=400, max_value=599))
def test_any_token_error_answer_is_a_keyfob_error_or_left_to_the_oauth_reading(
    body: bytes, status: int
) -> None:
    answer = HttpResponse(status, {"content-type": "application/json"}, body, "u", "w")
    found = twitter_user.refusal(answer, ("planted-secret-value",))
    assert found is None or isinstance(found, keyfob.InvalidCredentials)
    if found is not None:
        assert "planted-secret-value" not in found.one_line()


def test_x_dead_token_answer_is_invalid_credentials() -> None:
    body = (
        b'{"error":"invalid_request","error_description":"Value passed for the token was invalid."}'
    )
    found = twitter_user.refusal(HttpResponse(400, {}, body, "u", "w"), ())
    assert isinstance(found, keyfob.InvalidCredentials)
