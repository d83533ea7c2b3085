"""The plain OAuth2 provider (``local``: the emulator's /std server, password grant):
the provider contract, then its quirks."""

from __future__ import annotations

import pytest

import keyfob
from keyfob import wiring
from keyfob.testing import LocalProvider
from provider_contract import Case, ProviderContract

WRONG_PASSWORD = "wrong-password-0123456789"


class TestLocal(ProviderContract):
    case = Case(
        name="local",
        variables=("LOCAL_CLIENT_ID", "LOCAL_CLIENT_SECRET", "LOCAL_USERNAME", "LOCAL_PASSWORD"),
        api="/std/api/me",
        cold={"/std/.well-known/openid-configuration": 1, "/std/token": 1},
        renew={"/std/token": 1},
        grant={"/std/token": 1},  # the password grant again (discovery is kept)
        revoke={"/std/revoke": 2},  # the refresh token, then the access token
        wrong=lambda local: {"LOCAL_PASSWORD": WRONG_PASSWORD},
    )


def test_logout_revoke_with_the_server_down_forgets_here_then_raises(
    configured: LocalProvider,
) -> None:
    keyfob.login("local")
    configured.fail("/std/revoke", 503, times=20, retry_after="0")

    with pytest.raises(keyfob.TransportError) as caught:
        keyfob.logout("local", revoke=True)

    assert "forgotten here" in caught.value.one_line()
    assert keyfob.get_credentials("local") == {}
    assert wiring.default().cached("local") is None
