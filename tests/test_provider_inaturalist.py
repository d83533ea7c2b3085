"""iNaturalist: the provider contract, then its quirks (the JWT trade)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import NoReturn

import pytest

import keyfob
from conftest import CliRun, Leaks
from keyfob.broker import Broker
from keyfob.errors import StorageError
from keyfob.provider import BUILTINS
from keyfob.testing import DEMO_INAT_USERNAME, LocalProvider
from provider_contract import Case, ProviderContract

WRONG_PASSWORD = "wrong-password-0123456789"


class TestInaturalist(ProviderContract):
    case = Case(
        name="inaturalist",
        variables=("INAT_USERNAME", "INAT_PASSWORD", "INAT_APP_ID", "INAT_APP_SECRET"),
        api="/v1/observations/1",
        cold={"/oauth/token": 1, "/users/api_token": 1},  # the password grant, then the JWT
        renew={"/users/api_token": 1},  # the kept OAuth token traded for a new JWT
        grant={"/oauth/token": 1, "/users/api_token": 1},  # the password again, then the JWT
        revoke={"/oauth/revoke": 1},  # the OAuth token
        wrong=lambda local: {"INAT_PASSWORD": WRONG_PASSWORD},
    )


# --------------------------------------------------------------------------- quirks
def test_inaturalist_default_account_shares_pyinaturalist_keyring_service() -> None:
    provider = BUILTINS["inaturalist"]
    assert provider.service() == "/inaturalist"
    assert provider.service("work") == "keyfob:inaturalist:work"


def test_token_refresh_logs_in_again_and_a_wrong_password_is_exit_3(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    assert cli("token", "inaturalist").returncode == 0
    before = (configured.count("/oauth/token"), configured.count("/users/api_token"))

    done = cli("token", "inaturalist", "--refresh")

    assert done.returncode == 0, done.stderr
    assert configured.count("/oauth/token") == before[0] + 1
    assert configured.count("/users/api_token") == before[1] + 1

    no_secret_leaks.plant(WRONG_PASSWORD)
    refused = cli("token", "inaturalist", "--refresh", env={"INAT_PASSWORD": WRONG_PASSWORD})
    assert refused.returncode == 3, refused.stderr
    assert refused.stdout == ""


def test_refresh_command_renews_with_the_kept_oauth_token(
    configured: LocalProvider, cli: CliRun
) -> None:
    assert cli("token", "inaturalist").returncode == 0
    before = configured.count("/oauth/token")

    done = cli("refresh", "inaturalist")

    assert done.returncode == 0, done.stderr
    assert configured.count("/oauth/token") == before  # no password: the cheap renewal


def test_a_revoked_oauth_token_is_replaced_by_the_password_even_with_the_same_jwt(
    configured: LocalProvider,
) -> None:
    # iNaturalist's JWT holds the user, the app and the expiry second only: a new
    # OAuth token's JWT within the same second is byte for byte the old JWT. It
    # came from a new grant, not from the refused secret, so it is no refusal.
    while time.time() % 1 > 0.5:  # start early in a second: both JWTs share it
        time.sleep(0.05)
    first = keyfob.get_token("inaturalist")
    assert first.refresh_token
    configured.revoke(first.refresh_token)  # the kept OAuth token no longer trades

    again = keyfob.get_token("inaturalist", refresh=True)

    assert again.access_token == first.access_token  # the same second's JWT
    assert again.refresh_token not in (None, first.refresh_token)  # from a new grant
    assert configured.is_active(again.refresh_token or "")
    assert configured.count("/oauth/token") == 2


@pytest.mark.parametrize(
    ("state", "error", "description"),
    [
        ("suspended", "suspended", "This user has been suspended."),
        ("child", "invalid_grant", "Please ask your parents for permission."),
        ("unconfirmed", "invalid_grant", "You have to confirm your email address"),
    ],
)
def test_an_account_inaturalist_refuses_says_why(
    configured: LocalProvider, no_secret_leaks: Leaks, state: str, error: str, description: str
) -> None:
    configured.mark_inat_user(DEMO_INAT_USERNAME, state)

    with pytest.raises(keyfob.InvalidCredentials) as caught:
        keyfob.get_token("inaturalist")

    no_secret_leaks.add("InvalidCredentials", caught.value.one_line())
    assert caught.value.error == error
    assert description in caught.value.one_line()
    assert caught.value.hint


class RefusingStore:
    """A keyring that is there but refuses every call (locked, prompt dismissed)."""

    kind = "keyring"

    def __init__(self) -> None:
        self.asked = 0

    def _refuse(self, *args: object) -> NoReturn:
        self.asked += 1
        raise StorageError("the keyring is locked")

    get = set = delete = describe = _refuse


def test_with_the_four_secrets_given_the_keyring_is_never_opened_or_asked(
    configured: LocalProvider,
) -> None:
    opened: list[RefusingStore] = []

    def open_store(environ: Mapping[str, str]) -> RefusingStore:
        opened.append(RefusingStore())
        return opened[-1]

    broker = Broker(open_store=open_store)  # type: ignore[arg-type]
    try:
        token = broker.get_token("inaturalist")  # all four INAT_* set: nothing needed from it
        broker.get_token("inaturalist", refresh=True)
    finally:
        broker.transport.close()

    assert token.refresh_token
    assert configured.count("/users/api_token") == 2
    assert opened == []


def test_with_a_secret_missing_a_refusing_keyring_is_an_error(
    configured: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INAT_APP_SECRET")
    store = RefusingStore()
    broker = Broker(store=store)  # type: ignore[arg-type]

    with pytest.raises(StorageError):
        broker.get_token("inaturalist")
    broker.transport.close()
    assert store.asked
