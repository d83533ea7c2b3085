"""Logins that guide: flows checked against the provider, refusals in the provider's words,
pasted tokens checked, logouts that say what they did (the prompts: test_terminal.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

import keyfob
from conftest import CliRun, one_line_error
from keyfob.errors import ConfigError
from keyfob.testing import (
    DEMO_CLIENT_ID,
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_USERNAME,
    LocalProvider,
)
from test_cli import INAT_VARS, LOCAL_VARS, inat_jwt, me

# -- --flow, checked against what the provider can do ---------------------------------------


@pytest.mark.parametrize(
    ("provider", "flow", "can"),
    [("twitter", "password", "client"), ("inaturalist", "client", "password, paste, browser")],
)
def test_a_flow_the_provider_cannot_do_is_a_one_line_error_naming_its_flows(
    configured: LocalProvider, cli: CliRun, provider: str, flow: str, can: str
) -> None:
    done = cli("login", provider, "--flow", flow)
    assert done.returncode == 2, done.stderr
    line = one_line_error(done.stderr)
    assert f"{provider} cannot log in with --flow {flow}; its flows: {can}" in line
    assert configured.count("/oauth2/token") + configured.count("/oauth/token") == 0


def test_the_library_refuses_a_flow_the_provider_cannot_do(configured: LocalProvider) -> None:
    with pytest.raises(ConfigError, match="its flows: client"):
        keyfob.login("twitter", flow="password")
    assert configured.count("/oauth2/token") == 0


def test_login_flow_client_uses_the_client_alone_though_a_user_is_set(
    configured: LocalProvider, cli: CliRun
) -> None:
    done = cli("login", "local", "--flow", "client")  # LOCAL_USERNAME, LOCAL_PASSWORD are set
    assert done.returncode == 0, done.stderr
    assert "logged in to local" in done.stderr
    token = cli("token", "local", unset=LOCAL_VARS)  # from the cache: the client's own token
    assert token.returncode == 0, token.stderr
    assert me(configured, token.stdout.strip()) == DEMO_CLIENT_ID


def test_login_help_says_what_each_flow_is(cli: CliRun) -> None:
    done = cli("login", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for flow, words in (
        ("password", "username and password"),
        ("client", "client credentials"),
        ("paste", "a token you copied"),
        ("browser", "authorization code + PKCE"),
        ("device", "a code on any other device"),
    ):
        assert f"{flow}: " in text and words in text, flow


# -- refused: in the provider's own words ---------------------------------------------------


def refusal_of(local: LocalProvider, password: str) -> str:
    """What the emulated iNaturalist says of a wrong password (its error_description)."""
    form = urllib.parse.urlencode(
        {
            "grant_type": "password",
            "username": DEMO_INAT_USERNAME,
            "password": password,
            "client_id": DEMO_INAT_APP_ID,
            "client_secret": DEMO_INAT_APP_SECRET,
        }
    ).encode()
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(f"{local.url}/oauth/token", data=form, timeout=5)
    assert answer.value.code == 400
    return str(json.load(answer.value)["error_description"])


@pytest.mark.parametrize("account", [None, "field-work"])
def test_a_refused_password_reads_as_one_in_the_providers_words(
    configured: LocalProvider, cli: CliRun, account: str | None
) -> None:
    said = refusal_of(configured, "not-the-password-0123")
    flags = ("--account", account) if account else ()
    done = cli("login", "inaturalist", *flags, env={"INAT_PASSWORD": "not-the-password-0123"})
    assert done.returncode == 3, done.stderr
    line = one_line_error(done.stderr)
    assert line.startswith(f"keyfob: error: inaturalist refused the username or password: {said}")
    assert "refused the credentials" not in line
    command = "keyfob login inaturalist" + (f" --account {account}" if account else "") + "`"
    assert command in line  # the hint keeps the account
    nothing = cli("status", "inaturalist", unset=INAT_VARS)
    assert nothing.stderr.startswith("no tokens and no stored secrets"), nothing.stdout


# -- a pasted token is checked ----------------------------------------------------------------


def test_a_pasted_garbage_token_is_refused_and_not_stored(
    configured: LocalProvider, cli: CliRun
) -> None:
    done = cli("login", "inaturalist", "--flow", "paste", env={"INAT_TOKEN": "not-a-token"})
    assert done.returncode == 3, done.stderr
    line = one_line_error(done.stderr)
    assert "inaturalist refused the token" in line
    assert "does not expire" not in done.stderr
    assert configured.count("/v1/users/me") == 1
    later = cli("token", "inaturalist", unset=(*INAT_VARS, "INAT_TOKEN"))
    assert later.returncode == 3


def test_a_pasted_token_is_checked_once_and_login_says_how_long_it_lives(
    configured: LocalProvider, cli: CliRun
) -> None:
    jwt = inat_jwt(configured)
    done = cli("login", "inaturalist", "--flow", "paste", env={"INAT_TOKEN": jwt})
    assert done.returncode == 0, done.stderr
    assert "the token expires in 23h 59m" in done.stderr
    assert configured.count("/v1/users/me") == 1


# -- logout says what it did -------------------------------------------------------------------


def test_logout_with_nothing_stored_says_so(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("logout", "local", unset=LOCAL_VARS)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (
        "local: nothing to log out of: no cached token and no stored secrets"
    )


def test_logout_while_the_variables_are_exported_says_the_next_run_uses_them(
    configured: LocalProvider, cli: CliRun
) -> None:
    assert cli("login", "local").returncode == 0
    done = cli("logout", "local", unset=("LOCAL_USERNAME", "LOCAL_PASSWORD"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "local: logged out"
    assert lines[1].startswith("local: LOCAL_CLIENT_ID, LOCAL_CLIENT_SECRET still set")
    assert "the next run uses them" in lines[1]
    again = cli("token", "local", unset=("LOCAL_USERNAME", "LOCAL_PASSWORD"))
    assert again.returncode == 3  # the client alone cannot do local's password grant


def test_logout_with_the_variables_unset_says_nothing_more(
    configured: LocalProvider, cli: CliRun
) -> None:
    assert cli("login", "local").returncode == 0
    done = cli("logout", "local", unset=LOCAL_VARS)
    assert done.stderr.strip() == "local: logged out"
