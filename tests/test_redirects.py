"""Redirects (DESIGN "The network as it is"), under the three drivers and the command line.

A token, revoke or discovery request never follows a redirect to another host
(nor another port or scheme), and no credential is ever sent after a redirect: a
``GET`` without credentials (discovery) follows one redirect on its own origin;
anything else is one line naming where the redirect pointed (without its query)
and which setting to change. Counted at the server: the target never hears a thing.
"""

from __future__ import annotations

import pytest

from conftest import CliRun, Leaks
from keyfob.errors import TransportError
from keyfob.flow import HttpRequest
from keyfob.testing import LocalProvider
from netparts import DISCOVERY, DRIVERS, TOKEN, Driver

OTHER_DISCOVERY = "/.well-known/oauth-authorization-server/std"


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


@pytest.fixture
def elsewhere(no_secret_leaks: Leaks) -> LocalProvider:
    """A second server: where a hostile or moved endpoint would send keyfob."""
    with LocalProvider() as provider:
        no_secret_leaks.providers.append(provider)
        yield provider  # type: ignore[misc]


def discovery(local: LocalProvider) -> HttpRequest:
    return HttpRequest("GET", local.url + DISCOVERY, "the discovery document")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_token_request_redirected_to_another_host_is_refused_naming_where(
    local: LocalProvider, elsewhere: LocalProvider, driver: Driver, status: int
) -> None:
    target = elsewhere.url.replace("127.0.0.1", "localhost") + TOKEN + "?code=query-secret"
    local.redirect(TOKEN, target, status=status)
    with pytest.raises(TransportError) as exc:
        driver.token(driver.make(), local.url + TOKEN)
    shown = elsewhere.url.replace("127.0.0.1", "localhost") + TOKEN
    assert str(exc.value) == (
        f"the token endpoint ({local.url}{TOKEN}) answered HTTP {status}, a redirect to "
        f"{shown}; keyfob follows no redirect to another host"
    )
    assert "query-secret" not in exc.value.one_line()
    assert exc.value.hint == "if that is the provider's address, set token_url in config.toml to it"
    assert exc.value.exit_code == 4
    assert elsewhere.count(TOKEN) == 0


def test_a_redirect_to_another_port_of_the_same_host_is_another_host(
    local: LocalProvider, elsewhere: LocalProvider, driver: Driver
) -> None:
    local.redirect(DISCOVERY, elsewhere.url + DISCOVERY)
    with pytest.raises(TransportError, match="no redirect to another host"):
        driver.send(driver.make(), discovery(local))
    assert elsewhere.count(DISCOVERY) == 0


def test_a_token_request_redirected_on_its_own_host_sends_no_credentials_again(
    local: LocalProvider, driver: Driver
) -> None:
    local.redirect(TOKEN, "/std/token-moved", status=307)
    with pytest.raises(TransportError) as exc:
        driver.token(driver.make(), local.url + TOKEN)
    assert str(exc.value).endswith("keyfob sends no credentials after a redirect")
    assert local.authorizations(TOKEN) == ["Basic"]
    assert local.count("/std/token-moved") == 0


def test_a_discovery_redirect_on_its_own_host_is_followed_once_without_credentials(
    local: LocalProvider, driver: Driver
) -> None:
    local.redirect(DISCOVERY, OTHER_DISCOVERY, status=301)
    response = driver.send(driver.make(), discovery(local))
    assert response.status == 200
    assert response.url == local.url + OTHER_DISCOVERY
    assert local.count(DISCOVERY) == 1
    assert local.authorizations(OTHER_DISCOVERY) == [""]


def test_a_second_redirect_is_not_followed(local: LocalProvider, driver: Driver) -> None:
    local.redirect(DISCOVERY, OTHER_DISCOVERY)
    local.redirect(OTHER_DISCOVERY, DISCOVERY)
    with pytest.raises(TransportError, match="keyfob follows one redirect, not two"):
        driver.send(driver.make(), discovery(local))
    assert local.count(DISCOVERY) == 1


def test_a_redirect_without_location_is_an_answer_like_any_other(
    local: LocalProvider, driver: Driver
) -> None:
    local.fail(DISCOVERY, 302)
    assert driver.send(driver.make(), discovery(local)).status == 302


def test_a_hostile_location_is_shown_printable_and_without_user_or_query(
    local: LocalProvider, driver: Driver
) -> None:
    local.redirect(DISCOVERY, "https://user:location-password@evil.example/p\u00e9\u00ff?q=a#f")
    with pytest.raises(TransportError) as exc:
        driver.send(driver.make(), discovery(local))
    message = exc.value.one_line()
    assert message.isprintable() and message.isascii()
    assert "a redirect to https://evil.example/p%C3%A9%C3%BF; " in message
    assert "location-password" not in message and "q=a" not in message


@pytest.mark.parametrize("location", ["http://[oops/", "https://host:99999/", "https://host:x/"])
def test_a_location_that_is_not_a_url_is_one_line(
    local: LocalProvider, driver: Driver, location: str
) -> None:
    local.redirect(DISCOVERY, location)
    with pytest.raises(TransportError) as exc:
        driver.send(driver.make(), discovery(local))
    # httpx itself refuses some of them before keyfob sees the answer
    assert str(exc.value).endswith(
        ("a redirect to an address that is not a URL", "the server broke the protocol")
    )


def test_cli_a_redirected_token_endpoint_exits_4_with_one_line_and_the_hint(
    configured: LocalProvider, elsewhere: LocalProvider, cli: CliRun
) -> None:
    configured.redirect(TOKEN, elsewhere.url + TOKEN, times=10)
    done = cli("token", "local")
    assert done.returncode == 4, done.stderr
    [line] = done.stderr.splitlines()
    assert f"a redirect to {elsewhere.url}{TOKEN}" in line
    assert "set token_url in config.toml to it" in line
    assert elsewhere.count(TOKEN) == 0
