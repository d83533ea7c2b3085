"""The emulated X OAuth 2.0 user context: authorize, token (code + PKCE, rotating
refresh), revoke, and /2/users/me, spoken to with urllib."""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from keyfob.testing import DEMO_TWITTER_CLIENT_ID, DEMO_TWITTER_CLIENT_SECRET, LocalProvider
from testing.client import Answer, call, tw_token

CLIENT = (DEMO_TWITTER_CLIENT_ID, DEMO_TWITTER_CLIENT_SECRET)


@pytest.fixture
def x() -> Iterator[LocalProvider]:
    with LocalProvider() as provider:
        yield provider
    assert provider.errors == []


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(x: LocalProvider, **changes: str) -> tuple[int, str, dict[str, str]]:
    """GET /i/oauth2/authorize without following: (status, Location, its query)."""
    query = {
        "response_type": "code",
        "client_id": DEMO_TWITTER_CLIENT_ID,
        "redirect_uri": x.twitter_redirect_uri,
        "scope": "tweet.read users.read offline.access",
        "state": "s-1",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        **changes,
    }

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    url = x.url + "/i/oauth2/authorize?" + urllib.parse.urlencode(query)
    try:
        with urllib.request.build_opener(Stop).open(url, timeout=5) as answer:
            return answer.status, "", {}
    except urllib.error.HTTPError as err:
        with err:
            location = err.headers.get("Location") or ""
            return (
                err.code,
                location,
                dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query)),
            )


def token(x: LocalProvider, form: dict[str, str], auth: tuple[str, str] | None = CLIENT) -> Answer:
    return call("POST", x.url + "/2/oauth2/token", form=form, auth=auth)


def login(x: LocalProvider) -> dict[str, str]:
    verifier, challenge = pkce()
    _, _, back = authorize(x, code_challenge=challenge)
    answer = token(
        x,
        {
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": x.twitter_redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert answer.status == 200, answer.body
    return answer.json()  # type: ignore[no-any-return]


def refresh(x: LocalProvider, value: str, auth: tuple[str, str] | None = CLIENT) -> Answer:
    return token(x, {"grant_type": "refresh_token", "refresh_token": value}, auth)


# --------------------------------------------------------------------------- authorize
def test_authorize_approves_at_once_back_to_the_registered_callback(x: LocalProvider) -> None:
    status, location, back = authorize(x)
    assert status == 302
    assert location.startswith(x.twitter_redirect_uri + "?")
    assert back["state"] == "s-1" and back["code"]


@pytest.mark.parametrize(
    "redirect",
    ["http://127.0.0.1:1/callback", "http://localhost:{port}/callback", "{uri}/", "{uri}?x=1"],
)
def test_authorize_refuses_any_other_callback_with_a_page(x: LocalProvider, redirect: str) -> None:
    port = urllib.parse.urlsplit(x.twitter_redirect_uri).port
    uri = redirect.format(port=port, uri=x.twitter_redirect_uri)
    status, location, _ = authorize(x, redirect_uri=uri)
    assert status == 400 and location == ""


def test_authorize_requires_pkce(x: LocalProvider) -> None:
    status, location, _ = authorize(x, code_challenge="", code_challenge_method="")
    assert status == 400 and location == ""


def test_authorize_denied_goes_back_with_access_denied(x: LocalProvider) -> None:
    x.twitter_deny = True
    status, _, back = authorize(x)
    assert status == 302
    assert back == {
        "error": "access_denied",
        "error_description": back["error_description"],
        "state": "s-1",
    }


# --------------------------------------------------------------------------- token
def test_code_with_its_verifier_gives_a_two_hour_bearer_and_a_refresh_token(
    x: LocalProvider,
) -> None:
    answer = login(x)
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 7200
    assert answer["scope"] == "tweet.read users.read offline.access"
    assert x.is_active(answer["access_token"]) and x.is_active(answer["refresh_token"])


def test_a_code_is_refused_with_a_wrong_verifier_and_used_once(x: LocalProvider) -> None:
    _, challenge = pkce()
    _, _, back = authorize(x, code_challenge=challenge)
    form = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": x.twitter_redirect_uri,
        "code_verifier": pkce()[0],
    }
    refused = token(x, form)
    assert refused.status == 400
    assert refused.json()["error"] == "invalid_request"
    assert token(x, form).status == 400  # gone: a code is tried once


def test_refresh_rotates_and_the_old_refresh_token_stops_working(x: LocalProvider) -> None:
    first = login(x)
    second = refresh(x, first["refresh_token"])
    assert second.status == 200
    assert second.json()["refresh_token"] != first["refresh_token"]

    again = refresh(x, first["refresh_token"])

    assert again.status == 400
    assert again.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the token was invalid.",
    }
    assert x.twitter_spent_uses() == 1
    assert refresh(x, second.json()["refresh_token"]).status == 200


def test_a_confidential_client_without_basic_is_401_unauthorized_client(x: LocalProvider) -> None:
    value = login(x)["refresh_token"]
    answer = token(
        x,
        {"grant_type": "refresh_token", "refresh_token": value, "client_id": CLIENT[0]},
        auth=None,
    )
    assert answer.status == 401
    assert answer.json()["error"] == "unauthorized_client"
    assert refresh(x, value, auth=(CLIENT[0], "wrong-secret-0123456789")).status == 401


def test_a_public_client_sends_its_id_in_the_body(x: LocalProvider) -> None:
    x.add_twitter_client("public-client", None, x.twitter_redirect_uri)
    value = x.twitter_refresh_token(client_id="public-client")
    answer = token(
        x,
        {"grant_type": "refresh_token", "refresh_token": value, "client_id": "public-client"},
        auth=None,
    )
    assert answer.status == 200


def test_without_offline_access_there_is_no_refresh_token(x: LocalProvider) -> None:
    verifier, challenge = pkce()
    _, _, back = authorize(x, code_challenge=challenge, scope="tweet.read users.read")
    answer = token(
        x,
        {
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": x.twitter_redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert answer.status == 200 and "refresh_token" not in answer.json()


# --------------------------------------------------------------------------- revoke, users/me
def test_revoke_ends_the_token(x: LocalProvider) -> None:
    answer = login(x)
    done = call(
        "POST",
        x.url + "/2/oauth2/revoke",
        form={"token": answer["refresh_token"], "token_type_hint": "refresh_token"},
        auth=CLIENT,
    )
    assert done.status == 200 and done.json() == {"revoked": True}
    assert refresh(x, answer["refresh_token"]).status == 400


def test_users_me_answers_the_user_of_a_user_token(x: LocalProvider) -> None:
    answer = call("GET", x.url + "/2/users/me", bearer=login(x)["access_token"])
    assert answer.status == 200
    assert answer.json() == {
        "data": {"id": "1460000000000000001", "name": "Demo User", "username": "demo_user"}
    }
    assert answer.headers["x-rate-limit-limit"] == "75"


def test_users_me_refuses_an_app_only_token_with_403(x: LocalProvider) -> None:
    app_only = tw_token(x).json()["access_token"]
    answer = call("GET", x.url + "/2/users/me", bearer=app_only)
    assert answer.status == 403
    assert answer.json()["title"] == "Unsupported Authentication"


def test_users_me_counts_each_user_in_a_window_of_its_own() -> None:
    with LocalProvider(twitter_rate=(2, 60.0)) as x:
        x.add_twitter_user("2", "Other", "other")
        alice = login(x)["access_token"]
        x.twitter_authorize_as = "2"
        bob = login(x)["access_token"]
        first = [call("GET", x.url + "/2/users/me", bearer=alice).status for _ in range(3)]
        other = call("GET", x.url + "/2/users/me", bearer=bob)
    assert first == [200, 200, 429]
    assert other.status == 200 and other.headers["x-rate-limit-remaining"] == "1"
