"""The provider contract, written once and run against every built-in provider.

Like the cache contract (``tests/test_cache_contract.py``): ``ProviderContract``
holds the behaviours every provider shows through keyfob's public API against
the local emulator, and each provider's file only says what it is, in a
``Case``, then tests its quirks::

    class TestInaturalist(ProviderContract):
        case = Case(name="inaturalist", api="/v1/observations/1", ...)

Only the public API (``keyfob.get_token``, ``keyfob.login``, ``keyfob.logout``,
``keyfob.requests_auth`` ...) and ``keyfob.wiring.reset()`` (a new process, as
far as memory goes) are used here; the emulator counts the requests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import requests

import keyfob
from conftest import Leaks
from keyfob import wiring
from keyfob.testing import LocalProvider

#: every path of the emulator a built-in provider talks to
PATHS = (
    "/oauth/token",
    "/users/api_token",
    "/oauth/revoke",
    "/v1/observations/1",
    "/web-services/v1/refresh-tokens",
    "/web-services/v1/my-observations",
    "/oauth2/token",
    "/oauth2/invalidate_token",
    "/2/users/me",
    "/2/tweets/search/recent",
    "/2/oauth2/token",
    "/2/oauth2/revoke",
    "/std/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server/std",
    "/std/token",
    "/std/revoke",
    "/std/introspect",
    "/std/api/me",
)


@dataclass(frozen=True)
class Case:
    """What the contract needs to know of one provider."""

    #: the provider's name in keyfob
    name: str
    #: the environment variables that hold its secrets
    variables: tuple[str, ...]
    #: an API endpoint on the emulator that wants the provider's token
    api: str
    #: the requests a first token from cold makes, by path (its documented flow)
    cold: dict[str, int]
    #: the requests that renew a known token (``keyfob refresh``, after a 401)
    renew: dict[str, int]
    #: the requests of ``refresh=True``: no cached token of any kind, the grant again
    grant: dict[str, int]
    #: the requests ``logout(revoke=True)`` makes; empty: the provider documents no revocation
    revoke: dict[str, int]
    #: environment variables that make the credentials wrong (planted as secrets)
    wrong: Callable[[LocalProvider], dict[str, str]]
    #: environment variables the demo set-up needs beyond ``LocalProvider.environ()``
    extra: Callable[[LocalProvider], dict[str, str]] = field(default=lambda local: {})
    #: what ``keyfob.login`` needs beyond the secrets (a person for a browser login)
    login: Callable[[], dict[str, Any]] = field(default=lambda: {})


def requests_made(local: LocalProvider) -> dict[str, int]:
    """How many requests each path has had (paths without any left out)."""
    return {path: n for path in PATHS if (n := local.count(path))}


def since(local: LocalProvider, before: dict[str, int]) -> dict[str, int]:
    """The requests made since ``before``, by path."""
    now = requests_made(local)
    return {path: n - before.get(path, 0) for path, n in now.items() if n != before.get(path, 0)}


class ProviderContract:
    """Behaviours every built-in provider shows; subclasses set ``case``."""

    case: ClassVar[Case]

    @pytest.fixture
    def emulator(
        self, configured: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
    ) -> LocalProvider:
        """The emulator, with this provider's demo secrets in the environment."""
        for name, value in self.case.extra(configured).items():
            monkeypatch.setenv(name, value)
            no_secret_leaks.plant(value)
        wiring.reset()
        return configured

    def wrong(self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch, leaks: Leaks) -> None:
        for name, value in self.case.wrong(emulator).items():
            monkeypatch.setenv(name, value)
            leaks.plant(value)

    def secrets(self) -> set[str]:
        """The values of the provider's secrets, as the environment holds them now."""
        return {os.environ[name] for name in self.case.variables}

    def get(self, emulator: LocalProvider) -> requests.Response:
        url = emulator.url + self.case.api
        return requests.get(url, auth=keyfob.requests_auth(self.case.name), timeout=10)

    # ------------------------------------------------------------------ getting a token
    def test_first_token_from_cold_makes_the_documented_requests(
        self, emulator: LocalProvider
    ) -> None:
        token = keyfob.get_token(self.case.name)

        assert requests_made(emulator) == self.case.cold
        assert self.get(emulator).status_code == 200
        assert token.access_token

    def test_second_call_in_the_same_process_makes_no_request(
        self, emulator: LocalProvider
    ) -> None:
        first = keyfob.get_token(self.case.name)
        before = requests_made(emulator)

        second = keyfob.get_token(self.case.name)

        assert second is first
        assert requests_made(emulator) == before

    def test_a_new_process_reuses_the_cached_token_without_a_request(
        self, emulator: LocalProvider
    ) -> None:
        first = keyfob.get_token(self.case.name)
        before = requests_made(emulator)
        wiring.reset()

        second = keyfob.get_token(self.case.name)

        assert second.access_token == first.access_token
        assert requests_made(emulator) == before

    def test_refresh_true_gets_another_token_with_the_grant_requests(
        self, emulator: LocalProvider
    ) -> None:
        keyfob.get_token(self.case.name)
        before = requests_made(emulator)

        renewed = keyfob.get_token(self.case.name, refresh=True)

        assert since(emulator, before) == self.case.grant
        assert keyfob.get_token(self.case.name).access_token == renewed.access_token
        assert self.get(emulator).status_code == 200

    def test_renew_gets_another_token_with_the_renewal_requests(
        self, emulator: LocalProvider
    ) -> None:
        keyfob.get_token(self.case.name)
        before = requests_made(emulator)

        renewed = wiring.default().renew(self.case.name)  # what `keyfob refresh` does

        assert since(emulator, before) == self.case.renew
        assert keyfob.get_token(self.case.name).access_token == renewed.access_token
        assert self.get(emulator).status_code == 200

    # ------------------------------------------------------------------ wrong secrets
    def test_a_wrong_secret_is_invalid_credentials(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
    ) -> None:
        self.wrong(emulator, monkeypatch, no_secret_leaks)

        with pytest.raises(keyfob.InvalidCredentials) as caught:
            keyfob.get_token(self.case.name)
        no_secret_leaks.add("InvalidCredentials", caught.value.one_line())
        assert caught.value.hint

    def test_login_with_a_wrong_secret_stores_nothing(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
    ) -> None:
        self.wrong(emulator, monkeypatch, no_secret_leaks)

        with pytest.raises(keyfob.InvalidCredentials):
            keyfob.login(self.case.name, **self.case.login())

        assert keyfob.get_credentials(self.case.name) == {}

    # ------------------------------------------------------------------ the adapters
    def test_a_token_refused_with_401_by_the_api_is_replaced_once(
        self, emulator: LocalProvider
    ) -> None:
        assert self.get(emulator).status_code == 200
        before = requests_made(emulator)
        emulator.fail(self.case.api, 401, times=1)

        answer = self.get(emulator)

        assert answer.status_code == 200
        assert [r.status_code for r in answer.history] == [401]
        assert since(emulator, before) == {**self.case.renew, self.case.api: 2}

    def test_a_401_that_keeps_coming_is_returned_after_one_retry(
        self, emulator: LocalProvider
    ) -> None:
        assert self.get(emulator).status_code == 200
        before = requests_made(emulator)
        emulator.fail(self.case.api, 401, times=10)

        answer = self.get(emulator)

        assert answer.status_code == 401
        assert since(emulator, before) == {**self.case.renew, self.case.api: 2}

    # ------------------------------------------------------------------ forgetting
    def test_logout_forgets_the_stored_secrets_and_the_token(
        self, emulator: LocalProvider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        keyfob.login(self.case.name, **self.case.login())
        for name in self.case.variables:
            monkeypatch.delenv(name)
        wiring.reset()
        before = requests_made(emulator)
        assert keyfob.get_token(self.case.name)  # from what login stored alone
        assert requests_made(emulator) == before

        keyfob.logout(self.case.name)

        assert keyfob.get_credentials(self.case.name) == {}
        with pytest.raises(keyfob.CredentialsMissing):
            keyfob.get_token(self.case.name)

    def test_logout_revoke_revokes_at_the_documented_endpoint(
        self, emulator: LocalProvider
    ) -> None:
        token = keyfob.get_token(self.case.name)
        before = requests_made(emulator)

        keyfob.logout(self.case.name, revoke=True)

        assert since(emulator, before) == self.case.revoke
        # what gets new tokens: the refresh token where there is one
        lasting = token.refresh_token or token.access_token
        assert emulator.is_active(lasting) is not bool(self.case.revoke)

    # ------------------------------------------------------------------ no secret shown
    def test_repr_of_the_token_and_of_its_adapter_shows_no_secret(
        self, emulator: LocalProvider, no_secret_leaks: Leaks
    ) -> None:
        token = keyfob.get_token(self.case.name)
        text = f"{token!r} {token} {keyfob.requests_auth(self.case.name)!r}"
        no_secret_leaks.add("repr of a token and its adapter", text)

        for secret in {token.access_token, token.refresh_token} | self.secrets():
            assert not secret or secret not in text
