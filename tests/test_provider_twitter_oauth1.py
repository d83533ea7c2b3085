"""twitter-oauth1: X's OAuth 1.0a user context against the emulator's real OAuth 1.0a server
(oauthlib's endpoints, every signature checked, nonces remembered).

The three logins (PIN on a terminal, browser, paste), requests signed by the adapters and
by `keyfob header`, `token` refused, `exec`, `logout --revoke`, the rate budget per user,
and bad input: each a one-line error with its exit code, nothing stored, no secret shown.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

import keyfob
from conftest import KEYFOB, CliRun, Leaks
from keyfob import wiring
from keyfob.errors import InvalidCredentials, RateLimited
from keyfob.testing import DEMO_TWITTER_API_SECRET, LocalProvider
from oauth1_people import Browser, fetch, pin_of, write_config, x_config
from test_terminal import Pty

VERIFY = "/1.1/account/verify_credentials.json"
UPDATE = "/1.1/statuses/update.json"
DEMO_USER_ID = "1234567890"


@pytest.fixture
def x(home: Path, local: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> LocalProvider:
    """twitter-oauth1 at the emulator's X; the app's key and secret in the environment."""
    write_config(home, x_config(local))
    for name, value in local.environ().items():
        if name.startswith("TWITTER_"):
            monkeypatch.setenv(name, value)
    wiring.reset()
    return local


@pytest.fixture
def logged_in(x: LocalProvider) -> LocalProvider:
    keyfob.login("twitter-oauth1", flow="browser", person=Browser())
    x.reset_counts()
    return x


def stored(account: str | None = None) -> dict[str, str]:
    return keyfob.get_credentials("twitter-oauth1", account=account)


def cached_entries() -> list[Any]:
    return [k for k, _ in wiring.default().cache.entries() if k[0] == "twitter-oauth1"]


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one error line, no traceback, nothing on stdout."""
    assert "Traceback" not in done.stderr, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("keyfob: error: ")]
    assert len(said) == 1, done.stderr
    assert done.stdout == ""
    return said[0]


# -- logins ------------------------------------------------------------------------------


def test_browser_login_keeps_the_access_token_and_secret_in_the_store_not_the_cache(
    x: LocalProvider,
) -> None:
    token = keyfob.login("twitter-oauth1", flow="browser", person=Browser())
    kept = stored()
    assert kept["token"] == token.access_token and kept["token"] in x.issued()
    assert kept["token_secret"] in x.issued()
    assert (kept["user_id"], kept["screen_name"]) == (DEMO_USER_ID, "demo")
    assert token.expires is None  # OAuth 1.0a access tokens do not expire
    assert cached_entries() == []  # nothing for the fast path to print as a token
    assert x.count("/oauth/request_token") == 1 and x.count("/oauth/access_token") == 1


def test_browser_login_asks_for_the_request_token_with_the_loopback_callback(
    x: LocalProvider,
) -> None:
    person = Browser()
    keyfob.login("twitter-oauth1", flow="browser", person=person)
    assert person.tab[0].status == 200
    assert "logged in" in person.tab[0].text


def test_forged_callback_exits_3_and_its_verifier_is_never_sent(x: LocalProvider) -> None:
    x.oauth1_forge_callback = True
    person = Browser()
    with pytest.raises(InvalidCredentials, match="did not carry this login's request token") as e:
        keyfob.login("twitter-oauth1", flow="browser", person=person)
    assert e.value.exit_code == 3
    assert x.count("/oauth/access_token") == 0
    assert "token" not in stored() and "token_secret" not in stored()
    assert "forged" in person.tab[0].text  # the browser tab says so too


def test_replayed_callback_of_an_earlier_login_ends_the_new_login(x: LocalProvider) -> None:
    seen: list[str] = []

    def keep(url: str) -> str:
        seen.append(url)
        return url

    keyfob.login("twitter-oauth1", flow="browser", person=Browser(tamper=keep))
    keyfob.logout("twitter-oauth1")
    x.reset_counts()
    with pytest.raises(InvalidCredentials, match="request token") as e:
        keyfob.login(
            "twitter-oauth1",
            flow="browser",
            person=Browser(tamper=lambda url: url.split("?")[0] + "?" + seen[0].split("?")[1]),
        )
    assert e.value.exit_code == 3
    assert x.count("/oauth/access_token") == 0
    assert "token" not in stored()


def test_denied_authorization_exits_3_with_one_line(
    x: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    x.oauth1_deny = True
    login = subprocess.Popen(
        [KEYFOB, "login", "twitter-oauth1", "--flow", "browser", "--no-browser"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert login.stderr is not None and login.stdout is not None
    lines = []
    for line in login.stderr:
        lines.append(line)
        if line.strip().startswith("http"):
            break
    address = lines[-1].strip()
    callback = fetch(address).location
    assert "denied=" in callback
    fetch(callback)
    login.wait(timeout=30)
    with login.stdout, login.stderr:
        out, err = login.stdout.read(), login.stderr.read()
    done = subprocess.CompletedProcess(login.args, login.returncode, out, "".join(lines) + err)
    # The address holds the request token, shown to the person by design (RFC 5849 §2.2).
    no_secret_leaks.add("stderr of keyfob login", done.stderr, answer=True)
    assert done.returncode == 3
    assert "refused in the browser (denied)" in error_line(done)
    assert x.count("/oauth/access_token") == 0


def pin_login(pins: tuple[str, ...], x: LocalProvider, leaks: Leaks) -> tuple[int, str]:
    """`keyfob login twitter-oauth1 --flow pin` on a terminal: each of ``pins`` typed in
    turn, "" standing for the right PIN from the page the address shows."""
    term = Pty(["login", "twitter-oauth1", "--flow", "pin"], dict(os.environ))
    for pin in pins:
        term.read_next("PIN shown on the page: ")
        if not pin:
            address = next(
                line.strip()
                for line in term.seen.splitlines()
                if line.strip().startswith("http://")
            )
            pin = pin_of(fetch(address).text)
        term.type(pin)
    code = term.finish()
    leaks.add("the terminal", term.seen, answer=True)  # the address holds the request token
    return code, term.seen


def test_pin_login_on_a_terminal_shows_the_address_and_reads_the_pin(
    x: LocalProvider, no_secret_leaks: Leaks
) -> None:
    code, seen = pin_login(("",), x, no_secret_leaks)
    assert code == 0, seen
    assert "logged in to twitter-oauth1" in seen
    assert stored()["token"] in x.issued()
    assert x.count("/oauth/access_token") == 1


def test_a_wrong_pin_is_asked_again_and_the_right_one_logs_in(
    x: LocalProvider, no_secret_leaks: Leaks
) -> None:
    code, seen = pin_login(("0000000", ""), x, no_secret_leaks)
    assert code == 0, seen
    assert "That PIN was refused; try again (2 left)" in seen
    assert x.count("/oauth/request_token") == 1  # the same request token, asked again
    assert x.count("/oauth/access_token") == 2


def test_three_wrong_pins_end_the_login_exit_3_and_store_nothing(
    x: LocalProvider, no_secret_leaks: Leaks
) -> None:
    code, seen = pin_login(("0000000", "1111111", "2222222"), x, no_secret_leaks)
    assert code == 3, seen
    assert "keyfob: error: the PIN was refused 3 times; the login ended" in seen
    assert "Traceback" not in seen
    assert x.count("/oauth/access_token") == 3
    assert "token" not in stored()


def test_pin_login_without_a_terminal_exits_3_before_asking_the_server(
    x: LocalProvider, cli: CliRun
) -> None:
    done = cli("login", "twitter-oauth1", "--flow", "pin")
    assert done.returncode == 3
    assert "needs a terminal to type the PIN on" in error_line(done)
    assert x.count("/oauth/request_token") == 0


def test_paste_login_keeps_the_portal_token_and_signs_with_it(
    logged_in: LocalProvider, cli: CliRun
) -> None:
    made = stored()  # as if made on the developer portal
    keyfob.logout("twitter-oauth1")
    done = cli(
        "login",
        "twitter-oauth1",
        "--flow",
        "paste",
        env={
            "TWITTER_ACCESS_TOKEN": made["token"],
            "TWITTER_ACCESS_TOKEN_SECRET": made["token_secret"],
        },
    )
    assert done.returncode == 0, done.stderr
    assert "the token does not expire" in done.stderr
    wiring.reset()
    assert (stored()["token"], stored()["token_secret"]) == (made["token"], made["token_secret"])
    answer = requests.get(logged_in.url + VERIFY, auth=keyfob.requests_auth("twitter-oauth1"))
    assert answer.status_code == 200 and answer.json()["screen_name"] == "demo"


def test_paste_login_without_the_token_secret_exits_3(x: LocalProvider, cli: CliRun) -> None:
    done = cli("login", "twitter-oauth1", "--flow", "paste", env={"TWITTER_ACCESS_TOKEN": "1-abc"})
    assert done.returncode == 3
    assert "TWITTER_ACCESS_TOKEN_SECRET" in error_line(done)


def test_a_wrong_consumer_secret_is_refused_at_the_request_token_exit_3(
    x: LocalProvider, cli: CliRun
) -> None:
    done = cli(
        "login",
        "twitter-oauth1",
        "--flow",
        "browser",
        "--no-browser",
        env={"TWITTER_API_SECRET": "wrong-api-secret-0123456789"},
    )
    assert done.returncode == 3
    line = error_line(done)
    assert "refused the OAuth 1.0a request (HTTP 401)" in line
    assert "check the consumer key and secret" in line
    assert x.count("/oauth/request_token") == 1


def test_a_request_token_answer_in_html_exits_4(x: LocalProvider, cli: CliRun) -> None:
    x.garbage("/oauth/request_token", "html")
    done = cli("login", "twitter-oauth1", "--flow", "browser", "--no-browser")
    assert done.returncode == 4
    assert "answered with an HTML page, not OAuth 1.0a credentials" in error_line(done)


# -- signed requests ---------------------------------------------------------------------


def test_requests_signs_every_request_with_a_fresh_nonce(logged_in: LocalProvider) -> None:
    auth = keyfob.requests_auth("twitter-oauth1")
    first = requests.get(logged_in.url + VERIFY, auth=auth)
    second = requests.get(logged_in.url + VERIFY, auth=auth)  # identical: a replay if not fresh
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["id_str"] == DEMO_USER_ID
    assert logged_in.count(VERIFY) == 2


def test_a_session_signs_a_form_body_and_the_query(logged_in: LocalProvider) -> None:
    s = keyfob.session("twitter-oauth1")
    posted = s.post(logged_in.url + UPDATE + "?trim_user=1", data={"status": "hello, world & ü"})
    assert posted.status_code == 200, posted.text
    assert logged_in.x_statuses() == ["hello, world & ü"]


def test_httpx_sync_signs_get_and_form_post(logged_in: LocalProvider) -> None:
    with httpx.Client(auth=keyfob.httpx_auth("twitter-oauth1")) as client:
        got = client.get(logged_in.url + VERIFY, params={"include_email": "false"})
        posted = client.post(logged_in.url + UPDATE, data={"status": "from httpx"})
    assert (got.status_code, posted.status_code) == (200, 200)
    assert logged_in.x_statuses() == ["from httpx"]


def test_httpx_async_signs_requests_on_the_event_loop(logged_in: LocalProvider) -> None:
    async def main() -> list[int]:
        async with httpx.AsyncClient(auth=keyfob.httpx_auth("twitter-oauth1")) as client:
            answers = await asyncio.gather(
                client.get(logged_in.url + VERIFY),
                client.get(logged_in.url + VERIFY),
                client.post(logged_in.url + UPDATE, data={"status": "async"}),
            )
        return [a.status_code for a in answers]

    assert asyncio.run(main()) == [200, 200, 200]
    assert logged_in.count(VERIFY) == 2 and logged_in.x_statuses() == ["async"]


def test_a_401_is_returned_as_it_is_not_retried(logged_in: LocalProvider) -> None:
    logged_in.revoke(stored()["token"])
    answer = requests.get(logged_in.url + VERIFY, auth=keyfob.requests_auth("twitter-oauth1"))
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == 89
    assert logged_in.count(VERIFY) == 1
    with httpx.Client(auth=keyfob.httpx_auth("twitter-oauth1")) as client:
        assert client.get(logged_in.url + VERIFY).status_code == 401
    assert logged_in.count(VERIFY) == 2


def test_the_rate_budget_is_the_users_not_the_apps(logged_in: LocalProvider, home: Path) -> None:
    write_config(
        home,
        x_config(logged_in) + 'rate_limits = ["2/minute"]\n\n[limits]\nmax_wait = 0\n',
    )
    logged_in.add_oauth1_user("second", "555", x=True)
    logged_in.oauth1_authorize_as = "second"
    wiring.reset()
    keyfob.login("twitter-oauth1", account="b", flow="browser", person=Browser())
    other = stored("b")
    first_user = keyfob.requests_auth("twitter-oauth1")
    second_user = keyfob.requests_auth(
        "twitter-oauth1", token=other["token"], token_secret=other["token_secret"]
    )
    for _ in range(2):
        assert requests.get(logged_in.url + VERIFY, auth=first_user).status_code == 200
    with pytest.raises(RateLimited):
        requests.get(logged_in.url + VERIFY, auth=first_user)
    answer = requests.get(logged_in.url + VERIFY, auth=second_user)  # another user: its own
    assert answer.status_code == 200 and answer.json()["id_str"] == "555"
    assert logged_in.count(VERIFY) == 3


# -- the command line --------------------------------------------------------------------


def test_header_signs_one_request_that_the_server_accepts(
    logged_in: LocalProvider, cli: CliRun
) -> None:
    url = logged_in.url + VERIFY + "?skip_status=true"
    done = cli("header", "twitter-oauth1", "--method", "GET", "--url", url)
    assert done.returncode == 0, done.stderr
    name, value = done.stdout.strip().split(": ", 1)
    assert name == "Authorization" and value.startswith("OAuth ")
    assert httpx.get(url, headers={"Authorization": value}).status_code == 200
    # the same header twice is a replayed nonce: refused
    assert httpx.get(url, headers={"Authorization": value}).status_code == 401


def test_header_with_data_signs_the_form_body(logged_in: LocalProvider, cli: CliRun) -> None:
    url = logged_in.url + UPDATE
    done = cli("header", "twitter-oauth1", "--url", url, "--data", "status=signed by curl")
    assert done.returncode == 0, done.stderr
    value = done.stdout.strip().split(": ", 1)[1]
    posted = httpx.post(url, headers={"Authorization": value}, data={"status": "signed by curl"})
    assert posted.status_code == 200, posted.text  # --data alone means POST, as in curl
    assert logged_in.x_statuses() == ["signed by curl"]
    tampered = cli("header", "twitter-oauth1", "--url", url, "--data", "status=one")
    value = tampered.stdout.strip().split(": ", 1)[1]
    refused = httpx.post(url, headers={"Authorization": value}, data={"status": "another"})
    assert refused.status_code == 401  # the body is in the signature


def test_header_without_url_is_a_usage_error_exit_2(logged_in: LocalProvider, cli: CliRun) -> None:
    done = cli("header", "twitter-oauth1")
    assert done.returncode == 2
    assert "give the request's --url" in error_line(done)


def test_token_is_refused_exit_2_pointing_to_header(logged_in: LocalProvider, cli: CliRun) -> None:
    done = cli("token", "twitter-oauth1")
    assert done.returncode == 2
    line = error_line(done)
    assert "signs each request (OAuth 1.0a)" in line and "keyfob header twitter-oauth1" in line
    assert logged_in.count("/oauth/access_token") == 0


def test_exec_gives_the_child_the_token_its_secret_and_the_consumer(
    logged_in: LocalProvider, cli: CliRun
) -> None:
    names = (
        "TWITTER_OAUTH1_TOKEN",
        "TWITTER_OAUTH1_TOKEN_SECRET",
        "TWITTER_OAUTH1_CONSUMER_KEY",
        "TWITTER_OAUTH1_CONSUMER_SECRET",
    )
    child = (
        "import hashlib, os; print(' '.join(hashlib.sha256(os.environ[n].encode()).hexdigest()"
        f" for n in {names!r}))"
    )
    done = cli("exec", "twitter-oauth1", "--", sys.executable, "-c", child)
    assert done.returncode == 0, done.stderr
    kept = stored()
    expected = (kept["token"], kept["token_secret"], kept["api_key"], DEMO_TWITTER_API_SECRET)
    assert done.stdout.split() == [hashlib.sha256(v.encode()).hexdigest() for v in expected]


def test_logout_revoke_invalidates_the_token_at_the_server(
    logged_in: LocalProvider, cli: CliRun
) -> None:
    kept = stored()
    done = cli("logout", "twitter-oauth1", "--revoke")
    assert done.returncode == 0, done.stderr
    assert "the token was revoked at the server" in done.stderr
    assert logged_in.count("/1.1/oauth/invalidate_token") == 1
    wiring.reset()
    assert "token" not in stored()
    auth = keyfob.requests_auth(
        "twitter-oauth1", token=kept["token"], token_secret=kept["token_secret"]
    )
    assert requests.get(logged_in.url + VERIFY, auth=auth).status_code == 401


def test_status_shows_oauth1_never_expiring_and_where_the_secrets_are(
    logged_in: LocalProvider, cli: CliRun
) -> None:
    done = cli("status", "twitter-oauth1")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("twitter-oauth1"))
    assert "OAuth 1.0a" in row and "never" in row and "@demo" in row
    assert "token, token_secret" in row and "file" in row


def test_providers_lists_it_with_the_portals_variable_names(x: LocalProvider, cli: CliRun) -> None:
    done = cli("providers")
    assert "twitter-oauth1 OAuth 1.0a" in done.stdout
    assert "TWITTER_ACCESS_TOKEN_SECRET" in done.stdout


# -- nothing secret at --debug ------------------------------------------------------------


@pytest.fixture
def debug_env(logged_in: LocalProvider) -> Iterator[dict[str, str]]:
    yield {"KEYFOB_LOG": "debug"}


def test_debug_output_has_no_secret_and_no_signature_base_string(
    logged_in: LocalProvider, cli: CliRun, debug_env: dict[str, str], no_secret_leaks: Leaks
) -> None:
    kept = stored()
    no_secret_leaks.plant(DEMO_TWITTER_API_SECRET, kept["token_secret"])
    url = logged_in.url + UPDATE
    outputs = [
        cli(
            "--debug", "header", "twitter-oauth1", "--url", url, "--data", "status=x", env=debug_env
        ),
        cli("--debug", "token", "twitter-oauth1", env=debug_env),
        cli("--debug", "status", env=debug_env),
        cli("--debug", "logout", "twitter-oauth1", "--revoke", env=debug_env),
    ]
    for done in outputs:
        for text in (done.stderr, done.stdout if "header" not in done.args else ""):
            assert DEMO_TWITTER_API_SECRET not in text
            assert kept["token_secret"] not in text
            assert "base string" not in text.lower() and "POST&" not in text
            assert urllib.parse.quote(kept["token_secret"], safe="") not in text
    assert "Traceback" in outputs[1].stderr  # --debug shows the traceback, and still no secret


def test_a_refused_consumer_is_asked_again_on_a_terminal(
    x: LocalProvider, no_secret_leaks: Leaks
) -> None:
    env = dict(os.environ, TWITTER_API_SECRET="wrong-api-secret-0123456789")
    term = Pty(["login", "twitter-oauth1", "--flow", "pin"], env)
    term.read_next("try again (2 more)")
    term.read_next("Twitter/X API key (")
    term.type("")  # Enter keeps the key shown
    term.read_next("Twitter/X API key secret")
    term.type(DEMO_TWITTER_API_SECRET)
    term.read_next("PIN shown on the page: ")
    address = next(
        line.strip() for line in term.seen.splitlines() if line.strip().startswith("http://")
    )
    term.type(pin_of(fetch(address).text))
    code = term.finish()
    no_secret_leaks.add("the terminal", term.seen, answer=True)
    assert code == 0, term.seen
    assert x.count("/oauth/request_token") == 2
    assert stored()["api_secret"] == DEMO_TWITTER_API_SECRET


def test_keyfob_wait_takes_from_the_budget_the_adapters_use(
    logged_in: LocalProvider, home: Path, cli: CliRun
) -> None:
    write_config(
        home,
        x_config(logged_in) + 'rate_limits = ["2/minute"]\n\n[limits]\nmax_wait = 0\n',
    )
    wiring.reset()
    assert cli("wait", "twitter-oauth1").returncode == 0
    assert requests.get(logged_in.url + VERIFY, auth=keyfob.requests_auth("twitter-oauth1")).ok
    done = cli("wait", "twitter-oauth1", "--max-wait", "0")
    assert done.returncode == 5, done.stderr
    assert logged_in.count(VERIFY) == 1
