"""Where secrets come from and where they are kept.

The lookup order (argument > environment > store); the 0600 file store; the
choice of store (``KEYFOB_KEYRING=file``, no keyring backend at all); and a
keyring that exists but refuses (hangs, or is locked): an error with a hint,
exit 3 from the command line, never a silent move to the file.
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.errors import KeyringLocked

import keyfob
from keyfob.accounts import Accounts
from keyfob.broker import Broker
from keyfob.errors import StorageError
from keyfob.secretstore import Credentials, FileStore, KeyringStore, open_store, resolve
from keyfob.testing import (
    DEMO_TWITTER_API_KEY,
    DEMO_TWITTER_API_SECRET,
    LocalProvider,
)

SERVICE = "keyfob:local"
ENV_NAMES = {"client_secret": "LOCAL_CLIENT_SECRET"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- the lookup order --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "env", "stored", "want", "source"),
    [
        ("from-argument", "from-env", "from-store", "from-argument", "argument"),
        (None, "from-env", "from-store", "from-env", "environment (LOCAL_CLIENT_SECRET)"),
        (None, None, "from-store", "from-store", "file"),
        ("", "", "from-store", "from-store", "file"),  # empty values do not count
        (None, None, None, None, None),
    ],
    ids=["argument-wins", "environment-over-store", "store-last", "empty-is-absent", "none"],
)
def test_resolve_takes_argument_then_environment_then_store(
    tmp_path: Path,
    argument: str | None,
    env: str | None,
    stored: str | None,
    want: str | None,
    source: str | None,
) -> None:
    store = FileStore(str(tmp_path / "secrets.json"))
    if stored is not None:
        store.set(SERVICE, "client_secret", stored)

    creds = resolve(
        ["client_secret"],
        arguments={"client_secret": argument},
        environ={} if env is None else {"LOCAL_CLIENT_SECRET": env},
        env_names=ENV_NAMES,
        store=store,
        service=SERVICE,
    )

    assert creds.get("client_secret") == want
    assert creds.sources.get("client_secret") == source


def test_resolve_does_not_ask_the_store_for_what_it_already_has(tmp_path: Path) -> None:
    creds = resolve(
        ["client_secret"],
        arguments={"client_secret": "from-argument"},
        environ={},
        env_names=ENV_NAMES,
        store=RefusingBackendStore(),
        service=SERVICE,
    )
    assert creds.get("client_secret") == "from-argument"


class RefusingBackendStore:
    """A store that fails the test if it is asked at all."""

    kind = "keyring"

    def get(self, service: str, name: str) -> str | None:
        raise AssertionError("the store was asked")

    def set(self, service: str, name: str, value: str) -> None:
        raise AssertionError("the store was asked")

    def delete(self, service: str, name: str) -> None:
        raise AssertionError("the store was asked")

    def describe(self) -> str:
        return "refusing"


def test_credentials_repr_shows_names_and_sources_but_no_values(no_secret_leaks) -> None:
    creds = Credentials()
    creds.add("client_secret", DEMO_TWITTER_API_SECRET, "argument")
    creds.add("password", "hunter2-but-longer-0123", "environment (LOCAL_PASSWORD)")
    no_secret_leaks.plant("hunter2-but-longer-0123")
    text = repr(creds)
    no_secret_leaks.add("repr of Credentials", text)

    assert "client_secret from argument" in text
    assert "password from environment (LOCAL_PASSWORD)" in text
    assert DEMO_TWITTER_API_SECRET not in text
    assert "hunter2" not in text
    assert str(creds) == text


# -- the file store ----------------------------------------------------------------


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_file_store_file_is_0600_in_a_0700_folder(tmp_path: Path) -> None:
    folder = tmp_path / "keyfob"
    FileStore(str(folder / "secrets.json")).set(SERVICE, "client_secret", "s3cret-value-0123")
    assert mode(folder) == 0o700
    assert mode(folder / "secrets.json") == 0o600


@pytest.mark.usefixtures("umask_zero")
def test_file_store_file_is_0600_in_a_0700_folder_even_with_umask_zero(tmp_path: Path) -> None:
    folder = tmp_path / "keyfob"
    FileStore(str(folder / "secrets.json")).set(SERVICE, "client_secret", "s3cret-value-0123")
    assert mode(folder) == 0o700
    assert mode(folder / "secrets.json") == 0o600
    for extra in folder.iterdir():
        assert mode(extra) & 0o077 == 0, extra.name


def test_file_store_round_trip_and_delete(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "secrets.json"))
    store.set(SERVICE, "client_secret", "first-value-0123")
    store.set(SERVICE, "client_secret", "second-value-0123")
    store.set("keyfob:other", "client_secret", "other-value-0123")
    assert store.get(SERVICE, "client_secret") == "second-value-0123"
    store.delete(SERVICE, "client_secret")
    store.delete(SERVICE, "never-stored")
    assert store.get(SERVICE, "client_secret") is None
    assert store.get("keyfob:other", "client_secret") == "other-value-0123"


def test_file_store_readers_never_see_a_half_written_file(tmp_path: Path) -> None:
    path = str(tmp_path / "secrets.json")
    writer_store, reader_store = FileStore(path), FileStore(path)
    writer_store.set(SERVICE, "padding", "x" * 20000)  # big enough to need several writes
    done = threading.Event()
    failures: list[BaseException] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                reader_store.get(SERVICE, "counter")
                reads += 1
            except BaseException as exc:
                failures.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(150):
            writer_store.set(SERVICE, "counter", str(i))
    finally:
        done.set()
        reader.join()
    assert failures == []
    assert reads > 0
    assert reader_store.get(SERVICE, "counter") == "149"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.json", "secrets.json.lock"]


def test_file_store_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "secrets.json")
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        store = FileStore(path)
        try:
            barrier.wait()
            for i in range(10):
                store.set(SERVICE, f"name-{n}-{i}", f"value-{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = json.loads(Path(path).read_text())
    assert len(data[SERVICE]) == 60


def test_file_store_reports_a_damaged_file_without_its_content(
    tmp_path: Path, no_secret_leaks
) -> None:
    path = tmp_path / "secrets.json"
    path.write_text('{"keyfob:local": {"client_secret": "half-written-secret-0123"')
    no_secret_leaks.plant("half-written-secret-0123")
    with pytest.raises(StorageError) as caught:
        FileStore(str(path)).get(SERVICE, "client_secret")
    no_secret_leaks.add("StorageError", str(caught.value))
    assert str(path) in str(caught.value)


# -- choosing the store ------------------------------------------------------------


def test_keyfob_keyring_file_keeps_secrets_in_the_file_store(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A working keyring is configured, but KEYFOB_KEYRING=file (set by `home`) wins.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))

    store = open_store()
    keyfob.set_credentials(
        "twitter", api_key=DEMO_TWITTER_API_KEY, api_secret=DEMO_TWITTER_API_SECRET
    )

    assert isinstance(store, FileStore)
    assert Path(store.path) == home / "secrets.json"
    data = json.loads((home / "secrets.json").read_text())
    assert data["keyfob:twitter"] == {
        "api_key": DEMO_TWITTER_API_KEY,
        "api_secret": DEMO_TWITTER_API_SECRET,
    }
    assert not (tmp_path / "xdg-data").exists()
    assert keyfob.get_credentials("twitter")["api_secret"] == DEMO_TWITTER_API_SECRET


def test_no_keyring_backend_falls_back_to_the_file_with_a_one_time_warning(
    configured: LocalProvider, home: Path, cli
) -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}

    first = cli("login", "twitter", env=env, unset=("KEYFOB_KEYRING",))
    second = cli("login", "local", env=env, unset=("KEYFOB_KEYRING",))

    assert first.returncode == 0, first.stderr
    assert first.stderr.count("no system keyring") == 1  # two secrets stored, one warning
    assert second.returncode == 0, second.stderr
    assert "no system keyring" not in second.stderr
    secrets = home / "secrets.json"
    assert mode(secrets) == 0o600
    data = json.loads(secrets.read_text())
    assert data["keyfob:twitter"]["api_secret"] == DEMO_TWITTER_API_SECRET


# -- a keyring that refuses ----------------------------------------------------------

TEST_BACKENDS = textwrap.dedent(
    """
    import time

    from keyring.backend import KeyringBackend
    from keyring.errors import KeyringLocked


    class HangingKeyring(KeyringBackend):
        priority = 1

        def get_password(self, service, username):
            time.sleep(30)

        def set_password(self, service, username, password):
            time.sleep(30)

        def delete_password(self, service, username):
            time.sleep(30)


    class LockedKeyring(KeyringBackend):
        priority = 1

        def get_password(self, service, username):
            raise KeyringLocked("Failed to unlock the collection!")

        def set_password(self, service, username, password):
            raise KeyringLocked("Failed to unlock the collection!")

        def delete_password(self, service, username):
            raise KeyringLocked("Failed to unlock the collection!")
    """
)


@pytest.fixture
def backend_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a ``keyfob`` subprocess whose keyring is one of TEST_BACKENDS."""
    folder = tmp_path / "backends"
    folder.mkdir()
    (folder / "kftestring.py").write_text(TEST_BACKENDS)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    yield {"PYTHONPATH": path, "KEYFOB_KEYRING_TIMEOUT": "0.5"}


TWITTER_VARS = ("TWITTER_API_KEY", "TWITTER_API_SECRET", "KEYFOB_KEYRING")


def test_hanging_keyring_is_a_storage_error_exit_3_within_the_timeout(
    configured: LocalProvider, home: Path, backend_env: dict[str, str], cli
) -> None:
    env = {**backend_env, "PYTHON_KEYRING_BACKEND": "kftestring.HangingKeyring"}

    # The keyring sleeps 30 s; the subprocess limit of 20 s fails the test if keyfob waits.
    done = cli("token", "twitter", env=env, unset=TWITTER_VARS, timeout=20)

    assert done.returncode == 3
    assert done.stdout == ""
    line = one_line(done.stderr)
    assert "did not answer within 0.5 s" in line
    assert "KEYFOB_KEYRING=file" in line
    assert not (home / "secrets.json").exists()
    assert configured.count("/oauth2/token") == 0


@pytest.mark.parametrize(
    ("command", "unset"),
    [(("token", "twitter"), TWITTER_VARS), (("login", "twitter"), ("KEYFOB_KEYRING",))],
    ids=["reading", "storing"],
)
def test_locked_keyring_is_a_storage_error_exit_3_and_nothing_goes_to_the_file(
    configured: LocalProvider,
    home: Path,
    backend_env: dict[str, str],
    cli,
    command: tuple[str, ...],
    unset: tuple[str, ...],
) -> None:
    env = {**backend_env, "PYTHON_KEYRING_BACKEND": "kftestring.LockedKeyring"}

    done = cli(*command, env=env, unset=unset)

    assert done.returncode == 3
    assert done.stdout == ""
    line = one_line(done.stderr)
    assert "keyring is locked" in line
    assert "unlock" in line and "KEYFOB_KEYRING=file" in line
    assert not (home / "secrets.json").exists()


class LockedBackend:
    """Duck-typed keyring backend (not a KeyringBackend subclass: those register
    themselves with keyring for the whole test process)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")


class StuckBackend:
    """Never answers until the test lets it go."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(30)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait(30)

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait(30)


@pytest.mark.parametrize("call", ["get", "set", "delete"])
def test_locked_keyring_store_raises_storage_error_with_the_unlock_hint(
    call: str, no_secret_leaks
) -> None:
    store = KeyringStore(LockedBackend(), timeout=5)
    args = (SERVICE, "client_secret", "value-never-stored-0123")[: 3 if call == "set" else 2]
    no_secret_leaks.plant("value-never-stored-0123")

    with pytest.raises(StorageError) as caught:
        getattr(store, call)(*args)
    no_secret_leaks.add("StorageError", caught.value.one_line())

    assert "locked" in str(caught.value)
    assert "unlock" in caught.value.hint and "KEYFOB_KEYRING=file" in caught.value.hint
    assert caught.value.exit_code == 3


def test_stuck_keyring_store_raises_storage_error_after_its_timeout(no_secret_leaks) -> None:
    backend = StuckBackend()
    store = KeyringStore(backend, timeout=0.3)
    try:
        with pytest.raises(StorageError) as caught:
            store.get(SERVICE, "client_secret")
    finally:
        backend.release.set()
    no_secret_leaks.add("StorageError", caught.value.one_line())
    assert "did not answer within 0.3 s" in str(caught.value)
    assert "KEYFOB_KEYRING=file" in caught.value.hint


def test_broker_with_a_locked_keyring_raises_instead_of_using_the_file(
    configured: LocalProvider, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWITTER_API_KEY")
    monkeypatch.delenv("TWITTER_API_SECRET")
    broker = Broker(store=KeyringStore(LockedBackend(), timeout=5))
    try:
        with pytest.raises(StorageError):
            broker.get_token("twitter")
        with pytest.raises(StorageError):
            Accounts(broker).login(
                "twitter", api_key=DEMO_TWITTER_API_KEY, api_secret=DEMO_TWITTER_API_SECRET
            )
    finally:
        broker.transport.close()
    assert not (home / "secrets.json").exists()
