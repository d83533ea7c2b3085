"""The emulated Twitter/X: app-only bearer tokens, invalidation, the API."""

from __future__ import annotations

import base64

from keyfob.testing import DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET, LocalProvider
from testing.client import call, tw_invalidate, tw_token


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
    assert call("GET", lp.url + "/2/tweets/search/recent", bearer=token).status == 200
    answer = tw_invalidate(lp, token)
    assert answer.status == 200
    assert answer.json() == {"access_token": token}
    refused = call("GET", lp.url + "/2/tweets/search/recent", bearer=token)
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


def test_twitter_search_with_an_app_only_token(lp: LocalProvider) -> None:
    answer = call(
        "GET", lp.url + "/2/tweets/search/recent", bearer=tw_token(lp).json()["access_token"]
    )
    assert answer.status == 200
    assert answer.json() == {"meta": {"result_count": 0}}


def test_twitter_search_without_token_is_401(lp: LocalProvider) -> None:
    answer = call("GET", lp.url + "/2/tweets/search/recent")
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
