"""GitHub: the provider contract, then its quirks, against the emulator (keyfob.testing.github).

The contract runs with a GitHub App's refresh token in the environment
(``GITHUB_CLIENT_ID``, ``GITHUB_CLIENT_SECRET``, ``GITHUB_REFRESH_TOKEN``);
the quirks: the device login through HTTP-200 pendings and a ``slow_down``,
the browser login with PKCE, the rotating refresh token, the OAuth app's token
that never expires, the DELETE revoke, ``GH_TOKEN`` / ``GITHUB_TOKEN``, a form
answer without ``access_token``, and the API's ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import keyfob
from conftest import KEYFOB, CliRun, Leaks
from keyfob import wiring
from keyfob.flow import ShowCode
from keyfob.loopback import Terminal
from keyfob.testing import (
    DEMO_GITHUB_APP_CLIENT_ID,
    DEMO_GITHUB_APP_CLIENT_SECRET,
    DEMO_GITHUB_LOGIN,
    DEMO_GITHUB_OAUTH_CLIENT_ID,
    DEMO_GITHUB_OAUTH_CLIENT_SECRET,
    LocalProvider,
)
from provider_contract import PATHS, Case, ProviderContract

TOKEN = "/login/oauth/access_token"
DEVICE = "/login/device/code"
REVOKE = f"/applications/{DEMO_GITHUB_APP_CLIENT_ID}/token"
WRONG_SECRET = "wrong-github-client-secret-0123456789"


class TestGitHub(ProviderContract):
    case = Case(
        name="github",
        variables=("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "GITHUB_REFRESH_TOKEN"),
        api="/user",
        cold={TOKEN: 1},  # the refresh token, refreshed
        renew={TOKEN: 1},
        grant={TOKEN: 1},  # the rotated refresh token is the only secret there is
        revoke={REVOKE: 1},
        wrong=lambda local: {"GITHUB_CLIENT_SECRET": WRONG_SECRET},
        extra=lambda local: {"GITHUB_REFRESH_TOKEN": local.issue_github_token()["refresh_token"]},
    )

    @pytest.fixture(autouse=True)
    def _counted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("provider_contract.PATHS", (*PATHS, TOKEN, DEVICE, REVOKE, "/user"))

    # A login without --flow is the device flow, which needs a person: the contract's
    # logins from the environment are pastes here.
    def test_login_with_a_wrong_secret_stores_nothing(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
    ) -> None:
        monkeypatch.setenv("GH_TOKEN", "gho_notatokengithubknows0123456789")
        no_secret_leaks.plant("gho_notatokengithubknows0123456789")

        with pytest.raises(keyfob.InvalidCredentials) as caught:
            keyfob.login("github", flow="paste")

        no_secret_leaks.add("InvalidCredentials", caught.value.one_line())
        assert keyfob.get_credentials("github") == {}
        assert emulator.count("/user") == 1  # GitHub was asked whether the token is good

    def test_logout_forgets_the_stored_secrets_and_the_token(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pasted = emulator.issue_github_token(DEMO_GITHUB_OAUTH_CLIENT_ID)["access_token"]
        monkeypatch.setenv("GH_TOKEN", pasted)
        keyfob.login("github", flow="paste")
        monkeypatch.delenv("GH_TOKEN")
        for name in self.case.variables:
            monkeypatch.delenv(name)
        wiring.reset()
        assert keyfob.get_token("github").access_token == pasted  # from what login stored

        keyfob.logout("github")

        assert keyfob.get_credentials("github") == {}
        with pytest.raises(keyfob.CredentialsMissing):
            keyfob.get_token("github")


# ------------------------------------------------------------------ a person at the device
class DevicePerson(Terminal):
    """Enters the code at GitHub after ``approve_after`` polls; polls once too early
    (``early``: the number of the wait it skips) to be told to slow down."""

    def __init__(self, local: LocalProvider, *, approve_after: int, early: int | None) -> None:
        super().__init__(browser=False, out=io.StringIO(), stdin=io.StringIO())
        self.local = local
        self.approve_after = approve_after
        self.early = early
        self.code: ShowCode | None = None
        self.waits: list[float] = []

    def show_code(self, code: ShowCode) -> None:
        self.code = code

    def sleep(self, seconds: float, until: float | None) -> None:
        self.waits.append(seconds)
        if len(self.waits) != self.early:
            time.sleep(seconds)
        if len(self.waits) == self.approve_after and self.code is not None:
            assert self.local.approve_github_device(self.code.user_code)


@pytest.fixture
def github(
    home: Path, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> Iterator[LocalProvider]:
    """The emulator with GitHub's device interval at 1 s, and nothing of GitHub's in
    the environment."""
    with LocalProvider(device_interval=1) as local:
        no_secret_leaks.providers.append(local)
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(local.config_toml())
        wiring.reset()
        yield local
    assert not local.errors, local.errors


def test_device_login_polls_through_200_pendings_and_a_slow_down(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_APP_CLIENT_ID)
    person = DevicePerson(github, approve_after=3, early=2)

    token = keyfob.login("github", person=person)

    polls = github.arrivals(TOKEN)
    assert github.count(DEVICE) == 1 and len(polls) == 3
    # pending (200), then a poll too early: slow_down (200) adds 5 s, then the token
    assert person.waits == [1, 1, 6]
    assert polls[2] - polls[1] >= 6 - 0.05
    assert github.github.form_answers == 0  # every request asked for JSON
    assert token.access_token.startswith("ghu_") and token.refresh_token
    stored = keyfob.get_credentials("github")
    assert stored == {"client_id": DEMO_GITHUB_APP_CLIENT_ID, "refresh_token": token.refresh_token}
    answer = requests.get(github.url + "/user", auth=keyfob.requests_auth("github"), timeout=10)
    assert answer.json()["login"] == DEMO_GITHUB_LOGIN


def test_device_login_sends_only_the_client_id(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_APP_CLIENT_ID)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", DEMO_GITHUB_APP_CLIENT_SECRET)
    keyfob.login("github", person=DevicePerson(github, approve_after=1, early=None))

    assert github.github.device_code_params == [{"client_id", "scope"}]


def test_keyfob_login_github_is_a_device_login_on_the_command_line(
    github: LocalProvider, no_secret_leaks: Leaks
) -> None:
    env = {**os.environ, "GITHUB_CLIENT_ID": DEMO_GITHUB_APP_CLIENT_ID, "KEYFOB_LOG": "debug"}
    proc = subprocess.Popen(
        [KEYFOB, "login", "github"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if re.fullmatch(r"\s*[A-Z]{4}-[A-Z]{4}\s*", line):
                assert github.approve_github_device(line.strip())
                break
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stderr = "".join(lines) + err
    no_secret_leaks.add("stdout of keyfob login github", out)
    no_secret_leaks.add("stderr of keyfob login github", stderr)

    assert proc.returncode == 0, stderr
    assert f"{github.url}/login/device" in stderr
    assert github.count(DEVICE) == 1 and github.github.form_answers == 0
    stored = keyfob.get_credentials("github")
    assert set(stored) == {"client_id", "refresh_token"}
    no_secret_leaks.plant(stored["refresh_token"])


def test_an_oauth_app_token_never_expires_and_is_kept_in_the_keyring(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_OAUTH_CLIENT_ID)

    token = keyfob.login("github", person=DevicePerson(github, approve_after=1, early=None))

    assert token.access_token.startswith("gho_")
    assert token.expires is None and token.refresh_token is None
    assert keyfob.get_credentials("github")["token"] == token.access_token
    # a lost cache needs no new login: the kept token is the secret
    (wiring.default().cache).delete(("github", ""))
    wiring.reset()
    before = github.count(TOKEN)
    assert keyfob.get_token("github").access_token == token.access_token
    assert github.count(TOKEN) == before


def test_a_denied_device_login_stores_nothing(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_APP_CLIENT_ID)

    class Denies(DevicePerson):
        def show_code(self, code: ShowCode) -> None:
            github.approve_github_device(code.user_code, deny=True)

    with pytest.raises(keyfob.InvalidCredentials) as caught:
        keyfob.login("github", person=Denies(github, approve_after=0, early=None))

    assert caught.value.error == "access_denied"
    assert keyfob.get_credentials("github") == {}


# ------------------------------------------------------------------ the browser
class Browser(Terminal):
    """Opens the authorize address with urllib, following GitHub's redirect back."""

    def __init__(self) -> None:
        super().__init__(browser=False, out=io.StringIO(), stdin=io.StringIO())
        self.opened: list[str] = []

    def open_browser(self, url: str) -> None:
        self.opened.append(url)

        def visit() -> None:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    response.read()
            except urllib.error.HTTPError as err:
                err.close()

        threading.Thread(target=visit, daemon=True).start()


def test_browser_login_with_pkce_gets_an_oauth_app_token(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_OAUTH_CLIENT_ID)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", DEMO_GITHUB_OAUTH_CLIENT_SECRET)
    browser = Browser()

    token = keyfob.login("github", flow="browser", person=browser, timeout=10)

    (opened,) = browser.opened
    assert opened.startswith(github.url + "/login/oauth/authorize?")
    assert "code_challenge_method=S256" in opened and "scope=repo+read%3Aorg+gist" in opened
    assert token.access_token.startswith("gho_") and token.expires is None
    assert github.count(TOKEN) == 1 and github.github.form_answers == 0


def test_a_browser_login_refused_in_the_browser_is_invalid_credentials(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_OAUTH_CLIENT_ID)
    github.github.deny = True

    with pytest.raises(keyfob.InvalidCredentials, match="refused in the browser"):
        keyfob.login("github", flow="browser", person=Browser(), timeout=10)

    assert github.count(TOKEN) == 0


# ------------------------------------------------------------------ the rotating refresh token
def test_an_app_token_is_refreshed_and_the_spent_refresh_token_never_sent_again(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.github.app_token_lifetime = 2  # due at once (the leeway is at most half of it)
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_APP_CLIENT_ID)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", DEMO_GITHUB_APP_CLIENT_SECRET)
    first = keyfob.login("github", person=DevicePerson(github, approve_after=1, early=None))
    assert first.expires is not None and first.refresh_expires is not None
    tokens = [first]

    for _ in range(3):
        time.sleep(1.1)
        wiring.reset()  # a new process each time: the refresh token comes from the keyring
        tokens.append(keyfob.get_token("github"))

    refreshes = {t.refresh_token for t in tokens}
    assert len(refreshes) == 4  # rotated each time
    assert github.count(TOKEN) == 1 + 3
    assert github.github.spent_refresh_tokens_sent == 0
    assert keyfob.get_credentials("github")["refresh_token"] == tokens[-1].refresh_token
    assert not github.is_active(first.refresh_token or "")


def test_a_rotated_environment_refresh_token_is_superseded_and_never_sent_again(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = github.issue_github_token()["refresh_token"]
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_APP_CLIENT_ID)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", DEMO_GITHUB_APP_CLIENT_SECRET)
    monkeypatch.setenv("GITHUB_REFRESH_TOKEN", given)
    first = keyfob.get_token("github")
    assert first.refresh_token not in (None, given)

    for _ in range(2):  # the cache lost each time: only the store knows the new one
        wiring.default().cache.delete(("github", ""))
        wiring.reset()
        token = keyfob.get_token("github")
        headers = {"Authorization": f"Bearer {token.access_token}"}
        answer = requests.get(f"{github.url}/user", headers=headers, timeout=10)
        assert answer.status_code == 200

    assert github.count(TOKEN) == 3
    assert github.github.spent_refresh_tokens_sent == 0


def test_a_refused_refresh_token_is_invalid_credentials_with_a_login_hint(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> None:
    spent = github.issue_github_token()["refresh_token"]
    github.revoke(spent)
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_APP_CLIENT_ID)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", DEMO_GITHUB_APP_CLIENT_SECRET)
    monkeypatch.setenv("GITHUB_REFRESH_TOKEN", spent)

    with pytest.raises(keyfob.InvalidCredentials) as caught:
        keyfob.get_token("github")

    line = caught.value.one_line()
    no_secret_leaks.add("InvalidCredentials", line)
    assert caught.value.error == "bad_refresh_token"
    assert "keyfob login github" in line


# ------------------------------------------------------------------ revoking
def test_logout_revoke_deletes_the_token_at_github(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_OAUTH_CLIENT_ID)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", DEMO_GITHUB_OAUTH_CLIENT_SECRET)
    token = keyfob.login("github", person=DevicePerson(github, approve_after=1, early=None))
    url = github.url + "/user"
    assert requests.get(url, auth=keyfob.requests_auth("github"), timeout=10).status_code == 200

    keyfob.logout("github", revoke=True)

    assert github.count(f"/applications/{DEMO_GITHUB_OAUTH_CLIENT_ID}/token") == 1
    assert not github.is_active(token.access_token)
    refused = requests.get(url, headers={"Authorization": f"Bearer {token.access_token}"})
    assert refused.status_code == 401
    assert keyfob.get_credentials("github") == {}


def test_without_the_client_secret_logout_revoke_only_forgets(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_OAUTH_CLIENT_ID)
    token = keyfob.login("github", person=DevicePerson(github, approve_after=1, early=None))

    keyfob.logout("github", revoke=True)

    assert github.is_active(token.access_token)
    assert "github needs GITHUB_CLIENT_SECRET to revoke tokens at the server" in caplog.text
    assert keyfob.get_credentials("github") == {}


# ------------------------------------------------------------------ GH_TOKEN and GITHUB_TOKEN
def test_gh_token_is_used_as_it_is_without_a_request(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    pasted = github.issue_github_token(DEMO_GITHUB_OAUTH_CLIENT_ID)["access_token"]
    monkeypatch.setenv("GH_TOKEN", pasted)

    assert keyfob.get_token("github").access_token == pasted
    assert github.count(TOKEN) == 0
    answer = requests.get(github.url + "/user", auth=keyfob.requests_auth("github"), timeout=10)
    assert answer.status_code == 200


def test_gh_token_comes_before_github_token(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    gh = github.issue_github_token(DEMO_GITHUB_OAUTH_CLIENT_ID)["access_token"]
    other = github.issue_github_token(DEMO_GITHUB_OAUTH_CLIENT_ID)["access_token"]
    monkeypatch.setenv("GITHUB_TOKEN", other)
    assert keyfob.get_token("github").access_token == other

    monkeypatch.setenv("GH_TOKEN", gh)
    wiring.reset()

    assert keyfob.get_token("github").access_token == gh


def test_gh_token_wins_over_a_stored_login_and_gives_way_when_unset(
    github: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", DEMO_GITHUB_APP_CLIENT_ID)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", DEMO_GITHUB_APP_CLIENT_SECRET)
    logged_in = keyfob.login("github", person=DevicePerson(github, approve_after=1, early=None))
    pasted = github.issue_github_token(DEMO_GITHUB_OAUTH_CLIENT_ID)["access_token"]

    monkeypatch.setenv("GH_TOKEN", pasted)
    wiring.reset()
    assert keyfob.get_token("github").access_token == pasted

    monkeypatch.delenv("GH_TOKEN")
    wiring.reset()
    again = keyfob.get_token("github")  # the login's again: renewed with its refresh token
    assert again.access_token.startswith("ghu_") and again.access_token != pasted
    assert github.github.spent_refresh_tokens_sent == 0
    assert keyfob.get_credentials("github")["refresh_token"] == again.refresh_token
    assert logged_in.refresh_token != again.refresh_token


def test_the_command_line_takes_gh_token(
    github: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    pasted = github.issue_github_token(DEMO_GITHUB_OAUTH_CLIENT_ID)["access_token"]

    token = cli("token", "github", env={"GITHUB_TOKEN": pasted})
    header = cli("header", "github", env={"GH_TOKEN": pasted})

    assert token.returncode == 0, token.stderr
    assert token.stdout.strip() == pasted
    assert header.stdout.strip() == f"Authorization: Bearer {pasted}"


def test_without_any_token_the_command_line_says_how_to_log_in(
    github: LocalProvider, cli: CliRun
) -> None:
    done = cli("token", "github")

    assert done.returncode == 3
    (line,) = done.stderr.strip().splitlines()
    assert "GH_TOKEN" in line and "keyfob login github" in line


# ------------------------------------------------------------------ answers as GitHub sends them
def test_a_form_answer_without_access_token_is_exit_4_in_one_line(
    github: LocalProvider, cli: CliRun
) -> None:
    refresh = github.issue_github_token()["refresh_token"]
    github.garbage(TOKEN, "form_without_token")

    done = cli(
        "token",
        "github",
        env={
            "GITHUB_CLIENT_ID": DEMO_GITHUB_APP_CLIENT_ID,
            "GITHUB_CLIENT_SECRET": DEMO_GITHUB_APP_CLIENT_SECRET,
            "GITHUB_REFRESH_TOKEN": refresh,
        },
    )

    assert done.returncode == 4
    (line,) = done.stderr.strip().splitlines()
    assert "answered without an access_token (check that token_url" in line


def test_the_rate_limit_headers_of_the_api_are_learned(
    home: Path, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> None:
    with LocalProvider(github_rate=(2, 60.0)) as local:
        no_secret_leaks.providers.append(local)
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(local.config_toml() + "[limits]\nmax_wait = 1\n")
        monkeypatch.setenv("GH_TOKEN", local.issue_github_token()["access_token"])
        wiring.reset()
        auth = keyfob.requests_auth("github")
        answers = [requests.get(local.url + "/user", auth=auth, timeout=10) for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 200]
        assert answers[-1].headers["X-RateLimit-Remaining"] == "0"

        with pytest.raises(keyfob.RateLimited):
            requests.get(local.url + "/user", auth=auth, timeout=10)

        assert local.count("/user") == 2  # the third was never sent


def test_status_and_providers_show_github(
    github: LocalProvider, cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    pasted = github.issue_github_token(DEMO_GITHUB_OAUTH_CLIENT_ID)["access_token"]
    listed = cli("providers")
    assert listed.returncode == 0
    assert "github" in listed.stdout and "GH_TOKEN or GITHUB_TOKEN" in listed.stdout

    assert cli("token", "github", env={"GH_TOKEN": pasted}).returncode == 0
    status = cli("status", "github", env={"GH_TOKEN": pasted})
    assert status.returncode == 0, status.stderr
    assert "github" in status.stdout and "GH_TOKEN" in status.stdout


@pytest.mark.parametrize("driver", ["httpx", "httpx-async", "requests"])
def test_every_driver_asks_for_json(github: LocalProvider, driver: str) -> None:
    import asyncio

    from keyfob import grants
    from keyfob.requests_transport import RequestsTransport
    from keyfob.transport import Transport

    refresh = github.issue_github_token()["refresh_token"]
    flow = grants.refresh(
        github.url + TOKEN,
        refresh,
        client_id=DEMO_GITHUB_APP_CLIENT_ID,
        client_secret=DEMO_GITHUB_APP_CLIENT_SECRET,
        client_auth="client_secret_post",
        now=time.time(),
    )
    if driver == "requests":
        token = RequestsTransport().run(flow)
    elif driver == "httpx":
        token = Transport().run(flow)
    else:
        token = asyncio.run(Transport().arun(flow))

    assert token.access_token.startswith("ghu_") and token.refresh_token != refresh
    assert github.github.form_answers == 0
