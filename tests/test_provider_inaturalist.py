"""iNaturalist: the provider contract, then its quirks (the JWT trade)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn

import pytest

from keyfob.broker import Broker
from keyfob.errors import StorageError
from keyfob.provider import BUILTINS
from keyfob.testing import LocalProvider
from provider_contract import Case, ProviderContract

WRONG_PASSWORD = "wrong-password-0123456789"


class TestInaturalist(ProviderContract):
    case = Case(
        name="inaturalist",
        variables=("INAT_USERNAME", "INAT_PASSWORD", "INAT_APP_ID", "INAT_APP_SECRET"),
        api="/v1/observations/1",
        cold={"/oauth/token": 1, "/users/api_token": 1},  # the password grant, then the JWT
        renew={"/users/api_token": 1},  # the kept OAuth token traded for a new JWT
        revoke={"/oauth/revoke": 1},  # the OAuth token
        wrong=lambda local: {"INAT_PASSWORD": WRONG_PASSWORD},
    )


# --------------------------------------------------------------------------- quirks
def test_inaturalist_default_account_shares_pyinaturalist_keyring_service() -> None:
    provider = BUILTINS["inaturalist"]
    assert provider.service() == "/inaturalist"
    assert provider.service("work") == "keyfob:inaturalist:work"


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
