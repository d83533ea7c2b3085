"""The emulator's HTTP shell: lifecycle, HTTP hygiene, counting, faults and delays, revoking
behind the back, and the configuration it hands out."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import tomllib
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlencode

import pytest

from keyfob.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_GITHUB_APP_CLIENT_ID,
    DEMO_GITHUB_APP_CLIENT_SECRET,
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    DEMO_PASSWORD,
    DEMO_TWITTER_API_KEY,
    DEMO_TWITTER_API_SECRET,
    DEMO_USERNAME,
    LocalProvider,
)
from testing.client import (
    FORM,
    STD_CLIENT,
    call,
    inat_jwt,
    inat_oauth,
    inat_token,
    std_password,
    std_token,
    tw_token,
)


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


def test_tokens_and_device_codes_in_any_answer_are_listed_as_issued(lp: LocalProvider) -> None:
    grant = std_password(lp)
    std_device = call("POST", lp.url + "/std/device", form={"client_id": DEMO_CLIENT_ID}).json()
    github_device = parse_qs(  # GitHub answers a form unless asked for JSON
        call(
            "POST", lp.url + "/login/device/code", form={"client_id": DEMO_GITHUB_APP_CLIENT_ID}
        ).body.decode()
    )
    handed_out = {
        grant["access_token"],
        grant["refresh_token"],
        std_device["device_code"],
        github_device["device_code"][0],
    }
    assert handed_out <= lp.issued()


def test_revoking_the_twitter_token_makes_the_next_one_new(lp: LocalProvider) -> None:
    token = tw_token(lp).json()["access_token"]
    lp.revoke(token)
    assert call("GET", lp.url + "/2/tweets/search/recent", bearer=token).status == 401
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
    lp.delay("/2/users/me", 1.0, times=1)
    started = time.monotonic()
    call("GET", lp.url + "/2/users/me")
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    call("GET", lp.url + "/2/users/me")
    assert time.monotonic() - started < 1.0  # the delay was spent: not slept again


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
            "github": {
                "token_url": f"{u}/login/oauth/access_token",
                "authorize_url": f"{u}/login/oauth/authorize",
                "device_url": f"{u}/login/device/code",
                "revoke_url": f"{u}/applications/{{client_id}}/token",
                "api_url": u,
            },
            "twitter-user": {
                "authorize_url": f"{u}/i/oauth2/authorize",
                "token_url": f"{u}/2/oauth2/token",
                "revoke_url": f"{u}/2/oauth2/revoke",
                "api_url": f"{u}/2",
                "redirect_uri": lp.twitter_redirect_uri,
            },
            "local": {
                "issuer": f"{u}/std",
                "grant": "password",
                "env_prefix": "LOCAL",
                "device_url": f"{u}/std/device",
            },
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
        "TWITTER_CLIENT_ID": "demo-x-client-id",
        "TWITTER_CLIENT_SECRET": "demo-x-client-secret-0123456789",
        "LOCAL_CLIENT_ID": DEMO_CLIENT_ID,
        "LOCAL_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "GITHUB_CLIENT_ID": DEMO_GITHUB_APP_CLIENT_ID,
        "GITHUB_CLIENT_SECRET": DEMO_GITHUB_APP_CLIENT_SECRET,
        "LOCAL_USERNAME": DEMO_USERNAME,
        "LOCAL_PASSWORD": DEMO_PASSWORD,
    }


def test_without_demo_accounts_demo_credentials_are_refused() -> None:
    with LocalProvider(demo_accounts=False) as provider:
        assert inat_token(provider).status == 400  # the user is judged before the app
        assert tw_token(provider).status == 403
        assert std_token(provider, {"grant_type": "client_credentials"}).status == 401


# --------------------------------------------------------------------------- hostile clients
def test_deeply_nested_json_body_is_a_400_not_an_emulator_error() -> None:
    with LocalProvider() as provider:
        nested = b"[" * 200_000 + b"]" * 200_000
        answer = call(
            "POST", f"{provider.url}/std/token", raw=nested, content_type="application/json"
        )
        assert answer.status == 400
        assert provider.errors == []


def test_a_bearer_jwt_with_a_deeply_nested_header_is_refused_not_an_emulator_error() -> None:
    import base64

    with LocalProvider() as provider:
        deep = base64.urlsafe_b64encode(b"[" * 5_000).rstrip(b"=").decode()
        answer = call(
            "GET", f"{provider.url}/web-services/v1/my-observations", bearer=f"{deep}.e30.c2ln"
        )
        assert answer.status == 401
        assert provider.errors == []
