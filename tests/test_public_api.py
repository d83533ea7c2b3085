"""The public surface: exactly the names of DESIGN.md, their exit codes, and what
``import keyfob`` and the cached-token path may import (nothing heavy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import platformdirs
import pytest

import keyfob
from keyfob import _paths, errors
from keyfob.testing import LocalProvider

CONTRACT = [
    "ConfigError",
    "CredentialsMissing",
    "InvalidCredentials",
    "KeyfobError",
    "Provider",
    "ProviderError",
    "RateLimited",
    "StorageError",
    "Token",
    "TokenState",
    "TransportError",
    "get_credentials",
    "get_token",
    "httpx_auth",
    "login",
    "logout",
    "providers",
    "requests_auth",
    "session",
    "set_credentials",
    "wait",
]

#: what ``import keyfob`` must not pull in (each costs milliseconds on the cached-token path)
NOT_ON_IMPORT = ("httpx", "click", "keyring", "platformdirs", "tomllib", "typing", "dataclasses")
#: what ``keyfob token X`` answered from the cache must not pull in
NOT_ON_FAST_PATH = ("httpx", "click", "keyring", "tomllib", "platformdirs", "filelock", "requests")


# --------------------------------------------------------------------------- names
def test_all_is_sorted() -> None:
    assert keyfob.__all__ == sorted(keyfob.__all__)


def test_all_is_exactly_the_design_contract() -> None:
    assert keyfob.__all__ == CONTRACT


@pytest.mark.parametrize("name", CONTRACT)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(keyfob, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = keyfob.no_such_name  # type: ignore[attr-defined]


def test_public_classes_are_the_ones_in_their_modules() -> None:
    from keyfob.provider import Provider
    from keyfob.token import Token, TokenState

    assert (keyfob.Token, keyfob.TokenState, keyfob.Provider) == (Token, TokenState, Provider)
    assert keyfob.KeyfobError is errors.KeyfobError


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ConfigError", 2),
        ("CredentialsMissing", 3),
        ("InvalidCredentials", 3),
        ("StorageError", 3),
        ("ProviderError", 4),
        ("TransportError", 4),
        ("RateLimited", 5),
    ],
)
def test_every_error_has_its_documented_exit_code(name: str, code: int) -> None:
    cls = getattr(keyfob, name)
    assert issubclass(cls, keyfob.KeyfobError)
    assert cls.exit_code == code
    assert cls("x").exit_code == code


def test_every_keyfob_error_class_is_public() -> None:
    defined = {
        value.__name__
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.KeyfobError)
    }
    assert defined <= set(keyfob.__all__)


def test_keyfob_error_carries_a_hint_and_one_line() -> None:
    exc = keyfob.ConfigError("bad config", hint="fix it")
    assert exc.hint == "fix it"
    assert exc.one_line() == "bad config (fix it)"
    assert "\n" not in keyfob.ConfigError("x").one_line()


# --------------------------------------------------------------------------- import cost
def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


# Modules imported by the interpreter's own start-up (site, .pth files) are not
# keyfob's doing: only what appears after ``before`` counts.
NEW_MODULES = """
import sys
before = set(sys.modules)
{body}
new = sorted(set(sys.modules) - before)
sys.stderr.write("MODULES " + " ".join(new) + "\\n")
"""


def new_modules(stderr: str) -> set[str]:
    lines = [line for line in stderr.splitlines() if line.startswith("MODULES ")]
    assert len(lines) == 1, stderr
    return set(lines[0].split()[1:])


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_import_keyfob_imports_nothing_heavy(no_secret_leaks: Any) -> None:
    done = run_python(NEW_MODULES.format(body="import keyfob"))
    no_secret_leaks.add("stderr of import keyfob", done.stderr)
    assert done.returncode == 0, done.stderr
    new = new_modules(done.stderr)
    assert "keyfob" in new
    assert top_level(new) & set(NOT_ON_IMPORT) == set()


def test_the_probe_sees_a_heavy_import() -> None:
    # the import tests above and below would pass vacuously if the probe saw nothing
    done = run_python(NEW_MODULES.format(body="import keyfob.transport"))
    assert "dataclasses" in new_modules(done.stderr)


@pytest.fixture
def cached(configured: LocalProvider) -> str:
    """A valid token for ``local`` in the cache, saved by the library in this process."""
    token = keyfob.get_token("local")
    assert token.state() is keyfob.TokenState.FRESH
    return token.access_token


FAST = """
from keyfob._fast import main
try:
    code = main(["token", "local"])
finally:
    new = sorted(set(sys.modules) - before)
    sys.stderr.write("MODULES " + " ".join(new) + "\\n")
sys.exit(code)
"""


def test_token_from_the_cache_in_a_new_process_imports_nothing_heavy(
    cached: str, local: LocalProvider, no_secret_leaks: Any
) -> None:
    requests_before = local.count("/std/token")
    done = run_python("import sys\nbefore = set(sys.modules)\n" + FAST)
    no_secret_leaks.add("stdout of keyfob token", done.stdout, answer=True)
    no_secret_leaks.add("stderr of keyfob token", done.stderr)
    assert done.returncode == 0, done.stderr
    assert done.stdout == cached + "\n"
    assert local.count("/std/token") == requests_before
    new = new_modules(done.stderr)
    assert "keyfob._fast" in new
    assert top_level(new) & set(NOT_ON_FAST_PATH) == set()


def test_a_cache_miss_takes_the_full_command_line(
    configured: LocalProvider, no_secret_leaks: Any
) -> None:
    # the counterpart of the test above: without a cached token, click is loaded
    done = run_python("import sys\nbefore = set(sys.modules)\n" + FAST)
    no_secret_leaks.add("stdout of keyfob token", done.stdout, answer=True)
    no_secret_leaks.add("stderr of keyfob token", done.stderr)
    assert "click" in top_level(new_modules(done.stderr))


def test_python_m_keyfob_token_from_the_cache_imports_nothing_heavy(
    cached: str, no_secret_leaks: Any
) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keyfob", "token", "local"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    no_secret_leaks.add("stdout of keyfob token", done.stdout, answer=True)
    no_secret_leaks.add("stderr of keyfob token", done.stderr)
    assert done.returncode == 0, done.stderr
    assert done.stdout == cached + "\n"
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "keyfob._fast" in imported
    assert top_level(imported) & set(NOT_ON_FAST_PATH) == set()


# --------------------------------------------------------------------------- folders
XDG = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")


@pytest.fixture
def no_keyfob_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("KEYFOB_HOME", "KEYFOB_CONFIG", *XDG):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "person"))
    return tmp_path


def platform_dirs() -> tuple[str, str, str]:
    return (
        os.path.join(platformdirs.user_config_dir("keyfob", appauthor=False), "config.toml"),
        platformdirs.user_cache_dir("keyfob", appauthor=False),
        platformdirs.user_data_dir("keyfob", appauthor=False),
    )


def keyfob_dirs() -> tuple[str, str, str]:
    return _paths.config_file(), _paths.cache_dir(), _paths.data_dir()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rules are Linux's")
def test_folders_agree_with_platformdirs_without_xdg_variables(no_keyfob_home: Path) -> None:
    assert keyfob_dirs() == platform_dirs()
    assert _paths.cache_dir().startswith(str(no_keyfob_home / "person"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rules are Linux's")
@pytest.mark.parametrize(
    "value",
    ["{tmp}/xdg", "{tmp}/xdg/", "", "   ", "relative/xdg", " {tmp}/xdg"],
    ids=["absolute", "trailing-slash", "empty", "blank", "relative", "leading-space"],
)
def test_folders_agree_with_platformdirs_with_xdg_variables(
    value: str, no_keyfob_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in XDG:
        monkeypatch.setenv(name, value.format(tmp=no_keyfob_home / name.lower()))
    assert keyfob_dirs() == platform_dirs()


def test_keyfob_home_puts_everything_under_one_folder(
    no_keyfob_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYFOB_HOME", str(no_keyfob_home / "kf"))
    config, cache, data = keyfob_dirs()
    for path in (config, cache, data):
        assert Path(path).is_relative_to(no_keyfob_home / "kf")


def test_providers_stays_the_public_function_once_the_provider_package_is_loaded(
    home: object,
) -> None:
    import keyfob.provider  # what the broker imports
    import keyfob.wiring

    keyfob.wiring.reset()
    names = [p.name for p in keyfob.providers()]
    assert {"inaturalist", "treesnap", "twitter"} <= set(names)
