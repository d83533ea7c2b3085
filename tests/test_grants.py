"""The sans-I/O grants, driven with hand-made answers: no server, no sockets.

Each flow yields the request it wants sent; the test checks that request and
sends back an ``HttpResponse`` it built itself, then checks what the flow
makes of it: a ``Token``, or the right keyfob error.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Generator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keyfob import _jwt, grants
from keyfob.errors import InvalidCredentials, KeyfobError, ProviderError
from keyfob.flow import HttpRequest, HttpResponse, Sleep
from keyfob.provider import BUILTINS, treesnap
from keyfob.secretstore import Credentials
from keyfob.token import Token

T = TypeVar("T")

# The autouse secret scan is function-scoped; it only collects, so sharing it is fine.
SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

NOW = 1_700_000_000.0
TOKEN_URL = "https://auth.example.test/oauth/token"
REVOKE_URL = "https://auth.example.test/oauth/revoke"
CLIENT_ID = "grant-client"
CLIENT_SECRET = "grant-client-secret-5f1e2d"
USERNAME = "grant-user"
PASSWORD = "grant-user-password-9c8b7a"
REFRESH = "grant-refresh-token-0a1b2c"


@pytest.fixture(autouse=True)
def _plant(no_secret_leaks: Any) -> None:
    no_secret_leaks.plant(CLIENT_SECRET, PASSWORD, REFRESH)


# --------------------------------------------------------------------------- helpers
def answer(
    status: int = 200,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    url: str = TOKEN_URL,
    what: str = "the token endpoint",
) -> HttpResponse:
    content = raw if raw is not None else json.dumps(body).encode()
    kind = "text/html" if raw is not None and raw.lstrip().startswith(b"<") else "application/json"
    return HttpResponse(status, {"content-type": kind, **(headers or {})}, content, url, what)


def first_request(flow: Generator[HttpRequest | Sleep, HttpResponse | None, T]) -> HttpRequest:
    item = next(flow)
    assert isinstance(item, HttpRequest)
    return item


def finish(
    flow: Generator[HttpRequest | Sleep, HttpResponse | None, T], *responses: HttpResponse
) -> tuple[list[HttpRequest], T]:
    """Drive ``flow`` with ``responses`` in order; the requests it made and its result."""
    sent: list[HttpRequest] = []
    pending = list(responses)
    try:
        item = next(flow)
        while True:
            assert isinstance(item, HttpRequest), item
            sent.append(item)
            assert pending, f"the flow asked for more than {len(responses)} request(s)"
            item = flow.send(pending.pop(0))
    except StopIteration as done:
        assert not pending, "the flow stopped before using every answer"
        return sent, done.value


def result(flow: Generator[HttpRequest | Sleep, HttpResponse | None, T], *responses: Any) -> T:
    return finish(flow, *responses)[1]


def cc_flow(**kw: Any) -> Generator[HttpRequest | Sleep, HttpResponse | None, Token]:
    args: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "now": NOW}
    args.update(kw)
    return grants.client_credentials(TOKEN_URL, **args)


def parse(body: Any, status: int = 200, **kw: Any) -> Token:
    return grants.parse_token_response(answer(status, body), requested_at=NOW, **kw)


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def creds(**values: str) -> Credentials:
    found = Credentials()
    for name, value in values.items():
        found.add(name, value, "argument")
    return found


def checked(leaks: Any, exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    leaks.add("exception message", text)
    if isinstance(exc.value, KeyfobError):
        leaks.add("exception one_line", exc.value.one_line())
    return text


# ----------------------------------------------------------------------- requests the grants build
def test_client_credentials_posts_the_grant_with_basic_client_auth() -> None:
    request = first_request(cc_flow(scope="read write"))
    assert request.method == "POST"
    assert request.url == TOKEN_URL
    assert request.form == {"grant_type": "client_credentials", "scope": "read write"}
    assert request.basic == (CLIENT_ID, CLIENT_SECRET)


def test_client_credentials_without_scope_sends_no_scope() -> None:
    request = first_request(cc_flow())
    assert request.form == {"grant_type": "client_credentials"}


def test_client_secret_post_puts_id_and_secret_in_the_form_not_basic() -> None:
    request = first_request(cc_flow(client_auth="client_secret_post"))
    assert request.basic is None
    assert request.form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


def test_password_grant_posts_username_and_password() -> None:
    flow = grants.password(
        TOKEN_URL,
        username=USERNAME,
        password=PASSWORD,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        now=NOW,
    )
    request = first_request(flow)
    assert (request.method, request.url) == ("POST", TOKEN_URL)
    assert request.form == {"grant_type": "password", "username": USERNAME, "password": PASSWORD}
    assert request.basic == (CLIENT_ID, CLIENT_SECRET)


def test_public_client_sends_its_id_in_the_form() -> None:
    flow = grants.password(
        TOKEN_URL,
        username=USERNAME,
        password=PASSWORD,
        client_id=CLIENT_ID,
        client_secret=None,
        now=NOW,
    )
    request = first_request(flow)
    assert request.basic is None
    assert request.form is not None
    assert request.form["client_id"] == CLIENT_ID
    assert "client_secret" not in request.form


def refresh_flow() -> Generator[HttpRequest | Sleep, HttpResponse | None, Token]:
    return grants.refresh(
        TOKEN_URL, REFRESH, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, now=NOW
    )


def test_refresh_posts_the_refresh_token() -> None:
    request = first_request(refresh_flow())
    assert (request.method, request.url) == ("POST", TOKEN_URL)
    assert request.form == {"grant_type": "refresh_token", "refresh_token": REFRESH}
    assert request.basic == (CLIENT_ID, CLIENT_SECRET)


def test_refresh_keeps_the_old_refresh_token_when_the_server_does_not_rotate() -> None:
    token = result(refresh_flow(), answer(200, {"access_token": "new-at", "expires_in": 60}))
    assert token.refresh_token == REFRESH


def test_refresh_takes_a_rotated_refresh_token() -> None:
    body = {"access_token": "new-at", "expires_in": 60, "refresh_token": "rotated-rt"}
    assert result(refresh_flow(), answer(200, body)).refresh_token == "rotated-rt"


def revoke_flow() -> Generator[HttpRequest | Sleep, HttpResponse | None, None]:
    return grants.revoke(
        REVOKE_URL,
        REFRESH,
        token_type_hint="refresh_token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )


def test_revoke_posts_the_token_and_its_type_hint() -> None:
    request = first_request(revoke_flow())
    assert (request.method, request.url) == ("POST", REVOKE_URL)
    assert request.form == {"token": REFRESH, "token_type_hint": "refresh_token"}
    assert request.basic == (CLIENT_ID, CLIENT_SECRET)


def test_revoke_succeeds_on_200_with_an_empty_body() -> None:
    assert result(revoke_flow(), answer(200, raw=b"", url=REVOKE_URL)) is None


def test_revoke_refused_client_is_invalid_credentials(no_secret_leaks: Any) -> None:
    body = {"error": "invalid_client", "error_description": "Client authentication failed."}
    with pytest.raises(InvalidCredentials) as exc:
        result(revoke_flow(), answer(401, body, url=REVOKE_URL))
    assert exc.value.error == "invalid_client"
    checked(no_secret_leaks, exc)


def test_revoke_unsupported_token_type_is_a_provider_error(no_secret_leaks: Any) -> None:
    with pytest.raises(ProviderError) as exc:
        result(revoke_flow(), answer(400, {"error": "unsupported_token_type"}, url=REVOKE_URL))
    assert exc.value.error == "unsupported_token_type"
    checked(no_secret_leaks, exc)


# --------------------------------------------------------------------------- discovery
ISSUER = "https://id.example.test/tenant"
META = {
    "issuer": ISSUER,
    "token_endpoint": f"{ISSUER}/token",
    "revocation_endpoint": f"{ISSUER}/revoke",
}


def test_discover_asks_openid_configuration_under_the_issuer_first() -> None:
    sent, meta = finish(grants.discover(ISSUER + "/"), answer(200, META))
    assert [(r.method, r.url) for r in sent] == [
        ("GET", f"{ISSUER}/.well-known/openid-configuration")
    ]
    assert meta["token_endpoint"] == f"{ISSUER}/token"


def test_discover_falls_back_to_rfc8414_path_at_the_origin() -> None:
    sent, meta = finish(grants.discover(ISSUER), answer(404, {}), answer(200, META))
    assert [r.url for r in sent] == [
        f"{ISSUER}/.well-known/openid-configuration",
        "https://id.example.test/.well-known/oauth-authorization-server/tenant",
    ]
    assert meta == META


def test_discover_refuses_a_document_for_another_issuer(no_secret_leaks: Any) -> None:
    with pytest.raises(ProviderError) as exc:
        result(grants.discover(ISSUER), answer(200, {**META, "issuer": "https://evil.test"}))
    text = checked(no_secret_leaks, exc)
    assert "names the issuer 'https://evil.test', not the configured " + ISSUER in text
    assert "\n" not in text and "issuer in config.toml" in (exc.value.hint or "")


def test_discover_refuses_a_document_without_token_endpoint(no_secret_leaks: Any) -> None:
    with pytest.raises(ProviderError) as exc:
        result(grants.discover(ISSUER), answer(200, {"issuer": ISSUER}))
    assert "token_endpoint" in checked(no_secret_leaks, exc)


def test_discover_without_any_document_is_a_provider_error_with_status(
    no_secret_leaks: Any,
) -> None:
    with pytest.raises(ProviderError) as exc:
        result(grants.discover(ISSUER), answer(404, {}), answer(404, {}))
    assert exc.value.status == 404
    checked(no_secret_leaks, exc)


# --------------------------------------------------------------------------- reading token answers
def test_expires_in_is_counted_from_the_now_passed_in() -> None:
    token = result(cc_flow(), answer(200, {"access_token": "at-1", "expires_in": 3600}))
    assert token.expires == NOW + 3600
    assert token.issued == NOW


def test_answer_fields_become_the_token() -> None:
    body = {
        "access_token": "at-1",
        "token_type": "bearer",
        "expires_in": 60,
        "refresh_token": "rt-1",
        "scope": "read",
    }
    token = parse(body)
    assert (token.access_token, token.token_type) == ("at-1", "Bearer")
    assert (token.refresh_token, token.scope) == ("rt-1", "read")


def test_numeric_string_expires_in_is_accepted() -> None:
    assert parse({"access_token": "at-1", "expires_in": "3599"}).expires == NOW + 3599


@pytest.mark.parametrize(
    "value",
    ["soon", -5, -0.5, math.nan, math.inf, True, False, [60], {"s": 60}, "", "1e400"],
    ids=repr,
)
def test_expires_in_that_is_not_a_sane_number_is_a_provider_error(
    value: Any, no_secret_leaks: Any
) -> None:
    with pytest.raises(ProviderError) as exc:
        parse({"access_token": "at-1", "expires_in": value})
    assert "expires_in" in checked(no_secret_leaks, exc)


def test_expires_in_as_an_integer_too_big_for_a_float_is_a_provider_error() -> None:
    content = b'{"access_token": "at-1", "expires_in": 1' + b"0" * 400 + b"}"
    with pytest.raises(ProviderError):
        grants.parse_token_response(answer(200, raw=content), requested_at=NOW)


@pytest.mark.parametrize(
    "body",
    [{"token_type": "Bearer"}, {"access_token": ""}, {"access_token": "  "}, {"access_token": 7}],
    ids=repr,
)
def test_missing_access_token_is_a_provider_error(body: Any, no_secret_leaks: Any) -> None:
    with pytest.raises(ProviderError) as exc:
        parse(body)
    assert "access_token" in checked(no_secret_leaks, exc)


def test_json_that_is_not_an_object_is_a_provider_error() -> None:
    with pytest.raises(ProviderError):
        parse([{"access_token": "at-1"}])


@pytest.mark.parametrize("error", ["invalid_grant", "invalid_client"])
def test_credential_errors_are_invalid_credentials_with_error_and_description(
    error: str, no_secret_leaks: Any
) -> None:
    body = {"error": error, "error_description": "Bad username or password."}
    with pytest.raises(InvalidCredentials) as exc:
        result(cc_flow(), answer(400, body))
    assert exc.value.error == error
    assert exc.value.description == "Bad username or password."
    assert exc.value.status == 400
    assert error in checked(no_secret_leaks, exc)


def test_401_without_an_oauth_error_is_invalid_credentials() -> None:
    with pytest.raises(InvalidCredentials):
        result(cc_flow(), answer(401, {"message": "Unauthorized"}))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "invalid_scope"),
        (400, "unsupported_grant_type"),
        (400, "invalid_request"),
        (500, "server_error"),
        (200, "temporarily_unavailable"),
    ],
)
def test_other_oauth_errors_are_provider_errors_with_error_and_description(
    status: int, error: str, no_secret_leaks: Any
) -> None:
    body = {"error": error, "error_description": "Not today."}
    with pytest.raises(ProviderError) as exc:
        result(cc_flow(), answer(status, body))
    assert not isinstance(exc.value, InvalidCredentials)
    assert (exc.value.error, exc.value.description) == (error, "Not today.")
    assert error in checked(no_secret_leaks, exc)


def test_error_description_control_characters_are_removed(no_secret_leaks: Any) -> None:
    description = "line one\nline two\r\n\x1b[31mred\x1b[0m\x00\ttab\x85end"
    with pytest.raises(InvalidCredentials) as exc:
        result(cc_flow(), answer(400, {"error": "invalid_grant", "error_description": description}))
    text = checked(no_secret_leaks, exc)
    for shown in (text, exc.value.description or ""):
        assert shown.isprintable()
        assert len(shown.splitlines()) == 1
    assert "line one line two" in text


def test_huge_error_description_is_bounded(no_secret_leaks: Any) -> None:
    with pytest.raises(ProviderError) as exc:
        result(cc_flow(), answer(400, {"error": "invalid_scope", "error_description": "x" * 10**6}))
    text = checked(no_secret_leaks, exc)
    assert len(exc.value.description or "") <= 200
    assert len(text) < 600


def test_huge_error_code_is_bounded(no_secret_leaks: Any) -> None:
    with pytest.raises(ProviderError) as exc:
        result(cc_flow(), answer(400, {"error": "e" * 10**5}))
    assert len(checked(no_secret_leaks, exc)) < 600


@pytest.mark.parametrize("secret", [CLIENT_SECRET, PASSWORD])
def test_error_description_echoing_a_secret_is_scrubbed(secret: str, no_secret_leaks: Any) -> None:
    flow = grants.password(
        TOKEN_URL,
        username=USERNAME,
        password=PASSWORD,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        now=NOW,
    )
    body = {"error": "invalid_grant", "error_description": f"no user with secret {secret}!"}
    with pytest.raises(InvalidCredentials) as exc:
        result(flow, answer(400, body))
    text = checked(no_secret_leaks, exc)
    assert secret not in text
    assert secret not in (exc.value.description or "")
    assert "no user with secret" in text


def test_error_echoing_the_refresh_token_is_scrubbed(no_secret_leaks: Any) -> None:
    body = {"error": "invalid_grant", "error_description": f"unknown token {REFRESH}"}
    with pytest.raises(InvalidCredentials) as exc:
        result(refresh_flow(), answer(400, body))
    assert REFRESH not in checked(no_secret_leaks, exc)


def test_html_answer_is_a_provider_error_that_says_html(no_secret_leaks: Any) -> None:
    page = b"<!DOCTYPE html><html><body><form><input name=password></form></body></html>"
    with pytest.raises(ProviderError) as exc:
        result(cc_flow(), answer(200, raw=page))
    assert "HTML" in checked(no_secret_leaks, exc)


def test_html_error_page_is_a_provider_error_that_says_html(no_secret_leaks: Any) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head></html>"
    with pytest.raises(ProviderError) as exc:
        result(cc_flow(), answer(502, raw=page))
    assert "HTML" in checked(no_secret_leaks, exc)


def test_truncated_json_is_a_provider_error() -> None:
    with pytest.raises(ProviderError):
        result(cc_flow(), answer(200, raw=b'{"access_token": "at-'))


def test_jwt_exp_is_used_when_expires_in_is_absent() -> None:
    access = jwt({"sub": "1", "exp": int(NOW) + 7200})
    assert parse({"access_token": access}).expires == NOW + 7200


def test_expires_in_wins_over_the_jwt_exp() -> None:
    access = jwt({"sub": "1", "exp": int(NOW) + 7200})
    assert parse({"access_token": access, "expires_in": 60}).expires == NOW + 60


def test_opaque_token_without_expires_in_does_not_expire() -> None:
    assert parse({"access_token": "opaque"}).expires is None


def test_default_lifetime_applies_when_neither_expires_in_nor_jwt_exp() -> None:
    assert parse({"access_token": "opaque"}, default_lifetime=300).expires == NOW + 300


# --------------------------------------------------------------------------- iNaturalist
INAT = BUILTINS["inaturalist"]
INAT_CREDS = {
    "username": USERNAME,
    "password": PASSWORD,
    "app_id": "app-1",
    "app_secret": CLIENT_SECRET,
}
OAUTH_TOKEN = "inat-oauth-token-7d6c"


def test_inaturalist_password_grant_sends_app_credentials_in_the_body() -> None:
    request = first_request(INAT.kind.acquire(INAT, creds(**INAT_CREDS), NOW))
    assert (request.method, request.url) == ("POST", INAT.token_url)
    assert request.basic is None
    assert request.form == {
        "grant_type": "password",
        "username": USERNAME,
        "password": PASSWORD,
        "client_id": "app-1",
        "client_secret": CLIENT_SECRET,
    }


def test_inaturalist_trades_the_oauth_token_for_a_jwt() -> None:
    api_token = jwt({"user_id": 1, "exp": int(NOW) + 86400})
    sent, token = finish(
        INAT.kind.acquire(INAT, creds(**INAT_CREDS), NOW),
        answer(200, {"access_token": OAUTH_TOKEN, "token_type": "Bearer"}),
        answer(200, {"api_token": api_token}, url=str(INAT.jwt_url)),
    )
    trade = sent[1]
    assert (trade.method, trade.url) == ("GET", INAT.jwt_url)
    assert trade.headers["Authorization"] == f"Bearer {OAUTH_TOKEN}"
    assert token.access_token == api_token
    assert token.expires == NOW + 86400
    assert token.refresh_token == OAUTH_TOKEN


def test_inaturalist_jwt_without_exp_lives_24_hours() -> None:
    token = result(
        INAT.kind.acquire(INAT, creds(**INAT_CREDS), NOW),
        answer(200, {"access_token": OAUTH_TOKEN}),
        answer(200, {"api_token": "opaque-jwt"}),
    )
    assert token.expires == NOW + 24 * 3600


def test_inaturalist_wrong_password_is_invalid_credentials(no_secret_leaks: Any) -> None:
    body = {"error": "invalid_grant", "error_description": "The provided grant is invalid."}
    with pytest.raises(InvalidCredentials) as exc:
        result(INAT.kind.acquire(INAT, creds(**INAT_CREDS), NOW), answer(400, body))
    assert exc.value.error == "invalid_grant"
    checked(no_secret_leaks, exc)


def test_inaturalist_refused_trade_is_invalid_credentials(no_secret_leaks: Any) -> None:
    no_secret_leaks.plant(OAUTH_TOKEN)
    with pytest.raises(InvalidCredentials) as exc:
        result(
            INAT.kind.acquire(INAT, creds(**INAT_CREDS), NOW),
            answer(200, {"access_token": OAUTH_TOKEN}),
            answer(401, {"error": "Unauthorized", "status": 401}),
        )
    checked(no_secret_leaks, exc)


# --------------------------------------------------------------------------- TreeSnap
TREESNAP = BUILTINS["treesnap"]
CURRENT = "treesnap-current-token-4e3d2c"


def ts_answer(status: int, body: Any) -> HttpResponse:
    return answer(status, body, url=str(TREESNAP.refresh_url), what="TreeSnap's endpoint")


def ts_refresh(*responses: HttpResponse) -> Token:
    return result(treesnap.refresh(TREESNAP, CURRENT, NOW), *responses)


def ts_ok(expires: dict[str, Any] | None) -> HttpResponse:
    body: dict[str, Any] = {"access_token": "ts-new", "error_code": 0, "message": "Refreshed."}
    if expires is not None:
        body["expires_at"] = expires
    return ts_answer(200, body)


def test_treesnap_refresh_sends_the_token_as_bearer_and_in_the_body(no_secret_leaks: Any) -> None:
    no_secret_leaks.plant(CURRENT)
    request = first_request(treesnap.refresh(TREESNAP, CURRENT, NOW))
    assert (request.method, request.url) == ("POST", TREESNAP.refresh_url)
    assert request.headers["Authorization"] == f"Bearer {CURRENT}"
    assert request.form == {"access_token": CURRENT}


def test_treesnap_expires_at_in_utc_is_read() -> None:
    date = {"date": "2031-07-03 19:32:09.000000", "timezone_type": 3, "timezone": "UTC"}
    token = ts_refresh(ts_ok(date))
    assert token.expires == datetime(2031, 7, 3, 19, 32, 9, tzinfo=UTC).timestamp()
    assert token.access_token == "ts-new"
    assert token.refresh_ratio == 0.1


@pytest.mark.parametrize(
    ("zone", "tz"),
    [
        ("America/New_York", ZoneInfo("America/New_York")),
        ("Asia/Kolkata", ZoneInfo("Asia/Kolkata")),
        ("+02:00", timezone(timedelta(hours=2))),
        ("-05:30", timezone(-timedelta(hours=5, minutes=30))),
        ("Z", UTC),
    ],
)
def test_treesnap_expires_at_in_other_zones_is_read(zone: str, tz: Any) -> None:
    date = {"date": "2031-01-15 08:00:00.000000", "timezone_type": 3, "timezone": zone}
    expected = datetime(2031, 1, 15, 8, 0, 0, tzinfo=tz).timestamp()
    assert ts_refresh(ts_ok(date)).expires == expected


def test_treesnap_expires_at_without_microseconds_is_read() -> None:
    assert treesnap.expires_at({"date": "2031-01-15 08:00:00", "timezone": "UTC"}) == (
        datetime(2031, 1, 15, 8, tzinfo=UTC).timestamp()
    )


def test_treesnap_without_expires_at_assumes_a_year() -> None:
    assert ts_refresh(ts_ok(None)).expires == NOW + treesnap.LIFETIME


@pytest.mark.parametrize("status", [200, 400, 401, 404])
def test_treesnap_error_1000_is_invalid_credentials_whatever_the_status(
    status: int, no_secret_leaks: Any
) -> None:
    body = {"error_code": 1000, "message": "The access token does not exist."}
    with pytest.raises(InvalidCredentials) as exc:
        ts_refresh(ts_answer(status, body))
    assert exc.value.error == "1000"
    assert "does not exist" in checked(no_secret_leaks, exc)


@pytest.mark.parametrize("status", [200, 400, 401])
def test_treesnap_error_1100_is_a_provider_error_whatever_the_status(
    status: int, no_secret_leaks: Any
) -> None:
    body = {"error_code": 1100, "message": "The tokens do not match."}
    with pytest.raises(ProviderError) as exc:
        ts_refresh(ts_answer(status, body))
    assert not isinstance(exc.value, InvalidCredentials)
    assert exc.value.error == "1100"
    checked(no_secret_leaks, exc)


def test_treesnap_message_echoing_the_token_is_scrubbed(no_secret_leaks: Any) -> None:
    no_secret_leaks.plant(CURRENT)
    body = {"error_code": 1000, "message": f"token {CURRENT} does not exist\n"}
    with pytest.raises(InvalidCredentials) as exc:
        ts_refresh(ts_answer(401, body))
    text = checked(no_secret_leaks, exc)
    assert CURRENT not in text
    assert "\n" not in text


def test_treesnap_unknown_error_code_is_a_provider_error() -> None:
    with pytest.raises(ProviderError):
        ts_refresh(ts_answer(200, {"error_code": 1234, "message": "?"}))


def test_treesnap_html_answer_is_a_provider_error_that_says_html(no_secret_leaks: Any) -> None:
    page = answer(503, raw=b"<html><body>Maintenance</body></html>", url=str(TREESNAP.refresh_url))
    with pytest.raises(ProviderError) as exc:
        ts_refresh(page)
    assert "HTML" in checked(no_secret_leaks, exc)


# --------------------------------------------------------------------------- Twitter
TWITTER = BUILTINS["twitter"]
TW_CREDS = creds(api_key="tw-key", api_secret=CLIENT_SECRET)


def test_twitter_acquire_uses_client_credentials_with_basic() -> None:
    request = first_request(TWITTER.kind.acquire(TWITTER, TW_CREDS, NOW))
    assert (request.method, request.url) == ("POST", TWITTER.token_url)
    assert request.form == {"grant_type": "client_credentials"}
    assert request.basic == ("tw-key", CLIENT_SECRET)


def test_twitter_token_does_not_expire_even_if_the_answer_says_so() -> None:
    body = {"token_type": "bearer", "access_token": "AAAA-tw", "expires_in": 60}
    token = result(TWITTER.kind.acquire(TWITTER, TW_CREDS, NOW), answer(200, body))
    assert token.expires is None
    assert token.authorization == "Bearer AAAA-tw"


def test_twitter_403_code_99_is_invalid_credentials(no_secret_leaks: Any) -> None:
    body = {"errors": [{"code": 99, "message": "Unable to verify your credentials", "label": "x"}]}
    with pytest.raises(InvalidCredentials) as exc:
        result(TWITTER.kind.acquire(TWITTER, TW_CREDS, NOW), answer(403, body))
    assert exc.value.error == "99"
    assert exc.value.status == 403
    checked(no_secret_leaks, exc)


def test_twitter_other_error_code_is_a_provider_error() -> None:
    body = {"errors": [{"code": 130, "message": "Over capacity"}]}
    with pytest.raises(ProviderError) as exc:
        result(TWITTER.kind.acquire(TWITTER, TW_CREDS, NOW), answer(403, body))
    assert not isinstance(exc.value, InvalidCredentials)


# --------------------------------------------------------------------------- properties
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
token_fields = st.sampled_from(
    [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "scope",
        "error",
        "error_description",
    ]
)
token_objects = st.dictionaries(token_fields | st.text(), json_values, max_size=8)


@SETTINGS
@given(body=token_objects, status=st.sampled_from([200, 201, 400, 401, 403, 500]))
@example(body={"access_token": "a", "expires_in": "NaN"}, status=200)
@example(body={"access_token": "a", "refresh_expires_in": "Infinity"}, status=200)
def test_parse_token_response_of_any_json_object_is_a_token_or_a_keyfob_error(
    body: dict[str, Any], status: int
) -> None:
    content = json.dumps(body).encode()  # NaN and Infinity too, as Python writes them
    try:
        token = grants.parse_token_response(
            HttpResponse(status, {}, content, TOKEN_URL), requested_at=NOW
        )
    except KeyfobError:
        return
    assert isinstance(token, Token)
    assert token.expires is None or math.isfinite(token.expires)


@SETTINGS
@given(content=st.binary(max_size=200))
@example(content=b"[" * 100_000)
@example(content=b'{"access_token": "a", "expires_in": 1' + b"0" * 400 + b"}")
@example(content=b'{"access_token": "a", "refresh_expires_in": 1' + b"0" * 400 + b"}")
def test_parse_token_response_of_any_bytes_is_a_token_or_a_keyfob_error(content: bytes) -> None:
    try:
        token = grants.parse_token_response(
            HttpResponse(200, {}, content, TOKEN_URL), requested_at=NOW
        )
    except KeyfobError:
        return
    assert isinstance(token, Token)


b64_json = json_values.map(
    lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()
)
jwt_like = st.tuples(st.text(max_size=8), b64_json | st.text(), st.text(max_size=8)).map(".".join)


@SETTINGS
@given(token=st.text() | jwt_like)
@example(token="a..c")
@example(token="a.=.c")
@example(token="a." + base64.urlsafe_b64encode(b"\xff\xfe").decode() + ".c")
@example(token="a." + base64.urlsafe_b64encode(b"[" * 100_000).decode() + ".c")
@example(token=jwt({"exp": 10**400}))
@example(token=jwt({"exp": True}))
def test_jwt_claims_and_expiry_of_any_string_never_raise(token: str) -> None:
    claims = _jwt.claims(token)
    assert claims is None or isinstance(claims, dict)
    exp = _jwt.expiry(token)
    assert exp is None or (isinstance(exp, float) and math.isfinite(exp) and exp > 0)


def test_jwt_expiry_reads_exp() -> None:
    assert _jwt.expiry(jwt({"exp": 2_000_000_000})) == 2_000_000_000.0


def test_jwt_claims_of_an_opaque_token_is_none() -> None:
    assert _jwt.claims("not-a-jwt") is None


dates = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")
)
zones = st.sampled_from(["UTC", "Z", "+00:00", "Europe/Berlin", "Etc/GMT+12", "+14:00"]) | st.text()
php_dates = st.fixed_dictionaries(
    {"date": dates | st.text()},
    optional={"timezone": zones | json_values, "timezone_type": st.integers()},
)


@SETTINGS
@given(value=php_dates | json_values)
@example(value={"date": "2030-01-01 00:00:00", "timezone": "+99:00"})
@example(value={"date": "2030-01-01 00:00:00", "timezone": "+²²:00"})
@example(value={"date": "2030-01-01 00:00:00", "timezone": "../../etc/passwd"})
@example(value={"date": "2030-01-01 00:00:00", "timezone": "UTC\x00"})
@example(value={"date": "2030-01-01 00:00:00", "timezone": "x" * 5000})
@example(value={"date": "0001-01-01 00:00:00", "timezone": "+23:59"})
@example(value={"date": "9999-12-31 23:59:59", "timezone": "-23:59"})
def test_treesnap_expires_at_of_any_object_is_a_float_or_none(value: Any) -> None:
    when = treesnap.expires_at(value)
    assert when is None or (isinstance(when, float) and math.isfinite(when))
