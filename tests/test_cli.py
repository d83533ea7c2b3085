"""The ``keyfob`` command as a person runs it: a subprocess against the local emulator."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import CliRun, Leaks, one_line_error
from keyfob import _paths
from keyfob._identity import STORE_TRUST
from keyfob.cache import Entry
from keyfob.cache.sqlite import SQLiteCache, read_entry
from keyfob.secretstore import FileStore
from keyfob.testing import (
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    DEMO_USERNAME,
    LocalProvider,
)
from keyfob.token import TokenState

LOCAL_VARS = ("LOCAL_CLIENT_ID", "LOCAL_CLIENT_SECRET", "LOCAL_USERNAME", "LOCAL_PASSWORD")
INAT_VARS = ("INAT_USERNAME", "INAT_PASSWORD", "INAT_APP_ID", "INAT_APP_SECRET")


def me(local: LocalProvider, token: str) -> str:
    """Whose token this is, as the plain OAuth2 server's API answers."""
    request = urllib.request.Request(
        f"{local.url}/std/api/me", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return str(json.load(answer)["sub"])


def inat_jwt(local: LocalProvider) -> str:
    """A JWT straight from the emulator, as a person would copy it from /users/api_token."""
    form = urllib.parse.urlencode(
        {
            "grant_type": "password",
            "username": DEMO_INAT_USERNAME,
            "password": DEMO_INAT_PASSWORD,
            "client_id": DEMO_INAT_APP_ID,
            "client_secret": DEMO_INAT_APP_SECRET,
        }
    ).encode()
    with urllib.request.urlopen(f"{local.url}/oauth/token", data=form, timeout=5) as answer:
        oauth = json.load(answer)["access_token"]
    request = urllib.request.Request(
        f"{local.url}/users/api_token", headers={"Authorization": f"Bearer {oauth}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return str(json.load(answer)["api_token"])


def cached(provider: str, account: str = "") -> Entry:
    entry = read_entry(_paths.cache_file(), (provider, account))
    assert entry is not None, f"no cache entry for {provider}"
    return entry


# --------------------------------------------------------------------------- providers


def test_providers_lists_builtins_and_configured_local(
    configured: LocalProvider, cli: CliRun
) -> None:
    done = cli("providers")
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines() if line and line[0] != " "}
    assert {"inaturalist", "treesnap", "twitter", "local"} <= names


# --------------------------------------------------------------------------- token, header


def test_token_prints_only_the_token(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("token", "local")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    token = done.stdout.strip()
    assert done.stdout == token + "\n"
    assert me(configured, token) == DEMO_USERNAME


def test_token_json_fields_agree(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("token", "local", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert me(configured, data["access_token"]) == DEMO_USERNAME
    assert data["token_type"] == "Bearer"
    assert data["expires_at"].endswith("Z")
    when = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert when.tzinfo is not None and when.utcoffset() == UTC.utcoffset(None)
    assert int(when.timestamp()) == data["expires_at_epoch"]
    assert 0 < data["expires_at_epoch"] - time.time() <= 3600


def test_header_prints_authorization_line(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("header", "local")
    assert done.returncode == 0, done.stderr
    line = done.stdout.rstrip("\n")
    assert line.startswith("Authorization: Bearer ")
    assert me(configured, line.removeprefix("Authorization: Bearer ")) == DEMO_USERNAME


# --------------------------------------------------------------------------- exec


def test_exec_puts_token_in_default_variable(configured: LocalProvider, cli: CliRun) -> None:
    token = cli("token", "local").stdout.strip()
    done = cli("exec", "local", "--", "sh", "-c", 'printf %s "$LOCAL_TOKEN" | wc -c')
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) == len(token) > 0


def test_exec_env_option_names_the_variable(configured: LocalProvider, cli: CliRun) -> None:
    token = cli("token", "local").stdout.strip()
    script = 'printf %s "$MY_TOKEN" | wc -c; printf %s "$LOCAL_TOKEN" | wc -c'
    done = cli("exec", "local", "--env", "MY_TOKEN", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert [int(n) for n in done.stdout.split()] == [len(token), 0]


def test_exec_passes_the_exit_code_through(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("exec", "local", "--", "sh", "-c", "exit 7")
    assert done.returncode == 7


# --------------------------------------------------------------------------- status


def test_status_shows_provider_account_expiry_and_secret_places(
    configured: LocalProvider, cli: CliRun
) -> None:
    token = cli("token", "local").stdout.strip()
    done = cli("status")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("local "))
    assert DEMO_USERNAME in row
    assert "59m" in row or "1h" in row  # a one-hour token, just issued
    assert "environment (LOCAL_PASSWORD)" in row
    assert token not in done.stdout + done.stderr


def test_wait_with_a_log_level_keyfob_does_not_know_is_an_error_as_token_is(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    config = home / "config.toml"
    config.write_text(
        config.read_text().replace(
            "[providers.local]\n", '[providers.local]\nrate_limits = ["100/minute"]\n', 1
        )
    )
    assert cli("wait", "local").returncode == 0  # the full path records the limits
    # The budget file alone could answer now; a level the full command line
    # refuses is its error, not a request taken quietly.
    unknown = cli("wait", "local", env={"KEYFOB_LOG": "loud"})
    assert unknown.returncode == 2 and "KEYFOB_LOG" in unknown.stderr


# --------------------------------------------------------------------------- refresh, logout


def test_refresh_gets_new_token_silently(configured: LocalProvider, cli: CliRun) -> None:
    old = cli("token", "local").stdout.strip()
    before = configured.count("/std/token")
    done = cli("refresh", "local")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert configured.count("/std/token") == before + 1
    new = cli("token", "local").stdout.strip()
    assert new != old
    assert me(configured, new) == DEMO_USERNAME


def test_logout_forgets_stored_secrets_and_token(configured: LocalProvider, cli: CliRun) -> None:
    assert cli("login", "local").returncode == 0
    assert cli("token", "local", unset=LOCAL_VARS).returncode == 0
    done = cli("logout", "local")
    assert done.returncode == 0, done.stderr
    after = cli("token", "local", unset=LOCAL_VARS)
    assert after.returncode == 3
    assert "LOCAL_" in one_line_error(after.stderr)


def test_logout_revoke_revokes_at_the_server(configured: LocalProvider, cli: CliRun) -> None:
    old = cli("token", "local").stdout.strip()
    done = cli("logout", "local", "--revoke")
    assert done.returncode == 0, done.stderr
    assert not configured.is_active(old)


def test_logout_revoke_with_the_revocation_endpoint_down_still_logs_out_and_exits_4(
    configured: LocalProvider, cli: CliRun
) -> None:
    assert cli("login", "local").returncode == 0
    configured.fail("/std/revoke", 503, times=20, retry_after="0")

    done = cli("logout", "local", "--revoke")

    assert done.returncode == 4, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "local: logged out here (revoking at the server failed)"
    assert (
        lines[-1].startswith("keyfob: error: ") and "revoke it on the provider's site" in lines[-1]
    )
    assert read_entry(_paths.cache_file(), ("local", "")) is None  # forgotten all the same
    assert (
        FileStore(str(Path(_paths.data_dir()) / "secrets.json")).get("keyfob:local", "password")
        is None
    )


# --------------------------------------------------------------------------- login


def test_login_without_terminal_or_secrets_names_the_variables(
    configured: LocalProvider, cli: CliRun
) -> None:
    done = cli("login", "local", unset=LOCAL_VARS)
    assert done.returncode == 3
    line = one_line_error(done.stderr)
    for var in ("LOCAL_CLIENT_ID", "LOCAL_USERNAME", "LOCAL_PASSWORD"):
        assert var in line
    assert configured.count("/std/token") == 0


def test_login_stores_env_secrets_for_later_runs(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("login", "local")
    assert done.returncode == 0, done.stderr
    before = configured.count("/std/token")
    # --refresh: a new token from the stored secrets alone, not the cached one
    token = cli("token", "local", "--refresh", unset=LOCAL_VARS)
    assert token.returncode == 0, token.stderr
    assert configured.count("/std/token") == before + 1
    assert me(configured, token.stdout.strip()) == DEMO_USERNAME


def test_login_paste_stores_inaturalist_jwt(configured: LocalProvider, cli: CliRun) -> None:
    jwt = inat_jwt(configured)
    done = cli("login", "inaturalist", "--flow", "paste", env={"INAT_TOKEN": jwt})
    assert done.returncode == 0, done.stderr
    before = configured.count("/oauth/token")
    token = cli("token", "inaturalist", unset=(*INAT_VARS, "INAT_TOKEN"))
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip() == jwt
    assert configured.count("/oauth/token") == before


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_traceback(configured: LocalProvider, cli: CliRun, where: str) -> None:
    args = ["--debug", "token", "nosuch"] if where == "before" else ["token", "nosuch", "--debug"]
    done = cli(*args)
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert "ConfigError" in done.stderr


def test_error_without_debug_has_no_traceback(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("token", "nosuch")
    assert done.returncode == 2
    assert "nosuch" in one_line_error(done.stderr)


def test_unknown_provider_exits_2(configured: LocalProvider, cli: CliRun) -> None:
    done = cli("header", "nosuch")
    assert done.returncode == 2
    one_line_error(done.stderr)
    assert done.stdout == ""


# --------------------------------------------------------------------------- the cached-token path


def test_second_process_reuses_cached_token(configured: LocalProvider, cli: CliRun) -> None:
    first = cli("token", "inaturalist")
    assert first.returncode == 0, first.stderr
    requests = (configured.count("/oauth/token"), configured.count("/users/api_token"))
    assert requests == (1, 1)
    second = cli("token", "inaturalist")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert (configured.count("/oauth/token"), configured.count("/users/api_token")) == requests


def sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.time()))


@pytest.fixture
def short_lived(
    home: Path, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> Iterator[LocalProvider]:
    """A plain OAuth2 server whose tokens live 6 s, and ``leeway = 1.5`` for it in config.

    With the default leeway (60 s, capped at half the lifetime) such a token
    would be due for refresh after 3 s; with this leeway, after 4.5 s.
    """
    with LocalProvider(access_token_lifetime=6) as provider:
        no_secret_leaks.providers.append(provider)
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(provider.config_toml() + "leeway = 1.5\n")
        for name, value in provider.environ().items():
            monkeypatch.setenv(name, value)
        yield provider
    assert not provider.errors, provider.errors


def test_cli_token_agrees_with_token_state(short_lived: LocalProvider, cli: CliRun) -> None:
    assert cli("token", "local").returncode == 0
    issued = cached("local").token.issued
    assert issued is not None
    seen = []
    # just issued; past the default leeway but inside config's; past config's leeway
    for moment in (0.0, 3.75, 5.0):
        sleep_until(issued + moment)
        entry = cached("local")
        state = entry.token.state(None, entry.leeway)
        before = short_lived.count("/std/token")
        done = cli("token", "local")
        assert done.returncode == 0, done.stderr
        fetched = short_lived.count("/std/token") > before
        seen.append((state, fetched, done.stdout.strip() == entry.token.access_token))
    assert seen == [
        (TokenState.FRESH, False, True),
        (TokenState.FRESH, False, True),
        (TokenState.STALE, True, False),
    ]


def test_identity_change_fetches_that_accounts_token(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    mine = cli("token", "local").stdout.strip()
    other_password = "other-user-password-0123456789"
    no_secret_leaks.plant(other_password)
    configured.add_oauth_user("other-user", other_password)
    before = configured.count("/std/token")
    done = cli(
        "token",
        "local",
        env={"LOCAL_USERNAME": "other-user", "LOCAL_PASSWORD": other_password},
    )
    assert done.returncode == 0, done.stderr
    theirs = done.stdout.strip()
    assert theirs != mine
    assert configured.count("/std/token") == before + 1
    assert me(configured, theirs) == "other-user"


def test_the_cached_path_notices_another_tool_changing_the_stored_account_within_its_bound(
    configured: LocalProvider, cli: CliRun, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> None:
    # The account lives in the secret store alone (as pyinaturalist or `keyring set`
    # leave it); another tool then stores a second account in its place.
    second, second_password = "second-user", "second-user-password-4242"
    configured.add_oauth_user(second, second_password)
    no_secret_leaks.plant(second_password)
    stored = dict(configured.environ())
    store = FileStore(str(Path(_paths.data_dir()) / "secrets.json"))
    for var in ("LOCAL_CLIENT_ID", "LOCAL_CLIENT_SECRET", "LOCAL_USERNAME", "LOCAL_PASSWORD"):
        store.set("keyfob:local", var.removeprefix("LOCAL_").lower(), stored[var])
        monkeypatch.delenv(var)
    first = cli("token", "local").stdout.strip()
    assert me(configured, first) == DEMO_USERNAME
    store.set("keyfob:local", "username", second)
    store.set("keyfob:local", "password", second_password)

    # Within STORE_TRUST of the library's last comparison the cached path answers...
    assert cli("token", "local").stdout.strip() == first
    # ...after it, the full command line compares the store and gets the second's.
    cache = SQLiteCache(_paths.cache_dir())
    entry = cache.get(("local", ""))
    assert entry is not None and entry.identity_source == "store"
    cache.put(("local", ""), entry.replace(checked=time.time() - STORE_TRUST - 1))
    later = cli("token", "local")

    assert later.returncode == 0, later.stderr
    assert me(configured, later.stdout.strip()) == second
