"""The plain OAuth2 provider (``local``: the emulator's /std server, password grant):
the provider contract, then its quirks."""

from __future__ import annotations

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
