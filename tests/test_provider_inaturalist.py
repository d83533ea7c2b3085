"""iNaturalist: the provider contract, then its quirks (the JWT trade)."""

from __future__ import annotations

from keyfob.provider import BUILTINS
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
