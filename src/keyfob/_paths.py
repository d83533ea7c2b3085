"""Where keyfob keeps things; cheap enough for the cached-token path.

``KEYFOB_HOME`` puts everything under one folder. Otherwise the user config,
cache and data folders of platformdirs. On Linux those are computed here by
the XDG rules (platformdirs costs 14 ms to import; a test pins that both agree);
elsewhere platformdirs itself answers.
"""

from __future__ import annotations

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
