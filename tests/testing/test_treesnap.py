"""The emulated TreeSnap: personal access tokens, their refresh call, the API."""

from __future__ import annotations

import re

from keyfob.testing import DEMO_TREESNAP_USER, LocalProvider
from testing.client import call, jwt_parts, ts_observations, ts_refresh


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
