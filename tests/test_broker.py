"""The broker's decisions, with time moved by hand (``Broker(clock=...)``).

memory → cache → refresh → grant; what a refresh sends and saves; what
happens when the refresh token or the provider fails; ``refresh=True``;
accounts; and ``login`` storing secrets only once they have proved good.
The provider is the emulator's plain OAuth2 server (``local``, password
grant, access tokens for an hour, rotating refresh tokens).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Iterator

import pytest

from keyfob._identity import STORE_TRUST
from keyfob.accounts import Accounts
from keyfob.broker import Broker
from keyfob.cache.sqlite import SQLiteCache
from keyfob.errors import InvalidCredentials, TransportError
from keyfob.testing import DEMO_PASSWORD, DEMO_USERNAME, LocalProvider
from keyfob.token import Token, TokenState

LIFETIME = 3600.0  # the emulator's access_token_lifetime
WRONG_PASSWORD = "wrong-password-0123456789"
SECOND_USERNAME = "second-user"
SECOND_PASSWORD = "second-user-password-0123456789"


class Clock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_broker(configured: LocalProvider, clock: Clock) -> Iterator[type[Broker]]:
    """Brokers on the configured KEYFOB_HOME (its SQLite cache and secret file), all on
    one clock; each new one is like a new process: empty memory, same cache."""
    made: list[Broker] = []

    def make() -> Broker:
        broker = Broker(clock=clock)
        made.append(broker)
        return broker

    yield make  # type: ignore[misc]
    for broker in made:
        broker.transport.close()


@pytest.fixture
def broker(make_broker) -> Broker:
    return make_broker()


def sub_of(local: LocalProvider, token: Token) -> str:
    request = urllib.request.Request(
        f"{local.url}/std/api/me", headers={"Authorization": token.authorization}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["sub"])


def stale(clock: Clock, token: Token) -> None:
    """Move the clock into the token's last minute: STALE, not yet EXPIRED."""
    assert token.expires is not None
    clock.now = token.expires - 30
    assert token.state(clock(), 60) is TokenState.STALE


def expired(clock: Clock, token: Token) -> None:
    assert token.expires is not None
    clock.now = token.expires + 1
    assert token.state(clock()) is TokenState.EXPIRED


# -- memory, cache, refresh ----------------------------------------------------------


def test_token_expires_with_the_clock_not_the_wall(
    broker: Broker, configured: LocalProvider, clock: Clock
) -> None:
    token = broker.get_token("local")
    assert token.expires is not None
    assert token.expires == pytest.approx(clock() + LIFETIME, abs=1)
    clock.advance(LIFETIME / 2)

    assert broker.get_token("local") is token
    assert configured.count("/std/token") == 1


def test_stale_token_is_refreshed_without_sending_the_password_again(
    broker: Broker,
    configured: LocalProvider,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    no_secret_leaks,
) -> None:
    first = broker.get_token("local")
    # Were the password grant used again, this would make it fail.
    monkeypatch.setenv("LOCAL_PASSWORD", WRONG_PASSWORD)
    no_secret_leaks.plant(WRONG_PASSWORD)
    stale(clock, first)

    second = broker.get_token("local")

    assert second.access_token != first.access_token
    assert configured.count("/std/token") == 2
    assert configured.is_active(second.access_token)
    assert first.refresh_token and second.refresh_token
    assert not configured.is_active(first.refresh_token)  # rotated: a refresh_token grant
    assert second.state(clock()) is TokenState.FRESH


def test_stale_token_in_the_cache_is_refreshed_by_a_new_process(
    make_broker, configured: LocalProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_broker().get_token("local")
    monkeypatch.setenv("LOCAL_PASSWORD", WRONG_PASSWORD)
    stale(clock, first)

    second = make_broker().get_token("local")

    assert second.access_token != first.access_token
    assert configured.count("/std/token") == 2
    assert configured.is_active(second.access_token)


def test_rotated_refresh_token_is_saved(
    make_broker,
    configured: LocalProvider,
    clock: Clock,
    home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = make_broker().get_token("local")
    monkeypatch.setenv("LOCAL_PASSWORD", WRONG_PASSWORD)
    stale(clock, first)
    second = make_broker().get_token("local")

    saved = SQLiteCache(str(home / "cache")).get(("local", ""))
    assert saved is not None and saved.token.refresh_token == second.refresh_token
    # The old refresh token is dead at the server: only the saved new one can refresh again.
    stale(clock, second)
    third = make_broker().get_token("local")
    assert configured.count("/std/token") == 3
    assert configured.is_active(third.access_token)


def test_refused_refresh_token_falls_back_to_the_password_grant(
    broker: Broker, configured: LocalProvider, clock: Clock
) -> None:
    first = broker.get_token("local")
    assert first.refresh_token
    configured.revoke(first.refresh_token)  # the server now answers invalid_grant
    stale(clock, first)

    second = broker.get_token("local")

    assert configured.count("/std/token") == 3  # refused refresh, then the password
    assert configured.is_active(second.access_token)
    assert second.refresh_token and configured.is_active(second.refresh_token)


def test_provider_down_serves_a_stale_token_with_a_warning(
    broker: Broker,
    configured: LocalProvider,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = broker.get_token("local")
    stale(clock, first)
    configured.stop()

    served = broker.get_token("local")

    assert served.access_token == first.access_token
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("could not refresh" in w for w in warnings), warnings


def test_provider_down_with_an_expired_token_is_a_transport_error(
    broker: Broker, configured: LocalProvider, clock: Clock, no_secret_leaks
) -> None:
    first = broker.get_token("local")
    expired(clock, first)
    configured.stop()

    with pytest.raises(TransportError) as caught:
        broker.get_token("local")
    no_secret_leaks.add("TransportError", caught.value.one_line())
    assert caught.value.exit_code == 4


def test_refresh_true_always_makes_a_request(broker: Broker, configured: LocalProvider) -> None:
    first = broker.get_token("local")
    second = broker.get_token("local", refresh=True)
    third = broker.get_token("local", refresh=True)

    assert configured.count("/std/token") == 3
    assert len({first.access_token, second.access_token, third.access_token}) == 3
    assert broker.get_token("local") is third


def test_refresh_true_repeats_the_grant_instead_of_using_the_cached_refresh_token(
    broker: Broker, configured: LocalProvider
) -> None:
    first = broker.get_token("local")
    assert first.refresh_token

    broker.get_token("local", refresh=True)

    # The password grant: the refresh token of the first was not spent (it rotates).
    assert configured.is_active(first.refresh_token)


def test_refresh_true_uses_a_refresh_token_that_is_the_only_secret(
    make_broker, configured: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_broker().get_token("local")
    assert first.refresh_token
    for name in ("LOCAL_USERNAME", "LOCAL_PASSWORD"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("LOCAL_REFRESH_TOKEN", first.refresh_token)

    token = make_broker().get_token("local", refresh=True)

    assert token.access_token != first.access_token
    assert not configured.is_active(first.refresh_token)  # spent: a refresh_token grant


def test_renew_spends_the_cached_refresh_token_not_the_password(
    broker: Broker, configured: LocalProvider
) -> None:
    first = broker.get_token("local")
    assert first.refresh_token

    second = broker.renew("local")

    assert second.access_token != first.access_token
    assert not configured.is_active(first.refresh_token)  # a refresh_token grant


# -- accounts ----------------------------------------------------------------------


@pytest.mark.parametrize("new_process", [False, True], ids=["same-process", "new-process"])
def test_tokens_never_cross_accounts(
    make_broker,
    configured: LocalProvider,
    monkeypatch: pytest.MonkeyPatch,
    no_secret_leaks,
    new_process: bool,
) -> None:
    configured.add_oauth_user(SECOND_USERNAME, SECOND_PASSWORD)
    no_secret_leaks.plant(SECOND_PASSWORD)
    broker = make_broker()
    first = broker.get_token("local")
    monkeypatch.setenv("LOCAL_USERNAME", SECOND_USERNAME)
    monkeypatch.setenv("LOCAL_PASSWORD", SECOND_PASSWORD)
    if new_process:
        broker = make_broker()

    second = broker.get_token("local")

    assert second.access_token != first.access_token
    assert sub_of(configured, first) == DEMO_USERNAME
    assert sub_of(configured, second) == SECOND_USERNAME
    assert configured.count("/std/token") == 2


def store_only(
    monkeypatch: pytest.MonkeyPatch, broker: Broker, username: str, password: str
) -> None:
    """The local provider's account in the secret store alone, as another tool sets it."""
    for name in ("LOCAL_USERNAME", "LOCAL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    service = broker.provider("local").service()
    broker.store.set(service, "username", username)
    broker.store.set(service, "password", password)


@pytest.mark.parametrize("new_process", [False, True], ids=["same-process", "new-process"])
def test_tokens_never_cross_accounts_when_another_tool_changes_the_store(
    make_broker,
    configured: LocalProvider,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    no_secret_leaks,
    new_process: bool,
) -> None:
    # pyinaturalist or `keyring set` replaces the stored account behind keyfob's back.
    configured.add_oauth_user(SECOND_USERNAME, SECOND_PASSWORD)
    no_secret_leaks.plant(SECOND_PASSWORD)
    broker = make_broker()
    store_only(monkeypatch, broker, DEMO_USERNAME, DEMO_PASSWORD)
    first = broker.get_token("local")
    store_only(monkeypatch, broker, SECOND_USERNAME, SECOND_PASSWORD)
    if new_process:
        broker = make_broker()
    else:
        clock.advance(STORE_TRUST)  # a long-running process asks the store again

    second = broker.get_token("local")

    assert sub_of(configured, first) == DEMO_USERNAME
    assert sub_of(configured, second) == SECOND_USERNAME


def test_a_cached_token_is_not_used_once_the_token_url_changed(
    make_broker, configured: LocalProvider, home, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_broker().get_token("local")
    config = home / "config.toml"
    # The same server under another name: a token_url of its own, no discovery.
    config.write_text(
        config.read_text().replace(
            "[providers.local]", f'[providers.local]\ntoken_url = "{configured.url}/std/token"', 1
        )
    )

    second = make_broker().get_token("local")

    assert second.access_token != first.access_token
    assert configured.count("/std/token") == 2


def test_explicit_username_never_gets_the_cached_token_of_another(
    broker: Broker, configured: LocalProvider, no_secret_leaks
) -> None:
    configured.add_oauth_user(SECOND_USERNAME, SECOND_PASSWORD)
    no_secret_leaks.plant(SECOND_PASSWORD)
    first = broker.get_token("local")

    second = broker.get_token("local", username=SECOND_USERNAME, password=SECOND_PASSWORD)

    assert sub_of(configured, first) == DEMO_USERNAME
    assert sub_of(configured, second) == SECOND_USERNAME


# -- login -------------------------------------------------------------------------


def test_login_with_a_wrong_password_leaves_stored_secrets_unchanged(
    broker: Broker, configured: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks
) -> None:
    Accounts(broker).set_credentials("local", password=DEMO_PASSWORD)
    before = Accounts(broker).get_credentials("local")
    no_secret_leaks.plant(WRONG_PASSWORD)

    with pytest.raises(InvalidCredentials) as caught:
        Accounts(broker).login("local", password=WRONG_PASSWORD)
    no_secret_leaks.add("InvalidCredentials", caught.value.one_line())

    assert Accounts(broker).get_credentials("local") == before == {"password": DEMO_PASSWORD}


def test_login_stores_the_secrets_once_the_first_token_is_good(
    make_broker, configured: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    Accounts(make_broker()).login("local")
    for name in ("LOCAL_CLIENT_ID", "LOCAL_CLIENT_SECRET", "LOCAL_USERNAME", "LOCAL_PASSWORD"):
        monkeypatch.delenv(name)

    later = make_broker()
    stored = Accounts(later).get_credentials("local")
    assert stored["username"] == DEMO_USERNAME and stored["password"] == DEMO_PASSWORD
    token = later.get_token("local", refresh=True)  # from the stored secrets alone
    assert sub_of(configured, token) == DEMO_USERNAME
