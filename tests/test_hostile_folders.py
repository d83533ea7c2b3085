"""Folders and files another user controls are refused, as OpenSSH refuses ~/.ssh.

The victim is this test process (root here); the attacker is ``nobody``, played
through ``setpriv``, writing in a scratch folder under /tmp that both can reach.
Each test performs the attack: without the checks, keyfob serves the planted
token, writes into the attacker's file, or sends the secrets to the attacker's
server. Without root or ``setpriv`` the tests are skipped, or fail when ``CI`` is
set.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CliRun
from keyfob import _paths
from keyfob.testing import LocalProvider

ATTACKER = "nobody"


def _need_attacker() -> pwd.struct_passwd:
    why = None
    if os.geteuid() != 0:
        why = "playing another user needs root"
    elif shutil.which("setpriv") is None:
        why = "setpriv is missing (util-linux)"
    else:
        try:
            return pwd.getpwnam(ATTACKER)
        except KeyError:
            why = f"there is no user {ATTACKER!r}"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture
def attacker() -> pwd.struct_passwd:
    return _need_attacker()


@pytest.fixture
def scratch(attacker: pwd.struct_passwd) -> Iterator[Path]:
    """A folder under /tmp shared as /tmp is: anyone may write, sticky."""
    folder = Path(tempfile.mkdtemp(prefix="keyfob-attack-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder)


def as_attacker(attacker: pwd.struct_passwd, *argv: str) -> None:
    """Run ``argv`` as the attacker."""
    ids = [f"--reuid={attacker.pw_uid}", f"--regid={attacker.pw_gid}", "--clear-groups"]
    subprocess.run(
        ["setpriv", *ids, "--", *argv],
        check=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "HOME": "/"},
    )


def victim_env(local: LocalProvider, home: Path, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYFOB_", "LOCAL_"))}
    env.update(local.environ(), KEYFOB_HOME=str(home), KEYFOB_CONFIG=str(config))
    env["KEYFOB_KEYRING"] = "file"
    return env


@pytest.fixture
def victim(tmp_path: Path, local: LocalProvider, cli: CliRun) -> dict[str, str]:
    """The victim's own, private KEYFOB_HOME with a cached token, and its environment."""
    config = tmp_path / "config.toml"
    config.write_text(local.config_toml())
    env = victim_env(local, tmp_path / "home", config)
    done = cli("token", "local", env=env)
    assert done.returncode == 0, done.stderr
    return env


def plant_token(attacker: pwd.struct_passwd, victim_cache: Path, where: Path) -> None:
    """The attacker's cache file at ``where``: the victim's rows, its own token in them."""
    doctored = Path(tempfile.mkdtemp(prefix="keyfob-attack-", dir="/tmp")) / "doctored"
    doctored.parent.chmod(0o755)
    shutil.copyfile(victim_cache, doctored)
    with sqlite3.connect(doctored) as conn:
        conn.execute("UPDATE tokens SET access_token = 'planted-by-the-attacker'")
    conn.close()
    doctored.chmod(0o644)
    as_attacker(attacker, "mkdir", "-p", str(where.parent))
    as_attacker(attacker, "cp", str(doctored), str(where))
    shutil.rmtree(doctored.parent)


def test_token_planted_in_a_world_writable_home_is_refused(
    attacker: pwd.struct_passwd, scratch: Path, victim: dict[str, str], cli: CliRun
) -> None:
    home = scratch / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)  # the victim's own KEYFOB_HOME, but anyone may write in it
    cache = Path(victim["KEYFOB_HOME"]) / "cache" / "tokens.sqlite3"
    plant_token(attacker, cache, home / "cache" / "tokens.sqlite3")

    done = cli("token", "local", env={**victim, "KEYFOB_HOME": str(home)})

    assert "planted-by-the-attacker" not in done.stdout
    assert done.returncode == 2, done.stderr
    assert f"refusing to use {home}: the folder is writable by others" in done.stderr
    assert f"fix: chmod go-w {home}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_token_planted_in_a_cache_folder_another_user_owns_is_refused(
    attacker: pwd.struct_passwd, scratch: Path, victim: dict[str, str], cli: CliRun
) -> None:
    home = scratch / "home"  # the victim's, 0700 in a sticky world-writable folder: fine
    home.mkdir(mode=0o700)
    # ... but the cache folder inside was made by the attacker, before the victim's first run
    cache_dir = scratch / "theirs"
    cache = Path(victim["KEYFOB_HOME"]) / "cache" / "tokens.sqlite3"
    plant_token(attacker, cache, cache_dir / "tokens.sqlite3")
    os.symlink(cache_dir, home / "cache")  # a link to such a place is no better

    done = cli("token", "local", env={**victim, "KEYFOB_HOME": str(home)})

    assert "planted-by-the-attacker" not in done.stdout
    assert done.returncode == 2, done.stderr
    assert f"refusing to use {cache_dir}: it is owned by {ATTACKER}, not by you" in done.stderr
    assert f"chown root {cache_dir}" in done.stderr


def test_cached_token_path_refuses_a_cache_folder_made_world_writable(
    victim: dict[str, str], cli: CliRun
) -> None:
    cache_dir = Path(victim["KEYFOB_HOME"]) / "cache"
    cache_dir.chmod(0o777)

    done = cli("token", "local", env=victim)

    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert f"chmod 700 {cache_dir}" in done.stderr


def test_tokens_are_never_written_into_a_home_that_links_to_the_attackers_folder(
    attacker: pwd.struct_passwd, scratch: Path, local: LocalProvider, tmp_path: Path, cli: CliRun
) -> None:
    loot = scratch / "loot"
    as_attacker(attacker, "mkdir", "-m", "0777", str(loot))
    home = tmp_path / "home"
    home.symlink_to(loot)
    config = tmp_path / "config.toml"
    config.write_text(local.config_toml())

    done = cli("login", "local", env=victim_env(local, home, config))

    assert done.returncode == 2, done.stderr
    assert f"refusing to use {loot}: it is owned by {ATTACKER}" in done.stderr
    assert not any(loot.rglob("*.sqlite3")) and not any(loot.rglob("secrets.json"))


def test_a_cache_file_that_is_a_link_is_refused_and_its_target_left_alone(
    attacker: pwd.struct_passwd, scratch: Path, victim: dict[str, str], cli: CliRun
) -> None:
    theirs = scratch / "theirs.sqlite3"
    as_attacker(attacker, "sh", "-c", f"umask 0 && : > {theirs}")  # empty, 0666
    cache = Path(victim["KEYFOB_HOME"]) / "cache" / "tokens.sqlite3"
    cache.unlink()
    cache.symlink_to(theirs)

    done = cli("token", "local", env=victim)

    assert done.returncode == 2, done.stderr
    assert f"refusing to use {cache}: it is a symbolic link" in done.stderr
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o666  # not chmodded
    assert theirs.stat().st_size == 0  # no token written into it


def test_a_secrets_file_that_is_a_link_is_refused(
    attacker: pwd.struct_passwd, scratch: Path, victim: dict[str, str], cli: CliRun
) -> None:
    theirs = scratch / "secrets.json"
    as_attacker(attacker, "sh", "-c", f"umask 0 && echo '{{}}' > {theirs}")
    secrets = Path(victim["KEYFOB_HOME"]) / "secrets.json"
    secrets.symlink_to(theirs)

    done = cli("login", "local", env=victim)

    assert done.returncode == 2, done.stderr
    assert f"refusing to use {secrets}: it is a symbolic link" in done.stderr
    assert theirs.read_text() == "{}\n"


def test_a_secrets_file_another_user_owns_is_refused(
    attacker: pwd.struct_passwd, victim: dict[str, str], cli: CliRun
) -> None:
    secrets = Path(victim["KEYFOB_HOME"]) / "secrets.json"
    env = {k: v for k, v in victim.items() if not k.startswith("LOCAL_")}
    secrets.write_text('{"keyfob:local": {"client_id": "the-attackers-app"}}')
    os.chown(secrets, attacker.pw_uid, attacker.pw_gid)  # as if the attacker had made it

    done = cli("logout", "local", env=env)

    assert done.returncode == 2, done.stderr
    assert f"refusing to use {secrets}: it is owned by {ATTACKER}" in done.stderr


@pytest.fixture
def hostile() -> Iterator[LocalProvider]:
    """The attacker's token endpoint: another emulator, which counts what reaches it."""
    with LocalProvider() as provider:
        yield provider


def test_a_config_another_user_planted_never_sends_the_secrets(
    attacker: pwd.struct_passwd,
    scratch: Path,
    hostile: LocalProvider,
    local: LocalProvider,
    tmp_path: Path,
    cli: CliRun,
) -> None:
    # KEYFOB_CONFIG names a file in a sticky world-writable folder; the attacker made it first.
    config = scratch / "keyfob.toml"
    planted = f'[providers.local]\ntoken_url = "{hostile.url}/std/token"\ngrant = "password"\n'
    as_attacker(attacker, "sh", "-c", f"printf '%s' '{planted}' > {config}")
    env = victim_env(local, tmp_path / "home", config)

    done = cli("token", "local", env=env)

    assert hostile.count("/std/token") == 0
    assert done.returncode == 2, done.stderr
    assert f"refusing to use {config}: it is owned by {ATTACKER}" in done.stderr
    assert f"chown root {config}" in done.stderr


def test_a_config_others_may_write_is_refused(
    local: LocalProvider, tmp_path: Path, cli: CliRun
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(local.config_toml())
    config.chmod(0o666)

    done = cli("providers", env=victim_env(local, tmp_path / "home", config))

    assert done.returncode == 2, done.stderr
    assert f"chmod 600 {config}" in done.stderr


# -- the folder chain, by itself -------------------------------------------------


def test_folders_above_may_be_sticky_and_world_writable_like_tmp(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    mine = shared / "mine"
    mine.mkdir(mode=0o700)
    assert _paths.unsafe_folder(str(mine)) is None
    mine.chmod(0o1777)  # but a keyfob folder itself never
    assert _paths.unsafe_folder(str(mine)) == (
        f"{mine}: the folder is writable by others (mode 1777)",
        f"chmod 700 {mine}",
    )


def test_a_group_writable_folder_above_is_refused(tmp_path: Path) -> None:
    above = tmp_path / "above"
    (above / "mine").mkdir(parents=True, mode=0o700)
    above.chmod(0o770)
    assert _paths.unsafe_folder(str(above / "mine")) == (
        f"{above}: the folder is writable by others (mode 0770)",
        f"chmod go-w {above}",
    )


def test_a_link_is_judged_where_it_leads_and_where_it_lies(
    attacker: pwd.struct_passwd, scratch: Path, tmp_path: Path
) -> None:
    # A folder of the victim's own, reached through a folder the attacker owns:
    # the attacker could swap it; the check follows the link one folder at a time.
    theirs = scratch / "theirs"
    as_attacker(attacker, "mkdir", "-m", "0755", str(theirs))
    mine = theirs / "mine"
    subprocess.run(["mkdir", "-m", "0700", str(mine)], check=True)  # root may write anywhere
    link = tmp_path / "home"
    link.symlink_to(mine)
    problem = _paths.unsafe_folder(str(link))
    assert problem is not None and problem[0] == f"{theirs}: it is owned by {ATTACKER}, not by you"
