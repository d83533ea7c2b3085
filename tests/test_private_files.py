"""Everything keyfob writes is the person's alone: every folder it makes is 0700 and
every file 0600, whatever the umask, the folders above the last one included."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import KEYFOB, Leaks
from keyfob.testing import LocalProvider


def made_by_keyfob(top: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Modes of every folder and file below ``top`` (``top`` included)."""
    folders, files = {str(top): stat.S_IMODE(top.stat().st_mode)}, {}
    for root, dirs, names in os.walk(top):
        for d in dirs:
            folders[os.path.join(root, d)] = stat.S_IMODE(os.lstat(os.path.join(root, d)).st_mode)
        for n in names:
            files[os.path.join(root, n)] = stat.S_IMODE(os.lstat(os.path.join(root, n)).st_mode)
    return folders, files


def test_folders_are_0700_and_files_0600_under_umask_022(
    tmp_path: Path, local: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> None:
    # KEYFOB_HOME two levels below anything that exists: keyfob makes all three.
    top = tmp_path / "made"
    home = top / "by" / "keyfob"
    config = tmp_path / "config.toml"
    config.write_text(local.config_toml())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYFOB_", "LOCAL_"))}
    env.update(local.environ(), KEYFOB_HOME=str(home), KEYFOB_CONFIG=str(config))
    env["KEYFOB_KEYRING"] = "file"

    def keyfob(*args: str) -> None:
        done = subprocess.run(
            ["sh", "-c", 'umask 022 && exec "$@"', "sh", KEYFOB, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        no_secret_leaks.add(f"stderr of keyfob {args[0]}", done.stderr)
        assert done.returncode == 0, done.stderr

    keyfob("login", "local")  # the secrets file, the cache, its locks
    keyfob("status")

    folders, files = made_by_keyfob(top)
    assert {str(top / "by"), str(home), str(home / "cache")} <= set(folders)
    assert any(name.endswith("secrets.json") for name in files)
    assert any(name.endswith("tokens.sqlite3") for name in files)
    assert {path: mode for path, mode in folders.items() if mode != 0o700} == {}
    assert {path: mode for path, mode in files.items() if mode != 0o600} == {}
