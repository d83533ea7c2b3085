"""The requests and httpx adapters, one contract run against each.

Every adapter sets ``Authorization``; after the provider drops the token
behind keyfob's back, the next call's 401 makes keyfob get a new token (a
refresh_token grant, the password grant's refresh token) and the call
succeeds; a 401 that keeps coming is returned after one retry, not looped;
``repr`` shows no secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests

import keyfob
from keyfob.testing import DEMO_CLIENT_SECRET, DEMO_PASSWORD, DEMO_USERNAME, LocalProvider


@dataclass
class Answer:
    status: int
    body: Any
    authorization: str  # the header of the request that got this answer


def via_requests_auth(url: str, **kw: Any) -> Answer:
    r = requests.get(url, auth=keyfob.requests_auth("local", **kw), timeout=10)
    return Answer(r.status_code, r.json(), r.request.headers["Authorization"])


def via_session(url: str, **kw: Any) -> Answer:
    with keyfob.session("local", **kw) as s:
        r = s.get(url, timeout=10)
    return Answer(r.status_code, r.json(), r.request.headers["Authorization"])


def via_httpx_client(url: str, **kw: Any) -> Answer:
    with httpx.Client(auth=keyfob.httpx_auth("local", **kw), timeout=10) as client:
        r = client.get(url)
    return Answer(r.status_code, r.json(), r.request.headers["Authorization"])


def via_httpx_async_client(url: str, **kw: Any) -> Answer:
    async def call() -> Answer:
        async with httpx.AsyncClient(auth=keyfob.httpx_auth("local", **kw), timeout=10) as client:
            r = await client.get(url)
        return Answer(r.status_code, r.json(), r.request.headers["Authorization"])

    return asyncio.run(call())


ADAPTERS: dict[str, Callable[..., Answer]] = {
    "requests_auth": via_requests_auth,
    "session": via_session,
    "httpx.Client": via_httpx_client,
    "httpx.AsyncClient": via_httpx_async_client,
}


@pytest.fixture(params=sorted(ADAPTERS))
def call(request: pytest.FixtureRequest, configured: LocalProvider) -> Callable[..., Answer]:
    adapter = ADAPTERS[request.param]
    url = f"{configured.url}/std/api/me"
    return lambda **kw: adapter(url, **kw)


def test_adapter_sets_the_authorization_header(
    call: Callable[..., Answer], configured: LocalProvider
) -> None:
    answer = call()

    assert answer.status == 200
    assert answer.body["sub"] == DEMO_USERNAME
    assert answer.authorization == keyfob.get_token("local").authorization
    assert configured.count("/std/token") == 1


def test_adapter_reuses_the_token_across_calls(
    call: Callable[..., Answer], configured: LocalProvider
) -> None:
    first, second = call(), call()

    assert first.status == second.status == 200
    assert first.authorization == second.authorization
    assert configured.count("/std/token") == 1


def test_revoked_token_gets_a_401_then_a_refreshed_token_and_the_call_succeeds(
    call: Callable[..., Answer], configured: LocalProvider
) -> None:
    assert call().status == 200
    old = keyfob.get_token("local")
    configured.revoke(old.access_token)  # behind keyfob's back; the grant lives on

    answer = call()

    assert answer.status == 200
    assert configured.count("/std/api/me") == 3  # ok, 401, retried ok
    assert configured.count("/std/token") == 2
    new = keyfob.get_token("local")
    assert new.access_token != old.access_token
    assert answer.authorization == new.authorization
    assert configured.is_active(new.access_token)
    # The refresh_token grant was used: the server rotated the old refresh token.
    assert old.refresh_token is not None and new.refresh_token is not None
    assert not configured.is_active(old.refresh_token)
    assert configured.is_active(new.refresh_token)


def test_a_401_that_keeps_coming_is_returned_after_one_retry(
    call: Callable[..., Answer], configured: LocalProvider
) -> None:
    assert call().status == 200
    configured.fail("/std/api/me", 401, times=10)

    answer = call()

    assert answer.status == 401
    assert configured.count("/std/api/me") == 3  # ok, then 401 and its single retry
    assert configured.count("/std/token") == 2  # one new token for the one retry


def test_adapter_with_explicit_credentials_uses_them(
    call: Callable[..., Answer], configured: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_PASSWORD", "not-the-password-0123")
    answer = call(password=DEMO_PASSWORD)

    assert answer.status == 200
    assert answer.body["sub"] == DEMO_USERNAME


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize(
    "make",
    [keyfob.requests_auth, keyfob.httpx_auth, lambda *a, **kw: keyfob.session(*a, **kw).auth],
    ids=["requests_auth", "httpx_auth", "session"],
)
def test_adapter_repr_shows_no_secret(make: Callable[..., Any], no_secret_leaks) -> None:
    auth = make("local", password=DEMO_PASSWORD, client_secret=DEMO_CLIENT_SECRET)
    token = keyfob.get_token("local", password=DEMO_PASSWORD, client_secret=DEMO_CLIENT_SECRET)
    text = repr(auth)
    no_secret_leaks.add("repr of an adapter", text)
    assert "local" in text
    for secret in (DEMO_PASSWORD, DEMO_CLIENT_SECRET, token.access_token, token.refresh_token):
        assert secret and secret not in text
