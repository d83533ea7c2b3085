"""``keyfob login oidc --flow browser|device`` as a person runs it, against a real server.

The server is npm ``oidc-provider`` (``tests/oidc/provider.mjs``, started as in
``test_oidc_provider.py``); the person is ``DevUser``, a cookie-keeping HTTP client that
fills in the server's login, consent and device pages. The ``keyfob`` command runs as a
subprocess with ``--no-browser``: the test reads the authorization address from its stderr,
lets DevUser log in, and delivers the callback to keyfob's listener itself (as the browser
would), or a forged one. ``/lab/token-requests`` tells what reached the token endpoint.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import KEYFOB
from keyfob.loopback import SPINNER
from test_oidc_provider import DevUser, Lab, Seen, running_provider

CLIENT, SECRET, PUBLIC_CLIENT = "lab-client", "lab-secret", "lab-public"
OIDC_VARS = ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_provider(tmp_path_factory.mktemp("oidc-login")) as (server, _):
        yield server


@pytest.fixture(scope="module")
def short_device_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A second server whose device codes live 2 seconds."""
    tmp = tmp_path_factory.mktemp("oidc-device-ttl")
    with running_provider(tmp, DEVICE_CODE_TTL="2") as (server, _):
        yield server


@pytest.fixture
def seen(no_secret_leaks: Any) -> Seen:
    tokens = Seen()
    no_secret_leaks.providers.append(tokens)  # searched like a LocalProvider's tokens
    no_secret_leaks.plant(SECRET)
    return tokens


def configure(home: Path, issuer: str, **more: str) -> None:
    table = {
        "issuer": issuer,
        "grant": "authorization_code",
        "env_prefix": "OIDC",
        "scope": "openid offline_access",
        **more,
    }
    lines = ["[http]", "timeout = 5", "connect_timeout = 2", "retries = 0", ""]
    lines.append("[providers.oidc]")
    lines.extend(f"{key} = {json.dumps(value)}" for key, value in table.items())
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def oidc(home: Path, lab: Lab, seen: Seen, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """[providers.oidc] by issuer, grant authorization_code; lab-client's secrets in OIDC_*."""
    configure(home, lab.issuer)
    monkeypatch.setenv("OIDC_CLIENT_ID", CLIENT)
    monkeypatch.setenv("OIDC_CLIENT_SECRET", SECRET)
    return lab


class Login:
    """A running ``keyfob login oidc ...``; its stderr is read line by line."""

    def __init__(self, leaks: Any, args: tuple[str, ...]) -> None:
        self.leaks = leaks
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [KEYFOB, "login", "oidc", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.done: subprocess.CompletedProcess[str] | None = None

    def read_until(self, wanted: Callable[[str], bool]) -> str:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if wanted(line):
                return line.strip()
        raise AssertionError(f"keyfob login ended before the line was shown: {self.lines!r}")

    def url(self) -> str:
        """The authorization address keyfob asks the person to visit."""
        return self.read_until(lambda line: line.strip().startswith("http"))

    def wait(self, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        # Not communicate(): it would skip what the line reader already buffered.
        self.proc.wait(timeout=timeout)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        with self.proc.stdout, self.proc.stderr:
            out, err = self.proc.stdout.read(), self.proc.stderr.read()
        stderr = "".join(self.lines) + err
        self.leaks.add("stdout of keyfob login", out)
        self.leaks.add("stderr of keyfob login", stderr)
        self.done = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, stderr)
        return self.done


Start = Callable[..., Login]


def stored_refresh_tokens(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "refresh_token" and isinstance(item, str):
                yield item
            else:
                yield from stored_refresh_tokens(item)


@pytest.fixture
def start(home: Path, no_secret_leaks: Any) -> Iterator[Start]:
    """Start ``keyfob login oidc ARGS``; at the end, stop what still runs (by its own handle)
    and plant every refresh token that was stored, for the secret scan."""
    started: list[Login] = []

    def run(*args: str) -> Login:
        login = Login(no_secret_leaks, args)
        started.append(login)
        return login

    yield run
    for login in started:
        if login.proc.poll() is None:
            login.proc.kill()
            login.proc.communicate(timeout=10)
        for pipe in (login.proc.stdout, login.proc.stderr):
            if pipe is not None:
                pipe.close()
    secrets_file = home / "secrets.json"
    if secrets_file.exists():
        no_secret_leaks.plant(*stored_refresh_tokens(json.loads(secrets_file.read_text())))


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def redirect_uri(auth_url: str) -> str:
    return query(auth_url)["redirect_uri"]


def authorize(auth_url: str, login: str = "alice") -> str:
    """Log in and consent as DevUser; the callback address the server sends the browser to."""
    return str(DevUser(login=login).authorize(auth_url, stop_at=redirect_uri(auth_url)))


def deliver(callback: str) -> tuple[int, str]:
    """Open the callback address as the browser would: the tab's status and title."""
    try:
        with urllib.request.urlopen(callback, timeout=30) as response:
            status, page = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, page = exc.code, exc.read().decode()
    title = re.search(r"<h1>(.*?)</h1>", page)
    return status, title.group(1) if title else page[:200]


def callback_to(auth_url: str, **params: str) -> str:
    return redirect_uri(auth_url) + "?" + urllib.parse.urlencode(params)


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one error line (after the login's own prompts), with no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("keyfob:")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("keyfob: error: ")
    assert done.stderr.rstrip().splitlines()[-1] == said[0]
    assert done.stdout == ""
    return said[0]


def code_requests(lab: Lab) -> list[dict[str, Any]]:
    return [r for r in lab.token_requests() if r["grant_type"] == "authorization_code"]


def browser_login(start: Start) -> tuple[subprocess.CompletedProcess[str], tuple[int, str]]:
    login = start("--flow", "browser", "--no-browser")
    tab = deliver(authorize(login.url()))
    return login.wait(), tab


# -- the browser login ------------------------------------------------------------------------


def test_browser_login_exits_0_and_the_tab_says_logged_in(oidc: Lab, start: Start) -> None:
    done, tab = browser_login(start)
    assert done.returncode == 0, done.stderr
    assert tab == (200, "Logged in")


@pytest.fixture
def logged_in(oidc: Lab, start: Start) -> Lab:
    done, _ = browser_login(start)
    assert done.returncode == 0, done.stderr
    return oidc


def test_new_process_without_env_gets_an_active_token_after_browser_login(
    logged_in: Lab, seen: Seen, cli: Any
) -> None:
    done = cli("token", "oidc", unset=OIDC_VARS)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    seen.add(token)
    assert logged_in.introspect(token)["active"] is True


def test_refresh_in_a_new_process_uses_the_stored_refresh_token_and_client(
    logged_in: Lab, seen: Seen, cli: Any
) -> None:
    first = cli("token", "oidc", unset=OIDC_VARS).stdout.strip()
    before = len(logged_in.token_requests())
    done = cli("token", "oidc", "--refresh", unset=OIDC_VARS)
    assert done.returncode == 0, done.stderr
    seen.add(first, done.stdout.strip())
    sent = logged_in.token_requests()[before:]
    assert [(r["grant_type"], r["client_id"], r["client_auth"], r["status"]) for r in sent] == [
        ("refresh_token", CLIENT, "basic", 200)
    ]
    assert done.stdout.strip() != first
    assert logged_in.introspect(done.stdout.strip())["active"] is True


def test_public_client_logs_in_with_pkce_and_no_secret(
    oidc: Lab, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OIDC_CLIENT_ID", PUBLIC_CLIENT)
    monkeypatch.delenv("OIDC_CLIENT_SECRET")
    done, _ = browser_login(start)
    assert done.returncode == 0, done.stderr
    last = code_requests(oidc)[-1]
    assert (last["client_id"], last["client_auth"], last["status"]) == (PUBLIC_CLIENT, "none", 200)


# -- the device flow --------------------------------------------------------------------------


def device_login(start: Start) -> tuple[Login, str]:
    login = start("--flow", "device")
    complete = login.read_until(lambda line: "user_code=" in line)
    return login, complete


def approved_device_login(start: Start) -> tuple[subprocess.CompletedProcess[str], str]:
    login, complete = device_login(start)
    DevUser(login="bob").approve_device(complete)
    return login.wait(), complete


def test_device_login_exits_0_once_approved(oidc: Lab, start: Start) -> None:
    done, _ = approved_device_login(start)
    assert done.returncode == 0, done.stderr
    last = oidc.token_requests()[-1]
    assert (last["grant_type"], last["status"]) == (
        "urn:ietf:params:oauth:grant-type:device_code",
        200,
    )


def test_device_prompt_shows_the_user_code_and_the_verification_uri(
    oidc: Lab, start: Start
) -> None:
    done, complete = approved_device_login(start)
    shown = [line.strip() for line in done.stderr.splitlines()]
    assert query(complete)["user_code"] in shown
    assert f"{oidc.issuer}/device" in shown
    assert complete in shown


def test_device_wait_without_a_terminal_prints_plain_lines_and_no_spinner(
    oidc: Lab, start: Start
) -> None:
    done, _ = approved_device_login(start)
    assert "Waiting for the login to be approved" in done.stderr
    assert not set(SPINNER) & set(done.stderr)
    assert "\r" not in done.stderr and "\x1b" not in done.stderr


# -- hostile and failed callbacks -------------------------------------------------------------


def forged_state_login(oidc: Lab, start: Start) -> subprocess.CompletedProcess[str]:
    login = start("--flow", "browser", "--no-browser")
    url = login.url()
    real = query(authorize(url))
    assert real["code"] and real["state"] == query(url)["state"]
    forged = {**real, "state": "forged-" + real["state"][::-1]}
    assert deliver(callback_to(url, **forged)) == (400, "Login failed")
    return login.wait()


def test_forged_state_exits_3_and_its_code_never_reaches_the_token_endpoint(
    oidc: Lab, start: Start
) -> None:
    before = len(code_requests(oidc))
    done = forged_state_login(oidc, start)
    assert done.returncode == 3
    assert "state" in error_line(done)
    assert len(code_requests(oidc)) == before


def test_forged_state_stores_no_secret_and_no_token(
    oidc: Lab, start: Start, home: Path, cli: Any
) -> None:
    assert forged_state_login(oidc, start).returncode == 3
    assert not (home / "secrets.json").exists()
    status = cli("status", "oidc", unset=OIDC_VARS)
    assert "no tokens and no stored secrets" in status.stdout + status.stderr


def test_replayed_code_exits_3_with_the_servers_invalid_grant(oidc: Lab, start: Start) -> None:
    first = start("--flow", "browser", "--no-browser")
    callback = authorize(first.url())
    assert deliver(callback) == (200, "Logged in")
    assert first.wait().returncode == 0
    second = start("--flow", "browser", "--no-browser")
    url = second.url()
    replay = {"code": query(callback)["code"], "state": query(url)["state"], "iss": oidc.issuer}
    status, title = deliver(callback_to(url, **replay))
    done = second.wait()
    assert done.returncode == 3
    assert "invalid_grant" in error_line(done)
    assert code_requests(oidc)[-1]["status"] == 400
    assert (status, title) == (400, "Login failed")


def test_access_denied_callback_exits_3(oidc: Lab, start: Start) -> None:
    login = start("--flow", "browser", "--no-browser")
    url = login.url()
    denied = {"error": "access_denied", "state": query(url)["state"], "iss": oidc.issuer}
    assert deliver(callback_to(url, **denied)) == (400, "Login failed")
    done = login.wait()
    assert done.returncode == 3
    assert "access_denied" in error_line(done)


def test_timeout_exits_3_and_closes_the_listener(oidc: Lab, start: Start) -> None:
    login = start("--flow", "browser", "--no-browser", "--timeout", "1")
    port = urllib.parse.urlsplit(redirect_uri(login.url())).port
    done = login.wait()
    assert done.returncode == 3
    assert "timed out" in error_line(done)
    assert port is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_two_logins_at_once_each_complete_with_their_own_callback(oidc: Lab, start: Start) -> None:
    first = start("--flow", "browser", "--no-browser")
    second = start("--flow", "browser", "--no-browser")
    url1, url2 = first.url(), second.url()
    assert query(url1)["state"] != query(url2)["state"]
    assert redirect_uri(url1) != redirect_uri(url2)
    callback1, callback2 = authorize(url1), authorize(url2, login="bob")
    before = len(code_requests(oidc))
    assert deliver(callback2) == (200, "Logged in")
    assert deliver(callback1) == (200, "Logged in")
    assert (first.wait().returncode, second.wait().returncode) == (0, 0)
    assert [r["status"] for r in code_requests(oidc)[before:]] == [200, 200]


def test_redirect_uri_on_a_busy_port_exits_2(oidc: Lab, home: Path, cli: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        configure(home, oidc.issuer, redirect_uri=f"http://127.0.0.1:{port}/callback")
        done = cli("login", "oidc", "--flow", "browser", "--no-browser")
    assert done.returncode == 2
    assert f"port {port}" in error_line(done)
    assert done.stderr.count("\n") == 1


def deny_device(complete: str) -> None:
    """Open the device page, then press [ Abort ] on its confirmation form."""
    user = DevUser()
    _, page = user._open(complete)
    for _ in range(3):
        action, fields = user._form(page)
        if 'id="op.deviceConfirmForm"' in page:
            try:
                user._open(action, {**fields, "abort": "yes"})
            except urllib.error.HTTPError as exc:
                exc.close()  # the "aborted" page is an error page
            return
        _, page = user._open(action, fields)
    raise AssertionError(f"no device confirmation form: {page[:300]}")


def test_device_login_refused_on_the_device_page_exits_3(oidc: Lab, start: Start) -> None:
    login, complete = device_login(start)
    deny_device(complete)
    done = login.wait()
    assert done.returncode == 3
    assert "access_denied" in error_line(done)


def test_device_code_that_expires_unapproved_exits_3(
    oidc: Lab, short_device_lab: Lab, home: Path, start: Start
) -> None:
    configure(home, short_device_lab.issuer)
    login, _ = device_login(start)
    done = login.wait()
    assert done.returncode == 3
    assert "expired" in error_line(done)


def test_unreachable_token_endpoint_exits_4_and_the_tab_says_login_failed(
    oidc: Lab, home: Path, start: Start
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    configure(
        home,
        oidc.issuer,
        authorize_url=f"{oidc.issuer}/auth",
        token_url=f"http://127.0.0.1:{dead}/token",
    )
    login = start("--flow", "browser", "--no-browser")
    tab = deliver(authorize(login.url()))
    done = login.wait()
    assert done.returncode == 4
    assert "cannot reach" in error_line(done)
    assert tab == (400, "Login failed")
