"""Shared fixtures.

Every test runs with ``no_secret_leaks`` (autouse): it plants known secrets
(the demo passwords and client secrets, and every token a ``LocalProvider``
of the test issued) and, after the test, searches everything the test
produced for them: captured stdout and stderr (of the process and of its
children that inherit them), the output of every ``keyfob`` subprocess run
through ``cli``, and DEBUG records from every logger. Only the stdout of
``keyfob token``/``header``/``exec`` may hold a token.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keyfob import wiring
from keyfob.config import NETWORK_VARS
from keyfob.testing import (
    DEMO_CLIENT_SECRET,
    DEMO_GITHUB_APP_CLIENT_SECRET,
    DEMO_GITHUB_OAUTH_CLIENT_SECRET,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_OAUTH1_CONSUMER_SECRET,
    DEMO_PASSWORD,
    DEMO_TWITTER_API_SECRET,
    DEMO_TWITTER_CLIENT_SECRET,
    LocalProvider,
)
from keyfob.testing.fixtures import keyfob_home, keyfob_local  # noqa: F401 - as users do
from netparts import private_ca, silent, tinyproxy, tls_local  # noqa: F401 - proxy, TLS tests

PLANTED = (
    DEMO_INAT_PASSWORD,
    DEMO_INAT_APP_SECRET,
    DEMO_TWITTER_API_SECRET,
    DEMO_TWITTER_CLIENT_SECRET,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_GITHUB_APP_CLIENT_SECRET,
    DEMO_GITHUB_OAUTH_CLIENT_SECRET,
    DEMO_OAUTH1_CONSUMER_SECRET,
)
#: commands whose stdout is the token itself
ANSWERING = frozenset({"token", "header", "exec"})
KEYFOB = shutil.which("keyfob", path=str(Path(sys.executable).parent)) or "keyfob"


class Leaks:
    """What a test produced, to be searched for secrets after it."""

    def __init__(self) -> None:
        self.outputs: list[tuple[str, str, bool]] = []  # (label, text, may hold tokens)
        self.providers: list[LocalProvider] = []
        self.secrets: set[str] = set(PLANTED)

    def add(self, label: str, text: str, *, answer: bool = False) -> None:
        self.outputs.append((label, text, answer))

    def plant(self, *values: str) -> None:
        self.secrets.update(v for v in values if v)


@pytest.fixture(autouse=True)
def no_secret_leaks(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Leaks]:
    caplog.set_level(logging.DEBUG)
    leaks = Leaks()
    yield leaks
    out, err = capfd.readouterr()
    sys.stdout.write(out)
    sys.stderr.write(err)
    texts = [("captured stdout", out, False), ("captured stderr", err, False)]
    for record in caplog.get_records("setup") + caplog.get_records("call"):
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        texts.append((f"log record of {record.name}", text, False))
    texts.extend(leaks.outputs)
    tokens: set[str] = set()
    for provider in leaks.providers:
        tokens |= provider.issued()
    for label, text, answer in texts:
        for secret in leaks.secrets | tokens:
            if secret in text and not (answer and secret in tokens):
                pytest.fail(f"a secret leaked into {label}: {text[:200]!r}")


def one_line_error(stderr: str, *, hint: bool = False) -> str:
    """The single error line of a failed command (``hint``: ending in its hint in
    parentheses); fails on a traceback or chatter."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("keyfob: error: ")
    if hint:
        assert lines[0].endswith(")"), f"no hint: {lines[0]}"
    return lines[0]


@pytest.fixture(autouse=True)
def no_machine_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's proxy and CA variables stay out of every test (and the ``keyfob``
    processes it starts): a test that wants one sets it."""
    for name in NETWORK_VARS:
        monkeypatch.delenv(name, raising=False)


KEYFOB_VARS = (
    "KEYFOB_",
    "INAT_",
    "TWITTER_",
    "TREESNAP_",
    "LOCAL_",
    "PYTHON_KEYRING",
    "GITHUB_",
    "GH_TOKEN",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh KEYFOB_HOME, secrets in the 0600 file, nothing inherited."""
    for name in list(os.environ):
        if name.startswith(KEYFOB_VARS):
            monkeypatch.delenv(name)
    folder = tmp_path / "home"
    monkeypatch.setenv("KEYFOB_HOME", str(folder))
    monkeypatch.setenv("KEYFOB_KEYRING", "file")
    wiring.reset()
    yield folder
    wiring.reset()


@pytest.fixture
def local(no_secret_leaks: Leaks) -> Iterator[LocalProvider]:
    """The local emulator of iNaturalist, TreeSnap, Twitter and a plain OAuth2 server."""
    with LocalProvider() as provider:
        no_secret_leaks.providers.append(provider)
        yield provider
    assert not provider.errors, provider.errors


@pytest.fixture
def configured(home: Path, local: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> LocalProvider:
    """config.toml points every built-in provider at ``local``; demo secrets in the env."""
    point_at(home, local, monkeypatch)
    return local


def point_at(home: Path, provider: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """``home``'s config.toml points every built-in provider at ``provider``, whose demo
    secrets go into the environment."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(provider.config_toml())
    for name, value in provider.environ().items():
        monkeypatch.setenv(name, value)
    wiring.reset()


CliRun = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def cli(no_secret_leaks: Leaks) -> CliRun:
    """Run the installed ``keyfob`` command as a person would; outputs are searched."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        unset: tuple[str, ...] = (),
        timeout: float = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        environ = dict(os.environ)
        environ.update(env or {})
        for name in unset:
            environ.pop(name, None)
        done = subprocess.run(
            [KEYFOB, *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        command = next((a for a in args if not a.startswith("-")), "")
        no_secret_leaks.add(f"stdout of keyfob {command}", done.stdout, answer=command in ANSWERING)
        no_secret_leaks.add(f"stderr of keyfob {command}", done.stderr)
        return done

    return run


STOPPED_HOLDER = textwrap.dedent(
    """
    import os, signal, sys
    from keyfob.cache.sqlite import SQLiteCache

    with SQLiteCache(sys.argv[1]).lock(("local", "")):
        print("held", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)  # a holder stopped in the middle
    """
)


@pytest.fixture
def stopped_holder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A process that holds the lock of ("local", "") in ``tmp_path/cache``, stopped."""
    folder = tmp_path / "cache"
    from keyfob.cache.sqlite import SQLiteCache

    SQLiteCache(str(folder))
    holder = subprocess.Popen(
        [sys.executable, "-c", STOPPED_HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        deadline = time.monotonic() + 10
        while _state(holder.pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(holder.pid) == "T", "the holder did not stop"
        yield folder, holder.pid
    finally:
        holder.kill()  # by PID; SIGKILL ends a stopped process too
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]
