"""The fixtures keyfob.testing gives users' own test suites (imported in conftest.py,
as a user would)."""

from __future__ import annotations

import os
from pathlib import Path

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
