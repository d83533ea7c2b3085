"""The local provider, by hand: ``python -m keyfob.testing``, its device flow, ``demo --keep``."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

from conftest import KEYFOB, CliRun, Leaks
from keyfob.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USERNAME, LocalProvider
from test_cli import me

# -- python -m keyfob.testing --------------------------------------------------------------


def read_until(stream: IO[str], text: str, timeout: float = 20) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, seen
        line = stream.readline()
        assert line, f"ended before {text!r}: {seen!r}"
        seen += line
    return seen


def exported(text: str) -> dict[str, str]:
    """The variables of the ``export`` lines, as a shell would set them."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export "):
            for pair in shlex.split(line)[1:]:
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def test_python_m_keyfob_testing_prints_what_to_export_and_stops_cleanly_on_ctrl_c(
    home: Path, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "keyfob.testing"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        shown = read_until(server.stdout, "Ctrl-C stops")
        env = exported(shown)
        folder = Path(env["KEYFOB_HOME"])
        config = (folder / "config.toml").read_text()
        assert config.strip() in shown  # the config.toml is printed too
        assert 'device_url = "' in config
        assert "/oauth1/request_token" in shown and "demo-oauth1-consumer-key" in shown
        for name in ("INAT_PASSWORD", "LOCAL_CLIENT_SECRET", "TWITTER_API_SECRET"):
            assert env[name]
        # another shell, with those lines: the README's commands work offline
        token = cli("token", "local", env=env)
        assert token.returncode == 0, token.stderr
        login = cli("login", "inaturalist", env=env)
        assert login.returncode == 0, login.stderr
        header = cli("header", "treesnap", env=env)
        assert header.returncode == 0, header.stderr
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "stopped" in err
    assert not folder.exists()  # the throw-away KEYFOB_HOME is removed


# -- the device flow of the plain OAuth2 server (RFC 8628) -----------------------------------


def post(url: str, form: dict[str, str]) -> tuple[int, Any]:
    data = urllib.parse.urlencode(form).encode()
    try:
        with urllib.request.urlopen(url, data=data, timeout=5) as answer:
            body = answer.read()
            status = answer.status
    except urllib.error.HTTPError as refused:
        body, status = refused.read(), refused.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


CLIENT = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}


def device_code(local: LocalProvider) -> dict[str, Any]:
    status, answer = post(f"{local.url}/std/device", CLIENT)
    assert status == 200, answer
    return dict(answer)


def poll(local: LocalProvider, code: dict[str, Any]) -> tuple[int, Any]:
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    return post(
        f"{local.url}/std/token",
        {**CLIENT, "grant_type": grant, "device_code": code["device_code"]},
    )


def verify(local: LocalProvider, user_code: str, action: str) -> int:
    status, _ = post(f"{local.url}/std/device/verify", {"user_code": user_code, "action": action})
    return status


def test_device_authorization_answers_codes_and_the_page_that_approves() -> None:
    with LocalProvider() as local:
        code = device_code(local)
        assert re.fullmatch(r"[B-Z]{4}-[B-Z]{4}", code["user_code"])
        assert code["verification_uri"] == f"{local.url}/std/device/verify"
        assert code["verification_uri_complete"].endswith(f"?user_code={code['user_code']}")
        assert (code["interval"], code["expires_in"]) == (5, 600)
        with urllib.request.urlopen(code["verification_uri_complete"], timeout=5) as page:
            assert code["user_code"] in page.read().decode()
        meta = json.load(
            urllib.request.urlopen(f"{local.url}/std/.well-known/openid-configuration")
        )
        assert meta["device_authorization_endpoint"] == f"{local.url}/std/device"


def test_device_token_is_pending_then_slow_down_when_polled_too_fast_then_issued() -> None:
    with LocalProvider() as local:
        code = device_code(local)
        status, answer = poll(local, code)
        assert (status, answer["error"]) == (400, "authorization_pending")
        status, answer = poll(local, code)  # at once again: faster than the interval
        assert (status, answer["error"]) == (400, "slow_down")
        assert verify(local, code["user_code"], "approve") == 200
        local._oauth2.devices[code["device_code"]].polled_at = 0  # as if the interval passed
        status, answer = poll(local, code)
        assert status == 200, answer
        assert me(local, answer["access_token"]) == DEMO_USERNAME
        assert answer["refresh_token"]
        assert poll(local, code)[1]["error"] == "invalid_grant"  # used once


def test_device_token_is_access_denied_after_deny_and_expired_token_after_its_lifetime() -> None:
    with LocalProvider(device_code_lifetime=1) as local:
        denied = device_code(local)
        assert verify(local, denied["user_code"], "deny") == 200
        assert poll(local, denied)[1]["error"] == "access_denied"
        late = device_code(local)
        time.sleep(1.1)
        assert poll(local, late)[1]["error"] == "expired_token"
        assert verify(local, "BBBB-CCCC", "approve") == 400  # an unknown code


def test_config_toml_names_the_device_url_of_local(local: LocalProvider) -> None:
    assert f'device_url = "{local.url}/std/device"' in local.config_toml()


def test_keyfob_login_local_flow_device_works_against_the_local_provider(
    home: Path, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    with LocalProvider(device_interval=1) as local:
        no_secret_leaks.providers.append(local)
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(local.config_toml())
        env = {**os.environ, **local.environ()}
        login = subprocess.Popen(
            [KEYFOB, "login", "local", "--flow", "device"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert login.stderr is not None
        shown = read_until(login.stderr, "Waiting for the login to be approved")
        user_code = re.search(r"^\s+([B-Z]{4}-[B-Z]{4})$", shown, re.M)
        assert user_code, shown
        assert verify(local, user_code.group(1), "approve") == 200
        out, err = login.communicate(timeout=30)
        no_secret_leaks.add("device login", shown + out + err)
        assert login.returncode == 0, err
        assert "logged in to local" in err
        # later runs renew with the stored refresh token and client: no person, no password
        token = cli("token", "local", "--refresh", unset=("LOCAL_USERNAME", "LOCAL_PASSWORD"))
        assert token.returncode == 0, token.stderr
        assert me(local, token.stdout.strip()) == DEMO_USERNAME
        assert not local.errors


# -- keyfob demo --keep ---------------------------------------------------------------------


def test_demo_keep_says_plainly_that_the_kept_config_points_at_a_stopped_provider(
    tmp_path: Path, no_secret_leaks: Leaks
) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [KEYFOB, "demo", "--keep"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    no_secret_leaks.add("demo stdout", done.stdout)
    no_secret_leaks.add("demo stderr", done.stderr)
    assert done.returncode == 0, done.stderr
    kept = re.search(r"the demo's folder is kept: (\S+)", done.stdout)
    assert kept, done.stdout
    assert (Path(kept.group(1)) / "config.toml").exists()
    tail = " ".join(done.stdout[kept.start() :].split())
    assert "points at the demo's local provider, which has stopped" in tail
    assert "python -m keyfob.testing" in tail
