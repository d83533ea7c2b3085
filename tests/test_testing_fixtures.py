"""The fixtures keyfob.testing gives users' own test suites (imported in conftest.py,
as a user would)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import keyfob
from keyfob.testing import LocalProvider


def test_keyfob_home_isolates_cache_and_secrets(keyfob_home: Path) -> None:
    assert os.environ["KEYFOB_HOME"] == str(keyfob_home)
    assert os.environ["KEYFOB_KEYRING"] == "file"


def test_keyfob_local_serves_tokens_for_every_builtin(keyfob_local: LocalProvider) -> None:
    for name in ("inaturalist", "twitter", "local"):
        assert keyfob.get_token(name).access_token
    assert keyfob_local.count("/oauth/token") == 1
    assert keyfob_local.count("/oauth2/token") == 1
    assert keyfob_local.count("/std/token") == 1


def test_keyfob_local_goes_around_a_proxy_of_the_machine(
    machine_proxy: str, keyfob_local: LocalProvider
) -> None:
    assert keyfob.get_token("local").access_token
    assert os.environ["no_proxy"] == "localhost,127.0.0.1"


@pytest.fixture
def machine_proxy(monkeypatch: pytest.MonkeyPatch) -> str:
    """A proxy the machine names that answers nobody (nothing listens on its port)."""
    from netparts import free_port

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("http_proxy", url)
    monkeypatch.setenv("no_proxy", "localhost")
    return url
