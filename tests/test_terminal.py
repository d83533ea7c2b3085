"""keyfob on a real terminal (a pty): hidden prompts, the device spinner, Ctrl-C."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import KEYFOB, Leaks
from keyfob.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    LocalProvider,
)
from test_oidc_provider import CLIENT, SECRET, Lab, configure, running_provider


class Pty:
    """``keyfob`` with a terminal for stdin, stdout and stderr."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
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

    def read_until(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"no {text!r} on the terminal; it shows {self.seen!r}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the child closed the terminal
                raise AssertionError(f"ended before {text!r}; it showed {self.seen!r}") from None
            self.seen += chunk.decode(errors="replace")
        return self.seen

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
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
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
    term.read_until("treesnap token")
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
