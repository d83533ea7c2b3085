"""keyfob on a real terminal (a pty): hidden prompts, the device spinner, Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import KEYFOB, Leaks, point_at
from keyfob.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    LocalProvider,
)
from test_oidc_provider import CLIENT, SECRET, Lab, configure, running_provider


class Pty:
    """``keyfob`` with a terminal for stdin, stdout and stderr."""

    def __init__(
        self, args: list[str], env: dict[str, str], *, rows: int = 24, columns: int = 80
    ) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.proc = subprocess.Popen(
            [KEYFOB, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = ""
        self._mark = 0  # where read_next looks from

    def read_until(self, text: str, timeout: float = 20) -> str:
        self._wait(text, 0, timeout)
        return self.seen

    def read_next(self, text: str, timeout: float = 20) -> None:
        """Wait for ``text`` after what the last ``read_next`` found (a prompt asked
        again is a new one)."""
        self._mark = self._wait(text, self._mark, timeout) + len(text)

    def _wait(self, text: str, start: int, timeout: float) -> int:
        """Read until ``text`` shows at or after ``start``; where it shows."""
        deadline = time.monotonic() + timeout
        while self.seen.find(text, start) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"no {text!r} on the terminal; it shows {self.seen!r}")
            try:
                self.seen += os.read(self.master, 4096).decode(errors="replace")
            except OSError:  # the child closed the terminal
                raise AssertionError(f"ended before {text!r}; it showed {self.seen!r}") from None
        return self.seen.find(text, start)

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def finish(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    break
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                break
        code = self.proc.wait(timeout=5)
        os.close(self.master)
        return code


def test_login_asks_on_a_terminal_and_hides_the_secrets(
    home: Path, configured: object, no_secret_leaks: Leaks
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCAL_")}
    term = Pty(["login", "local"], env)
    answers = [
        ("client ID", DEMO_CLIENT_ID),
        ("client secret", DEMO_CLIENT_SECRET),
        ("username", DEMO_USERNAME),
        ("password", DEMO_PASSWORD),
    ]
    for name, value in answers:
        term.read_until(f"local {name}")
        term.type(value)
    code = term.finish()
    no_secret_leaks.add("the terminal", term.seen)
    assert code == 0, term.seen
    assert "logged in to local" in term.seen
    assert DEMO_USERNAME in term.seen  # a name is echoed as typed; the secrets above are not


def test_login_treesnap_on_a_terminal_asks_for_the_personal_token(
    home: Path, configured: LocalProvider, no_secret_leaks: Leaks
) -> None:
    token = configured.issue_treesnap_token()
    env = {k: v for k, v in os.environ.items() if k != "TREESNAP_TOKEN"}
    term = Pty(["login", "treesnap"], env)
    term.read_until("TreeSnap personal access token (made on the developer page")
    term.type(token)
    code = term.finish()
    no_secret_leaks.add("the terminal", term.seen)
    assert code == 0, term.seen
    assert "logged in to treesnap" in term.seen
    assert token not in term.seen  # typed without an echo


@pytest.fixture
def device_lab(tmp_path: Path) -> Iterator[Lab]:
    with running_provider(tmp_path) as (server, _):
        yield server


def test_device_login_on_a_terminal_shows_a_spinner_and_stops_cleanly_on_ctrl_c(
    home: Path, device_lab: Lab, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant(SECRET)
    configure(
        home,
        oidc={
            "issuer": device_lab.issuer,
            "grant": "device_code",
            "env_prefix": "OIDC",
            "scope": "openid offline_access",
        },
    )
    env = dict(
        os.environ,
        OIDC_CLIENT_ID=CLIENT,
        OIDC_CLIENT_SECRET=SECRET,
    )
    term = Pty(["login", "oidc", "--flow", "device"], env)
    term.read_until("waiting for approval")
    term.read_until("left)")  # the time left, on the spinner line
    os.killpg(term.proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    code = term.finish()
    no_secret_leaks.add("the terminal", term.seen)
    assert code == 130, term.seen
    assert "Traceback" not in term.seen
    assert term.seen.rstrip().splitlines()[-1].strip().endswith("keyfob: interrupted")
    assert not (home / "secrets.json").exists()  # nothing stored


# -- logins that guide ---------------------------------------------------------------------

INAT_VARS = ("INAT_USERNAME", "INAT_PASSWORD", "INAT_APP_ID", "INAT_APP_SECRET", "INAT_TOKEN")


def test_inaturalist_prompts_say_what_each_secret_is_and_where_to_find_it(
    home: Path, configured: LocalProvider, no_secret_leaks: Leaks
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in INAT_VARS}
    term = Pty(["login", "inaturalist"], env)
    apps = f"{configured.url}/oauth/applications"
    answers = [
        ("iNaturalist username or email: ", DEMO_INAT_USERNAME),
        ("iNaturalist password: ", DEMO_INAT_PASSWORD),
        (f"iNaturalist app ID (listed at {apps}): ", DEMO_INAT_APP_ID),
        (
            f"iNaturalist app secret (shown once when you created the app at {apps}): ",
            DEMO_INAT_APP_SECRET,
        ),
    ]
    for prompt, value in answers:
        term.read_until(prompt)
        term.type(value)
    code = term.finish()
    no_secret_leaks.add("the terminal", term.seen)
    assert code == 0, term.seen
    assert "app_id:" not in term.seen and "inaturalist app_secret" not in term.seen


def test_a_refused_password_is_asked_again_not_the_other_secrets(
    home: Path, configured: LocalProvider, no_secret_leaks: Leaks
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "INAT_PASSWORD"}
    term = Pty(["login", "inaturalist"], env)
    term.read_next("iNaturalist password: ")
    term.type("not-the-password-0123")
    term.read_next("inaturalist refused the username or password")
    # the username it used is the default (Enter keeps it); the app's secrets are not asked
    term.read_next(f"iNaturalist username or email [{DEMO_INAT_USERNAME}]: ")
    term.type("")
    term.read_next("iNaturalist password: ")
    term.type(DEMO_INAT_PASSWORD)
    code = term.finish()
    no_secret_leaks.add("the terminal", term.seen)
    assert code == 0, term.seen
    assert "logged in to inaturalist" in term.seen
    assert "app ID" not in term.seen and "app secret" not in term.seen
    assert configured.count("/oauth/token") == 2


def test_a_refused_password_is_asked_for_at_most_three_times(
    home: Path, configured: LocalProvider, no_secret_leaks: Leaks
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "INAT_PASSWORD"}
    term = Pty(["login", "inaturalist"], env)
    for attempt in range(3):
        if attempt:
            term.read_next("iNaturalist username or email [")
            term.type("")
        term.read_next("iNaturalist password: ")
        term.type("not-the-password-0123")
        term.read_next("inaturalist refused the username or password")
    code = term.finish()
    no_secret_leaks.add("the terminal", term.seen)
    assert code == 3, term.seen
    assert term.seen.count("iNaturalist password: ") == 3
    assert configured.count("/oauth/token") == 3
    last = term.seen.rstrip().splitlines()[-1]
    assert last.startswith("keyfob: error: inaturalist refused the username or password: ")
    assert "keyfob login inaturalist" in last


# -- the device prompt on a terminal --------------------------------------------------------


@pytest.fixture
def quick_device(
    home: Path, no_secret_leaks: Leaks, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalProvider]:
    """The local provider, polled every second in the device flow."""
    with LocalProvider(device_interval=1) as provider:
        no_secret_leaks.providers.append(provider)
        point_at(home, provider, monkeypatch)
        yield provider
    assert not provider.errors, provider.errors


def approve(provider: LocalProvider, seen: str) -> None:
    code = re.search(r"\b[B-Z]{4}-[B-Z]{4}\b", seen)
    assert code, seen
    form = urllib.parse.urlencode({"user_code": code.group(0), "action": "approve"}).encode()
    with urllib.request.urlopen(f"{provider.url}/std/device/verify", data=form, timeout=5) as r:
        assert r.status == 200


def device_login(provider: LocalProvider, leaks: Leaks, rows: int) -> tuple[list[str], str]:
    """``keyfob login local --flow device`` on a terminal of ``rows`` by 80, approved:
    the lines its prompt put on the screen up to the spinner, and all it showed."""
    term = Pty(["login", "local", "--flow", "device"], dict(os.environ), rows=rows, columns=80)
    term.read_until("waiting for approval")
    shown = term.seen.split("⠋")[0].replace("\r\n", "\n")
    approve(provider, term.seen)
    code = term.finish()
    leaks.add("the terminal", term.seen)
    assert code == 0, term.seen
    return shown.rstrip("\n").split("\n"), term.seen


def test_device_prompt_fits_an_80x24_terminal_address_and_code_first(
    quick_device: LocalProvider, no_secret_leaks: Leaks
) -> None:
    lines, seen = device_login(quick_device, no_secret_leaks, rows=24)
    assert len(lines) + 2 <= 24, lines  # with the command line above and the spinner below
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("To log in, open this address")
    assert f"{quick_device.url}/std/device/verify" in lines[2]
    assert re.fullmatch(r"\s+[B-Z]{4}-[B-Z]{4}", lines[6]), lines
    assert "█" not in seen  # no room for the QR code: it is left out
    assert "logged in to local" in seen


def test_device_prompt_adds_the_qr_code_below_on_a_tall_terminal(
    quick_device: LocalProvider, no_secret_leaks: Leaks
) -> None:
    lines, _ = device_login(quick_device, no_secret_leaks, rows=50)
    first_block = next(i for i, line in enumerate(lines) if "█" in line)
    code_line = next(i for i, line in enumerate(lines) if re.search(r"[B-Z]{4}-[B-Z]{4}$", line))
    assert code_line < first_block  # the address and the code come first
    assert len(lines) + 2 <= 50
