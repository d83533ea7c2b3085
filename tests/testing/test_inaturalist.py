"""The emulated iNaturalist: password grant, the JWT trade, observations, revocation, and the
browser login (authorize endpoint, authorization-code grant with PKCE)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from keyfob.testing import (
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    LocalProvider,
)
from keyfob.testing.inaturalist import DEMO_INAT_EMAIL
from testing.client import (
    Answer,
    b64url_json,
    call,
    inat_jwt,
    inat_oauth,
    inat_token,
    jwt_parts,
    observation,
)


# --------------------------------------------------------------------------- iNaturalist
@contextlib.contextmanager
def marked(lp: LocalProvider, state: str) -> Iterator[None]:
    """The demo user marked ``state`` for a while (the emulator serves the whole module)."""
    lp.mark_inat_user(DEMO_INAT_USERNAME, state)
    try:
        yield
    finally:
        lp.mark_inat_user(DEMO_INAT_USERNAME, None)


def whose(lp: LocalProvider, jwt: str) -> str:
    """The login ``GET /v1/users/me`` names for ``jwt``."""
    answer = call("GET", lp.url + "/v1/users/me", headers={"Authorization": jwt})
    assert answer.status == 200, answer.body
    login: str = answer.json()["results"][0]["login"]
    return login


def test_inat_password_grant_success_shape(lp: LocalProvider) -> None:
    before = int(time.time())
    answer = inat_token(lp)
    assert answer.status == 200
    payload = answer.json()
    assert set(payload) == {"access_token", "token_type", "scope", "created_at"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", payload["access_token"])
    assert payload["token_type"] == "Bearer"
    assert payload["scope"] == "write login"
    assert before <= payload["created_at"] <= int(time.time())


def test_inat_each_grant_is_a_new_token(lp: LocalProvider) -> None:
    assert inat_oauth(lp) != inat_oauth(lp)


def test_inat_wrong_password_is_invalid_grant_in_inaturalists_words(lp: LocalProvider) -> None:
    answer = inat_token(lp, password="not-the-password")
    assert answer.status == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid email, username, or password.",
    }


def test_inat_password_grant_takes_the_user_as_login_email_or_username(
    lp: LocalProvider,
) -> None:
    for field, name in (
        ("login", DEMO_INAT_USERNAME),
        ("email", DEMO_INAT_EMAIL),
        ("username", DEMO_INAT_EMAIL.upper()),  # an email, in any case
    ):
        form = {
            "grant_type": "password",
            "client_id": DEMO_INAT_APP_ID,
            "client_secret": DEMO_INAT_APP_SECRET,
            field: name,
            "password": DEMO_INAT_PASSWORD,
        }
        answer = call("POST", lp.url + "/oauth/token", form=form)
        assert answer.status == 200, (field, answer.body)
        jwt = call("GET", lp.url + "/users/api_token", bearer=answer.json()["access_token"])
        assert whose(lp, jwt.json()["api_token"]) == DEMO_INAT_USERNAME


def test_inat_login_comes_before_username(lp: LocalProvider) -> None:
    # doorkeeper.rb: params[:login] || params[:email] || params[:username]
    answer = inat_token(lp, login=DEMO_INAT_USERNAME, username="nobody-at-all")
    assert answer.status == 200


def test_inat_wrong_password_is_invalid_grant_even_for_an_unknown_app(
    lp: LocalProvider,
) -> None:
    # Doorkeeper asks for the resource owner before it judges the client.
    answer = inat_token(lp, password="not-the-password", client_id="no-such-app")
    assert (answer.status, answer.json()["error"]) == (400, "invalid_grant")


def test_inat_suspended_user_is_refused_with_401_suspended(lp: LocalProvider) -> None:
    with marked(lp, "suspended"):
        answer = inat_token(lp)
    assert answer.status == 401
    assert answer.json() == {
        "error": "suspended",
        "error_description": "This user has been suspended.",
        "suspended_until": None,
    }


def test_inat_child_without_permission_is_invalid_grant_of_its_own(lp: LocalProvider) -> None:
    with marked(lp, "child"):
        answer = inat_token(lp)
    assert answer.status == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "Please ask your parents for permission.",
    }


def test_inat_unconfirmed_account_is_invalid_grant_of_its_own(lp: LocalProvider) -> None:
    with marked(lp, "unconfirmed"):
        answer = inat_token(lp)
    assert answer.status == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "You have to confirm your email address before continuing.",
    }


def test_inat_marks_need_the_right_password_and_can_be_lifted(lp: LocalProvider) -> None:
    with marked(lp, "suspended"):
        wrong = inat_token(lp, password="not-the-password")
    assert wrong.json()["error_description"] == "Invalid email, username, or password."
    assert inat_token(lp).status == 200  # lifted
    with pytest.raises(ValueError):
        lp.mark_inat_user(DEMO_INAT_USERNAME, "banned")


def test_inat_password_grant_takes_a_requested_scope(lp: LocalProvider) -> None:
    assert inat_token(lp, scope="login").json()["scope"] == "login"
    answer = inat_token(lp, scope="write admin")
    assert (answer.status, answer.json()["error"]) == (400, "invalid_scope")


def test_inat_client_credentials_grant_gives_an_app_token_without_a_user(
    lp: LocalProvider,
) -> None:
    answer = call(
        "POST",
        lp.url + "/oauth/token",
        form={"grant_type": "client_credentials"},
        auth=(DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET),
    )
    assert answer.status == 200
    payload = answer.json()
    assert set(payload) == {"access_token", "token_type", "scope", "created_at"}
    assert payload["scope"] == "write login"
    # no user: no JWT
    assert call("GET", lp.url + "/users/api_token", bearer=payload["access_token"]).status == 401


def test_inat_client_credentials_grant_needs_the_app_secret(lp: LocalProvider) -> None:
    answer = call(
        "POST",
        lp.url + "/oauth/token",
        form={"grant_type": "client_credentials", "client_id": DEMO_INAT_APP_ID},
    )
    assert (answer.status, answer.json()["error"]) == (401, "invalid_client")


def test_inat_unknown_user_is_invalid_grant(lp: LocalProvider) -> None:
    answer = inat_token(lp, username="nobody-at-all")
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_grant"


def test_inat_wrong_client_secret_is_invalid_client(lp: LocalProvider) -> None:
    answer = inat_token(lp, client_secret="not-the-secret")
    assert answer.status == 401
    assert answer.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed due to unknown client, no client "
        "authentication included, or unsupported authentication method.",
    }


def test_inat_unknown_client_is_invalid_client(lp: LocalProvider) -> None:
    answer = inat_token(lp, client_id="no-such-app")
    assert answer.status == 401
    assert answer.json()["error"] == "invalid_client"


def test_inat_other_grant_type_is_unsupported_grant_type(lp: LocalProvider) -> None:
    # grant_flows: authorization_code, client_credentials, password; no use_refresh_token
    answer = inat_token(lp, grant_type="refresh_token")
    assert answer.status == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_inat_missing_password_is_invalid_request(lp: LocalProvider) -> None:
    answer = inat_token(lp, password="")
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_inat_api_token_is_an_hs512_jwt_of_user_app_and_expiry_only(lp: LocalProvider) -> None:
    header, payload, signature = jwt_parts(inat_jwt(lp))
    assert header == {"alg": "HS512"}
    assert len(signature) == 64
    assert set(payload) == {"user_id", "oauth_application_id", "exp"}
    assert isinstance(payload["user_id"], int)
    assert isinstance(payload["oauth_application_id"], int)
    assert abs(payload["exp"] - 86400 - time.time()) < 5


def test_inat_two_jwts_of_one_second_are_the_same(lp: LocalProvider) -> None:
    while time.time() % 1 > 0.5:  # both within one second
        time.sleep(0.05)
    first, second = inat_oauth(lp), inat_oauth(lp)
    assert first != second
    jwts = [
        call("GET", lp.url + "/users/api_token", bearer=token).json()["api_token"]
        for token in (first, second)
    ]
    assert jwts[0] == jwts[1]


def test_inat_api_token_needs_the_write_scope(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/users/api_token", bearer=inat_oauth(lp, scope="login"))
    assert answer.status == 403
    assert answer.json()["error"] == "insufficient_scope"


def test_inat_users_me_names_the_jwts_user(lp: LocalProvider) -> None:
    jwt = inat_jwt(lp)
    for authorization in (jwt, f"Bearer {jwt}"):
        answer = call("GET", lp.url + "/v1/users/me", headers={"Authorization": authorization})
        assert answer.status == 200
        payload = answer.json()
        assert payload["total_results"] == 1
        user = payload["results"][0]
        assert user["login"] == DEMO_INAT_USERNAME
        assert user["id"] == jwt_parts(jwt)[1]["user_id"]


def test_inat_api_token_without_token_is_401(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/users/api_token")
    assert answer.status == 401
    assert answer.json() == {"error": "Unauthorized", "status": 401}


def test_inat_api_token_with_unknown_token_is_401(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/users/api_token", bearer="x" * 43)
    assert answer.status == 401
    assert answer.json() == {"error": "Unauthorized", "status": 401}


def test_inat_api_token_refuses_a_jwt(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/users/api_token", bearer=inat_jwt(lp))
    assert answer.status == 401


def test_inat_observation_with_owner_jwt_has_private_geojson(lp: LocalProvider) -> None:
    answer = observation(lp, inat_jwt(lp), obs_id=12345)
    assert answer.status == 200
    payload = answer.json()
    assert (payload["total_results"], payload["page"], payload["per_page"]) == (1, 1, 1)
    result = payload["results"][0]
    assert result["id"] == 12345
    assert result["obscured"] is True
    assert result["geoprivacy"] == "obscured"
    assert result["user"]["login"] == DEMO_INAT_USERNAME
    exact = result["private_geojson"]["coordinates"]
    rounded = result["geojson"]["coordinates"]
    assert exact != rounded
    assert [round(c, 1) for c in exact] == rounded


def test_inat_observation_accepts_a_bearer_prefixed_jwt(lp: LocalProvider) -> None:
    answer = observation(lp, "Bearer " + inat_jwt(lp))
    assert "private_geojson" in answer.json()["results"][0]


def test_inat_observation_without_authorization_has_no_private_geojson(
    lp: LocalProvider,
) -> None:
    answer = observation(lp, None)
    assert answer.status == 200
    result = answer.json()["results"][0]
    assert "private_geojson" not in result
    assert result["geojson"]["type"] == "Point"


def test_inat_observation_with_oauth_token_has_no_private_geojson(lp: LocalProvider) -> None:
    answer = observation(lp, "Bearer " + inat_oauth(lp))
    assert answer.status == 200
    assert "private_geojson" not in answer.json()["results"][0]


def test_inat_observation_with_another_users_jwt_has_no_private_geojson(
    lp: LocalProvider,
) -> None:
    lp.add_inat_user("other-naturalist", "other-password-0123456789")
    jwt = inat_jwt(lp, username="other-naturalist", password="other-password-0123456789")
    answer = observation(lp, jwt)
    assert answer.status == 200
    assert "private_geojson" not in answer.json()["results"][0]


def test_inat_observation_with_tampered_jwt_is_401(lp: LocalProvider) -> None:
    header, payload, signature = inat_jwt(lp).split(".")
    claims = b64url_json(payload)
    claims["user_id"] += 1
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    answer = observation(lp, f"{header}.{forged}.{signature}")
    assert answer.status == 401
    assert answer.json() == {"error": "Unauthorized", "status": 401}


def test_inat_observation_with_unknown_token_is_401(lp: LocalProvider) -> None:
    assert observation(lp, "Bearer not-a-token-we-issued").status == 401


def test_inat_observation_with_revoked_jwt_is_401(own: LocalProvider) -> None:
    jwt = inat_jwt(own)
    own.revoke(jwt)
    assert observation(own, jwt).status == 401


def test_inat_observation_with_expired_jwt_is_401(short: LocalProvider) -> None:
    jwt = inat_jwt(short)
    assert observation(short, jwt).status == 200
    time.sleep(1.1)
    assert observation(short, jwt).status == 401
    assert not short.is_active(jwt)


@pytest.mark.parametrize("kind", ["jwt", "oauth"])
def test_inat_users_me_names_the_tokens_user(lp: LocalProvider, kind: str) -> None:
    token = inat_jwt(lp) if kind == "jwt" else inat_oauth(lp)
    answer = call("GET", lp.url + "/v1/users/me", bearer=token)
    assert answer.status == 200
    assert answer.json()["results"][0]["login"] == DEMO_INAT_USERNAME


@pytest.mark.parametrize("token", [None, "not-a-token-we-issued", "a.b.c"])
def test_inat_users_me_without_a_live_token_is_401(lp: LocalProvider, token: str | None) -> None:
    answer = call("GET", lp.url + "/v1/users/me", bearer=token)
    assert answer.status == 401
    assert answer.json() == {"error": "Unauthorized", "status": 401}


def test_inat_users_me_with_a_revoked_jwt_is_401(own: LocalProvider) -> None:
    jwt = inat_jwt(own)
    own.revoke(jwt)
    assert call("GET", own.url + "/v1/users/me", bearer=jwt).status == 401


def test_inat_revoke_endpoint_invalidates_the_oauth_token(lp: LocalProvider) -> None:
    token = inat_oauth(lp)
    answer = call("POST", lp.url + "/oauth/revoke", form={"token": token})
    assert answer.status == 200
    assert answer.json() == {}
    assert call("GET", lp.url + "/users/api_token", bearer=token).status == 401
    assert not lp.is_active(token)


def test_inat_revoke_without_token_is_invalid_request(lp: LocalProvider) -> None:
    answer = call("POST", lp.url + "/oauth/revoke", form={})
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


# ------------------------------------------------------------------ iNaturalist browser login
LOOPBACK = "http://127.0.0.1:53682/callback"


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(lp: LocalProvider, **overrides: str | None) -> Answer:
    """GET /oauth/authorize without following the redirect."""
    params = {
        "response_type": "code",
        "client_id": DEMO_INAT_APP_ID,
        "redirect_uri": LOOPBACK,
        "state": "s-123",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        **overrides,
    }
    query = urlencode({k: v for k, v in params.items() if v is not None})
    connection = http.client.HTTPConnection(*lp.server_address, timeout=5)
    try:
        connection.request("GET", "/oauth/authorize?" + query)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def location(answer: Answer) -> tuple[str, dict[str, str]]:
    """The redirect's address without its query, and its query parameters."""
    where = answer.headers["Location"]
    parts = urlsplit(where)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", dict(parse_qsl(parts.query))


def inat_code(lp: LocalProvider, redirect_uri: str = LOOPBACK) -> tuple[str, str]:
    """A fresh code (S256) and its verifier."""
    verifier, challenge = pkce()
    answer = authorize(lp, redirect_uri=redirect_uri, code_challenge=challenge)
    assert answer.status == 302, answer.body
    return location(answer)[1]["code"], verifier


def redeem(lp: LocalProvider, code: str, verifier: str | None, **overrides: str | None) -> Answer:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": LOOPBACK,
        "code_verifier": verifier,
        "client_id": DEMO_INAT_APP_ID,
        **overrides,
    }
    return call(
        "POST", lp.url + "/oauth/token", form={k: v for k, v in form.items() if v is not None}
    )


def test_authorize_approves_as_the_demo_user_and_redirects_with_code_and_state(
    lp: LocalProvider,
) -> None:
    answer = authorize(lp)
    assert answer.status == 302
    where, params = location(answer)
    assert where == LOOPBACK
    assert params["state"] == "s-123"
    assert len(params["code"]) >= 32


def test_authorize_accepts_any_loopback_port_for_the_demo_app(lp: LocalProvider) -> None:
    answer = authorize(lp, redirect_uri="http://127.0.0.1:1234/other")
    assert answer.status == 302
    assert location(answer)[0] == "http://127.0.0.1:1234/other"


@pytest.mark.parametrize("client_id", [None, "no-such-app"], ids=["missing", "unknown"])
def test_authorize_with_an_unknown_client_is_a_400_page_not_a_redirect(
    lp: LocalProvider, client_id: str | None
) -> None:
    answer = authorize(lp, client_id=client_id)
    assert answer.status == 400
    assert "Location" not in answer.headers
    assert answer.headers.get_content_type() == "text/html"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://localhost:8080/callback",
        "http://127.0.0.1.evil.example:8080/callback",
        "http://127.0.0.1:8080/callback#frag",
        "http://user@127.0.0.1:8080/callback",
        "http://127.0.0.1/callback",
        None,
    ],
    ids=["remote", "localhost", "look-alike", "fragment", "userinfo", "no-port", "missing"],
)
def test_authorize_never_redirects_to_a_non_loopback_uri(
    lp: LocalProvider, redirect_uri: str | None
) -> None:
    answer = authorize(lp, redirect_uri=redirect_uri)
    assert answer.status == 400
    assert "Location" not in answer.headers


def test_authorize_matches_a_registered_redirect_exactly() -> None:
    with LocalProvider() as provider:
        provider.add_inat_app("web-app", "web-secret-0123456789", "https://app.example/cb")
        assert (
            authorize(provider, client_id="web-app", redirect_uri="https://app.example/cb").status
            == 302
        )
        assert (
            authorize(provider, client_id="web-app", redirect_uri="https://app.example/cb2").status
            == 400
        )
        assert authorize(provider, client_id="web-app", redirect_uri=LOOPBACK).status == 400


def test_authorize_without_redirect_uri_uses_the_registered_one() -> None:
    with LocalProvider() as provider:
        provider.add_inat_app("web-app", "web-secret-0123456789", "https://app.example/cb")
        answer = authorize(provider, client_id="web-app", redirect_uri=None)
        assert location(answer)[0] == "https://app.example/cb"


def test_authorize_lets_a_registered_loopback_redirect_change_only_its_port() -> None:
    with LocalProvider() as provider:
        provider.add_inat_app("cli-app", "cli-secret-0123456789", "http://127.0.0.1:8080/callback")
        ok = authorize(provider, client_id="cli-app", redirect_uri="http://127.0.0.1:9999/callback")
        assert ok.status == 302
        other_path = authorize(
            provider, client_id="cli-app", redirect_uri="http://127.0.0.1:8080/elsewhere"
        )
        assert other_path.status == 400


def test_authorize_denied_redirects_with_access_denied_and_state() -> None:
    with LocalProvider(inat_deny=True) as provider:
        answer = authorize(provider)
        assert answer.status == 302
        params = location(answer)[1]
        assert params["error"] == "access_denied"
        assert params["state"] == "s-123"
        assert "code" not in params


def test_deny_authorizations_can_be_switched_on_and_off() -> None:
    with LocalProvider() as provider:
        provider.deny_authorizations()
        assert location(authorize(provider))[1]["error"] == "access_denied"
        provider.deny_authorizations(False)
        assert "code" in location(authorize(provider))[1]


def test_authorize_with_nobody_signed_in_shows_a_sign_in_page() -> None:
    with LocalProvider(inat_authorize_as=None) as provider:
        answer = authorize(provider)
        assert answer.status == 200
        assert "Location" not in answer.headers
        assert b"Sign in" in answer.body


def test_authorize_other_response_type_redirects_with_unsupported_response_type(
    lp: LocalProvider,
) -> None:
    params = location(authorize(lp, response_type="token"))[1]
    assert params["error"] == "unsupported_response_type"


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge_method": "S512"},
        {"code_challenge": "short"},
        {"code_challenge": None},
    ],
    ids=["method", "challenge-format", "method-without-challenge"],
)
def test_authorize_bad_pkce_redirects_with_invalid_request(
    lp: LocalProvider, overrides: dict[str, str | None]
) -> None:
    params = location(authorize(lp, **overrides))[1]
    assert params["error"] == "invalid_request"


def test_authorize_unknown_scope_redirects_with_invalid_scope(lp: LocalProvider) -> None:
    assert location(authorize(lp, scope="login admin"))[1]["error"] == "invalid_scope"


def test_authorize_repeated_parameter_is_a_400_page(lp: LocalProvider) -> None:
    connection = http.client.HTTPConnection(*lp.server_address, timeout=5)
    try:
        query = urlencode([("client_id", DEMO_INAT_APP_ID), ("client_id", DEMO_INAT_APP_ID)])
        connection.request("GET", "/oauth/authorize?response_type=code&" + query)
        response = connection.getresponse()
        response.read()
        assert response.status == 400
        assert response.getheader("Location") is None
    finally:
        connection.close()


def test_code_with_its_verifier_gives_an_oauth_token_that_trades_for_a_jwt(
    lp: LocalProvider,
) -> None:
    code, verifier = inat_code(lp)
    answer = redeem(lp, code, verifier)
    assert answer.status == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert "expires_in" not in body
    assert body["scope"] == "write login"  # the default scopes
    jwt = call("GET", lp.url + "/users/api_token", bearer=body["access_token"]).json()["api_token"]
    assert whose(lp, jwt) == DEMO_INAT_USERNAME


def test_code_of_a_suspended_user_is_refused_with_401_suspended(lp: LocalProvider) -> None:
    code, verifier = inat_code(lp)
    with marked(lp, "suspended"):
        answer = redeem(lp, code, verifier)
    assert (answer.status, answer.json()["error"]) == (401, "suspended")


def test_code_with_app_secret_in_basic_auth_is_accepted(lp: LocalProvider) -> None:
    code, verifier = inat_code(lp)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": LOOPBACK,
        "code_verifier": verifier,
    }
    answer = call(
        "POST",
        lp.url + "/oauth/token",
        form=form,
        auth=(DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET),
    )
    assert answer.status == 200


def test_code_with_a_wrong_app_secret_is_invalid_client(lp: LocalProvider) -> None:
    code, verifier = inat_code(lp)
    answer = redeem(lp, code, verifier, client_secret="wrong-secret")
    assert (answer.status, answer.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("verifier", [None, "x" * 43], ids=["missing", "wrong"])
def test_code_without_the_right_verifier_is_invalid_grant(
    lp: LocalProvider, verifier: str | None
) -> None:
    code, _ = inat_code(lp)
    answer = redeem(lp, code, verifier)
    assert (answer.status, answer.json()["error"]) == (400, "invalid_grant")


def test_code_with_another_redirect_uri_is_invalid_grant(lp: LocalProvider) -> None:
    code, verifier = inat_code(lp)
    answer = redeem(lp, code, verifier, redirect_uri="http://127.0.0.1:1/callback")
    assert (answer.status, answer.json()["error"]) == (400, "invalid_grant")


def test_code_of_another_app_is_invalid_grant() -> None:
    with LocalProvider() as provider:
        provider.add_inat_app("other-app", "other-secret-0123456789")
        code, verifier = inat_code(provider)
        answer = redeem(
            provider, code, verifier, client_id="other-app", client_secret="other-secret-0123456789"
        )
        assert (answer.status, answer.json()["error"]) == (400, "invalid_grant")


def test_replayed_code_is_refused_and_its_token_revoked(lp: LocalProvider) -> None:
    code, verifier = inat_code(lp)
    token = redeem(lp, code, verifier).json()["access_token"]
    again = redeem(lp, code, verifier)
    assert (again.status, again.json()["error"]) == (400, "invalid_grant")
    assert not lp.is_active(token)


def test_expired_code_is_invalid_grant() -> None:
    with LocalProvider(inat_code_lifetime=0) as provider:
        code, verifier = inat_code(provider)
        answer = redeem(provider, code, verifier)
        assert (answer.status, answer.json()["error"]) == (400, "invalid_grant")


def test_code_without_pkce_needs_the_app_secret(lp: LocalProvider) -> None:
    answer = authorize(lp, code_challenge=None, code_challenge_method=None)
    code = location(answer)[1]["code"]
    public = redeem(lp, code, None)
    assert (public.status, public.json()["error"]) == (401, "invalid_client")
    confidential = redeem(lp, code, None, client_secret=DEMO_INAT_APP_SECRET)
    assert confidential.status == 200


def test_plain_pkce_method_is_checked_too(lp: LocalProvider) -> None:
    verifier = "v" * 50
    answer = authorize(lp, code_challenge=verifier, code_challenge_method="plain")
    code = location(answer)[1]["code"]
    assert redeem(lp, code, "w" * 50).status == 400
    assert redeem(lp, code, verifier).status == 200


def test_code_grant_without_code_is_invalid_request(lp: LocalProvider) -> None:
    answer = redeem(lp, "", "x" * 43)
    assert (answer.status, answer.json()["error"]) == (400, "invalid_request")
