"""TreeSnap: the provider contract, then its quirks (a pasted personal token)."""

from __future__ import annotations

import pytest

import keyfob
from conftest import Leaks
from keyfob.testing import LocalProvider
from provider_contract import Case, ProviderContract

# keyfob.login("treesnap") without flow="paste" drops the token it was given and says
# "treesnap needs token" (broker.flow_secrets); `keyfob login treesnap` does the same.
LOGIN_WITHOUT_FLOW = pytest.mark.xfail(
    strict=True,
    raises=keyfob.CredentialsMissing,
    reason="login without flow='paste' ignores TREESNAP_TOKEN",
)


class TestTreeSnap(ProviderContract):
    case = Case(
        name="treesnap",
        variables=("TREESNAP_TOKEN",),
        api="/web-services/v1/my-observations",
        cold={},  # the personal token is pasted: no request while it is fresh
        renew={"/web-services/v1/refresh-tokens": 1},
        revoke={},  # TreeSnap documents no revocation
        # one the server no longer takes: expired, so keyfob must ask for a new one
        wrong=lambda local: {"TREESNAP_TOKEN": local.issue_treesnap_token(lifetime=-60)},
        extra=lambda local: {"TREESNAP_TOKEN": local.issue_treesnap_token()},
    )

    @LOGIN_WITHOUT_FLOW
    def test_login_with_a_wrong_secret_stores_nothing(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
    ) -> None:
        super().test_login_with_a_wrong_secret_stores_nothing(
            emulator, monkeypatch, no_secret_leaks
        )

    @LOGIN_WITHOUT_FLOW
    def test_logout_forgets_the_stored_secrets_and_the_token(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        super().test_logout_forgets_the_stored_secrets_and_the_token(emulator, monkeypatch)
