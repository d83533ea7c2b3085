"""`keyfob demo`: the life of a token, offline, in a throw-away folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import KEYFOB, Leaks


def test_demo_runs_the_whole_life_of_a_token_offline_without_touching_the_users_files(
    home: Path, tmp_path: Path, no_secret_leaks: Leaks
) -> None:
    env = dict(
        os.environ,
        HOME=str(tmp_path / "user"),
        XDG_CACHE_HOME=str(tmp_path / "xc"),
        XDG_CONFIG_HOME=str(tmp_path / "xcfg"),
        XDG_DATA_HOME=str(tmp_path / "xd"),
    )
    done = subprocess.run(
        [KEYFOB, "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    no_secret_leaks.add("demo stdout", done.stdout)
    no_secret_leaks.add("demo stderr", done.stderr)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for step in (
        "log in to iNaturalist",
        "answered from the cache",
        "private_geojson",
        "refresh now",
        "after 1 refused attempt",
        "TreeSnap",
        "status",
        "log out",
    ):
        assert step in out, step
    # the cached token in new processes made no request: still one of each
    assert out.count("/oauth/token x1, /users/api_token x1") >= 2
    assert "/web-services/v1/refresh-tokens x1" in out
    # the burst was paced: a visible wait, and the server never over
    assert "waited" in out and "for the budget" in out
    assert "saw 12 calls, at most 6 in any 1 s: never over its 10, never a 429" in out
    assert not home.exists()  # the user's KEYFOB_HOME was never touched
    for folder in ("xc", "xcfg", "xd", "user"):
        assert not (tmp_path / folder).exists()
