"""keyfob's secret store against a real Secret Service (gnome-keyring), headless.

Every keyfob process here runs inside a private D-Bus session that the test
starts and ends (``dbus-run-session``), so neither pytest nor the machine's own
keyring is involved. A small driver program runs the steps of a test inside
the session, one subprocess each, and writes their exit codes and outputs to a
JSON file. The sessions:

- ``keyring``: ``scripts/with-gnome-keyring.sh``: a real, unlocked gnome-keyring;
- ``bare``: a session with no daemon started: D-Bus starts gnome-keyring on the
  first call, and its unlock prompt cannot be shown (no display): dismissed;
- ``silent``: a program owns ``org.freedesktop.secrets`` and never answers;
- ``deaf``: no session at all; the bus address is a socket that accepts and
  never answers.

Python ``keyring`` chooses its backend itself (``PYTHON_KEYRING_BACKEND`` and
``KEYFOB_KEYRING`` unset): under a live Secret Service that is its chainer,
SecretService first (``keyrings.alt``, installed for other tests, comes second).
What is stored is checked with libsecret's ``secret-tool`` and with python
``keyring`` in other processes, never with keyfob's own reading.

Needs gnome-keyring, dbus-run-session and secret-tool (``scripts/setup-keyring.sh``):
without them these tests skip, or fail when the environment variable CI is set.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import KEYFOB_VARS, Leaks, one_line_error
from keyfob.testing import (
    DEMO_CLIENT_SECRET,
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    DEMO_USERNAME,
    LocalProvider,
)

ROOT = Path(__file__).resolve().parents[1]
WITH_KEYRING = ROOT / "scripts" / "with-gnome-keyring.sh"
BIN = Path(sys.executable).parent
KEYFOB = shutil.which("keyfob", path=str(BIN)) or "keyfob"
PY = sys.executable
TOOLS = ("gnome-keyring-daemon", "dbus-run-session", "secret-tool")
SESSION_TIMEOUT = 60  # a guard against a hang, not a measure
KEYRING_TIMEOUT = "2"  # KEYFOB_KEYRING_TIMEOUT for the keyrings that never answer

#: the environment of the machine that must not reach the sessions
UNSET = (
    "DBUS_SESSION_BUS_ADDRESS",
    "DBUS_STARTER_ADDRESS",
    "DBUS_STARTER_BUS_TYPE",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "GNOME_KEYRING_CONTROL",
    "SSH_AUTH_SOCK",
)

DRIVER = r'''
"""Run steps (a JSON list) one subprocess each; write [{rc, out, err}] as JSON.
With --own NAME: first own NAME on the session bus, then never answer a call."""
import json, os, subprocess, sys

steps_file, results_file, *rest = sys.argv[1:]
owner = None
if rest[:1] == ["--own"]:
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    owner = open_dbus_connection(bus="SESSION")
    reply = owner.send_and_get_reply(message_bus.RequestName(rest[1]), timeout=10)
    if reply.body[0] != 1:
        sys.exit(f"could not own {rest[1]}: {reply.body}")
with open(steps_file) as fh:
    steps = json.load(fh)
results = []
for step in steps:
    env = dict(os.environ)
    env.update(step["env"])
    for name in step["unset"]:
        env.pop(name, None)
    pipe = subprocess.PIPE if step["capture"] else subprocess.DEVNULL
    try:
        done = subprocess.run(
            step["argv"], env=env, input=step["input"], stdout=pipe, stderr=pipe,
            stdin=None if step["input"] is not None else subprocess.DEVNULL,
            text=True, timeout=30,
        )
        results.append({"rc": done.returncode, "out": done.stdout or "", "err": done.stderr or ""})
    except subprocess.TimeoutExpired:
        results.append({"rc": None, "out": "", "err": "the step did not end within 30 s"})
with open(results_file, "w") as fh:
    json.dump(results, fh)
'''


@dataclass
class Step:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    input: str | None = None
    capture: bool = True
    answer: bool = False  # stdout is a token (keyfob token)
    secret_out: bool = False  # stdout is a stored secret on purpose (secret-tool lookup)


@dataclass
class Result:
    rc: int | None
    out: str
    err: str


def keyfob(*args: str, **kw: object) -> Step:
    return Step([KEYFOB, *args], answer=args[:1] == ("token",), **kw)  # type: ignore[arg-type]


def lookup(service: str, name: str) -> Step:
    return Step(["secret-tool", "lookup", "service", service, "username", name], secret_out=True)


def python(code: str, **kw: object) -> Step:
    return Step([PY, "-c", code], **kw)  # type: ignore[arg-type]


@pytest.fixture
def secret_service() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        message = f"{', '.join(missing)} missing: run scripts/setup-keyring.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def env(home: Path, local: LocalProvider, tmp_path: Path) -> dict[str, str]:
    """The sessions' environment: config.toml for the emulator, fresh XDG folders,
    no keyfob, keyring or D-Bus variables of the machine. No LOCAL_* secrets."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(local.config_toml())
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(KEYFOB_VARS) and k not in UNSET
    }
    xdg = tmp_path / "xdg"
    for name in ("config", "data", "cache", "run"):
        (xdg / name).mkdir(parents=True, mode=0o700)
    environ.update(
        KEYFOB_HOME=str(home),
        PATH=f"{BIN}{os.pathsep}{environ.get('PATH', '')}",
        XDG_CONFIG_HOME=str(xdg / "config"),
        XDG_DATA_HOME=str(xdg / "data"),
        XDG_CACHE_HOME=str(xdg / "cache"),
        XDG_RUNTIME_DIR=str(xdg / "run"),
    )
    return environ


@pytest.fixture
def secrets_env(local: LocalProvider) -> dict[str, str]:
    return {k: v for k, v in local.environ().items() if k.startswith("LOCAL_")}


def run_session(
    mode: str, steps: list[Step], env: dict[str, str], tmp_path: Path, leaks: Leaks
) -> list[Result]:
    """Run ``steps`` in a D-Bus session of kind ``mode`` (see the module docstring)."""
    work = tmp_path / f"session-{len(list(tmp_path.glob('session-*')))}"
    work.mkdir()
    (work / "driver.py").write_text(DRIVER)
    (work / "steps.json").write_text(
        json.dumps(
            [
                {
                    "argv": s.argv,
                    "env": s.env,
                    "unset": list(s.unset),
                    "input": s.input,
                    "capture": s.capture,
                }
                for s in steps
            ]
        )
    )
    driver = [PY, str(work / "driver.py"), str(work / "steps.json"), str(work / "results.json")]
    command = {
        "keyring": ["bash", str(WITH_KEYRING), *driver],
        "bare": ["dbus-run-session", "--", *driver],
        "silent": ["dbus-run-session", "--", *driver, "--own", "org.freedesktop.secrets"],
        "deaf": driver,
    }[mode]
    proc = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the bus and the keyring daemon go with it on a hang
    )
    try:
        out, err = proc.communicate(timeout=SESSION_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the {mode} session did not end within {SESSION_TIMEOUT} s")
    leaks.add(f"stdout of the {mode} session", out)
    leaks.add(f"stderr of the {mode} session", err)
    assert proc.returncode == 0, err
    results = [Result(**r) for r in json.loads((work / "results.json").read_text())]
    for step, result in zip(steps, results, strict=True):
        label = " ".join([Path(step.argv[0]).name, *step.argv[1:3]])
        leaks.add(f"stderr of {label}", result.err)
        if not step.secret_out:
            leaks.add(f"stdout of {label}", result.out, answer=step.answer)
    return results


# -- a working Secret Service ------------------------------------------------------


def test_login_stores_the_secrets_in_the_secret_service(
    secret_service: None,
    env: dict[str, str],
    secrets_env: dict[str, str],
    tmp_path: Path,
    no_secret_leaks: Leaks,
) -> None:
    login, secret, user = run_session(
        "keyring",
        [
            keyfob("login", "local", env=secrets_env),
            lookup("keyfob:local", "client_secret"),
            lookup("keyfob:local", "username"),
        ],
        env,
        tmp_path,
        no_secret_leaks,
    )
    assert login.rc == 0, login.err
    assert (secret.rc, secret.out) == (0, DEMO_CLIENT_SECRET), secret.err
    assert (user.rc, user.out) == (0, DEMO_USERNAME), user.err


def test_new_process_without_env_gets_a_token_from_the_secret_service(
    secret_service: None,
    env: dict[str, str],
    secrets_env: dict[str, str],
    local: LocalProvider,
    tmp_path: Path,
    no_secret_leaks: Leaks,
) -> None:
    login, token = run_session(
        "keyring",
        [keyfob("login", "local", env=secrets_env), keyfob("token", "local", "--refresh")],
        env,
        tmp_path,
        no_secret_leaks,
    )
    assert login.rc == 0, login.err
    assert token.rc == 0, token.err
    assert token.out.strip() in local.issued()
    assert local.count("/std/token") == 2  # --refresh: a new grant, with the stored secrets


def test_set_keyring_credentials_is_found_by_pyinaturalist_lookups(
    secret_service: None, env: dict[str, str], tmp_path: Path, no_secret_leaks: Leaks
) -> None:
    store = python(
        "import os; from keyfob.inaturalist import set_keyring_credentials as s; e = os.environ; "
        "s(e['T_USER'], e['T_PASSWORD'], e['T_ID'], e['T_SECRET'])",
        env={
            "T_USER": DEMO_INAT_USERNAME,
            "T_PASSWORD": DEMO_INAT_PASSWORD,
            "T_ID": DEMO_INAT_APP_ID,
            "T_SECRET": DEMO_INAT_APP_SECRET,
        },
    )
    read = python(
        "import keyring, sys; sys.stdout.write(keyring.get_password('/inaturalist', 'app_secret'))",
        secret_out=True,
    )
    stored, by_keyring, by_libsecret = run_session(
        "keyring", [store, read, lookup("/inaturalist", "app_id")], env, tmp_path, no_secret_leaks
    )
    assert stored.rc == 0, stored.err
    assert (by_keyring.rc, by_keyring.out) == (0, DEMO_INAT_APP_SECRET), by_keyring.err
    assert (by_libsecret.rc, by_libsecret.out) == (0, DEMO_INAT_APP_ID), by_libsecret.err


def test_pyinaturalist_keyring_entries_are_what_keyfob_inaturalist_uses(
    secret_service: None,
    env: dict[str, str],
    local: LocalProvider,
    tmp_path: Path,
    no_secret_leaks: Leaks,
) -> None:
    values = {
        "username": DEMO_INAT_USERNAME,
        "password": DEMO_INAT_PASSWORD,
        "app_id": DEMO_INAT_APP_ID,
        "app_secret": DEMO_INAT_APP_SECRET,
    }
    store = python(
        "import json, os, keyring\n"
        "for k, v in json.loads(os.environ['T_VALUES']).items():\n"
        "    keyring.set_password('/inaturalist', k, v)\n",
        env={"T_VALUES": json.dumps(values)},
    )
    use = python(
        "import json, os, sys\n"
        "from keyfob.inaturalist import get_access_token, get_keyring_credentials\n"
        "expected = json.loads(os.environ['T_VALUES'])\n"
        "creds = get_keyring_credentials()\n"
        "same = creds == {'username': expected['username'], 'password': expected['password'],"
        " 'client_id': expected['app_id'], 'client_secret': expected['app_secret']}\n"
        "sys.stderr.write(f'credentials match: {same}')\n"
        "sys.stdout.write(get_access_token())\n",
        env={"T_VALUES": json.dumps(values)},
        answer=True,
    )
    stored, used = run_session("keyring", [store, use], env, tmp_path, no_secret_leaks)
    assert stored.rc == 0, stored.err
    assert used.rc == 0, used.err
    assert used.err == "credentials match: True"
    assert used.out in local.issued()
    assert local.count("/oauth/token") == 1


def test_logout_removes_the_secrets_from_the_secret_service(
    secret_service: None,
    env: dict[str, str],
    secrets_env: dict[str, str],
    tmp_path: Path,
    no_secret_leaks: Leaks,
) -> None:
    login, before, logout, after = run_session(
        "keyring",
        [
            keyfob("login", "local", env=secrets_env),
            lookup("keyfob:local", "client_secret"),
            keyfob("logout", "local"),
            lookup("keyfob:local", "client_secret"),
        ],
        env,
        tmp_path,
        no_secret_leaks,
    )
    assert (login.rc, before.rc) == (0, 0), login.err + before.err
    assert logout.rc == 0, logout.err
    assert after.rc != 0
    assert after.out == ""


def test_status_names_the_secret_service_as_where_secrets_live(
    secret_service: None,
    env: dict[str, str],
    secrets_env: dict[str, str],
    tmp_path: Path,
    no_secret_leaks: Leaks,
) -> None:
    login, status = run_session(
        "keyring",
        [keyfob("login", "local", env=secrets_env), keyfob("status")],
        env,
        tmp_path,
        no_secret_leaks,
    )
    assert login.rc == 0, login.err
    assert status.rc == 0, status.err
    footer = status.out.strip().splitlines()[-1]
    assert "secrets: keyring" in footer
    assert "SecretService" in footer


# -- a Secret Service that refuses or never answers ----------------------------------


@pytest.fixture
def deaf_bus(tmp_path: Path) -> Iterator[str]:
    """A D-Bus address whose socket accepts connections and never says a word."""
    path = str(tmp_path / "deaf.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"unix:path={path}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def locked_keyring(env: dict[str, str], tmp_path: Path, leaks: Leaks) -> list[Step]:
    """A login keyring made with one password, then a daemon unlocked with another:
    ``--unlock`` exits 0 and the collection stays locked."""
    unlock = ["gnome-keyring-daemon", "--unlock", "--components=secrets"]
    # The store also keeps the session open until the forked daemon is on the bus:
    # a daemon that never saw the bus does not see it end either, and lingers.
    store = ["secret-tool", "store", "--label=probe", "service", "keyfob-test", "username", "x"]
    made, stored = run_session(
        "bare",
        [Step(unlock, input="first-pw", capture=False), Step(store, input="not-a-secret")],
        env,
        tmp_path,
        leaks,
    )
    assert (made.rc, stored.rc) == (0, 0), stored.err
    assert (Path(env["XDG_DATA_HOME"]) / "keyrings" / "login.keyring").exists()
    return [Step(unlock, input="another-pw", capture=False)]


@pytest.mark.parametrize("command", ["login", "token"])
@pytest.mark.parametrize(
    ("keyring", "says"),
    [
        ("locked", "the keyring is locked"),
        ("dismissed", "the keyring's unlock prompt was dismissed"),
        ("silent", f"the keyring did not answer within {KEYRING_TIMEOUT} s"),
        ("deaf", "the keyring did not answer in time"),
    ],
)
def test_unusable_keyring_is_a_one_line_error_and_no_file(
    keyring: str,
    says: str,
    command: str,
    request: pytest.FixtureRequest,
    secret_service: None,
    env: dict[str, str],
    secrets_env: dict[str, str],
    home: Path,
    tmp_path: Path,
    no_secret_leaks: Leaks,
) -> None:
    env["KEYFOB_KEYRING_TIMEOUT"] = KEYRING_TIMEOUT
    before: list[Step] = []
    mode = {"locked": "bare", "dismissed": "bare"}.get(keyring, keyring)
    if keyring == "locked":
        before = locked_keyring(env, tmp_path, no_secret_leaks)
    if keyring == "deaf":
        # SecretService chosen: keyring's own choice drops it (see the xfail below)
        env["DBUS_SESSION_BUS_ADDRESS"] = request.getfixturevalue("deaf_bus")
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.SecretService.Keyring"
    # login: the secrets come from the environment, storing them fails;
    # token: nothing in the environment, reading them fails.
    step = keyfob(command, "local", env=secrets_env if command == "login" else {})
    *_, done = run_session(mode, [*before, step], env, tmp_path, no_secret_leaks)
    assert done.rc == 3, done.err
    line = one_line_error(done.err)
    assert says in line
    assert "unlock" in line
    assert "KEYFOB_KEYRING=file" in line
    assert done.out == ""
    assert not list(home.rglob("*secret*"))  # never a silent move to keyfob's file
    assert not (Path(env["XDG_DATA_HOME"]) / "python_keyring").exists()  # nor keyrings.alt's


def test_bus_that_never_answers_is_an_error_not_another_backend(
    env: dict[str, str],
    secrets_env: dict[str, str],
    deaf_bus: str,
    home: Path,
    tmp_path: Path,
    no_secret_leaks: Leaks,
) -> None:
    env.update(DBUS_SESSION_BUS_ADDRESS=deaf_bus, KEYFOB_KEYRING_TIMEOUT=KEYRING_TIMEOUT)
    (login,) = run_session(
        "deaf", [keyfob("login", "local", env=secrets_env)], env, tmp_path, no_secret_leaks
    )
    assert login.rc == 3, login.err
    assert not list(home.rglob("*secret*"))
    assert not (Path(env["XDG_DATA_HOME"]) / "python_keyring").exists()


# -- no keyring at all ----------------------------------------------------------------


def test_no_keyring_backend_keeps_secrets_in_a_0600_file_and_says_so_once(
    env: dict[str, str],
    secrets_env: dict[str, str],
    home: Path,
    tmp_path: Path,
    no_secret_leaks: Leaks,
) -> None:
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    first, second, token = run_session(
        "deaf",  # no session: the driver runs without D-Bus
        [
            keyfob("login", "local", env=secrets_env),
            keyfob("login", "local", env=secrets_env),
            keyfob("token", "local", "--refresh"),
        ],
        env,
        tmp_path,
        no_secret_leaks,
    )
    assert (first.rc, second.rc, token.rc) == (0, 0, 0), first.err + second.err + token.err
    secrets = home / "secrets.json"
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert first.err.count("no system keyring here") == 1
    assert str(secrets) in first.err
    assert "no system keyring here" not in second.err
    assert f"secrets kept in file {secrets}" in second.err
