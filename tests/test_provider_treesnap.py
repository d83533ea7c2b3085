"""TreeSnap: the provider contract, then its quirks (a pasted personal token)."""

from __future__ import annotations

import time

import pytest

import keyfob
from conftest import CliRun, Leaks
from keyfob.provider.treesnap import personal
from keyfob.testing import LocalProvider
from keyfob.token import DEFAULT_LEEWAY, TokenState
from provider_contract import Case, ProviderContract


class TestTreeSnap(ProviderContract):
    case = Case(
        name="treesnap",
        variables=("TREESNAP_TOKEN",),
        api="/web-services/v1/my-observations",
        cold={},  # the personal token is pasted: no request while it is fresh
        renew={"/web-services/v1/refresh-tokens": 1},
        grant={"/web-services/v1/refresh-tokens": 1},  # a renewed token is the secret now
        revoke={},  # TreeSnap documents no revocation
        # one the server no longer takes: expired, so keyfob must ask for a new one
        wrong=lambda local: {"TREESNAP_TOKEN": local.issue_treesnap_token(lifetime=-60)},
        extra=lambda local: {"TREESNAP_TOKEN": local.issue_treesnap_token()},
    )

    def test_login_with_a_wrong_secret_stores_nothing(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
    ) -> None:
        super().test_login_with_a_wrong_secret_stores_nothing(
            emulator, monkeypatch, no_secret_leaks
        )

    def test_logout_forgets_the_stored_secrets_and_the_token(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        super().test_logout_forgets_the_stored_secrets_and_the_token(emulator, monkeypatch)


# ------------------------------------------------------------ quirks: a token due for refresh
def sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.time()))


def test_treesnap_refreshes_personal_token_due_for_refresh(
    configured: LocalProvider, cli: CliRun
) -> None:
    old = configured.issue_treesnap_token(lifetime=6)
    due = personal(old, time.time())
    # keyfob reads `issued` from the JWT's iat; a 6 s token is due after 3 s
    sleep_until(due.fresh_until(DEFAULT_LEEWAY) + 0.1)
    assert due.state(None, DEFAULT_LEEWAY) is TokenState.STALE
    done = cli("token", "treesnap", env={"TREESNAP_TOKEN": old})
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip()
    assert new != old
    assert configured.count("/web-services/v1/refresh-tokens") == 1
    assert configured.is_active(new)
    assert not configured.is_active(old)


def test_treesnap_refreshed_token_supersedes_old_one_in_env(
    configured: LocalProvider, cli: CliRun
) -> None:
    old = configured.issue_treesnap_token(lifetime=6)
    sleep_until(personal(old, time.time()).fresh_until(DEFAULT_LEEWAY) + 0.1)
    new = cli("token", "treesnap", env={"TREESNAP_TOKEN": old}).stdout.strip()
    assert configured.count("/web-services/v1/refresh-tokens") == 1
    again = cli("token", "treesnap", env={"TREESNAP_TOKEN": old})
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == new
    assert configured.count("/web-services/v1/refresh-tokens") == 1


def test_a_revoked_personal_token_is_refused_not_handed_back(
    configured: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refreshing it is refused, and the only other way to a token is the same
    # personal token: that is the refusal, not a new token.
    token = configured.issue_treesnap_token()
    monkeypatch.setenv("TREESNAP_TOKEN", token)
    assert keyfob.get_token("treesnap").access_token == token
    configured.revoke(token)

    with pytest.raises(keyfob.InvalidCredentials) as caught:
        keyfob.get_token("treesnap", refresh=True)

    assert caught.value.hint
    assert configured.count("/web-services/v1/refresh-tokens") == 1
