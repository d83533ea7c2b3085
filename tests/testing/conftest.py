"""Fixtures of the emulator tests: one emulator per module, its faults cleared after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyfob.testing import LocalProvider


@pytest.fixture(scope="module")
def lp() -> Iterator[LocalProvider]:
    provider = LocalProvider().start()
    yield provider
    provider.stop()
    assert provider.errors == []


@pytest.fixture
def own() -> Iterator[LocalProvider]:
    """An emulator of this test's own: iNaturalist's JWTs of one user made within the
    same second are the same string, so revoking one on the shared emulator would
    revoke the next test's too."""
    with LocalProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "lp" in request.fixturenames:
        request.getfixturevalue("lp").clear_faults()


@pytest.fixture(scope="module")
def short() -> Iterator[LocalProvider]:
    """Tokens that expire within a second."""
    with LocalProvider(access_token_lifetime=1, jwt_lifetime=1) as provider:
        yield provider
