"""iNaturalist: the provider contract, then its quirks (the JWT trade)."""

from __future__ import annotations

from conftest import CliRun, Leaks
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
