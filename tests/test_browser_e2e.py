"""``keyfob login --flow browser`` and ``--flow device`` with a real browser, end to end.

The browser is headless Debian Chromium driven by ``tests/oidc/browse.mjs`` (npm
``playwright-core``); the server is ``tests/oidc/provider.mjs`` (npm ``oidc-provider``). Install
both with ``bash scripts/setup-browser.sh``; without them these tests skip (fail when ``CI`` is
set). keyfob opens "the system browser" through Python's ``webbrowser``, which honours
``$BROWSER``: here a two-line script that hands the address to ``browse.mjs``. Whether the
token keyfob then serves is live is asked of the provider's own introspection endpoint.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

LAB = Path(__file__).parent / "oidc"
CHROMIUM = Path("/usr/lib/chromium/chromium")
CLIENT, SECRET = "lab-client", "lab-secret"
KEYFOB = shutil.which("keyfob", path=str(Path(sys.executable).parent)) or "keyfob"
#: keyfob's environment: no display, so no browser but $BROWSER can be picked
UNSET = ("DISPLAY", "WAYLAND_DISPLAY")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser end-to-end tests cannot run: {reason}")
    pytest.skip(f"{reason} (run `bash scripts/setup-browser.sh`)")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing (Debian package chromium)")
    for package in ("oidc-provider", "playwright-core"):
        if not (LAB / "node_modules" / package).is_dir():
            _unavailable(f"tests/oidc/node_modules/{package} is missing")
    assert node is not None
    return node


class Lab:
    """provider.mjs on 127.0.0.1, any free port."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def introspect(self, token: str) -> dict[str, Any]:
        basic = base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
        request = urllib.request.Request(
            self.issuer + "/token/introspection",
            urllib.parse.urlencode({"token": token}).encode(),
            {"Authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    node = _node()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [node, str(LAB / "provider.mjs")],
            cwd=LAB,
            env={**os.environ, "PORT": "0", "HOST": "127.0.0.1", "DEVICE_INTERVAL": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    stdout = Lines(proc.stdout)
    try:
        line = stdout.wait_for(r"http://127\.0\.0\.1:\d+\b", timeout=30)
        if line is None:
            _unavailable(f"provider.mjs did not start: {log.read_text()[-500:]!r}")
        assert line is not None
        found = re.search(r"http://127\.0\.0\.1:\d+\b", line)
        assert found is not None
        yield Lab(found.group(0))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        stdout.text()  # the reader has closed the pipe


class Lines:
    """Every line of a text stream, read on a thread; ``wait_for`` the first one matching."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> str | None:
        """The first line matching ``pattern``; None at the end of the stream or after timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    return None
                self._changed.wait(left)

    def text(self, timeout: float = 10) -> str:
        """All of it, once the stream has ended."""
        self._thread.join(timeout)
        with self._changed:
            return "".join(self.lines)


class Seen:
    """Tokens the test got: they may be on the stdout of ``keyfob token``, nowhere else."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()

    def issued(self) -> set[str]:
        return set(self.tokens)


@pytest.fixture
def seen(no_secret_leaks: Any) -> Seen:
    tokens = Seen()
    no_secret_leaks.providers.append(tokens)
    no_secret_leaks.plant(SECRET)
    return tokens


@pytest.fixture
def oidc(home: Path, lab: Lab, seen: Seen, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """[providers.oidc] by issuer, authorization code; lab-client's secrets in OIDC_*."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        "[http]\ntimeout = 5\nretries = 0\n\n"
        "[providers.oidc]\n"
        f'issuer = "{lab.issuer}"\n'
        'grant = "authorization_code"\n'
        'env_prefix = "OIDC"\n'
        'scope = "openid offline_access api:read"\n'
    )
    monkeypatch.setenv("OIDC_CLIENT_ID", CLIENT)
    monkeypatch.setenv("OIDC_CLIENT_SECRET", SECRET)
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    return lab


def _served_token(cli: Callable[..., subprocess.CompletedProcess[str]], seen: Seen) -> str:
    """``keyfob token oidc`` in a new process: the token from the login, from the cache."""
    done = cli("token", "oidc")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    seen.tokens.add(token)
    return token


def test_browser_login_opens_the_system_browser_and_leaves_a_live_token(
    oidc: Lab, seen: Seen, cli: Any, no_secret_leaks: Any, tmp_path: Path
) -> None:
    out = tmp_path / "browse.out"
    browser = tmp_path / "browser"
    # Like a real browser launcher it returns at once; the browser goes on in the background.
    browser.write_text(
        "#!/bin/sh\n"
        f'( "{_node()}" "{LAB / "browse.mjs"}" login "$1"; echo $? > "{out}.rc" )'
        f' > "{out}" 2>&1 < /dev/null &\n'
    )
    browser.chmod(0o755)

    system_browser = {"BROWSER": str(browser)}
    done = cli("login", "oidc", "--flow", "browser", "--timeout", "30", env=system_browser)

    assert done.returncode == 0, done.stderr
    assert "A browser window is open" in done.stderr
    rc = out.with_name("browse.out.rc")
    deadline = time.monotonic() + 30
    while not (rc.exists() and rc.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rc.exists(), "the $BROWSER script was not run"
    no_secret_leaks.add("browse.mjs output", out.read_text())
    assert rc.read_text().strip() == "0", out.read_text()
    assert out.read_text().strip() == "Logged in"
    assert oidc.introspect(_served_token(cli, seen))["active"] is True


def test_device_login_approved_in_a_browser_leaves_a_live_token(
    oidc: Lab, seen: Seen, cli: Any, no_secret_leaks: Any
) -> None:
    login = subprocess.Popen(
        [KEYFOB, "login", "oidc", "--flow", "device"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stderr = Lines(login.stderr)
        line = stderr.wait_for(r"user_code=", timeout=30)
        assert line is not None, stderr.text()
        browse = subprocess.run(
            [_node(), str(LAB / "browse.mjs"), "device", line.strip()],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        no_secret_leaks.add("browse.mjs output", browse.stdout + browse.stderr)
        assert browse.returncode == 0, browse.stderr
        login.wait(timeout=30)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    err = stderr.text()
    no_secret_leaks.add("stderr of keyfob login", err)

    assert browse.stdout.strip() == "Sign-in Success"
    assert login.returncode == 0, err
    assert oidc.introspect(_served_token(cli, seen))["active"] is True
