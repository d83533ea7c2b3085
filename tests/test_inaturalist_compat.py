"""keyfob.inaturalist as a drop-in for pyinaturalist's auth functions.

Against the emulator's iNaturalist: where the credentials come from
(arguments, then INAT_* variables, then pyinaturalist's keyring entries),
what the returned token unlocks, ``refresh=True``, the error type, the keyring
entries both tools share, and tokens that never cross accounts.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
import requests

import keyfob
import keyfob.broker
from keyfob import wiring
from keyfob.errors import StorageError
from keyfob.inaturalist import (
    AuthenticationError,
    get_access_token,
    get_keyring_credentials,
    set_keyring_credentials,
    validate_token,
)
from keyfob.testing import (
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    LocalProvider,
)

SECOND_USERNAME = "second-naturalist"
SECOND_PASSWORD = "second-password-0123456789"
WRONG_PASSWORD = "wrong-password-0123456789"
INAT_VARS = ("INAT_USERNAME", "INAT_PASSWORD", "INAT_APP_ID", "INAT_APP_SECRET")


def whose(local: LocalProvider, jwt: str) -> str:
    """The login the v1 API's ``/users/me`` names for ``jwt`` (iNaturalist's JWT holds
    only a user id)."""
    request = urllib.request.Request(f"{local.url}/v1/users/me", headers={"Authorization": jwt})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["results"][0]["login"])


def observation(local: LocalProvider, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{local.url}/v1/observations/1", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["results"][0]  # type: ignore[no-any-return]


@pytest.fixture
def inat(configured: LocalProvider, no_secret_leaks) -> LocalProvider:
    configured.add_inat_user(SECOND_USERNAME, SECOND_PASSWORD)
    no_secret_leaks.plant(SECOND_PASSWORD, WRONG_PASSWORD)
    return configured


@pytest.fixture
def plaintext_keyring(
    inat: LocalProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """keyrings.alt's file backend as the system keyring, in tmp_path."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("KEYFOB_KEYRING")
    previous = keyring.get_keyring()
    keyring.core.init_backend()  # keyring reads PYTHON_KEYRING_BACKEND once per process
    assert type(keyring.get_keyring()).__name__ == "PlaintextKeyring"
    wiring.reset()
    yield tmp_path / "xdg-data"
    keyring.set_keyring(previous)
    wiring.reset()


def unset_inat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in INAT_VARS:
        monkeypatch.delenv(name, raising=False)


# -- where the credentials come from ----------------------------------------------


def test_environment_credentials_give_a_jwt_of_that_user(inat: LocalProvider) -> None:
    assert whose(inat, get_access_token()) == DEMO_INAT_USERNAME


def test_explicit_arguments_win_over_the_environment(
    inat: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INAT_USERNAME", SECOND_USERNAME)
    monkeypatch.setenv("INAT_PASSWORD", SECOND_PASSWORD)

    token = get_access_token(DEMO_INAT_USERNAME, DEMO_INAT_PASSWORD)

    assert whose(inat, token) == DEMO_INAT_USERNAME


def test_explicit_arguments_win_over_a_wrong_environment_password(
    inat: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INAT_PASSWORD", WRONG_PASSWORD)

    token = get_access_token(
        DEMO_INAT_USERNAME, DEMO_INAT_PASSWORD, DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET
    )

    assert whose(inat, token) == DEMO_INAT_USERNAME


def test_environment_wins_over_the_keyring(
    plaintext_keyring: Path, inat: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring.set_password("/inaturalist", "username", SECOND_USERNAME)
    keyring.set_password("/inaturalist", "password", SECOND_PASSWORD)

    token = get_access_token()  # INAT_* of the demo user are set

    assert whose(inat, token) == DEMO_INAT_USERNAME


def test_keyring_credentials_are_used_without_environment(
    plaintext_keyring: Path, inat: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset_inat_env(monkeypatch)
    set_keyring_credentials(
        SECOND_USERNAME, SECOND_PASSWORD, DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET
    )

    assert whose(inat, get_access_token()) == SECOND_USERNAME


# -- what the token unlocks ----------------------------------------------------


def test_jwt_unlocks_private_coordinates(inat: LocalProvider) -> None:
    assert "private_geojson" in observation(inat, get_access_token())


def test_jwt_false_returns_the_oauth_token_that_does_not_unlock_them(inat: LocalProvider) -> None:
    jwt = get_access_token()
    oauth = get_access_token(jwt=False)

    assert oauth != jwt
    assert oauth.count(".") != 2  # not a JWT
    result = observation(inat, oauth)  # accepted, but private fields stay hidden
    assert result["id"] == 1
    assert "private_geojson" not in result


def test_refresh_uses_no_cached_token_and_logs_in_again(inat: LocalProvider) -> None:
    # pyinaturalist: "Do not use any cached tokens, even if they are not expired".
    get_access_token()
    assert inat.count("/oauth/token") == 1 and inat.count("/users/api_token") == 1

    token = get_access_token(refresh=True)

    assert inat.count("/oauth/token") == 2  # the password again, not the kept OAuth token
    assert inat.count("/users/api_token") == 2
    assert "private_geojson" in observation(inat, token)


def test_refresh_with_a_wrong_password_is_refused_despite_a_cached_token(
    inat: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Any
) -> None:
    get_access_token()
    monkeypatch.setenv("INAT_PASSWORD", "not-the-password-1")
    no_secret_leaks.plant("not-the-password-1")

    with pytest.raises(AuthenticationError) as caught:
        get_access_token(refresh=True)
    no_secret_leaks.add("AuthenticationError", str(caught.value))
    assert inat.count("/oauth/token") == 2  # the wrong password was sent, and refused


def test_second_call_is_served_from_the_cache(inat: LocalProvider) -> None:
    first = get_access_token()
    second = get_access_token()

    assert first == second
    assert inat.count("/oauth/token") == 1 and inat.count("/users/api_token") == 1


# -- errors ----------------------------------------------------------------------


def test_wrong_password_raises_an_authentication_error_that_is_an_http_error(
    inat: LocalProvider, no_secret_leaks
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        get_access_token(password=WRONG_PASSWORD)
    no_secret_leaks.add("AuthenticationError", str(caught.value))

    assert isinstance(caught.value, requests.HTTPError)
    assert isinstance(caught.value, keyfob.KeyfobError)
    assert "invalid_grant" in str(caught.value)


def test_missing_credentials_raise_an_authentication_error(
    inat: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks
) -> None:
    unset_inat_env(monkeypatch)

    with pytest.raises(AuthenticationError) as caught:
        get_access_token()
    no_secret_leaks.add("AuthenticationError", str(caught.value))

    assert isinstance(caught.value, requests.HTTPError)
    assert isinstance(caught.value, keyfob.KeyfobError)
    assert "INAT_PASSWORD" in str(caught.value)
    assert inat.count("/oauth/token") == 0


# -- the keyring entries pyinaturalist shares --------------------------------------


def test_set_keyring_credentials_writes_pyinaturalists_entries(plaintext_keyring: Path) -> None:
    set_keyring_credentials(
        DEMO_INAT_USERNAME, DEMO_INAT_PASSWORD, DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET
    )

    assert keyring.get_password("/inaturalist", "username") == DEMO_INAT_USERNAME
    assert keyring.get_password("/inaturalist", "password") == DEMO_INAT_PASSWORD
    assert keyring.get_password("/inaturalist", "app_id") == DEMO_INAT_APP_ID
    assert keyring.get_password("/inaturalist", "app_secret") == DEMO_INAT_APP_SECRET


def test_get_keyring_credentials_reads_entries_written_by_pyinaturalist(
    plaintext_keyring: Path,
) -> None:
    keyring.set_password("/inaturalist", "username", DEMO_INAT_USERNAME)
    keyring.set_password("/inaturalist", "password", DEMO_INAT_PASSWORD)
    keyring.set_password("/inaturalist", "app_id", DEMO_INAT_APP_ID)
    keyring.set_password("/inaturalist", "app_secret", DEMO_INAT_APP_SECRET)

    assert get_keyring_credentials() == {
        "username": DEMO_INAT_USERNAME,
        "password": DEMO_INAT_PASSWORD,
        "client_id": DEMO_INAT_APP_ID,
        "client_secret": DEMO_INAT_APP_SECRET,
    }


# -- accounts ----------------------------------------------------------------------


@pytest.mark.parametrize("new_process", [False, True], ids=["same-process", "new-process"])
def test_cached_token_never_crosses_accounts(
    inat: LocalProvider, monkeypatch: pytest.MonkeyPatch, new_process: bool
) -> None:
    first = get_access_token()
    monkeypatch.setenv("INAT_USERNAME", SECOND_USERNAME)
    monkeypatch.setenv("INAT_PASSWORD", SECOND_PASSWORD)
    if new_process:
        wiring.reset()  # memory gone: only the SQLite cache is left to (not) trust

    second = get_access_token()

    assert whose(inat, first) == DEMO_INAT_USERNAME
    assert whose(inat, second) == SECOND_USERNAME
    assert "private_geojson" not in observation(inat, second)  # not the owner's
    assert inat.count("/oauth/token") == 2


# -- what pyinaturalist users test with: requests-mock sees every request ------------

INAT = "https://www.inaturalist.org"
MADE_UP = {
    "username": "made-up-user",
    "password": "made-up-password-0123456789",
    "app_id": "made-up-app",
    "app_secret": "made-up-app-secret-0123456789",
}
OAUTH_ANSWER = {"access_token": "made-up-oauth-token", "token_type": "Bearer", "scope": "write"}
JWT_ANSWER = {"api_token": "made-up-jwt-without-dots"}


@pytest.fixture
def mocked(home: Path, requests_mock: Any, no_secret_leaks: Any) -> Any:
    """pyinaturalist's own endpoints, answered by requests-mock; no INAT_* variables."""
    no_secret_leaks.plant(
        MADE_UP["password"],
        MADE_UP["app_secret"],
        OAUTH_ANSWER["access_token"],
        JWT_ANSWER["api_token"],
    )
    requests_mock.post(f"{INAT}/oauth/token", json=OAUTH_ANSWER)
    requests_mock.get(f"{INAT}/users/api_token", json=JWT_ANSWER)
    return requests_mock


def calls(mock: Any, path: str) -> int:
    return sum(1 for request in mock.request_history if request.path == path)


def test_requests_mock_answers_the_password_grant_and_the_jwt_trade(mocked: Any) -> None:
    assert get_access_token(**MADE_UP) == JWT_ANSWER["api_token"]
    assert calls(mocked, "/oauth/token") == 1 and calls(mocked, "/users/api_token") == 1


def test_jwt_false_never_asks_for_a_jwt(mocked: Any) -> None:
    mocked.get(f"{INAT}/users/api_token", status_code=503)  # the JWT endpoint is down

    assert get_access_token(**MADE_UP, jwt=False) == OAUTH_ANSWER["access_token"]
    assert calls(mocked, "/users/api_token") == 0


def test_jwt_false_answers_with_the_kept_oauth_token_of_a_cached_jwt(mocked: Any) -> None:
    get_access_token(**MADE_UP)

    assert get_access_token(**MADE_UP, jwt=False) == OAUTH_ANSWER["access_token"]
    assert calls(mocked, "/oauth/token") == 1


def test_a_refusal_carries_the_servers_response(mocked: Any, no_secret_leaks: Any) -> None:
    mocked.post(f"{INAT}/oauth/token", status_code=401, json={"error": "invalid_client"})

    with pytest.raises(requests.HTTPError) as caught:
        get_access_token(**MADE_UP)
    no_secret_leaks.add("AuthenticationError", str(caught.value))

    assert isinstance(caught.value, AuthenticationError)
    assert isinstance(caught.value.response, requests.Response)
    assert caught.value.response.status_code == 401


def test_a_network_failure_is_a_requests_connection_error(
    mocked: Any, no_secret_leaks: Any
) -> None:
    mocked.post(f"{INAT}/oauth/token", exc=requests.ConnectionError)

    with pytest.raises(requests.ConnectionError) as caught:
        get_access_token(**MADE_UP)
    no_secret_leaks.add("ConnectionError", str(caught.value))

    assert isinstance(caught.value, keyfob.KeyfobError)


class RefusingKeyring:
    """A keyring that is there but refuses (locked, prompt dismissed)."""

    kind = "keyring"
    opened = 0

    def __init__(self, environ: Any = None) -> None:
        RefusingKeyring.opened += 1

    def _refuse(self, *args: object) -> None:
        raise StorageError("the keyring is locked")

    get = set = delete = describe = _refuse  # type: ignore[assignment]


@pytest.fixture
def refusing_keyring(home: Path, monkeypatch: pytest.MonkeyPatch) -> type[RefusingKeyring]:
    # What the process's brokers open the secret store with, as a locked keyring.
    monkeypatch.setattr(keyfob.broker, "_open_store", RefusingKeyring)
    monkeypatch.setattr(RefusingKeyring, "opened", 0)
    wiring.reset()
    return RefusingKeyring


def test_with_all_four_given_a_refusing_keyring_is_never_opened(
    mocked: Any, refusing_keyring: type[RefusingKeyring]
) -> None:
    assert get_access_token(**MADE_UP) == JWT_ANSWER["api_token"]
    assert get_access_token(**MADE_UP, jwt=False) == OAUTH_ANSWER["access_token"]
    assert refusing_keyring.opened == 0


def test_get_keyring_credentials_on_a_refusing_keyring_warns_and_is_empty(
    refusing_keyring: type[RefusingKeyring], caplog: pytest.LogCaptureFixture
) -> None:
    assert get_keyring_credentials() == {}
    assert "locked" in caplog.text


def test_missing_credentials_with_a_refusing_keyring_are_an_authentication_error(
    mocked: Any, refusing_keyring: type[RefusingKeyring]
) -> None:
    with pytest.raises(AuthenticationError):
        get_access_token(MADE_UP["username"])


# -- validate_token: GET /v1/users/me ----------------------------------------------------


def test_validate_token_accepts_a_live_jwt_and_oauth_token(inat: LocalProvider) -> None:
    assert validate_token(get_access_token())
    assert validate_token(get_access_token(jwt=False))
    assert inat.count("/v1/users/me") == 2


def test_validate_token_refuses_an_unknown_token(inat: LocalProvider) -> None:
    assert validate_token("not-a-token-we-issued") is False
