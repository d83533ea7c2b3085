"""The emulated plain OAuth2 server under /std: discovery, grants, refresh rotation, revocation,
introspection, the API."""

from __future__ import annotations

import time

import pytest

from keyfob.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    LocalProvider,
)
from testing.client import STD_CLIENT, call, std_introspect, std_me, std_password, std_token


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
    assert payload["device_authorization_endpoint"] == lp.url + "/std/device"
    assert payload["grant_types_supported"] == [
        "client_credentials",
        "password",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    ]
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
