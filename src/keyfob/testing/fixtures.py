"""pytest fixtures for your own tests, on keyfob's local provider.

In your ``conftest.py``::

    from keyfob.testing.fixtures import keyfob_home, keyfob_local  # noqa: F401

    def test_my_client(keyfob_local):
        token = keyfob.get_token("local")      # the plain OAuth2 server, demo user
        ...

``keyfob_home`` gives keyfob a throw-away ``KEYFOB_HOME`` (its own config,
cache and 0600 secrets file, never your keyring); ``keyfob_local`` starts the
local provider, points every built-in provider at it in that config.toml, sets
the demo credentials in the environment, and adds 127.0.0.1 to ``NO_PROXY``
(a proxy of your machine could not reach the provider).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keyfob import wiring
from keyfob.testing.server import LocalProvider

_VARS = ("KEYFOB_", "INAT_", "TWITTER_", "TREESNAP_", "LOCAL_", "GITHUB_", "GH_TOKEN")


@pytest.fixture
def keyfob_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import os

    for name in list(os.environ):
        if name.startswith(_VARS):
            monkeypatch.delenv(name)
    home = tmp_path / "keyfob-home"
    home.mkdir()
    monkeypatch.setenv("KEYFOB_HOME", str(home))
    monkeypatch.setenv("KEYFOB_KEYRING", "file")
    wiring.reset()
    yield home
    wiring.reset()


@pytest.fixture
def keyfob_local(keyfob_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalProvider]:
    import os

    with LocalProvider() as provider:
        (keyfob_home / "config.toml").write_text(provider.config_toml())
        for name, value in provider.environ().items():
            monkeypatch.setenv(name, value)
        # A proxy of the machine cannot reach this provider: 127.0.0.1 goes around it.
        for name in ("no_proxy", "NO_PROXY"):
            if os.environ.get(name) or name == "NO_PROXY":
                before = os.environ.get(name, "").strip(", ")
                monkeypatch.setenv(name, f"{before},127.0.0.1" if before else "127.0.0.1")
        wiring.reset()
        yield provider
