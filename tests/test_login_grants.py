"""The logins that need a person, sans I/O: ``grants.browser_login`` and ``grants.device_login``
driven by hand with plain values (Listen/OpenBrowser/AwaitCallback/Finish answered here, and
hand-made ``HttpResponse``s). No server, no sockets, no sleeping: the device flow's clock is a
number this file moves forward on every ``Sleep``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import pytest

from keyfob import grants
from keyfob.errors import InvalidCredentials
from keyfob.flow import (
    AwaitCallback,
    Finish,
    Flow,
    HttpRequest,
    HttpResponse,
    Listen,
    OpenBrowser,
    ShowCode,
    Sleep,
)
from keyfob.token import Token

NOW = 1_700_000_000.0
ISSUER = "https://as.example.test"
AUTHORIZE_URL = f"{ISSUER}/authorize"
TOKEN_URL = f"{ISSUER}/token"
DEVICE_URL = f"{ISSUER}/device_authorization"
CLIENT_ID = "login-client"
CLIENT_SECRET = "login-client-secret-3e7a91"
BOUND = "http://127.0.0.1:53127/callback"
DEVICE_CODE = "device-code-b41c0f9e2d"


def answer(status: int, body: dict[str, Any], url: str = TOKEN_URL) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json"}, json.dumps(body).encode(), url
    )


@pytest.fixture(autouse=True)
def planted(no_secret_leaks: Any) -> None:
    no_secret_leaks.plant(CLIENT_SECRET, DEVICE_CODE)


# -- browser login ----------------------------------------------------------------------------


@dataclass
class Browser:
    """A browser login driven up to the callback: what it asked for so far."""

    flow: Flow[Token]
    listen: Listen
    authorize: dict[str, str]
    waiting: AwaitCallback
    effects: list[Any] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.authorize["state"]

    def callback(self, params: dict[str, str]) -> Any:
        """Hand the flow the callback's query; return what it yields next."""
        effect = self.flow.send(params)
        self.effects.append(effect)
        return effect

    def rest(self) -> None:
        """Run the flow on after a callback, answering every effect with None."""
        while True:
            self.effects.append(self.flow.send(None))


def browser(redirect_uri: str | None = None, **more: Any) -> Browser:
    flow = grants.browser_login(
        authorize_url=AUTHORIZE_URL,
        token_url=TOKEN_URL,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="openid offline_access",
        redirect_uri=redirect_uri,
        issuer=ISSUER,
        timeout=42.0,
        clock=lambda: NOW,
        **more,
    )
    listen = next(flow)
    assert isinstance(listen, Listen)
    opened = flow.send(BOUND)
    assert isinstance(opened, OpenBrowser)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(opened.url).query))
    waiting = flow.send(None)
    assert isinstance(waiting, AwaitCallback)
    return Browser(flow, listen, query, waiting)


def refused(login: Browser, params: dict[str, str], no_secret_leaks: Any) -> InvalidCredentials:
    """The callback is judged bad: the tab is told so, and the flow raises before any request."""
    finish = login.callback(params)
    with pytest.raises(InvalidCredentials) as caught:
        login.rest()
    no_secret_leaks.add("browser_login error", caught.value.one_line())
    assert finish == Finish(ok=False, message=caught.value.message)
    assert not any(isinstance(e, HttpRequest) for e in login.effects)
    return caught.value


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def test_forged_state_is_refused_without_a_token_request(no_secret_leaks: Any) -> None:
    login = browser()
    forged = {"code": "stolen-code", "state": login.state[:-2] + "xx", "iss": ISSUER}
    error = refused(login, forged, no_secret_leaks)
    assert "state" in error.message


def test_callback_without_state_is_refused(no_secret_leaks: Any) -> None:
    login = browser()
    refused(login, {"code": "some-code", "iss": ISSUER}, no_secret_leaks)


def test_callback_from_another_issuer_is_refused_rfc9207(no_secret_leaks: Any) -> None:
    login = browser()
    mixed_up = {"code": "some-code", "state": login.state, "iss": "https://evil.example.test"}
    error = refused(login, mixed_up, no_secret_leaks)
    assert "issuer" in error.message


def test_callback_without_code_is_refused(no_secret_leaks: Any) -> None:
    login = browser()
    error = refused(login, {"state": login.state, "iss": ISSUER}, no_secret_leaks)
    assert "no code" in error.message


def test_access_denied_callback_is_invalid_credentials(no_secret_leaks: Any) -> None:
    login = browser()
    denied = {"state": login.state, "error": "access_denied", "error_description": "no thanks"}
    error = refused(login, denied, no_secret_leaks)
    assert error.error == "access_denied"
    assert "refused in the browser" in error.message


def test_authorize_url_carries_s256_challenge_of_the_verifier_sent_for_the_token() -> None:
    login = browser()
    request = login.callback({"code": "the-code", "state": login.state, "iss": ISSUER})
    assert isinstance(request, HttpRequest) and request.url == TOKEN_URL
    assert request.form is not None
    assert login.authorize["code_challenge_method"] == "S256"
    assert login.authorize["code_challenge"] == s256(request.form["code_verifier"])
    assert request.form["code"] == "the-code"
    assert request.form["grant_type"] == "authorization_code"
    assert request.form["redirect_uri"] == login.authorize["redirect_uri"] == BOUND
    assert login.flow.send(answer(200, {"access_token": "at-1", "expires_in": 60})) == Finish(
        ok=True, message="You are logged in, and keyfob has the tokens."
    )
    with pytest.raises(StopIteration) as done:
        login.flow.send(None)
    assert done.value.value.access_token == "at-1"


def test_pkce_verifier_is_43_to_128_unreserved_characters() -> None:
    login = browser()
    request = login.callback({"code": "the-code", "state": login.state})
    assert isinstance(request, HttpRequest) and request.form is not None
    verifier = request.form["code_verifier"]
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(string.ascii_letters + string.digits + "-._~")


def test_state_and_challenge_differ_between_two_logins() -> None:
    first, second = browser(), browser()
    assert len(first.state) >= 16
    assert first.state != second.state
    assert first.authorize["code_challenge"] != second.authorize["code_challenge"]


def test_redirect_uri_from_config_is_listened_on_its_port_and_path() -> None:
    login = browser(redirect_uri="http://127.0.0.1:8765/oauth/cb")
    assert login.listen == Listen(port=8765, path="/oauth/cb")


def test_without_redirect_uri_any_free_port_is_asked_for() -> None:
    assert browser().listen == Listen(port=0, path="/callback")


def test_await_callback_carries_the_timeout() -> None:
    assert browser().waiting == AwaitCallback(timeout=42.0)


def test_code_refused_by_the_server_is_invalid_credentials_and_the_tab_says_so(
    no_secret_leaks: Any,
) -> None:
    login = browser()
    login.callback({"code": "replayed-code", "state": login.state, "iss": ISSUER})
    refusal = answer(400, {"error": "invalid_grant", "error_description": "code already used"})
    finish = login.flow.send(refusal)
    with pytest.raises(InvalidCredentials) as caught:
        login.flow.send(None)
    no_secret_leaks.add("browser_login error", caught.value.one_line())
    assert caught.value.error == "invalid_grant"
    assert finish == Finish(ok=False, message=caught.value.message)


# -- device login -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Device:
    flow: Flow[Token]
    clock: Clock
    shown: ShowCode
    sleeps: list[Sleep] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)

    def poll(self, reply: HttpResponse) -> None:
        """Answer the current poll; advance through the next Sleep up to the next poll."""
        effect = self.flow.send(reply)
        self._to_poll(effect)

    def _to_poll(self, effect: Any) -> None:
        assert isinstance(effect, Sleep), effect
        self.sleeps.append(effect)
        self.clock.now += effect.seconds
        request = self.flow.send(None)
        assert isinstance(request, HttpRequest) and request.form is not None
        assert request.form["grant_type"] == grants.DEVICE_GRANT
        assert request.form["device_code"] == DEVICE_CODE
        self.polls.append(self.clock.now)


def device(override: float | None = None, **authorization: Any) -> Device:
    clock = Clock()
    flow = grants.device_login(
        device_url=DEVICE_URL,
        token_url=TOKEN_URL,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="openid",
        interval=override,
        clock=clock,
    )
    request = next(flow)
    assert isinstance(request, HttpRequest) and request.url == DEVICE_URL
    body = {
        "device_code": DEVICE_CODE,
        "user_code": "WDJB-MJHT",
        "verification_uri": f"{ISSUER}/device",
        "verification_uri_complete": f"{ISSUER}/device?user_code=WDJB-MJHT",
        "expires_in": 600,
        **authorization,
    }
    shown = flow.send(answer(200, {k: v for k, v in body.items() if v is not None}, DEVICE_URL))
    assert isinstance(shown, ShowCode)
    login = Device(flow, clock, shown)
    login._to_poll(flow.send(None))
    return login


PENDING = answer(400, {"error": "authorization_pending"})


def device_error(login: Device, error: str, no_secret_leaks: Any) -> InvalidCredentials:
    with pytest.raises(InvalidCredentials) as caught:
        login.poll(answer(400, {"error": error}))
    no_secret_leaks.add("device_login error", caught.value.one_line())
    return caught.value


def test_device_code_is_shown_with_its_uris_and_expiry() -> None:
    login = device(override=1)
    assert login.shown == ShowCode(
        user_code="WDJB-MJHT",
        verification_uri=f"{ISSUER}/device",
        verification_uri_complete=f"{ISSUER}/device?user_code=WDJB-MJHT",
        expires_at=NOW + 600,
    )


def test_device_interval_defaults_to_5_seconds_when_absent() -> None:
    login = device()
    assert login.sleeps[0] == Sleep(5.0, until=NOW + 600)


def test_device_interval_from_the_server_is_used() -> None:
    login = device(interval=7)
    assert login.sleeps[0].seconds == 7


def test_authorization_pending_keeps_polling_at_the_same_interval() -> None:
    login = device(interval=3)
    login.poll(PENDING)
    login.poll(PENDING)
    assert [s.seconds for s in login.sleeps] == [3, 3, 3]
    assert len(login.polls) == 3


def test_slow_down_adds_5_seconds_to_this_and_later_polls() -> None:
    login = device(interval=2)
    login.poll(answer(400, {"error": "slow_down"}))
    login.poll(PENDING)
    assert [s.seconds for s in login.sleeps] == [2, 7, 7]


def test_approval_returns_the_token() -> None:
    login = device(override=1)
    login.poll(PENDING)
    with pytest.raises(StopIteration) as done:
        login.flow.send(answer(200, {"access_token": "device-at", "expires_in": 60}))
    token = done.value.value
    assert token.access_token == "device-at"
    assert token.expires == login.polls[-1] + 60


def test_device_access_denied_is_invalid_credentials(no_secret_leaks: Any) -> None:
    error = device_error(device(override=1), "access_denied", no_secret_leaks)
    assert error.error == "access_denied"


def test_device_expired_token_is_invalid_credentials(no_secret_leaks: Any) -> None:
    error = device_error(device(override=1), "expired_token", no_secret_leaks)
    assert error.error == "expired_token"


def test_device_code_expiry_stops_polling(no_secret_leaks: Any) -> None:
    login = device(interval=5, expires_in=12)
    login.poll(PENDING)  # second poll at +10 s; a third would be at +15 s, after the expiry
    with pytest.raises(InvalidCredentials) as caught:
        login.poll(PENDING)
    no_secret_leaks.add("device_login error", caught.value.one_line())
    assert caught.value.error == "expired_token"
    assert login.polls == [NOW + 5, NOW + 10]


def test_device_client_secret_never_appears_in_the_form() -> None:
    login = device(override=1)
    effect = login.flow.send(PENDING)
    assert isinstance(effect, Sleep)
    request = login.flow.send(None)
    assert isinstance(request, HttpRequest) and request.form is not None
    assert CLIENT_SECRET not in request.form.values()
    assert request.basic == (CLIENT_ID, CLIENT_SECRET)
