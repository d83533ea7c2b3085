"""Where keyfob keeps things; cheap enough for the cached-token path.

``KEYFOB_HOME`` puts everything under one folder. Otherwise the user config,
cache and data folders of platformdirs. On Linux those are computed here by
the XDG rules (platformdirs costs 14 ms to import; a test pins that both agree);
elsewhere platformdirs itself answers.
"""

from __future__ import annotations

import errno
import os
import sys

APP = "keyfob"


def _xdg(var: str, default: str) -> str:
    value = os.environ.get(var, "")
    # The XDG spec (and platformdirs) ignore a relative or blank value.
    return os.path.join(value if os.path.isabs(value) else os.path.expanduser(default), APP)


def _platform(kind: str) -> str:
    if sys.platform.startswith("linux"):
        return _xdg(
            {"config": "XDG_CONFIG_HOME", "cache": "XDG_CACHE_HOME", "data": "XDG_DATA_HOME"}[kind],
            {"config": "~/.config", "cache": "~/.cache", "data": "~/.local/share"}[kind],
        )
    import platformdirs

    return str(getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False))


def home() -> str | None:
    return os.environ.get("KEYFOB_HOME") or None


def config_file() -> str:
    explicit = os.environ.get("KEYFOB_CONFIG")
    if explicit:
        return explicit
    base = home()
    return os.path.join(base if base else _platform("config"), "config.toml")


def cache_dir() -> str:
    base = home()
    return os.path.join(base, "cache") if base else _platform("cache")


def data_dir() -> str:
    base = home()
    return base if base else _platform("data")


def cache_file() -> str:
    return os.path.join(cache_dir(), "tokens.sqlite3")


def config_signature() -> str:
    """What the cached-token path compares to know config.toml is unchanged."""
    path = config_file()
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}|none"
    return f"{path}|{st.st_mtime_ns}|{st.st_size}"


def private_dir(path: str) -> None:
    """Make the folder ``path``, and every missing folder above it, 0700 whatever the
    umask (``os.makedirs`` gives its mode to the last folder only)."""
    missing = []
    here = os.path.abspath(path)
    while not os.path.isdir(here):
        missing.append(here)
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    for folder in reversed(missing):
        try:  # noqa: SIM105 - contextlib costs the cached-token path its import
            os.mkdir(folder, 0o700)  # the umask only takes bits away: 0700 stays 0700
        except FileExistsError:
            pass


# -- folders and files another user could change ------------------------------
#
# As OpenSSH does with ~/.ssh: keyfob keeps nothing in, and reads nothing from, a
# place another user could change. A folder another user owns or may write to
# lets that user plant a token (or a SQLite hot journal, rolled back into our
# cache on the next open), swap a file for a link to theirs between a check and
# an open, or read what keyfob writes. So every folder on the way to a keyfob
# folder is checked, links followed one by one (the folder holding a link could
# swap it), and each file is opened without following a link and checked on
# its open descriptor (``fstat``): what is read is what was checked.

#: a problem: (why, the command that fixes it)
Problem = tuple[str, str]

_GROUP_OTHER_WRITE = 0o022
_STICKY = 0o1000


def unsafe_folder(path: str) -> Problem | None:
    """Why keyfob must not use the folder ``path``, or None.

    ``path`` itself (a keyfob folder) must be owned by this user or root and
    writable by no one else. Every folder above it must be owned by this user or
    root, and writable by no one else unless it is sticky (``/tmp``: others
    cannot rename or remove what is not theirs there). A few ``lstat`` calls: cheap
    enough for the cached-token path.
    """
    if not hasattr(os, "getuid"):
        return None  # Windows: no owners and modes to compare here
    me = os.getuid()
    import stat

    todo = os.path.abspath(path).split(os.sep)[::-1]  # popped from the end
    here, hops = os.sep, 0
    problem = _judge_folder(here, os.stat(here), me, last=not any(todo))
    while todo and problem is None:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            here = os.path.dirname(here)
            continue
        there = os.path.join(here, name)
        st = os.lstat(there)
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                return (f"{path}: too many symbolic links", f"use a plain path for {_quote(path)}")
            target = os.readlink(there)
            if os.path.isabs(target):
                here = os.sep
            todo.extend(target.split(os.sep)[::-1])
            continue
        here = there
        if not stat.S_ISDIR(st.st_mode):  # no one else's doing: its folder passed
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), here)
        problem = _judge_folder(here, st, me, last=not any(n not in ("", ".") for n in todo))
    return problem


def _judge_folder(path: str, st: os.stat_result, me: int, *, last: bool) -> Problem | None:
    if st.st_uid not in (me, 0):
        return _not_yours(path, st.st_uid, me)
    if st.st_mode & _GROUP_OTHER_WRITE and (last or not st.st_mode & _STICKY):
        return (
            f"{path}: the folder is writable by others (mode {st.st_mode & 0o7777:04o})",
            f"chmod {'700' if last else 'go-w'} {_quote(path)}",
        )
    return None


def unsafe_file(st: os.stat_result, path: str) -> Problem | None:
    """Why keyfob must not use the file ``path`` whose ``fstat`` is ``st``, or None."""
    if not hasattr(os, "getuid"):
        return None
    import stat

    me = os.getuid()
    if not stat.S_ISREG(st.st_mode):
        return (f"{path}: it is not a plain file", f"move {_quote(path)} aside")
    if st.st_uid not in (me, 0):
        return _not_yours(path, st.st_uid, me)
    if st.st_mode & _GROUP_OTHER_WRITE:
        return (
            f"{path}: the file is writable by others (mode {st.st_mode & 0o7777:04o})",
            f"chmod 600 {_quote(path)}",
        )
    return None


def open_private(path: str, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """Open a keyfob file without following a link, and check it on its descriptor.

    Raises ``OSError`` as ``os.open`` does (``ELOOP``: ``path`` is a link), and
    :class:`~keyfob.errors.ConfigError` (exit 2) for a file another user could
    change or owns.
    """
    return _checked(os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode), path)


def open_checked(path: str) -> int:
    """Open a file the person may keep anywhere (config.toml) for reading, links
    followed, and check what was opened (``fstat``) as :func:`open_private` does."""
    return _checked(os.open(path, os.O_RDONLY | os.O_CLOEXEC), path)


def _checked(fd: int, path: str) -> int:
    """``fd`` if what it opened is the person's alone; else closed, and refused."""
    try:
        problem = unsafe_file(os.fstat(fd), path)
    except BaseException:
        os.close(fd)
        raise
    if problem is not None:
        os.close(fd)
        refuse(problem)
    return fd


def refuse(problem: Problem) -> None:
    """Raise the one-line error (exit 2) for ``problem``."""
    from keyfob.errors import ConfigError

    why, fix = problem
    raise ConfigError(f"refusing to use {why}", hint=f"fix: {fix}")


def refuse_link(path: str, fix: str = "") -> None:
    """Raise the error for a keyfob file that is a symbolic link (``O_NOFOLLOW``)."""
    refuse((f"{path}: it is a symbolic link", fix or f"rm {_quote(path)} (keyfob makes it anew)"))


def check_folder(path: str) -> None:
    """Raise :class:`~keyfob.errors.ConfigError` if ``path`` is not safe (``unsafe_folder``)."""
    problem = unsafe_folder(path)
    if problem is not None:
        refuse(problem)


def _not_yours(path: str, uid: int, me: int) -> Problem:
    import pwd

    def name(u: int) -> str:
        try:
            return pwd.getpwuid(u).pw_name
        except KeyError:
            return str(u)

    return (f"{path}: it is owned by {name(uid)}, not by you", f"chown {name(me)} {_quote(path)}")


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(path)
