"""The emulated OAuth 1.0a server as X serves it, driven by oauthlib's own Client.

The three-legged PIN and callback flows end to end, and every request a strict server
refuses, each answered as X answers it. Counted at the server where it matters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from oauthlib.oauth1 import Client

from keyfob.testing import DEMO_TWITTER_API_KEY, LocalProvider
from testing.oauth1_client import (
    CALLBACK,
    HTTP,
    access_token,
    authorize,
    consumer,
    form,
    login,
    pin_of,
    request_token,
    send,
    signed_by,
    verifier_of,
    x_error,
)

VERIFY = "/1.1/account/verify_credentials.json"
UPDATE = "/1.1/statuses/update.json"


@pytest.fixture(scope="module")
def user(lp: LocalProvider) -> tuple[str, str]:
    """An access token and secret of the demo user, by the PIN flow."""
    return login(lp)


@pytest.fixture
def switches(lp: LocalProvider) -> Iterator[LocalProvider]:
    """The shared emulator, its OAuth 1.0a switches set back after the test."""
    yield lp
    lp.oauth1_deny = lp.oauth1_forge_callback = False
    lp.oauth1_authorize_as = "demo"


# --------------------------------------------------------------------------- the flows
def test_pin_flow_end_to_end(lp: LocalProvider) -> None:
    token, secret = request_token(lp, callback="oob")
    page = authorize(lp, token)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    pin = pin_of(page)
    assert len(pin) == 7 and pin == lp.oauth1_verifier(token)
    before = lp.count("/oauth/access_token")
    answer = access_token(lp, token, secret, pin)
    assert answer.status_code == 200
    got = form(answer)
    assert list(got) == ["oauth_token", "oauth_token_secret", "user_id", "screen_name"]
    assert got["user_id"] == "1234567890" and got["screen_name"] == "demo"
    assert got["oauth_token"].startswith("1234567890-")
    assert lp.count("/oauth/access_token") == before + 1
    me = send(lp.url + VERIFY, signed_by(got["oauth_token"], got["oauth_token_secret"]))
    assert me.status_code == 200 and me.json()["screen_name"] == "demo"


def test_callback_flow_end_to_end_and_a_signed_form_body(lp: LocalProvider) -> None:
    token, secret = request_token(lp, callback=CALLBACK)
    redirect = authorize(lp, token)
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    verifier = verifier_of(redirect, token)
    got = form(access_token(lp, token, secret, verifier))
    posted = send(
        lp.url + UPDATE,
        signed_by(got["oauth_token"], got["oauth_token_secret"]),
        method="POST",
        data={"status": "Hello from the emulator! 100% signed & sealed"},
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["text"] == "Hello from the emulator! 100% signed & sealed"
    assert lp.x_statuses()[-1] == "Hello from the emulator! 100% signed & sealed"


def test_users_me_takes_an_oauth1_signed_request(lp: LocalProvider, user: tuple[str, str]) -> None:
    answer = send(lp.url + "/2/users/me", signed_by(*user))
    assert answer.status_code == 200
    assert answer.json()["data"]["username"] == "demo"
    assert int(answer.headers["x-rate-limit-remaining"]) < int(answer.headers["x-rate-limit-limit"])


def test_query_signature_type_on_a_post(lp: LocalProvider) -> None:
    token, _ = request_token(lp, signature_type="QUERY")
    assert token


def test_sign_in_page_when_nobody_is_signed_in(switches: LocalProvider) -> None:
    token, _ = request_token(switches)
    switches.oauth1_authorize_as = None
    page = authorize(switches, token)
    assert page.status_code == 200 and "Sign in" in page.text
    assert switches.oauth1_verifier(token) is None


# --------------------------------------------------------------------------- refused
def test_wrong_consumer_secret(lp: LocalProvider, user: tuple[str, str]) -> None:
    client = Client(
        DEMO_TWITTER_API_KEY,
        client_secret="wrong-secret",
        resource_owner_key=user[0],
        resource_owner_secret=user[1],
    )
    answer = send(lp.url + VERIFY, client)
    assert x_error(answer) == (401, 32)
    assert answer.json()["errors"][0]["message"] == "Could not authenticate you."


def test_wrong_consumer_secret_at_request_token(lp: LocalProvider) -> None:
    client = Client(**consumer(client_secret="wrong-secret", callback_uri="oob"))
    answer = send(lp.oauth1_urls(x=True)["request_token"], client, method="POST")
    assert x_error(answer) == (401, 32)


def test_wrong_token_secret(lp: LocalProvider, user: tuple[str, str]) -> None:
    answer = send(lp.url + VERIFY, signed_by(user[0], "wrong-token-secret"))
    assert x_error(answer) == (401, 32)


def test_unknown_consumer_key(lp: LocalProvider) -> None:
    client = Client("unknown-consumer-key", client_secret="whatever", callback_uri="oob")
    answer = send(lp.oauth1_urls(x=True)["request_token"], client, method="POST")
    assert x_error(answer) == (401, 32)


def test_reused_nonce_is_refused(lp: LocalProvider, user: tuple[str, str]) -> None:
    uri, headers, _ = signed_by(*user).sign(lp.url + VERIFY)
    before = lp.count(VERIFY)
    first = HTTP.get(uri, headers=headers)
    again = HTTP.get(uri, headers=headers)
    assert first.status_code == 200
    assert x_error(again) == (401, 32)
    assert lp.count(VERIFY) == before + 2  # both arrived; the second was refused


def test_stale_timestamp_is_refused(lp: LocalProvider, user: tuple[str, str]) -> None:
    stale = str(int(time.time()) - 3600)
    answer = send(lp.url + VERIFY, signed_by(*user, timestamp=stale))
    assert x_error(answer) == (401, 135)
    assert answer.json()["errors"][0]["message"] == "Timestamp out of bounds."


def test_future_timestamp_is_refused_at_request_token(lp: LocalProvider) -> None:
    future = str(int(time.time()) + 3600)
    client = Client(**consumer(callback_uri="oob", timestamp=future))
    answer = send(lp.oauth1_urls(x=True)["request_token"], client, method="POST")
    assert x_error(answer) == (401, 135)


def test_form_body_left_out_of_the_signature(lp: LocalProvider, user: tuple[str, str]) -> None:
    before = lp.x_statuses()
    answer = send(
        lp.url + UPDATE,
        signed_by(*user),
        method="POST",
        data={"status": "unsigned words"},
        sign_body=False,
    )
    assert x_error(answer) == (401, 32)
    assert lp.x_statuses() == before


def test_tampered_query_is_refused(lp: LocalProvider, user: tuple[str, str]) -> None:
    signed = lp.url + VERIFY + "?include_email=false"
    answer = send(signed, signed_by(*user), send_url=lp.url + VERIFY + "?include_email=true")
    assert x_error(answer) == (401, 32)


def test_tampered_path_is_refused(lp: LocalProvider, user: tuple[str, str]) -> None:
    answer = send(lp.url + "/2/users/me", signed_by(*user), send_url=lp.url + VERIFY)
    assert x_error(answer) == (401, 32)


def test_verifier_of_another_request_token(lp: LocalProvider) -> None:
    token_a, secret_a = request_token(lp, callback=CALLBACK)
    token_b, _ = request_token(lp, callback=CALLBACK)
    verifier_of(authorize(lp, token_a), token_a)
    verifier_b = verifier_of(authorize(lp, token_b), token_b)
    answer = access_token(lp, token_a, secret_a, verifier_b)
    assert answer.status_code == 401
    assert answer.text == "Error processing your OAuth request: Invalid oauth_verifier parameter"


def test_a_pin_typed_wrong_then_right(lp: LocalProvider) -> None:
    token, secret = request_token(lp)
    pin = pin_of(authorize(lp, token))
    wrong = str((int(pin) + 1) % 10_000_000).zfill(7)
    refused = access_token(lp, token, secret, wrong)
    assert refused.status_code == 401
    assert refused.text.endswith("Invalid oauth_verifier parameter")
    assert access_token(lp, token, secret, pin).status_code == 200  # the person tries again


def test_request_token_used_twice(lp: LocalProvider) -> None:
    token, secret = request_token(lp)
    pin = pin_of(authorize(lp, token))
    before = lp.count("/oauth/access_token")
    assert access_token(lp, token, secret, pin).status_code == 200
    again = access_token(lp, token, secret, pin)
    assert lp.count("/oauth/access_token") == before + 2
    assert again.status_code == 401
    assert again.text == "Error processing your OAuth request: Invalid request token"


def test_request_token_without_approval(lp: LocalProvider) -> None:
    token, secret = request_token(lp)
    answer = access_token(lp, token, secret, "1234567")
    assert answer.status_code == 401 and "Invalid request token" in answer.text


def test_an_expired_request_token(own: LocalProvider) -> None:
    token, secret = request_token(own)
    pin = pin_of(authorize(own, token))
    own.oauth1_request_token_lifetime = 0
    answer = access_token(own, token, secret, pin)
    assert answer.status_code == 401 and answer.text.endswith("Invalid request token")
    later, _ = request_token(own)
    assert authorize(own, later).status_code == 400


def test_authorize_page_refuses_a_used_request_token(lp: LocalProvider) -> None:
    token, _ = request_token(lp)
    pin_of(authorize(lp, token))
    assert authorize(lp, token).status_code == 400


def test_missing_callback_is_bad_authentication_data(lp: LocalProvider) -> None:
    answer = send(lp.oauth1_urls(x=True)["request_token"], Client(**consumer()), method="POST")
    assert x_error(answer) == (400, 215)


def test_callback_not_approved(own: LocalProvider) -> None:
    own.add_oauth1_consumer(
        "approved-app-key", "approved-secret", callbacks=("https://app.example/cb",), x=True
    )
    url = own.oauth1_urls(x=True)["request_token"]
    for callback, status in (("https://app.example/cb", 200), ("https://evil.example/cb", 403)):
        client = Client("approved-app-key", client_secret="approved-secret", callback_uri=callback)
        answer = send(url, client, method="POST")
        assert answer.status_code == status
    assert x_error(answer) == (403, 415)
    assert answer.json()["errors"][0]["message"].startswith("Callback URL not approved")


@pytest.mark.parametrize("method", ["HMAC-SHA256", "PLAINTEXT", "HMAC-SHA512"])
def test_x_signs_with_hmac_sha1_only(lp: LocalProvider, user: tuple[str, str], method: str) -> None:
    client = Client(**consumer(callback_uri="oob", signature_method=method))
    answer = send(lp.oauth1_urls(x=True)["request_token"], client, method="POST")
    assert x_error(answer) == (401, 32)
    assert x_error(send(lp.url + VERIFY, signed_by(*user, signature_method=method))) == (401, 32)


def test_unsigned_request_to_a_protected_resource(lp: LocalProvider) -> None:
    assert x_error(HTTP.get(lp.url + VERIFY)) == (400, 215)


# --------------------------------------------------------------------------- tokens ending
def test_invalidate_token_stops_the_access_token(lp: LocalProvider) -> None:
    token, secret = login(lp)
    assert send(lp.url + VERIFY, signed_by(token, secret)).status_code == 200
    answer = send(lp.url + "/1.1/oauth/invalidate_token", signed_by(token, secret), method="POST")
    assert answer.status_code == 200 and answer.json() == {"access_token": token}
    assert not lp.is_active(token)
    assert x_error(send(lp.url + VERIFY, signed_by(token, secret))) == (401, 89)
    again = send(lp.url + "/1.1/oauth/invalidate_token", signed_by(token, secret), method="POST")
    assert x_error(again) == (401, 89)


def test_revoked_behind_the_back(lp: LocalProvider) -> None:
    token, secret = login(lp)
    lp.revoke(token)
    answer = send(lp.url + VERIFY, signed_by(token, secret))
    assert x_error(answer) == (401, 89)
    assert answer.json()["errors"][0]["message"] == "Invalid or expired token."


# --------------------------------------------------------------------------- faults
def test_the_person_denies(switches: LocalProvider) -> None:
    token, secret = request_token(switches, callback=CALLBACK)
    switches.oauth1_deny = True
    redirect = authorize(switches, token)
    assert redirect.status_code == 302
    assert dict(parse_qsl(urlsplit(redirect.headers["location"]).query)) == {"denied": token}
    assert access_token(switches, token, secret, "x" * 32).status_code == 401


def test_the_person_denies_a_pin_login(switches: LocalProvider) -> None:
    token, _ = request_token(switches)
    switches.oauth1_deny = True
    page = authorize(switches, token)
    assert page.status_code == 200 and "<code>" not in page.text


def test_forged_callback(switches: LocalProvider) -> None:
    token, _ = request_token(switches, callback=CALLBACK)
    switches.oauth1_forge_callback = True
    query = dict(parse_qsl(urlsplit(authorize(switches, token).headers["location"]).query))
    assert query["oauth_token"] != token and query["oauth_verifier"]


def test_access_token_answer_without_its_secret(lp: LocalProvider) -> None:
    token, secret = request_token(lp)
    pin = pin_of(authorize(lp, token))
    lp.garbage("/oauth/access_token", "no_token_secret")
    got = form(access_token(lp, token, secret, pin))
    assert "oauth_token" in got and "oauth_token_secret" not in got


def test_request_token_answered_with_html(lp: LocalProvider) -> None:
    lp.garbage("/oauth/request_token", "html")
    client = Client(**consumer(callback_uri="oob"))
    answer = send(lp.oauth1_urls(x=True)["request_token"], client, method="POST")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")


def test_callback_unconfirmed(lp: LocalProvider) -> None:
    lp.garbage("/oauth/request_token", "callback_unconfirmed")
    client = Client(**consumer(callback_uri="oob"))
    got = form(send(lp.oauth1_urls(x=True)["request_token"], client, method="POST"))
    assert got["oauth_callback_confirmed"] == "false"


def test_the_server_logs_nothing(
    lp: LocalProvider, user: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """oauthlib says the signature base string when a check fails: not from the emulator."""
    caplog.set_level(logging.DEBUG)
    assert send(lp.url + VERIFY, signed_by(user[0], "wrong-token-secret")).status_code == 401
    assert send(lp.url + VERIFY, signed_by(*user)).status_code == 200
    verifying = ("oauthlib.oauth1.rfc5849.signature", "oauthlib.oauth1.rfc5849.endpoints")
    assert [r.getMessage() for r in caplog.records if r.name.startswith(verifying)] == []


def test_secrets_are_listed_as_issued(lp: LocalProvider) -> None:
    token, secret = login(lp)
    assert {token, secret} <= lp.issued()
