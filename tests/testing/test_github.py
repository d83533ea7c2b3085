"""The emulated GitHub: its device and browser logins, its form answers and 200 errors,
its two kinds of app, the DELETE revoke, and /user with its X-RateLimit-* headers."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from keyfob.testing import (
    DEMO_GITHUB_APP_CLIENT_ID,
    DEMO_GITHUB_APP_CLIENT_SECRET,
    DEMO_GITHUB_LOGIN,
    DEMO_GITHUB_OAUTH_CLIENT_ID,
    DEMO_GITHUB_OAUTH_CLIENT_SECRET,
    LocalProvider,
)
from testing.client import Answer, call

JSON = {"Accept": "application/json"}
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def gh() -> Iterator[LocalProvider]:
    with LocalProvider(device_interval=1, github_rate=(3, 60.0)) as provider:
        yield provider
    assert provider.errors == []


def token_call(gh: LocalProvider, form: dict[str, str], *, as_json: bool = True) -> Answer:
    return call(
        "POST", gh.url + "/login/oauth/access_token", form=form, headers=JSON if as_json else {}
    )


def fields(answer: Answer) -> dict[str, Any]:
    if answer.headers.get("Content-Type", "").startswith("application/json"):
        data: dict[str, Any] = answer.json()
        return data
    return dict(urllib.parse.parse_qsl(answer.body.decode()))


def device_code(gh: LocalProvider, client_id: str = DEMO_GITHUB_APP_CLIENT_ID) -> dict[str, Any]:
    answer = call(
        "POST", gh.url + "/login/device/code", form={"client_id": client_id}, headers=JSON
    )
    assert answer.status == 200
    return fields(answer)


def poll(gh: LocalProvider, code: str, *, as_json: bool = True) -> Answer:
    form = {"client_id": DEMO_GITHUB_APP_CLIENT_ID, "device_code": code, "grant_type": DEVICE_GRANT}
    return token_call(gh, form, as_json=as_json)


def refresh(gh: LocalProvider, refresh_token: str, **more: str) -> Answer:
    form = {
        "client_id": DEMO_GITHUB_APP_CLIENT_ID,
        "client_secret": DEMO_GITHUB_APP_CLIENT_SECRET,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        **more,
    }
    return token_call(gh, form)


def user(gh: LocalProvider, token: str) -> Answer:
    return call("GET", gh.url + "/user", bearer=token)


# ------------------------------------------------------------------ the device flow
def test_device_flow_pends_with_200_then_gives_an_app_token(gh: LocalProvider) -> None:
    code = device_code(gh)
    assert set(code) == {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
    assert code["verification_uri"] == gh.url + "/login/device"

    pending = poll(gh, code["device_code"])
    assert (pending.status, fields(pending)["error"]) == (200, "authorization_pending")
    assert gh.approve_github_device(code["user_code"])
    time.sleep(1)
    done = poll(gh, code["device_code"])

    token = fields(done)
    assert done.status == 200
    assert token["access_token"].startswith("ghu_")
    assert token["refresh_token"].startswith("ghr_")
    assert (token["expires_in"], token["refresh_token_expires_in"]) == (28800, 15897600)
    assert user(gh, token["access_token"]).status == 200


def test_polling_faster_than_the_interval_is_slow_down_with_the_new_interval(
    gh: LocalProvider,
) -> None:
    code = device_code(gh)["device_code"]
    poll(gh, code)

    slow = fields(poll(gh, code))

    assert slow["error"] == "slow_down"
    assert slow["interval"] == 6  # 1 + 5


def test_a_denied_device_login_is_access_denied_with_200(gh: LocalProvider) -> None:
    code = device_code(gh)
    gh.approve_github_device(code["user_code"], deny=True)
    answer = poll(gh, code["device_code"])
    assert (answer.status, fields(answer)["error"]) == (200, "access_denied")


def test_the_device_page_authorizes_the_code(gh: LocalProvider) -> None:
    code = device_code(gh)
    page = call("GET", code["verification_uri"])
    assert page.status == 200 and b"Enter the code" in page.body
    done = call(
        "POST", code["verification_uri"], form={"user_code": code["user_code"], "action": "approve"}
    )
    assert done.status == 200
    assert "access_token" in fields(poll(gh, code["device_code"]))


def test_an_unknown_client_is_incorrect_client_credentials_with_200(gh: LocalProvider) -> None:
    answer = call(
        "POST", gh.url + "/login/device/code", form={"client_id": "Iv1.nobody"}, headers=JSON
    )
    assert (answer.status, fields(answer)["error"]) == (200, "incorrect_client_credentials")


def test_an_app_without_device_flow_says_so(gh: LocalProvider) -> None:
    gh.add_github_app("Iv1.nodevice", "secret-of-an-app-without-device", device_flow=False)
    answer = call(
        "POST", gh.url + "/login/device/code", form={"client_id": "Iv1.nodevice"}, headers=JSON
    )
    assert fields(answer)["error"] == "device_flow_disabled"


# ------------------------------------------------------------------ form answers
def test_token_answers_are_forms_unless_json_is_asked_for(gh: LocalProvider) -> None:
    code = device_code(gh)
    answer = poll(gh, code["device_code"], as_json=False)

    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(urllib.parse.parse_qsl(answer.body.decode()))["error"] == "authorization_pending"
    assert gh.github.form_answers == 1


# ------------------------------------------------------------------ the browser login
def authorize(gh: LocalProvider, **query: str) -> Answer:
    params = {
        "client_id": DEMO_GITHUB_OAUTH_CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:4321/callback",
        "state": "state-123",
        **query,
    }
    url = gh.url + "/login/oauth/authorize?" + urllib.parse.urlencode(params)

    class NoFollow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kw: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoFollow)
    try:
        with opener.open(url, timeout=5) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as err:
        with err:
            return Answer(err.code, err.headers, err.read())


def sent_back(answer: Answer) -> dict[str, str]:
    assert answer.status == 302
    location = answer.headers["Location"]
    assert location.startswith("http://127.0.0.1:4321/callback?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_browser_login_with_pkce_gives_an_oauth_app_token_that_never_expires(
    gh: LocalProvider,
) -> None:
    verifier = "v" * 50
    back = sent_back(authorize(gh, code_challenge=challenge(verifier), scope="repo"))
    assert back["state"] == "state-123"

    answer = token_call(
        gh,
        {
            "client_id": DEMO_GITHUB_OAUTH_CLIENT_ID,
            "client_secret": DEMO_GITHUB_OAUTH_CLIENT_SECRET,
            "code": back["code"],
            "redirect_uri": "http://127.0.0.1:4321/callback",
            "code_verifier": verifier,
        },
    )

    token = fields(answer)
    assert set(token) == {"access_token", "token_type", "scope"}
    assert token["access_token"].startswith("gho_")
    assert user(gh, token["access_token"]).json()["login"] == DEMO_GITHUB_LOGIN


def test_a_wrong_verifier_is_bad_verification_code(gh: LocalProvider) -> None:
    back = sent_back(authorize(gh, code_challenge=challenge("v" * 50)))
    answer = token_call(
        gh,
        {
            "client_id": DEMO_GITHUB_OAUTH_CLIENT_ID,
            "client_secret": DEMO_GITHUB_OAUTH_CLIENT_SECRET,
            "code": back["code"],
            "redirect_uri": "http://127.0.0.1:4321/callback",
            "code_verifier": "w" * 50,
        },
    )
    assert (answer.status, fields(answer)["error"]) == (200, "bad_verification_code")


def test_a_denial_is_sent_back_as_access_denied(gh: LocalProvider) -> None:
    gh.github.deny = True
    back = sent_back(authorize(gh))
    assert back["error"] == "access_denied" and back["state"] == "state-123"


def test_a_redirect_to_another_host_is_refused(gh: LocalProvider) -> None:
    answer = authorize(gh, redirect_uri="https://evil.example/callback")
    assert answer.status == 400


# ------------------------------------------------------------------ refreshing
def test_an_app_refresh_token_rotates_and_a_spent_one_is_bad_refresh_token(
    gh: LocalProvider,
) -> None:
    first = gh.issue_github_token()

    second = fields(refresh(gh, first["refresh_token"]))
    again = fields(refresh(gh, first["refresh_token"]))

    assert second["refresh_token"] != first["refresh_token"]
    assert again["error"] == "bad_refresh_token"
    assert gh.github.spent_refresh_tokens_sent == 1
    assert user(gh, first["access_token"]).status == 401
    assert user(gh, second["access_token"]).status == 200


def test_a_refresh_without_the_client_secret_is_refused(gh: LocalProvider) -> None:
    first = gh.issue_github_token()
    answer = refresh(gh, first["refresh_token"], client_secret="not-the-secret-at-all")
    assert fields(answer)["error"] == "incorrect_client_credentials"
    assert gh.is_active(first["refresh_token"])


def test_an_oauth_app_token_has_no_expiry_and_no_refresh_token(gh: LocalProvider) -> None:
    token = gh.issue_github_token(DEMO_GITHUB_OAUTH_CLIENT_ID)
    assert "expires_in" not in token and "refresh_token" not in token


# ------------------------------------------------------------------ revoking
def delete(gh: LocalProvider, token: str, secret: str = DEMO_GITHUB_APP_CLIENT_SECRET) -> Answer:
    return call(
        "DELETE",
        f"{gh.url}/applications/{DEMO_GITHUB_APP_CLIENT_ID}/token",
        json_body={"access_token": token},
        auth=(DEMO_GITHUB_APP_CLIENT_ID, secret),
    )


def test_delete_revokes_the_token_and_its_refresh_token(gh: LocalProvider) -> None:
    token = gh.issue_github_token()

    assert delete(gh, token["access_token"]).status == 204

    assert user(gh, token["access_token"]).status == 401
    assert not gh.is_active(token["refresh_token"])
    assert fields(refresh(gh, token["refresh_token"]))["error"] == "bad_refresh_token"


def test_delete_with_a_wrong_secret_is_404_and_an_unknown_token_422(gh: LocalProvider) -> None:
    token = gh.issue_github_token()
    assert delete(gh, token["access_token"], "wrong-secret-of-the-app").status == 404
    assert delete(gh, "gho_unknown0123456789").status == 422
    assert user(gh, token["access_token"]).status == 200


# ------------------------------------------------------------------ the API
def test_user_says_its_rate_limit_and_refuses_once_spent(gh: LocalProvider) -> None:
    token = gh.issue_github_token()["access_token"]
    answers = [user(gh, token) for _ in range(4)]

    assert [a.status for a in answers] == [200, 200, 200, 403]
    first = answers[0].headers
    assert first["X-RateLimit-Limit"] == "3"
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert first["X-RateLimit-Used"] == "1" and first["X-RateLimit-Resource"] == "core"
    assert int(first["X-RateLimit-Reset"]) >= time.time()
    assert json.loads(answers[3].body)["message"].startswith("API rate limit exceeded")


def test_user_with_a_bad_token_is_401_bad_credentials(gh: LocalProvider) -> None:
    answer = user(gh, "gho_not0a0real0token")
    assert answer.status == 401
    assert answer.json()["message"] == "Bad credentials"
