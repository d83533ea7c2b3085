"""The iNaturalist browser login (authorization code + PKCE) against the emulator.

No real browser: ``Browser`` is a person whose browser is urllib. It follows the
emulator's 302 from ``/oauth/authorize`` to keyfob's callback listener in a
thread of its own (the listener answers the tab only once the login has judged
the callback), and keeps what the tab was shown.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

import keyfob
from conftest import Leaks
from keyfob.inaturalist import AuthenticationError, get_access_token_via_auth_code
from keyfob.loopback import Terminal
from keyfob.testing import DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET, LocalProvider
from keyfob.token import Token


class Browser(Terminal):
    """Opens each address with urllib, following redirects, in the background."""

    def __init__(self) -> None:
        super().__init__(browser=False, out=io.StringIO(), stdin=io.StringIO())
        self.opened: list[str] = []
        self.landed: list[str] = []  # the address each tab ended on
        self.pages: list[tuple[int, str]] = []
        self._threads: list[threading.Thread] = []

    def open_browser(self, url: str) -> None:
        self.opened.append(url)
        thread = threading.Thread(target=self._visit, args=(url,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _visit(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                self.landed.append(response.url)
                self.pages.append((response.status, response.read().decode()))
        except urllib.error.HTTPError as err:
            with err:
                self.landed.append(err.url)
                self.pages.append((err.code, err.read().decode()))

    def close(self) -> None:
        for thread in self._threads:
            thread.join(timeout=10)
        super().close()


class NoBrowser(Browser):
    """A person who must not be asked to log in."""

    def open_browser(self, url: str) -> None:
        raise AssertionError("the browser was opened")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def observation(local: LocalProvider, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{local.url}/v1/observations/1", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["results"][0]  # type: ignore[no-any-return]


def browser_login(browser: Browser, **credentials: str) -> Token:
    token: Token = keyfob.login("inaturalist", flow="browser", person=browser, **credentials)
    return token


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


# --------------------------------------------------------------------------- keyfob.login
def test_browser_login_jwt_unlocks_private_coordinates(configured: LocalProvider) -> None:
    token = browser_login(Browser())
    assert "private_geojson" in observation(configured, token.access_token)


def test_browser_login_sends_pkce_s256_and_state(configured: LocalProvider) -> None:
    browser = Browser()
    browser_login(browser)
    asked = query_of(browser.opened[0])
    assert asked["code_challenge_method"] == "S256"
    assert asked["client_id"] == DEMO_INAT_APP_ID
    assert asked["state"]


def test_browser_login_tab_says_logged_in(configured: LocalProvider) -> None:
    browser = Browser()
    browser_login(browser)
    status, page = browser.pages[0]
    assert status == 200
    assert "Logged in" in page


def test_browser_login_works_without_the_app_secret(
    configured: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INAT_APP_SECRET")
    keyfob.wiring.reset()
    token = browser_login(Browser())
    assert "private_geojson" in observation(configured, token.access_token)


def test_replayed_code_is_refused_and_its_token_revoked(configured: LocalProvider) -> None:
    browser = Browser()
    token = browser_login(browser)
    callback = query_of(browser.landed[0])
    form = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": browser.landed[0].split("?")[0],
        "code_verifier": "x" * 43,
        "client_id": DEMO_INAT_APP_ID,
        "client_secret": DEMO_INAT_APP_SECRET,
    }
    request = urllib.request.Request(
        configured.url + "/oauth/token", data=urllib.parse.urlencode(form).encode()
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    with refused.value as err:
        assert (err.code, json.load(err)["error"]) == (400, "invalid_grant")
    assert token.refresh_token is not None
    assert not configured.is_active(token.refresh_token)


# ------------------------------------------------------------ get_access_token_via_auth_code
def test_auth_code_function_returns_a_jwt_that_unlocks_private_coordinates(
    configured: LocalProvider,
) -> None:
    jwt = get_access_token_via_auth_code(port=free_port(), person=Browser())
    assert "private_geojson" in observation(configured, jwt)


def test_auth_code_function_redirects_to_the_given_port(configured: LocalProvider) -> None:
    port = free_port()
    browser = Browser()
    get_access_token_via_auth_code(port=port, person=browser)
    assert query_of(browser.opened[0])["redirect_uri"] == f"http://127.0.0.1:{port}/callback"


def test_auth_code_function_returns_the_cached_jwt_without_a_browser(
    configured: LocalProvider,
) -> None:
    first = get_access_token_via_auth_code(port=free_port(), person=Browser())
    keyfob.wiring.reset()  # a new process: only the cache remembers
    again = get_access_token_via_auth_code(port=free_port(), person=NoBrowser())
    assert again == first
    assert configured.count("/oauth/authorize") == 1


def test_auth_code_function_refresh_logs_in_again(configured: LocalProvider) -> None:
    # The OAuth tokens tell the logins apart (two JWTs of one second are the same).
    first = get_access_token_via_auth_code(port=free_port(), jwt=False, person=Browser())
    again = get_access_token_via_auth_code(
        port=free_port(), jwt=False, refresh=True, person=Browser()
    )
    assert again != first
    assert configured.count("/oauth/authorize") == 2


def test_auth_code_function_jwt_false_returns_the_oauth_token(
    configured: LocalProvider,
) -> None:
    token = get_access_token_via_auth_code(port=free_port(), jwt=False, person=Browser())
    assert token.count(".") != 2
    assert configured.is_active(token)


def test_auth_code_function_takes_app_id_as_argument(
    configured: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INAT_APP_ID")
    monkeypatch.delenv("INAT_APP_SECRET")
    keyfob.wiring.reset()
    browser = Browser()
    get_access_token_via_auth_code(app_id=DEMO_INAT_APP_ID, port=free_port(), person=browser)
    assert query_of(browser.opened[0])["client_id"] == DEMO_INAT_APP_ID


def test_auth_code_function_denied_raises_authentication_error(
    configured: LocalProvider, no_secret_leaks: Leaks
) -> None:
    configured.deny_authorizations()
    with pytest.raises(AuthenticationError) as raised:
        get_access_token_via_auth_code(port=free_port(), person=Browser())
    no_secret_leaks.add("AuthenticationError", str(raised.value))
    assert "access_denied" in str(raised.value)


def test_auth_code_function_without_app_id_raises_authentication_error(
    configured: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> None:
    monkeypatch.delenv("INAT_APP_ID")
    keyfob.wiring.reset()
    with pytest.raises(AuthenticationError) as raised:
        get_access_token_via_auth_code(port=free_port(), person=NoBrowser())
    no_secret_leaks.add("AuthenticationError", str(raised.value))
    assert "app_id" in str(raised.value)


def test_auth_code_function_without_pkce_needs_the_app_secret(
    configured: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> None:
    monkeypatch.delenv("INAT_APP_SECRET")
    keyfob.wiring.reset()
    with pytest.raises(AuthenticationError) as raised:
        get_access_token_via_auth_code(port=free_port(), use_pkce=False, person=NoBrowser())
    no_secret_leaks.add("AuthenticationError", str(raised.value))
    assert configured.count("/oauth/authorize") == 0


def test_auth_code_function_without_pkce_takes_the_secret_as_argument(
    configured: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INAT_APP_SECRET")
    keyfob.wiring.reset()
    jwt = get_access_token_via_auth_code(
        app_secret=DEMO_INAT_APP_SECRET, use_pkce=False, port=free_port(), person=Browser()
    )
    assert "private_geojson" in observation(configured, jwt)


def test_auth_code_function_without_pkce_takes_the_secret_from_the_environment(
    configured: LocalProvider,
) -> None:
    jwt = get_access_token_via_auth_code(use_pkce=False, port=free_port(), person=Browser())
    assert "private_geojson" in observation(configured, jwt)


def test_browser_login_token_serves_that_user_later_without_the_password(
    configured: LocalProvider,
) -> None:
    # The API names the JWT's user, so the browser login's identity is the password
    # login's: INAT_USERNAME (the same user) finds the cached token.
    token = keyfob.login("inaturalist", flow="browser", person=Browser())
    assert configured.count("/v1/users/me") == 1  # the JWT names only a user id
    keyfob.wiring.reset()  # a new process: only the cache remembers
    logins = configured.count("/oauth/token")
    assert keyfob.get_token("inaturalist").access_token == token.access_token
    assert configured.count("/oauth/token") == logins


def test_browser_login_works_when_the_api_cannot_say_whose_the_token_is(
    configured: LocalProvider,
) -> None:
    configured.fail("/v1/users/me", 401)
    token = keyfob.login("inaturalist", flow="browser", person=Browser())
    assert "private_geojson" in observation(configured, token.access_token)
    assert configured.count("/v1/users/me") == 1
