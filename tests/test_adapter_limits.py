"""Every adapter takes from the rate budget before it sends, and waits out a 429.

Counted at the emulator: a spent budget whose wait passes ``[limits] max_wait``
raises ``RateLimited`` and the server sees nothing; ``rate_limit=False`` turns
it all off; a 429 with ``Retry-After`` on a GET is sent again after the wait,
a POST's 429 is returned as sent.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

import keyfob
from keyfob import wiring
from keyfob.adapters import _scope
from keyfob.testing import LocalProvider

PATH = "/std/api/me"


def via_requests_auth(url: str, method: str, **kw: Any) -> int:
    r = requests.request(method, url, auth=keyfob.requests_auth("local", **kw), timeout=10)
    return r.status_code


def via_session(url: str, method: str, **kw: Any) -> int:
    with keyfob.session("local", **kw) as s:
        return s.request(method, url, timeout=10).status_code


def via_httpx_client(url: str, method: str, **kw: Any) -> int:
    with httpx.Client(auth=keyfob.httpx_auth("local", **kw), timeout=10) as client:
        return client.request(method, url).status_code


def via_httpx_async_client(url: str, method: str, **kw: Any) -> int:
    async def call() -> int:
        async with httpx.AsyncClient(auth=keyfob.httpx_auth("local", **kw), timeout=10) as c:
            return (await c.request(method, url)).status_code

    return asyncio.run(call())


ADAPTERS: dict[str, Callable[..., int]] = {
    "requests_auth": via_requests_auth,
    "session": via_session,
    "httpx.Client": via_httpx_client,
    "httpx.AsyncClient": via_httpx_async_client,
}


@pytest.fixture
def limited(home: Path, configured: LocalProvider) -> LocalProvider:
    """The local provider limited to 3 requests in 30 s; waits longer than 1 s are errors."""
    path = home / "config.toml"
    text = re.sub(
        r"^\[providers\.local\]$",
        '[providers.local]\nrate_limits = ["3/30s"]',
        path.read_text(),
        count=1,
        flags=re.M,
    )
    path.write_text(text + "\n[limits]\nmax_wait = 1\nretries = 2\n")
    wiring.reset()
    return configured


@pytest.fixture(params=sorted(ADAPTERS))
def call(request: pytest.FixtureRequest, limited: LocalProvider) -> Callable[..., int]:
    adapter = ADAPTERS[request.param]
    return lambda method="GET", **kw: adapter(f"{limited.url}{PATH}", method, **kw)


def test_a_spent_budget_raises_before_anything_is_sent(
    call: Callable[..., int], limited: LocalProvider
) -> None:
    assert [call() for _ in range(3)] == [200, 200, 200]
    with pytest.raises(keyfob.RateLimited) as caught:
        call()
    assert caught.value.retry_at > 0
    assert limited.count(PATH) == 3


def test_rate_limit_false_turns_it_off(call: Callable[..., int], limited: LocalProvider) -> None:
    assert [call(rate_limit=False) for _ in range(5)] == [200] * 5
    assert limited.count(PATH) == 5


def test_a_429_on_a_get_is_sent_again_after_retry_after(
    call: Callable[..., int], limited: LocalProvider
) -> None:
    limited.fail(PATH, 429, times=1, retry_after="0.3")
    assert call() == 200
    assert limited.count(PATH) == 2


def test_a_429_on_a_post_is_returned_as_sent(
    call: Callable[..., int], limited: LocalProvider
) -> None:
    limited.fail(PATH, 429, times=1, retry_after="0.3")
    assert call("POST") == 429
    assert limited.count(PATH) == 1


def test_a_429_that_cannot_be_waited_out_is_returned(
    call: Callable[..., int], limited: LocalProvider
) -> None:
    limited.fail(PATH, 503, times=1, retry_after="120")
    assert call() == 503
    assert limited.count(PATH) == 1


def test_keyfob_wait_shares_the_budget_and_exits_5_when_spent(
    limited: LocalProvider, cli: Any
) -> None:
    # the first answers from the full command line (it records the limits), the
    # next from the budget file alone; all three count in one budget
    assert [cli("wait", "local").returncode for _ in range(3)] == [0, 0, 0]
    spent = cli("wait", "local", "--max-wait", "0")
    assert spent.returncode == 5
    assert "rate budget" in spent.stderr and "Traceback" not in spent.stderr
    with pytest.raises(keyfob.RateLimited):
        keyfob.wait("local", max_wait=0)
    assert limited.count(PATH) == 0
    status = cli("status")
    assert "0 of 3/30s left" in status.stdout


def test_keyfob_wait_and_an_adapter_take_from_one_budget(limited: LocalProvider, cli: Any) -> None:
    assert cli("wait", "local").returncode == 0
    assert keyfob.wait("local") == 0.0
    assert via_requests_auth(f"{limited.url}{PATH}", "GET") == 200
    with pytest.raises(keyfob.RateLimited):
        via_httpx_client(f"{limited.url}{PATH}", "GET")
    assert limited.count(PATH) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z0-9.-]{1,12}(:[0-9]{1,5})?", fullmatch=True),
    st.from_regex(r"(/[A-Za-z0-9._~%-]*)*", fullmatch=True),
    st.from_regex(r"(\?[A-Za-z0-9=&/?%-]*)?(#[A-Za-z0-9/?=-]*)?", fullmatch=True),
)
def test_the_scope_of_a_url_is_its_path_as_urlsplit_reads_it(
    scheme: str, host: str, path: str, rest: str
) -> None:
    url = f"{scheme}://{host}{path}{rest}"
    assert _scope("get", url) == f"GET {urllib.parse.urlsplit(url).path or '/'}"
