"""Token answers as real servers send them: JSON or a form, errors with HTTP 200,
``refresh_token_expires_in``, numbers as strings, device-flow pendings with 200.

The grants are driven with plain values (no server): the GitHub emulator's tests
(tests/testing/test_github.py, tests/test_provider_github.py) check the same
end to end.
"""

from __future__ import annotations

import contextlib
import json
import string
import urllib.parse
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfob import grants
from keyfob.errors import InvalidCredentials, KeyfobError, ProviderError
from keyfob.flow import HttpRequest, HttpResponse, ShowCode, Sleep
from keyfob.token import Token

NOW = 1_700_000_000.0
TOKEN_URL = "https://github.example/login/oauth/access_token"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
ACCESS = "ghu_16C7e42F292c6912E7710c838347Ae178B4a"
REFRESH = "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498"


def answer(body: bytes | str, content_type: str = FORM, status: int = 200) -> HttpResponse:
    content = body.encode() if isinstance(body, str) else body
    headers = {"content-type": content_type} if content_type else {}
    return HttpResponse(status, headers, content, TOKEN_URL)


def parse(response: HttpResponse) -> Token:
    return grants.parse_token_response(response, requested_at=NOW)


# ------------------------------------------------------------------ forms
def test_a_form_answer_is_read_like_json() -> None:
    # GitHub's answer when not asked for JSON (its "Authorizing OAuth apps" page)
    token = parse(answer(f"access_token={ACCESS}&scope=repo%2Cgist&token_type=bearer"))

    assert token.access_token == ACCESS
    assert token.authorization == f"Bearer {ACCESS}"
    assert token.scope == "repo,gist"
    assert token.expires is None and token.refresh_token is None


def test_a_form_answer_sent_as_text_plain_is_read() -> None:
    token = parse(answer(f"access_token={ACCESS}&token_type=bearer", "text/plain"))
    assert token.access_token == ACCESS


def test_a_form_answer_without_a_content_type_is_read() -> None:
    token = parse(answer(f"access_token={ACCESS}&token_type=bearer", ""))
    assert token.access_token == ACCESS


def test_json_sent_as_text_plain_is_still_json() -> None:
    token = parse(answer(json.dumps({"access_token": ACCESS}), "text/plain"))
    assert token.access_token == ACCESS


def test_an_expiring_app_token_as_a_form_has_both_lifetimes() -> None:
    # a GitHub App's user token: 8 hours, its refresh token about six months
    body = urllib.parse.urlencode(
        {
            "access_token": ACCESS,
            "expires_in": "28800",
            "refresh_token": REFRESH,
            "refresh_token_expires_in": "15897600",
            "scope": "",
            "token_type": "bearer",
        }
    )
    token = parse(answer(body))

    assert token.expires == NOW + 28800
    assert token.refresh_token == REFRESH
    assert token.refresh_expires == NOW + 15897600
    assert token.scope == ""


def test_refresh_token_expires_in_is_read_from_json_as_well() -> None:
    body = {"access_token": ACCESS, "refresh_token": REFRESH, "refresh_token_expires_in": 600}
    token = parse(answer(json.dumps(body), "application/json"))
    assert token.refresh_expires == NOW + 600


def test_expires_in_as_a_string_in_json() -> None:
    token = parse(answer(json.dumps({"access_token": ACCESS, "expires_in": "3599"}), "text/json"))
    assert token.expires == NOW + 3599


def test_a_form_answer_without_access_token_is_a_one_line_provider_error() -> None:
    with pytest.raises(ProviderError) as caught:
        parse(answer("token_type=bearer&scope=repo"))

    line = caught.value.one_line()
    assert "without an access_token" in line and "\n" not in line
    assert caught.value.exit_code == 4
    assert caught.value.hint


def test_a_form_naming_access_token_twice_is_refused() -> None:
    with pytest.raises(ProviderError, match="names a field twice"):
        parse(answer(f"access_token={ACCESS}&access_token=other-token-value"))


# ------------------------------------------------------------------ errors with HTTP 200
@pytest.mark.parametrize(
    "error",
    ["bad_verification_code", "incorrect_client_credentials", "bad_refresh_token"],
)
def test_github_credential_errors_with_200_are_invalid_credentials(error: str) -> None:
    body = {"error": error, "error_description": "The code passed is incorrect or expired."}

    with pytest.raises(InvalidCredentials) as caught:
        parse(answer(json.dumps(body), "application/json"))

    assert caught.value.error == error
    assert caught.value.exit_code == 3


def test_an_error_in_a_200_form_is_read() -> None:
    with pytest.raises(InvalidCredentials) as caught:
        parse(answer("error=bad_refresh_token&error_description=The+refresh+token+is+bad."))
    assert caught.value.error == "bad_refresh_token"
    assert "The refresh token is bad." in str(caught.value)


def test_another_error_with_200_is_a_provider_error() -> None:
    with pytest.raises(ProviderError) as caught:
        parse(answer(json.dumps({"error": "unsupported_grant_type"}), "application/json"))
    assert caught.value.error == "unsupported_grant_type"
    assert caught.value.exit_code == 4


# ------------------------------------------------------------------ the device flow
def device_flow(interval: float | None = None) -> Any:
    return grants.device_login(
        device_url="https://github.example/login/device/code",
        token_url=TOKEN_URL,
        client_id="Iv1.0123456789abcdef",
        client_secret=None,
        interval=interval,
        clock=lambda: NOW,
    )


def device_answer(interval: int = 5) -> HttpResponse:
    body = {
        "device_code": "3584d83530557fdd1f46af8289938c8ef79f9dc5",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://github.example/login/device",
        "expires_in": 900,
        "interval": interval,
    }
    return answer(json.dumps(body), "application/json")


def test_device_polls_through_200_pendings_and_a_slow_down() -> None:
    flow = device_flow()
    assert isinstance(next(flow), HttpRequest)
    assert isinstance(flow.send(device_answer()), ShowCode)
    waits = []
    pending = json.dumps({"error": "authorization_pending"})
    slow = json.dumps({"error": "slow_down", "error_description": "Too fast.", "interval": 10})
    done = json.dumps({"access_token": ACCESS, "token_type": "bearer", "scope": "repo"})
    effect = flow.send(None)
    for body in (pending, slow, pending):
        assert isinstance(effect, Sleep)
        waits.append(effect.seconds)
        poll = flow.send(None)
        assert isinstance(poll, HttpRequest)
        assert poll.form is not None and poll.form["grant_type"] == grants.DEVICE_GRANT
        effect = flow.send(answer(body, "application/json"))
    assert isinstance(effect, Sleep)
    waits.append(effect.seconds)
    assert isinstance(flow.send(None), HttpRequest)
    with pytest.raises(StopIteration) as stopped:
        flow.send(answer(done, "application/json"))

    assert stopped.value.value.access_token == ACCESS
    # RFC 8628 §3.5: slow_down adds 5 s for this and every later poll
    assert waits == [5, 5, 10, 10]


def test_device_slow_down_without_an_interval_adds_five_seconds() -> None:
    flow = device_flow()
    next(flow)
    flow.send(device_answer(interval=7))
    assert flow.send(None) == Sleep(7, until=NOW + 900)
    flow.send(None)
    effect = flow.send(answer("error=slow_down"))  # a form, with 200
    assert isinstance(effect, Sleep) and effect.seconds == 12


@pytest.mark.parametrize(
    ("error", "kind"),
    [("access_denied", InvalidCredentials), ("expired_token", InvalidCredentials)],
)
def test_device_refusals_with_200_end_the_login(error: str, kind: type[KeyfobError]) -> None:
    flow = device_flow()
    next(flow)
    flow.send(device_answer())
    flow.send(None)
    flow.send(None)
    with pytest.raises(kind) as caught:
        flow.send(answer(json.dumps({"error": error}), "application/json"))
    assert caught.value.error == error


def test_device_code_answer_as_a_form_is_read() -> None:
    flow = device_flow()
    next(flow)
    body = (
        "device_code=3584d83530557fdd1f46af8289938c8ef79f9dc5&expires_in=900&interval=5"
        "&user_code=WDJB-MJHT&verification_uri=https%3A%2F%2Fgithub.example%2Flogin%2Fdevice"
    )
    shown = flow.send(answer(body))
    assert isinstance(shown, ShowCode)
    assert shown.user_code == "WDJB-MJHT"
    assert shown.verification_uri == "https://github.example/login/device"


def test_device_code_endpoint_error_with_200_is_an_error() -> None:
    flow = device_flow()
    next(flow)
    with pytest.raises(ProviderError) as caught:
        flow.send(answer(json.dumps({"error": "device_flow_disabled"}), "application/json"))
    assert caught.value.error == "device_flow_disabled"


# ------------------------------------------------------------------ properties
_NAMES = st.sampled_from(
    [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
        "refresh_expires_in",
        "scope",
        "error",
        "error_description",
        "interval",
    ]
)
_VALUES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.ascii_letters + string.digits + "_-.", min_size=1, max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_TYPES = st.sampled_from(
    [
        "application/json",
        FORM,
        "text/plain",
        "",
        "text/html",
        "application/x-www-form-urlencoded",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(_NAMES | st.text(max_size=10), _VALUES | _JSON_VALUES, max_size=8),
    as_form=st.booleans(),
    content_type=_TYPES,
    status=st.sampled_from([200, 201, 400, 401, 403, 500]),
)
def test_any_json_or_form_answer_gives_a_token_or_a_keyfob_error(
    fields: dict[str, Any], as_form: bool, content_type: str, status: int
) -> None:
    if as_form:
        body = urllib.parse.urlencode({k: str(v) for k, v in fields.items()})
    else:
        body = json.dumps(fields)
    try:
        token = parse(answer(body, content_type, status))
    except KeyfobError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert token.access_token


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200), content_type=_TYPES)
def test_any_bytes_give_a_token_or_a_keyfob_error(body: bytes, content_type: str) -> None:
    with contextlib.suppress(KeyfobError):
        parse(answer(body, content_type))


_TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "_-.~+/", min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(
    access=_TOKEN,
    refresh=st.none() | _TOKEN,
    expires=st.none() | st.integers(min_value=0, max_value=10**8),
    refresh_expires=st.none() | st.integers(min_value=0, max_value=10**8),
    scope=st.none() | st.text(alphabet=string.ascii_lowercase + ":, ", max_size=30),
    content_type=st.sampled_from([FORM, "text/plain", "application/json"]),
    numbers_as_strings=st.booleans(),
)
def test_values_round_trip_through_json_and_forms(
    access: str,
    refresh: str | None,
    expires: int | None,
    refresh_expires: int | None,
    scope: str | None,
    content_type: str,
    numbers_as_strings: bool,
) -> None:
    fields: dict[str, Any] = {"access_token": access, "token_type": "bearer"}
    if refresh is not None:
        fields["refresh_token"] = refresh
    if expires is not None:
        fields["expires_in"] = str(expires) if numbers_as_strings else expires
    if refresh_expires is not None:
        fields["refresh_token_expires_in"] = refresh_expires
    if scope is not None:
        fields["scope"] = scope
    if content_type == "application/json":
        body = json.dumps(fields)
    else:
        body = urllib.parse.urlencode({k: str(v) for k, v in fields.items()})

    token = parse(answer(body, content_type))

    assert token.access_token == access
    assert token.refresh_token == refresh
    assert token.expires == (None if expires is None else NOW + expires)
    assert token.refresh_expires == (None if refresh_expires is None else NOW + refresh_expires)
    assert token.scope == scope
