"""The local provider emulator: every behaviour and every refusal, spoken to with urllib only."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import socket
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit

import pytest

from keyfob.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    DEMO_PASSWORD,
    DEMO_TREESNAP_USER,
    DEMO_TWITTER_API_KEY,
    DEMO_TWITTER_API_SECRET,
    DEMO_USERNAME,
    LocalProvider,
)

FORM = "application/x-www-form-urlencoded"


# --------------------------------------------------------------------------- helpers
@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def basic(user: str, secret: str) -> str:
    raw = f"{quote_plus(user)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def call(
    method: str,
    url: str,
    *,
    form: dict[str, str] | None = None,
    json_body: Any = None,
    raw: bytes | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    bearer: str | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 5,
) -> Answer:
    data: bytes | None = None
    all_headers = dict(headers or {})
    if form is not None:
        data = urlencode(form).encode()
        all_headers.setdefault("Content-Type", FORM)
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    elif raw is not None:
        data = raw
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    if bearer is not None:
        all_headers["Authorization"] = f"Bearer {bearer}"
    if auth is not None:
        all_headers["Authorization"] = basic(*auth)
    request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as err:
        with err:
            return Answer(err.code, err.headers, err.read())


def b64url_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    header, payload, signature = token.split(".")
    sig = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    return b64url_json(header), b64url_json(payload), sig


@pytest.fixture(scope="module")
def lp() -> Iterator[LocalProvider]:
    provider = LocalProvider().start()
    yield provider
    provider.stop()
    assert provider.errors == []


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "lp" in request.fixturenames:
        request.getfixturevalue("lp").clear_faults()


@pytest.fixture(scope="module")
def short() -> Iterator[LocalProvider]:
    """Tokens that expire within a second."""
    with LocalProvider(access_token_lifetime=1, jwt_lifetime=1) as provider:
        yield provider


# iNaturalist helpers
def inat_token(lp: LocalProvider, **overrides: str) -> Answer:
    form = {
        "grant_type": "password",
        "client_id": DEMO_INAT_APP_ID,
        "client_secret": DEMO_INAT_APP_SECRET,
        "username": DEMO_INAT_USERNAME,
        "password": DEMO_INAT_PASSWORD,
        **overrides,
    }
    return call("POST", lp.url + "/oauth/token", form=form)


def inat_oauth(lp: LocalProvider, **overrides: str) -> str:
    answer = inat_token(lp, **overrides)
    assert answer.status == 200
    token: str = answer.json()["access_token"]
    return token


def inat_jwt(lp: LocalProvider, **overrides: str) -> str:
    answer = call("GET", lp.url + "/users/api_token", bearer=inat_oauth(lp, **overrides))
    assert answer.status == 200
    token: str = answer.json()["api_token"]
    return token


def observation(lp: LocalProvider, authorization: str | None, obs_id: int = 42) -> Answer:
    headers = {} if authorization is None else {"Authorization": authorization}
    return call("GET", f"{lp.url}/v1/observations/{obs_id}", headers=headers)


# TreeSnap helpers
def ts_refresh(lp: LocalProvider, header: str | None, body: str | None) -> Answer:
    form = {} if body is None else {"access_token": body}
    return call("POST", lp.url + "/web-services/v1/refresh-tokens", form=form, bearer=header)


def ts_observations(lp: LocalProvider, token: str | None) -> Answer:
    return call("GET", lp.url + "/web-services/v1/my-observations", bearer=token)


# Twitter helpers
def tw_token(
    lp: LocalProvider,
    auth: tuple[str, str] | None = (DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET),
    form: dict[str, str] | None = None,
) -> Answer:
    body = {"grant_type": "client_credentials"} if form is None else form
    return call("POST", lp.url + "/oauth2/token", form=body, auth=auth)


def tw_invalidate(
    lp: LocalProvider,
    token: str,
    auth: tuple[str, str] = (DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET),
) -> Answer:
    form = {"access_token": token}
    return call("POST", lp.url + "/oauth2/invalidate_token", form=form, auth=auth)


# /std helpers
STD_CLIENT = (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def std_token(
    lp: LocalProvider, form: dict[str, str], auth: tuple[str, str] | None = STD_CLIENT
) -> Answer:
    return call("POST", lp.url + "/std/token", form=form, auth=auth)


def std_password(lp: LocalProvider, **extra: str) -> dict[str, Any]:
    form = {"grant_type": "password", "username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    answer = std_token(lp, {**form, **extra})
    assert answer.status == 200
    payload: dict[str, Any] = answer.json()
    return payload


def std_introspect(lp: LocalProvider, token: str) -> dict[str, Any]:
    answer = call("POST", lp.url + "/std/introspect", form={"token": token}, auth=STD_CLIENT)
    assert answer.status == 200
    payload: dict[str, Any] = answer.json()
    return payload


def std_me(lp: LocalProvider, token: str | None) -> Answer:
    return call("GET", lp.url + "/std/api/me", bearer=token)


# --------------------------------------------------------------------------- lifecycle
def test_binds_loopback_on_an_ephemeral_port(lp: LocalProvider) -> None:
    host, port = lp.server_address
    assert host == "127.0.0.1"
    assert port != 0
    assert lp.url == f"http://127.0.0.1:{port}"


def test_refuses_to_bind_anything_but_loopback() -> None:
    with pytest.raises(ValueError):
        LocalProvider(host="0.0.0.0")


def test_stop_closes_the_listening_socket() -> None:
    provider = LocalProvider().start()
    host, port = provider.server_address
    provider.stop()
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=1):
        pass


def test_stop_closes_kept_alive_connections() -> None:
    # urllib always says "Connection: close"; http.client (what urllib uses) can keep alive.
    provider = LocalProvider().start()
    host, port = provider.server_address
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/2/users/me")
        response = connection.getresponse()
        response.read()
        assert response.status == 401
        assert not response.will_close
        provider.stop()
        with pytest.raises((OSError, http.client.HTTPException)):
            connection.request("GET", "/2/users/me")
            connection.getresponse().read()
    finally:
        connection.close()
        provider.stop()


def test_context_manager_starts_and_stops() -> None:
    with LocalProvider() as provider:
        assert call("GET", provider.url + "/std/.well-known/openid-configuration").status == 200
    with pytest.raises(RuntimeError):
        _ = provider.server_address


def test_nothing_is_logged_or_printed(lp: LocalProvider, capfd: pytest.CaptureFixture[str]) -> None:
    call("GET", lp.url + "/std/api/me?client_secret=" + DEMO_CLIENT_SECRET)
    call("GET", lp.url + "/nowhere?password=" + DEMO_PASSWORD)
    inat_token(lp, password="wrong-" + DEMO_INAT_PASSWORD)
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_unknown_path_is_404_json(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/no/such/thing")
    assert answer.status == 404
    assert answer.json() == {"error": "not_found"}


def test_wrong_method_is_405_with_allow(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/oauth/token")
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"


def test_bad_json_body_is_invalid_request(lp: LocalProvider) -> None:
    answer = call(
        "POST", lp.url + "/oauth/token", raw=b"{not json", content_type="application/json"
    )
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_unsupported_body_type_is_invalid_request(lp: LocalProvider) -> None:
    answer = call(
        "POST", lp.url + "/std/token", raw=b"grant_type=password", content_type="text/plain"
    )
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_repeated_form_parameter_is_invalid_request(lp: LocalProvider) -> None:
    raw = b"grant_type=client_credentials&grant_type=password"
    answer = call("POST", lp.url + "/std/token", raw=raw, content_type=FORM, auth=STD_CLIENT)
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_post_parameters_in_the_query_string_are_refused(lp: LocalProvider) -> None:
    query = urlencode({"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET})
    answer = call("POST", f"{lp.url}/std/token?{query}", form={"grant_type": "client_credentials"})
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_json_bodies_are_accepted(lp: LocalProvider) -> None:
    body = {
        "grant_type": "password",
        "client_id": DEMO_INAT_APP_ID,
        "client_secret": DEMO_INAT_APP_SECRET,
        "username": DEMO_INAT_USERNAME,
        "password": DEMO_INAT_PASSWORD,
    }
    answer = call("POST", lp.url + "/oauth/token", json_body=body)
    assert answer.status == 200
    assert "access_token" in answer.json()


def test_concurrent_requests_are_all_answered(lp: LocalProvider) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        status = inat_token(lp).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16


# --------------------------------------------------------------------------- iNaturalist
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


def test_inat_wrong_password_is_invalid_grant(lp: LocalProvider) -> None:
    answer = inat_token(lp, password="not-the-password")
    assert answer.status == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "The provided authorization grant is invalid, expired, revoked, "
        "does not match the redirection URI used in the authorization request, or was issued "
        "to another client.",
    }


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
    answer = inat_token(lp, grant_type="client_credentials")
    assert answer.status == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_inat_missing_password_is_invalid_request(lp: LocalProvider) -> None:
    answer = inat_token(lp, password="")
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_inat_api_token_is_an_hs512_jwt_with_user_claims(lp: LocalProvider) -> None:
    header, payload, signature = jwt_parts(inat_jwt(lp))
    assert header["alg"] == "HS512"
    assert len(signature) == 64
    assert payload["login"] == DEMO_INAT_USERNAME
    assert isinstance(payload["user_id"], int)
    assert payload["exp"] - payload["iat"] == 86400
    assert abs(payload["iat"] - time.time()) < 5


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


def test_inat_observation_with_revoked_jwt_is_401(lp: LocalProvider) -> None:
    jwt = inat_jwt(lp)
    lp.revoke(jwt)
    assert observation(lp, jwt).status == 401


def test_inat_observation_with_expired_jwt_is_401(short: LocalProvider) -> None:
    jwt = inat_jwt(short)
    assert observation(short, jwt).status == 200
    time.sleep(1.1)
    assert observation(short, jwt).status == 401
    assert not short.is_active(jwt)


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


# --------------------------------------------------------------------------- TreeSnap
def test_treesnap_issued_token_is_an_hs256_jwt(lp: LocalProvider) -> None:
    header, payload, signature = jwt_parts(lp.issue_treesnap_token())
    assert header["alg"] == "HS256"
    assert len(signature) == 32
    assert set(payload) == {"sub", "jti", "iat", "exp"}
    assert isinstance(payload["sub"], str)
    assert payload["exp"] - payload["iat"] == 365 * 86400


def test_treesnap_refresh_success_shape(lp: LocalProvider) -> None:
    old = lp.issue_treesnap_token()
    answer = ts_refresh(lp, old, old)
    assert answer.status == 200
    payload = answer.json()
    assert payload["error_code"] == 0
    assert payload["message"] == "Token refreshed."
    assert payload["expires_at"]["timezone_type"] == 3
    assert payload["expires_at"]["timezone"] == "UTC"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000", payload["expires_at"]["date"])
    _, old_claims, _ = jwt_parts(old)
    _, new_claims, _ = jwt_parts(payload["access_token"])
    assert new_claims["sub"] == old_claims["sub"]
    assert new_claims["jti"] != old_claims["jti"]
    assert new_claims["exp"] - new_claims["iat"] == 365 * 86400


def test_treesnap_refreshed_token_works_and_old_one_is_revoked(lp: LocalProvider) -> None:
    old = lp.issue_treesnap_token()
    new = ts_refresh(lp, old, old).json()["access_token"]
    assert ts_observations(lp, new).status == 200
    assert ts_observations(lp, old).status == 401
    assert ts_refresh(lp, old, old).status == 401


def test_treesnap_differing_tokens_is_200_error_1100(lp: LocalProvider) -> None:
    answer = ts_refresh(lp, lp.issue_treesnap_token(), lp.issue_treesnap_token())
    assert answer.status == 200
    assert answer.json() == {
        "error_code": 1100,
        "message": "The access token in the header does not match the token in the request body.",
    }


def test_treesnap_unknown_token_is_401_error_1000(lp: LocalProvider) -> None:
    answer = ts_refresh(lp, "not-a-treesnap-token", "not-a-treesnap-token")
    assert answer.status == 401
    assert answer.json() == {"error_code": 1000, "message": "The access token does not exist."}


def test_treesnap_expired_token_is_401_error_1000(lp: LocalProvider) -> None:
    expired = lp.issue_treesnap_token(lifetime=-10)
    answer = ts_refresh(lp, expired, expired)
    assert answer.status == 401
    assert answer.json()["error_code"] == 1000


def test_treesnap_revoked_token_is_401_error_1000(lp: LocalProvider) -> None:
    token = lp.issue_treesnap_token()
    lp.revoke(token)
    assert ts_refresh(lp, token, token).status == 401


def test_treesnap_missing_body_token_is_400_error_1000(lp: LocalProvider) -> None:
    answer = ts_refresh(lp, lp.issue_treesnap_token(), None)
    assert answer.status == 400
    assert answer.json()["error_code"] == 1000


def test_treesnap_missing_header_token_is_400_error_1000(lp: LocalProvider) -> None:
    answer = ts_refresh(lp, None, lp.issue_treesnap_token())
    assert answer.status == 400
    assert answer.json()["error_code"] == 1000


def test_treesnap_refresh_accepts_a_json_body(lp: LocalProvider) -> None:
    token = lp.issue_treesnap_token()
    answer = call(
        "POST",
        lp.url + "/web-services/v1/refresh-tokens",
        json_body={"access_token": token},
        bearer=token,
    )
    assert answer.status == 200
    assert answer.json()["error_code"] == 0


def test_treesnap_observations_with_valid_token(lp: LocalProvider) -> None:
    answer = ts_observations(lp, lp.issue_treesnap_token(DEMO_TREESNAP_USER))
    assert answer.status == 200
    assert answer.json() == {"data": [{"id": 1, "observation_category": "American Chestnut"}]}


def test_treesnap_observations_without_token_is_unauthenticated(lp: LocalProvider) -> None:
    answer = ts_observations(lp, None)
    assert answer.status == 401
    assert answer.json() == {"message": "Unauthenticated."}


# --------------------------------------------------------------------------- Twitter / X
def test_twitter_token_success_shape(lp: LocalProvider) -> None:
    answer = tw_token(lp)
    assert answer.status == 200
    payload = answer.json()
    assert set(payload) == {"token_type", "access_token"}
    assert payload["token_type"] == "bearer"
    assert payload["access_token"].startswith("AAAAAAAAAAAAAAAAAAAAA")


def test_twitter_returns_the_same_token_until_invalidated(lp: LocalProvider) -> None:
    assert tw_token(lp).json()["access_token"] == tw_token(lp).json()["access_token"]


def test_twitter_wrong_secret_is_403_code_99(lp: LocalProvider) -> None:
    answer = tw_token(lp, auth=(DEMO_TWITTER_API_KEY, "wrong-secret"))
    assert answer.status == 403
    assert answer.json() == {
        "errors": [
            {
                "code": 99,
                "message": "Unable to verify your credentials",
                "label": "authenticity_token_error",
            }
        ]
    }


def test_twitter_missing_credentials_is_403_code_99(lp: LocalProvider) -> None:
    answer = tw_token(lp, auth=None)
    assert answer.status == 403
    assert answer.json()["errors"][0]["code"] == 99


def test_twitter_missing_grant_type_is_403_code_170(lp: LocalProvider) -> None:
    answer = tw_token(lp, form={})
    assert answer.status == 403
    assert answer.json() == {
        "errors": [
            {
                "code": 170,
                "message": "Missing required parameter: grant_type",
                "label": "forbidden_missing_parameter",
            }
        ]
    }


def test_twitter_other_grant_type_is_403_code_170(lp: LocalProvider) -> None:
    answer = tw_token(lp, form={"grant_type": "password"})
    assert answer.status == 403
    assert answer.json()["errors"][0]["code"] == 170


def test_twitter_json_body_is_not_read(lp: LocalProvider) -> None:
    answer = call(
        "POST",
        lp.url + "/oauth2/token",
        json_body={"grant_type": "client_credentials"},
        auth=(DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET),
    )
    assert answer.status == 403
    assert answer.json()["errors"][0]["code"] == 170


def test_twitter_invalidate_then_401_then_a_new_token(lp: LocalProvider) -> None:
    token = tw_token(lp).json()["access_token"]
    assert call("GET", lp.url + "/2/users/me", bearer=token).status == 200
    answer = tw_invalidate(lp, token)
    assert answer.status == 200
    assert answer.json() == {"access_token": token}
    refused = call("GET", lp.url + "/2/users/me", bearer=token)
    assert refused.status == 401
    assert tw_token(lp).json()["access_token"] != token


def test_twitter_invalidate_unknown_token_is_403_code_89(lp: LocalProvider) -> None:
    answer = tw_invalidate(lp, "AAAAAAAAAAAAAAAAAAAAAnot-issued")
    assert answer.status == 403
    assert answer.json() == {"errors": [{"code": 89, "message": "Invalid or expired token."}]}


def test_twitter_invalidate_with_bad_credentials_is_403_code_99(lp: LocalProvider) -> None:
    token = tw_token(lp).json()["access_token"]
    answer = tw_invalidate(lp, token, auth=(DEMO_TWITTER_API_KEY, "wrong-secret"))
    assert answer.status == 403
    assert answer.json()["errors"][0]["code"] == 99
    assert lp.is_active(token)


def test_twitter_users_me_with_valid_token(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/2/users/me", bearer=tw_token(lp).json()["access_token"])
    assert answer.status == 200
    assert answer.json() == {"data": {"id": "1", "username": "demo"}}


def test_twitter_users_me_without_token_is_401(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/2/users/me")
    assert answer.status == 401
    assert answer.json() == {
        "title": "Unauthorized",
        "type": "about:blank",
        "status": 401,
        "detail": "Unauthorized",
    }


def test_basic_credentials_are_form_urlencoded_before_base64(lp: LocalProvider) -> None:
    lp.add_twitter_app("key with+plus", "se:cr/et%")
    assert tw_token(lp, auth=("key with+plus", "se:cr/et%")).status == 200
    unencoded = "Basic " + base64.b64encode(b"key with+plus:se:cr/et%").decode()
    answer = call(
        "POST",
        lp.url + "/oauth2/token",
        form={"grant_type": "client_credentials"},
        headers={"Authorization": unencoded},
    )
    assert answer.status == 403


# --------------------------------------------------------------------------- /std OAuth2
@pytest.mark.parametrize(
    "path", ["/std/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/std"]
)
def test_std_metadata_at_both_discovery_urls(lp: LocalProvider, path: str) -> None:
    answer = call("GET", lp.url + path)
    assert answer.status == 200
    payload = answer.json()
    assert payload["issuer"] == lp.url + "/std"
    assert payload["token_endpoint"] == lp.url + "/std/token"
    assert payload["revocation_endpoint"] == lp.url + "/std/revoke"
    assert payload["introspection_endpoint"] == lp.url + "/std/introspect"
    assert payload["grant_types_supported"] == ["client_credentials", "password", "refresh_token"]
    assert payload["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]


def test_std_client_credentials_success_shape(lp: LocalProvider) -> None:
    answer = std_token(lp, {"grant_type": "client_credentials"})
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "no-store"
    payload = answer.json()
    assert set(payload) == {"access_token", "token_type", "expires_in"}
    assert payload["token_type"] == "Bearer"
    assert payload["expires_in"] == 3600


def test_std_client_auth_in_the_body_is_accepted(lp: LocalProvider) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    assert std_token(lp, form, auth=None).status == 200


def test_std_both_client_auth_methods_is_invalid_request(lp: LocalProvider) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    answer = std_token(lp, form)
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_std_wrong_client_secret_is_401_invalid_client(lp: LocalProvider) -> None:
    answer = std_token(lp, {"grant_type": "client_credentials"}, auth=(DEMO_CLIENT_ID, "wrong"))
    assert answer.status == 401
    assert answer.json()["error"] == "invalid_client"
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="std"'


def test_std_unknown_client_is_401_invalid_client(lp: LocalProvider) -> None:
    form = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
    answer = std_token(lp, form, auth=None)
    assert answer.status == 401
    assert answer.json()["error"] == "invalid_client"


def test_std_missing_client_auth_is_401_invalid_client(lp: LocalProvider) -> None:
    answer = std_token(lp, {"grant_type": "client_credentials"}, auth=None)
    assert answer.status == 401
    assert answer.json()["error"] == "invalid_client"


def test_std_password_grant_returns_a_refresh_token(lp: LocalProvider) -> None:
    payload = std_password(lp)
    assert set(payload) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert payload["token_type"] == "Bearer"


def test_std_wrong_password_is_invalid_grant(lp: LocalProvider) -> None:
    form = {"grant_type": "password", "username": DEMO_USERNAME, "password": "wrong"}
    answer = std_token(lp, form)
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_grant"


def test_std_missing_username_is_invalid_request(lp: LocalProvider) -> None:
    answer = std_token(lp, {"grant_type": "password", "password": DEMO_PASSWORD})
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_std_scope_is_echoed(lp: LocalProvider) -> None:
    answer = std_token(lp, {"grant_type": "client_credentials", "scope": "read write"})
    assert answer.json()["scope"] == "read write"


def test_std_unknown_grant_type_is_unsupported_grant_type(lp: LocalProvider) -> None:
    answer = std_token(lp, {"grant_type": "authorization_code", "code": "abc"})
    assert answer.status == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_std_refresh_rotates_and_the_old_refresh_token_is_invalid_grant(
    lp: LocalProvider,
) -> None:
    first = std_password(lp)
    answer = std_token(lp, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "no-store"
    second = answer.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    reuse = std_token(lp, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert reuse.status == 400
    assert reuse.json()["error"] == "invalid_grant"
    again = std_token(lp, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert again.status == 200


def test_std_refresh_without_rotation_keeps_the_refresh_token() -> None:
    with LocalProvider(rotate_refresh_tokens=False) as provider:
        first = std_password(provider)
        form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        assert std_token(provider, form).json()["refresh_token"] == first["refresh_token"]
        assert std_token(provider, form).status == 200


def test_std_refresh_token_of_another_client_is_invalid_grant(lp: LocalProvider) -> None:
    lp.add_oauth_client("second-client", "second-client-secret")
    refresh = std_password(lp)["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    answer = std_token(lp, form, auth=("second-client", "second-client-secret"))
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_grant"


def test_std_unknown_refresh_token_is_invalid_grant(lp: LocalProvider) -> None:
    answer = std_token(lp, {"grant_type": "refresh_token", "refresh_token": "never-issued"})
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_grant"


def test_std_introspect_active_shape(lp: LocalProvider) -> None:
    token = std_password(lp, scope="read")["access_token"]
    payload = std_introspect(lp, token)
    assert payload["active"] is True
    assert payload["client_id"] == DEMO_CLIENT_ID
    assert payload["username"] == DEMO_USERNAME
    assert payload["scope"] == "read"
    assert payload["token_type"] == "Bearer"
    assert 0 < payload["exp"] - time.time() <= 3600


def test_std_introspect_unknown_token_is_inactive(lp: LocalProvider) -> None:
    assert std_introspect(lp, "never-issued") == {"active": False}


def test_std_revoke_then_introspect_is_inactive(lp: LocalProvider) -> None:
    token = std_password(lp)["access_token"]
    answer = call("POST", lp.url + "/std/revoke", form={"token": token}, auth=STD_CLIENT)
    assert answer.status == 200
    assert std_introspect(lp, token) == {"active": False}
    assert std_me(lp, token).status == 401


def test_std_revoke_unknown_token_is_200(lp: LocalProvider) -> None:
    answer = call("POST", lp.url + "/std/revoke", form={"token": "never-issued"}, auth=STD_CLIENT)
    assert answer.status == 200


def test_std_revoke_needs_client_auth(lp: LocalProvider) -> None:
    answer = call("POST", lp.url + "/std/revoke", form={"token": "whatever"})
    assert answer.status == 401
    assert answer.json()["error"] == "invalid_client"


def test_std_revoking_a_refresh_token_revokes_its_access_tokens(lp: LocalProvider) -> None:
    payload = std_password(lp)
    form = {"token": payload["refresh_token"], "token_type_hint": "refresh_token"}
    assert call("POST", lp.url + "/std/revoke", form=form, auth=STD_CLIENT).status == 200
    assert std_introspect(lp, payload["access_token"]) == {"active": False}
    refresh = std_token(lp, {"grant_type": "refresh_token", "refresh_token": form["token"]})
    assert refresh.json()["error"] == "invalid_grant"


def test_std_api_me_with_a_valid_token(lp: LocalProvider) -> None:
    answer = std_me(lp, std_password(lp)["access_token"])
    assert answer.status == 200
    assert answer.json() == {"sub": DEMO_USERNAME, "client_id": DEMO_CLIENT_ID}


def test_std_api_me_with_a_client_credentials_token_names_the_client(lp: LocalProvider) -> None:
    token = std_token(lp, {"grant_type": "client_credentials"}).json()["access_token"]
    assert std_me(lp, token).json() == {"sub": DEMO_CLIENT_ID, "client_id": DEMO_CLIENT_ID}


def test_std_api_me_with_a_bad_token_is_401_invalid_token(lp: LocalProvider) -> None:
    answer = std_me(lp, "never-issued")
    assert answer.status == 401
    assert answer.json() == {"error": "invalid_token"}
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert answer.headers["WWW-Authenticate"].startswith("Bearer ")


def test_std_api_me_without_a_token_is_401(lp: LocalProvider) -> None:
    answer = std_me(lp, None)
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer ")


def test_std_expired_access_token_is_inactive_and_refused(short: LocalProvider) -> None:
    payload = std_password(short)
    assert payload["expires_in"] == 1
    assert std_me(short, payload["access_token"]).status == 200
    time.sleep(1.1)
    assert std_introspect(short, payload["access_token"]) == {"active": False}
    assert std_me(short, payload["access_token"]).status == 401
    assert not short.is_active(payload["access_token"])
    refreshed = std_token(
        short, {"grant_type": "refresh_token", "refresh_token": payload["refresh_token"]}
    )
    assert refreshed.status == 200


# --------------------------------------------------------------------------- provider controls
def test_revoke_makes_any_kind_of_token_inactive(lp: LocalProvider) -> None:
    tokens = [
        inat_oauth(lp),
        inat_jwt(lp),
        lp.issue_treesnap_token(),
        tw_token(lp).json()["access_token"],
        std_password(lp)["access_token"],
        std_password(lp)["refresh_token"],
    ]
    for token in tokens:
        assert lp.is_active(token)
        lp.revoke(token)
        assert not lp.is_active(token)


def test_revoking_the_twitter_token_makes_the_next_one_new(lp: LocalProvider) -> None:
    token = tw_token(lp).json()["access_token"]
    lp.revoke(token)
    assert call("GET", lp.url + "/2/users/me", bearer=token).status == 401
    assert tw_token(lp).json()["access_token"] != token


def test_count_counts_every_request_on_a_path_ignoring_the_query(lp: LocalProvider) -> None:
    path = "/std/.well-known/openid-configuration"
    before = lp.count(path)
    call("GET", lp.url + path)
    call("GET", lp.url + path + "?x=1")
    call("POST", lp.url + path, form={"a": "b"})
    assert lp.count(path) == before + 3


def test_count_includes_faulted_and_unknown_paths(lp: LocalProvider) -> None:
    lp.fail("/counted/path", 503)
    call("GET", lp.url + "/counted/path")
    call("GET", lp.url + "/counted/path")
    assert lp.count("/counted/path") == 2


def test_reset_counts_sets_every_count_to_zero(lp: LocalProvider) -> None:
    call("GET", lp.url + "/2/users/me")
    lp.reset_counts()
    assert lp.count("/2/users/me") == 0


def test_delay_sleeps_before_answering(lp: LocalProvider) -> None:
    lp.delay("/2/users/me", 0.3, times=1)
    started = time.monotonic()
    call("GET", lp.url + "/2/users/me")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    call("GET", lp.url + "/2/users/me")
    assert time.monotonic() - started < 0.25


def test_delay_longer_than_the_client_timeout_times_out(lp: LocalProvider) -> None:
    lp.delay("/2/users/me", 0.5, times=1)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        call("GET", lp.url + "/2/users/me", timeout=0.1)


def test_delay_without_times_applies_to_every_request(lp: LocalProvider) -> None:
    lp.delay("/2/users/me", 0.15)
    started = time.monotonic()
    call("GET", lp.url + "/2/users/me")
    call("GET", lp.url + "/2/users/me")
    call("GET", lp.url + "/2/users/me")
    assert time.monotonic() - started >= 0.45


def test_fail_answers_the_status_with_retry_after(lp: LocalProvider) -> None:
    lp.fail("/std/token", 429, retry_after="2")
    answer = std_token(lp, {"grant_type": "client_credentials"})
    assert answer.status == 429
    assert answer.headers["Retry-After"] == "2"
    assert answer.json() == {"error": "temporarily_unavailable"}


def test_fail_without_retry_after_has_no_header(lp: LocalProvider) -> None:
    lp.fail("/std/token", 503)
    answer = std_token(lp, {"grant_type": "client_credentials"})
    assert answer.status == 503
    assert "Retry-After" not in answer.headers


def test_fail_times_then_recovers(lp: LocalProvider) -> None:
    lp.fail("/std/token", 503, times=2)
    statuses = [std_token(lp, {"grant_type": "client_credentials"}).status for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_faults_are_consumed_in_order(lp: LocalProvider) -> None:
    lp.fail("/std/token", 503)
    lp.garbage("/std/token", "text")
    lp.fail("/std/token", 429)
    first, second, third, fourth = (
        std_token(lp, {"grant_type": "client_credentials"}) for _ in range(4)
    )
    assert first.status == 503
    assert (second.status, second.body) == (200, b"OK")
    assert third.status == 429
    assert fourth.status == 200


def test_faults_apply_only_to_their_path(lp: LocalProvider) -> None:
    lp.fail("/oauth/token", 503)
    assert std_token(lp, {"grant_type": "client_credentials"}).status == 200
    assert inat_token(lp).status == 503


def test_garbage_html_is_a_200_html_page(lp: LocalProvider) -> None:
    lp.garbage("/oauth/token", "html")
    answer = inat_token(lp)
    assert answer.status == 200
    assert answer.headers.get_content_type() == "text/html"
    assert answer.body.lstrip().lower().startswith(b"<!doctype html>")


def test_garbage_text_is_a_200_plain_ok(lp: LocalProvider) -> None:
    lp.garbage("/oauth/token", "text")
    answer = inat_token(lp)
    assert answer.status == 200
    assert answer.headers.get_content_type() == "text/plain"
    assert answer.body == b"OK"


def test_garbage_json_array_is_an_empty_list(lp: LocalProvider) -> None:
    lp.garbage("/oauth2/token", "json_array")
    answer = tw_token(lp)
    assert answer.status == 200
    assert answer.headers.get_content_type() == "application/json"
    assert answer.json() == []


def test_garbage_no_access_token_has_only_token_type(lp: LocalProvider) -> None:
    lp.garbage("/std/token", "no_access_token")
    answer = std_token(lp, {"grant_type": "client_credentials"})
    assert answer.status == 200
    payload = answer.json()
    assert "access_token" not in payload
    assert payload["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("kind", "value"),
    [("expires_in_string", "3599"), ("expires_in_garbage", "soon"), ("expires_in_negative", -5)],
)
def test_garbage_expires_in_kinds_spoil_a_real_success(
    lp: LocalProvider, kind: str, value: object
) -> None:
    lp.garbage("/std/token", kind)
    answer = std_token(lp, {"grant_type": "client_credentials"})
    assert answer.status == 200
    payload = answer.json()
    assert payload["expires_in"] == value
    assert lp.is_active(payload["access_token"])


def test_garbage_truncated_is_half_a_json_body(lp: LocalProvider) -> None:
    lp.garbage("/std/token", "truncated")
    answer = std_token(lp, {"grant_type": "client_credentials"})
    assert answer.status == 200
    assert answer.headers.get_content_type() == "application/json"
    assert answer.body.startswith(b'{"access_token":')
    with pytest.raises(json.JSONDecodeError):
        answer.json()


def test_garbage_times_then_recovers(lp: LocalProvider) -> None:
    lp.garbage("/oauth2/token", "text", times=2)
    bodies = [tw_token(lp).body for _ in range(3)]
    assert bodies[:2] == [b"OK", b"OK"]
    assert "access_token" in json.loads(bodies[2])


def test_garbage_unknown_kind_is_refused(lp: LocalProvider) -> None:
    with pytest.raises(ValueError):
        lp.garbage("/std/token", "teapot")


def test_clear_faults_forgets_pending_faults(lp: LocalProvider) -> None:
    lp.fail("/std/token", 503, times=5)
    lp.clear_faults("/std/token")
    assert std_token(lp, {"grant_type": "client_credentials"}).status == 200


def test_config_toml_points_the_providers_here(lp: LocalProvider) -> None:
    config = tomllib.loads(lp.config_toml())
    u = lp.url
    assert config == {
        "providers": {
            "inaturalist": {
                "token_url": f"{u}/oauth/token",
                "authorize_url": f"{u}/oauth/authorize",
                "jwt_url": f"{u}/users/api_token",
                "revoke_url": f"{u}/oauth/revoke",
                "api_url": f"{u}/v1",
            },
            "treesnap": {
                "refresh_url": f"{u}/web-services/v1/refresh-tokens",
                "api_url": f"{u}/web-services/v1",
            },
            "twitter": {
                "token_url": f"{u}/oauth2/token",
                "revoke_url": f"{u}/oauth2/invalidate_token",
                "api_url": f"{u}/2",
            },
            "local": {"issuer": f"{u}/std", "grant": "password", "env_prefix": "LOCAL"},
        }
    }


def test_environ_holds_the_demo_credentials(lp: LocalProvider) -> None:
    assert lp.environ() == {
        "INAT_USERNAME": DEMO_INAT_USERNAME,
        "INAT_PASSWORD": DEMO_INAT_PASSWORD,
        "INAT_APP_ID": DEMO_INAT_APP_ID,
        "INAT_APP_SECRET": DEMO_INAT_APP_SECRET,
        "TWITTER_API_KEY": DEMO_TWITTER_API_KEY,
        "TWITTER_API_SECRET": DEMO_TWITTER_API_SECRET,
        "LOCAL_CLIENT_ID": DEMO_CLIENT_ID,
        "LOCAL_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "LOCAL_USERNAME": DEMO_USERNAME,
        "LOCAL_PASSWORD": DEMO_PASSWORD,
    }


def test_without_demo_accounts_demo_credentials_are_refused() -> None:
    with LocalProvider(demo_accounts=False) as provider:
        assert inat_token(provider).status == 401
        assert tw_token(provider).status == 403
        assert std_token(provider, {"grant_type": "client_credentials"}).status == 401


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
    jwt = call("GET", lp.url + "/users/api_token", bearer=body["access_token"]).json()["api_token"]
    assert jwt_parts(jwt)[1]["login"] == DEMO_INAT_USERNAME


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
