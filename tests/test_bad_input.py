"""Bad input of every kind: one line with a hint, the documented exit code, nothing lost.

Wrong secrets, revoked tokens, a provider that answers garbage, hangs or asks
to wait, a broken cache or config, no keyring: each ends in one line on
stderr (no traceback) with the exit code DESIGN.md documents, keeps what was
good (a cached token, stored secrets) and shows no secret.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
import requests

import keyfob
from conftest import CliRun, Leaks, one_line_error
from keyfob import _paths
from keyfob.cache.sqlite import read_entry
from keyfob.errors import ProviderError
from keyfob.flow import HttpResponse
from keyfob.provider import BUILTINS, treesnap
from keyfob.testing import DEMO_PASSWORD, DEMO_USERNAME, LocalProvider

LOCAL_VARS = ("LOCAL_CLIENT_ID", "LOCAL_CLIENT_SECRET", "LOCAL_USERNAME", "LOCAL_PASSWORD")
WRONG_PASSWORD = "wrong-password-9876543210"
WRONG_SECRET = "wrong-app-secret-9876543210"


def me(local: LocalProvider, token: str) -> str:
    answer = requests.get(
        f"{local.url}/std/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    answer.raise_for_status()
    return str(answer.json()["sub"])


def append_config(home: Path, text: str) -> None:
    with (home / "config.toml").open("a") as fh:
        fh.write("\n" + text)


# --------------------------------------------------------------------------- wrong secrets


def test_wrong_password_exits_3(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant(WRONG_PASSWORD)
    done = cli("token", "local", env={"LOCAL_PASSWORD": WRONG_PASSWORD})
    assert done.returncode == 3
    line = one_line_error(done.stderr, hint=True)
    assert "invalid_grant" in line
    assert "keyfob login local" in line


def test_failed_login_keeps_stored_secrets_and_cached_token(
    configured: LocalProvider, home: Path, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant(WRONG_PASSWORD)
    assert cli("login", "local").returncode == 0
    good = cli("token", "local", unset=LOCAL_VARS).stdout
    done = cli("login", "local", env={"LOCAL_PASSWORD": WRONG_PASSWORD})
    assert done.returncode == 3
    one_line_error(done.stderr, hint=True)
    assert keyfob.get_credentials("local")["password"] == DEMO_PASSWORD
    assert cli("token", "local", unset=LOCAL_VARS).stdout == good


def test_wrong_inaturalist_app_secret_exits_3(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant(WRONG_SECRET)
    done = cli("token", "inaturalist", env={"INAT_APP_SECRET": WRONG_SECRET})
    assert done.returncode == 3
    line = one_line_error(done.stderr, hint=True)
    assert "invalid_client" in line
    assert configured.count("/users/api_token") == 0


# --------------------------------------------------------------------------- revoked tokens


def test_requests_auth_recovers_from_revoked_token(configured: LocalProvider) -> None:
    auth = keyfob.requests_auth("local")
    url = f"{configured.url}/std/api/me"
    assert requests.get(url, auth=auth, timeout=5).status_code == 200
    configured.revoke(keyfob.get_token("local").access_token)
    answer = requests.get(url, auth=auth, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["sub"] == DEMO_USERNAME
    assert [r.status_code for r in answer.history] == [401]


def test_refresh_recovers_when_refresh_token_revoked(
    configured: LocalProvider, cli: CliRun
) -> None:
    old = cli("token", "local").stdout.strip()
    entry = read_entry(_paths.cache_file(), ("local", ""))
    assert entry is not None and entry.token.refresh_token
    configured.revoke(entry.token.refresh_token)  # ends the whole grant, access token too
    done = cli("refresh", "local")
    assert done.returncode == 0, done.stderr
    new = cli("token", "local").stdout.strip()
    assert new != old
    assert me(configured, new) == DEMO_USERNAME


def test_refresh_of_revoked_personal_token_exits_3(configured: LocalProvider, cli: CliRun) -> None:
    personal = configured.issue_treesnap_token()
    env = {"TREESNAP_TOKEN": personal}
    assert cli("token", "treesnap", env=env).returncode == 0
    configured.revoke(personal)
    done = cli("refresh", "treesnap", env=env)
    assert done.returncode == 3
    line = one_line_error(done.stderr, hint=True)
    assert "1000" in line
    assert "keyfob login treesnap --flow paste" in line


# --------------------------------------------------------------------------- TreeSnap error codes


def test_treesnap_error_1000_exits_3(configured: LocalProvider, cli: CliRun) -> None:
    expired = configured.issue_treesnap_token(lifetime=-10)
    done = cli("token", "treesnap", env={"TREESNAP_TOKEN": expired})
    assert done.returncode == 3
    line = one_line_error(done.stderr, hint=True)
    assert "error 1000" in line
    assert "TREESNAP_TOKEN" in line
    assert configured.count("/web-services/v1/refresh-tokens") == 1


def test_treesnap_error_1100_is_provider_error_exit_4(no_secret_leaks: Leaks) -> None:
    # The client always sends the same token twice, so the emulator cannot be made
    # to answer 1100; drive the refresh flow by hand with TreeSnap's answer instead.
    current = "treesnap-personal-token-0123456789"
    no_secret_leaks.plant(current)
    flow = treesnap.refresh(BUILTINS["treesnap"], current, time.time())
    request = next(flow)
    assert request.headers["Authorization"] == f"Bearer {current}"
    assert request.form == {"access_token": current}
    message = f"The access token in the header ({current}) does not match the body."
    answer = HttpResponse(
        200,
        {"content-type": "application/json"},
        json.dumps({"error_code": 1100, "message": message}).encode(),
        request.url,
        request.what,
    )
    with pytest.raises(ProviderError) as info:
        flow.send(answer)
    no_secret_leaks.add("1100 error", info.value.one_line())
    assert info.value.exit_code == 4
    assert info.value.error == "1100"
    assert "differ" in str(info.value)


# --------------------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    "kind",
    [
        "html",
        "text",
        "json_array",
        "truncated",
        "no_access_token",
        "expires_in_garbage",
        "expires_in_negative",
    ],
)
def test_malformed_answer_exits_4_and_keeps_cached_token(
    configured: LocalProvider, cli: CliRun, kind: str
) -> None:
    good = cli("token", "local").stdout
    configured.garbage("/std/token", kind)
    done = cli("refresh", "local")
    assert done.returncode == 4
    assert "/std/token" in one_line_error(done.stderr, hint=True)
    assert cli("token", "local").stdout == good


def test_html_answer_is_named_html(configured: LocalProvider, cli: CliRun) -> None:
    configured.garbage("/std/token", "html")
    done = cli("token", "local")
    assert done.returncode == 4
    assert "with HTML, not JSON" in one_line_error(done.stderr, hint=True)


def test_expires_in_as_string_is_accepted(configured: LocalProvider, cli: CliRun) -> None:
    configured.garbage("/std/token", "expires_in_string")  # "expires_in": "3599"
    done = cli("token", "local", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert me(configured, data["access_token"]) == DEMO_USERNAME
    assert 3500 < data["expires_at_epoch"] - time.time() <= 3599


# --------------------------------------------------------------------------- slow and busy servers


def test_hanging_server_times_out_with_exit_4(configured: LocalProvider, cli: CliRun) -> None:
    configured.delay("/std/token", 20, times=1)
    # the subprocess timeout is a guard: keyfob must give up long before the server answers
    done = cli("token", "local", env={"KEYFOB_TIMEOUT": "0.5"}, timeout=15)
    assert done.returncode == 4
    assert "did not answer in time" in one_line_error(done.stderr, hint=True)
    assert configured.count("/std/token") == 1  # a timed-out request is not retried


def test_429_and_503_are_retried_until_success(configured: LocalProvider, cli: CliRun) -> None:
    configured.fail("/std/token", 429, retry_after="0")
    configured.fail("/std/token", 503, retry_after="0")
    done = cli("token", "local")
    assert done.returncode == 0, done.stderr
    assert me(configured, done.stdout.strip()) == DEMO_USERNAME
    assert configured.count("/std/token") == 3


def test_retry_after_beyond_max_wait_exits_4(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    append_config(home, "[http]\nmax_wait = 5\n")
    configured.fail("/std/token", 503, retry_after="120")
    done = cli("token", "local")
    assert done.returncode == 4
    assert "max_wait" in one_line_error(done.stderr, hint=True)
    assert configured.count("/std/token") == 1


# --------------------------------------------------------------------------- the cache


def test_corrupt_cache_file_is_set_aside_and_rebuilt(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    cache = home / "cache"
    cache.mkdir(mode=0o700)
    garbage = b"\x00\xffthis is not SQLite\x13\x37" * 64
    (cache / "tokens.sqlite3").write_bytes(garbage)
    done = cli("token", "local")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert me(configured, token) == DEMO_USERNAME
    assert "warning:" in done.stderr and "set aside" in done.stderr
    assert "Traceback" not in done.stderr
    aside = list(cache.glob("tokens.sqlite3.broken-*"))
    assert [p.read_bytes() for p in aside] == [garbage]
    entry = read_entry(str(cache / "tokens.sqlite3"), ("local", ""))
    assert entry is not None and entry.token.access_token == token


def test_unwritable_cache_folder_warns_and_still_serves(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    blocker = home / "cache"
    blocker.write_bytes(b"a file where the cache folder should be")
    done = cli("token", "local")
    assert done.returncode == 0, done.stderr
    assert me(configured, done.stdout.strip()) == DEMO_USERNAME
    assert "warning:" in done.stderr and "cache" in done.stderr
    assert "Traceback" not in done.stderr
    assert blocker.read_bytes() == b"a file where the cache folder should be"


def test_cache_file_is_0600_in_0700_folder(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    assert cli("token", "local").returncode == 0
    folder = Path(_paths.cache_dir())
    assert folder == home / "cache"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "tokens.sqlite3").stat().st_mode) == 0o600


# --------------------------------------------------------------------------- configuration


def test_unknown_provider_error_lists_known_providers(
    configured: LocalProvider, cli: CliRun
) -> None:
    done = cli("token", "inaturalst")
    assert done.returncode == 2
    line = one_line_error(done.stderr, hint=True)
    assert "'inaturalst'" in line
    assert "inaturalist" in line.replace("'inaturalst'", "")
    assert "local" in line


def test_toml_syntax_error_exits_2_naming_the_file(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    append_config(home, "[providers.broken\ntoken_url = 1\n")
    done = cli("token", "local")
    assert done.returncode == 2
    assert str(home / "config.toml") in one_line_error(done.stderr, hint=True)
    assert configured.count("/std/token") == 0


def test_plain_http_to_public_host_is_refused(home: Path, cli: CliRun) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        '[providers.myapi]\ntoken_url = "http://auth.example.com/token"\n'
        'grant = "client_credentials"\nenv_prefix = "MYAPI"\n'
    )
    done = cli(
        "token", "myapi", env={"MYAPI_CLIENT_ID": "id", "MYAPI_CLIENT_SECRET": "not-sent-1234"}
    )
    # exit 2 (configuration), not 4: no request was tried, so no network failure either
    assert done.returncode == 2
    line = one_line_error(done.stderr, hint=True)
    assert "http://" in line and "auth.example.com" in line


# --------------------------------------------------------------------------- no keyring


NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def test_without_keyring_login_keeps_secrets_in_0600_file_and_says_so(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    done = cli("login", "local", env=NO_KEYRING, unset=("KEYFOB_KEYRING",))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("no system keyring") == 1
    secrets = home / "secrets.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert str(secrets) in done.stderr
    assert json.loads(secrets.read_text())["keyfob:local"]["username"] == DEMO_USERNAME


def test_without_keyring_second_login_does_not_repeat_notice(
    configured: LocalProvider, cli: CliRun
) -> None:
    first = cli("login", "local", env=NO_KEYRING, unset=("KEYFOB_KEYRING",))
    assert "no system keyring" in first.stderr
    second = cli("login", "local", env=NO_KEYRING, unset=("KEYFOB_KEYRING",))
    assert second.returncode == 0, second.stderr
    assert "no system keyring" not in second.stderr
