"""Where secrets live: the lookup chain, the keyring bounded in time, the file fallback.

Lookup order, first found wins: keyword arguments, environment variables, the
secret store. The store is the system keyring (python ``keyring``, whatever
backend the machine has); on a machine with no keyring backend at all, a 0600
JSON file under the keyfob folder, announced once. A keyring that exists but
refuses (locked, prompt dismissed, no answer in time) is a ``StorageError``:
secrets never move to a file without the person asking (``KEYFOB_KEYRING=file``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, TypeVar

from keyfob import _paths
from keyfob.errors import ConfigError, StorageError

log = logging.getLogger("keyfob")
T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
UNLOCK_HINT = (
    "unlock the keyring (on a desktop, log in to it; headless: "
    "`gnome-keyring-daemon --unlock`), or set KEYFOB_KEYRING=file to keep secrets in a 0600 file"
)


class SecretStore(Protocol):
    kind: str

    def get(self, service: str, name: str) -> str | None: ...
    def set(self, service: str, name: str, value: str) -> None: ...
    def delete(self, service: str, name: str) -> None: ...
    def describe(self) -> str: ...


class Credentials:
    """Secrets by name, and where each was found. ``repr`` shows names only."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.sources: dict[str, str] = {}

    def add(self, name: str, value: str, source: str) -> None:
        self.values[name] = value
        self.sources[name] = source

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def where(self, name: str) -> str:
        """Where ``name`` was found, for a message: "the environment (TREESNAP_TOKEN)"."""
        return "the " + self.sources.get(name, "paste")

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def given(self, name: str) -> bool:
        """Whether ``name`` came from an argument or the environment, not a store."""
        source = self.sources.get(name, "")
        return source == "argument" or source.startswith("environment")

    def stored(self, name: str) -> bool:
        """Whether ``name`` was found in the secret store."""
        return name in self.sources and not self.given(name)

    def __repr__(self) -> str:
        found = ", ".join(f"{n} from {s}" for n, s in self.sources.items())
        return f"<Credentials {found or 'none'}>"


def resolve(
    names: Iterable[str],
    *,
    arguments: Mapping[str, str | None],
    environ: Mapping[str, str],
    env_names: Mapping[str, str | tuple[str, ...]],
    store: SecretStore | None,
    service: str,
) -> Credentials:
    """Look up each secret: arguments, then the environment, then the store."""
    creds = Credentials()
    for name in names:
        value = arguments.get(name)
        if value:
            creds.add(name, value, "argument")
            continue
        names_ = env_names.get(name) or ()
        var = next(
            (v for v in ((names_,) if isinstance(names_, str) else names_) if environ.get(v)), None
        )
        if var is not None:
            creds.add(name, environ[var], f"environment ({var})")
            continue
        if store is not None:
            stored = store.get(service, name)
            if stored:
                creds.add(name, stored, store.kind)
    return creds


# -- the keyring ---------------------------------------------------------------


def _bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run a keyring call in a helper thread; a Secret Service that never answers
    must not hang keyfob."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="keyfob-keyring", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StorageError(
            f"the keyring did not answer within {timeout:g} s ({what})", hint=UNLOCK_HINT
        )
    if "error" in box:
        raise _storage_error(box["error"], what)  # type: ignore[arg-type]
    return box.get("value")  # type: ignore[return-value]


def _storage_error(exc: BaseException, what: str) -> StorageError:
    name = type(exc).__name__
    text = str(exc)
    if name == "KeyringLocked" or "locked" in text.lower():
        message = "the keyring is locked"
    elif "dismissed" in text.lower():
        message = "the keyring's unlock prompt was dismissed"
    elif name == "NoKeyringError":
        message = "no keyring backend is available"
    elif isinstance(exc, TimeoutError):  # secretstorage: a D-Bus bus that never answers
        message = "the keyring did not answer in time"
    else:
        message = f"the keyring refused ({name})"
    err = StorageError(f"{message} ({what})", hint=UNLOCK_HINT)
    err.__cause__ = exc
    return err


class KeyringStore:
    kind = "keyring"

    def __init__(self, backend: object, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._backend = backend
        self._timeout = timeout

    def get(self, service: str, name: str) -> str | None:
        value = _bounded(
            lambda: self._backend.get_password(service, name),  # type: ignore[attr-defined]
            self._timeout,
            f"reading {name} of {service}",
        )
        return value if isinstance(value, str) else None

    def set(self, service: str, name: str, value: str) -> None:
        _bounded(
            lambda: self._backend.set_password(service, name, value),  # type: ignore[attr-defined]
            self._timeout,
            f"storing {name} of {service}",
        )

    def delete(self, service: str, name: str) -> None:
        def delete() -> None:
            from keyring.errors import PasswordDeleteError

            with contextlib.suppress(PasswordDeleteError):  # nothing stored: nothing to forget
                self._backend.delete_password(service, name)  # type: ignore[attr-defined]

        _bounded(delete, self._timeout, f"removing {name} of {service}")

    def describe(self) -> str:
        # keyring's chainer (several backends installed) says nothing by its own
        # name: name the backends it holds, the one written to first. Listing them
        # asks each backend again (SecretService: a D-Bus call), so bounded too.
        backends: list[object] = [self._backend]
        if hasattr(type(self._backend), "backends"):
            with contextlib.suppress(StorageError):
                chained = _bounded(
                    lambda: list(self._backend.backends),  # type: ignore[attr-defined]
                    self._timeout,
                    "listing the keyring's backends",
                )
                backends = chained or backends
        names = [f"{type(b).__module__}.{type(b).__name__}" for b in backends]
        return f"keyring ({', then '.join(names)})"


# -- the file fallback ---------------------------------------------------------


class FileStore:
    """Secrets in a 0600 JSON file in a 0700 folder: for machines without a keyring."""

    kind = "file"

    def __init__(self, path: str, *, announce: bool = False) -> None:
        self.path = path
        self._announce = announce

    def _check_folder(self) -> None:
        # The file is replaced by a rename in its folder, and read by name: a folder
        # another user could change would let them plant secrets or take ours.
        try:
            _paths.check_folder(os.path.dirname(self.path))
        except FileNotFoundError:
            pass  # none yet: made 0700 before the first write
        except OSError as exc:
            raise StorageError(
                f"cannot use the folder of the secrets file {self.path}: {exc.strerror}",
                hint="check the folder's permissions",
            ) from None

    def _read(self) -> dict[str, dict[str, str]]:
        self._check_folder()
        try:
            fd = _paths.open_private(self.path)  # never through a link; fstat-checked
        except FileNotFoundError:
            return {}
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _paths.refuse_link(self.path, f"put the file itself at {self.path}")
            raise StorageError(
                f"cannot read the secrets file {self.path} ({type(exc).__name__})",
                hint="fix or remove the file, then log in again",
            ) from None
        try:
            with os.fdopen(fd, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise StorageError(
                f"cannot read the secrets file {self.path} ({type(exc).__name__})",
                hint="fix or remove the file, then log in again",
            ) from None
        if not isinstance(data, dict):
            raise StorageError(
                f"the secrets file {self.path} is not a JSON object",
                hint="fix or remove the file, then log in again",
            )
        return data

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        folder = os.path.dirname(self.path)
        new = not os.path.exists(self.path)
        try:
            _paths.private_dir(folder)
            self._check_folder()
            fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=folder)  # mkstemp: 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=1, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise StorageError(
                f"cannot write the secrets file {self.path}: {exc.strerror}",
                hint="check the folder's permissions",
            ) from None
        if new and self._announce:
            log.warning(
                "no system keyring here: secrets are kept in %s (readable by you only); "
                "set KEYFOB_KEYRING=file to silence this",
                self.path,
            )

    def _locked(self) -> object:
        from filelock import FileLock

        _paths.private_dir(os.path.dirname(self.path))
        self._check_folder()  # FileLock opens (and truncates) by name: our folder only
        return FileLock(self.path + ".lock", mode=0o600)

    def get(self, service: str, name: str) -> str | None:
        return self._read().get(service, {}).get(name)

    def set(self, service: str, name: str, value: str) -> None:
        with self._locked():  # type: ignore[attr-defined]
            data = self._read()
            data.setdefault(service, {})[name] = value
            self._write(data)

    def delete(self, service: str, name: str) -> None:
        with self._locked():  # type: ignore[attr-defined]
            data = self._read()
            if name in data.get(service, {}):
                del data[service][name]
                if not data[service]:
                    del data[service]
                self._write(data)

    def describe(self) -> str:
        return f"file {self.path}"


def secrets_file() -> str:
    return os.path.join(_paths.data_dir(), "secrets.json")


#: what KEYFOB_KEYRING may say; unset or empty: the keyring, else the file where none exists
CHOICES = ("file", "keyring")
MAX_TIMEOUT = 600.0


def store_settings(env: Mapping[str, str]) -> tuple[str, float]:
    """KEYFOB_KEYRING and KEYFOB_KEYRING_TIMEOUT, checked: a ``ConfigError`` names what fits."""
    choice = env.get("KEYFOB_KEYRING", "").strip().lower()
    if choice and choice not in CHOICES:
        raise ConfigError(
            f"KEYFOB_KEYRING={choice!r} is not one of {', '.join(CHOICES)}",
            hint="set KEYFOB_KEYRING=file (a 0600 file) or keyring (the system keyring), "
            "or unset it",
        )
    raw = env.get("KEYFOB_KEYRING_TIMEOUT", "").strip()
    try:
        timeout = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        timeout = math.nan
    if not 0 < timeout <= MAX_TIMEOUT:  # nan and inf too
        raise ConfigError(
            f"KEYFOB_KEYRING_TIMEOUT must be a number of seconds above 0, at most {MAX_TIMEOUT:g}",
            hint=f"fix or unset KEYFOB_KEYRING_TIMEOUT (default {DEFAULT_TIMEOUT:g})",
        )
    return choice, timeout


def open_store(environ: Mapping[str, str] | None = None) -> SecretStore:
    """The store this machine should use (see the module docstring)."""
    env = os.environ if environ is None else environ
    choice, timeout = store_settings(env)
    if choice == "file":
        return FileStore(secrets_file())

    def backend() -> object:
        import keyring

        return keyring.get_keyring()

    kr = _bounded(backend, timeout, "opening the keyring")
    if env.get("DBUS_SESSION_BUS_ADDRESS") and not env.get("PYTHON_KEYRING_BACKEND"):
        _check_secret_service(kr, timeout)
    if _is_missing(kr):
        if choice == "keyring":
            raise StorageError(
                "KEYFOB_KEYRING=keyring, but this machine has no keyring backend",
                hint="install one (e.g. gnome-keyring), or unset KEYFOB_KEYRING",
            )
        return FileStore(secrets_file(), announce=True)
    return KeyringStore(kr, timeout)


def _check_secret_service(chosen: object, timeout: float) -> None:
    """A Secret Service on the session bus that never answers is an error.

    python-keyring asks the Secret Service whether it is there; when the bus
    never answers, it gives up after a second and silently picks the next
    backend (a plain file, with keyrings.alt), or none. keyfob asks the same
    question itself: not there is fine, no answer is a StorageError.
    """

    def ask() -> object:
        # A chainer lists its backends by asking each again: inside the time bound.
        backends = getattr(chosen, "backends", None) or [chosen]
        if any(type(b).__module__ == "keyring.backends.SecretService" for b in backends):
            return None  # keyring found it answering
        try:
            from keyring.backends import SecretService
        except ImportError:
            return None
        try:
            return SecretService.Keyring.priority
        except TimeoutError as exc:
            return exc
        except Exception:
            return None  # not running, not installed: no Secret Service here

    answer = _bounded(ask, timeout, "asking the Secret Service whether it is there")
    if isinstance(answer, TimeoutError):
        raise StorageError(
            "the Secret Service on the D-Bus session bus did not answer in time "
            "(asking whether it is there)",
            hint=UNLOCK_HINT,
        )


def _is_missing(backend: object) -> bool:
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if name == "keyring.backends.fail.Keyring":
        return True
    if name == "keyring.backends.chainer.ChainerBackend":
        return not getattr(backend, "backends", None)
    return False
