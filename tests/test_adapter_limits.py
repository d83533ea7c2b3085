"""Every adapter takes from the rate budget before it sends, and waits out a 429.

Counted at the emulator: a spent budget whose wait passes ``[limits] max_wait``
raises ``RateLimited`` and the server sees nothing; ``rate_limit=False`` turns
it all off; a 429 with ``Retry-After`` on a GET is sent again after the wait,
a POST's 429 is returned as sent.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from keyfob.testing import LocalProvider, worst_window

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


# -- obeying the emulated APIs, counted at the server ---------------------------

X_PATH = "/2/tweets/search/recent"
INAT_PATH = "/v1/users/me"

PACED_WORKER = textwrap.dedent(
    """
    import json, sys
    import requests
    import keyfob
    from keyfob.broker import Broker
    from keyfob.ratelimit import Limiter, MemoryStore

    url, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    broker = Broker(limiter=Limiter(store=MemoryStore())) if mode == "unshared" else Broker()
    auth = keyfob.requests_auth("twitter", broker=broker)
    statuses = [requests.get(url, auth=auth, timeout=30).status_code for _ in range(n)]
    print(json.dumps(statuses))
    """
)


@pytest.fixture
def paced(
    home: Path, no_secret_leaks: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalProvider]:
    """The emulator with short windows: X 3 a second per endpoint, iNaturalist 100 in 3 s;
    keyfob told iNaturalist's 60/minute on the same scale (60 in 3 s)."""
    with LocalProvider(twitter_rate=(3, 1.0), inat_rate=(100, 3.0)) as provider:
        no_secret_leaks.providers.append(provider)
        home.mkdir(parents=True, exist_ok=True)
        text = re.sub(
            r"^\[providers\.inaturalist\]$",
            '[providers.inaturalist]\nrate_limits = ["60/3s"]',
            provider.config_toml(),
            count=1,
            flags=re.M,
        )
        (home / "config.toml").write_text(text)
        for name, value in provider.environ().items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        yield provider
        assert not provider.errors, provider.errors


def test_after_x_says_none_remain_the_next_request_waits_for_the_reset(
    paced: LocalProvider,
) -> None:
    auth = keyfob.requests_auth("twitter")
    url = paced.url + X_PATH
    statuses = [requests.get(url, auth=auth, timeout=10).status_code for _ in range(5)]
    assert statuses == [200] * 5
    # no 429 was ever answered: a 429 would have been sent again, a sixth arrival
    assert paced.count(X_PATH) == 5
    times = paced.arrivals(X_PATH)
    # the fourth waited for the reset X announced: a whole second after the first window began
    assert times[3] >= math.ceil(times[0] + 1.0) - 0.01


def test_without_the_budget_x_answers_code_88() -> None:
    with LocalProvider(twitter_rate=(3, 1.0)) as provider:
        answers = []
        for _ in range(4):
            request = urllib.request.Request(provider.url + X_PATH)
            try:
                urllib.request.urlopen(request, timeout=5).close()
                answers.append(200)
            except urllib.error.HTTPError as err:
                answers.append(err.code)
                err.close()
    assert answers == [401, 401, 401, 429]


def paced_worker(url: str, n: int, mode: str) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", PACED_WORKER, url, str(n), mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    statuses: list[int] = json.loads(done.stdout)
    return statuses


@pytest.mark.parametrize("mode", ["shared", "unshared"])
def test_what_one_worker_learns_another_obeys(paced: LocalProvider, mode: str) -> None:
    url = paced.url + X_PATH
    assert paced_worker(url, 3, mode) == [200, 200, 200]  # the first spends the window
    assert paced_worker(url, 1, mode) == [200]  # the second waits, or is told 429 and retries
    if mode == "shared":
        # learned from the first worker's answers: the second never sent too early
        assert paced.count(X_PATH) == 4
        times = paced.arrivals(X_PATH)
        assert times[3] >= math.ceil(times[0] + 1.0) - 0.01
    else:
        # the same without sharing: the second worker's first try was answered 429
        assert paced.count(X_PATH) == 5


def burst(url: str, n: int, **kw: Any) -> list[int]:
    """``n`` GETs from 8 threads, each with its own session on one shared budget."""
    keyfob.get_token("inaturalist")  # the token first: the burst is about the API

    def one(_: int) -> int:
        with keyfob.session("inaturalist", **kw) as s:
            return s.get(url, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def test_inaturalists_default_keeps_a_burst_under_its_throttle(paced: LocalProvider) -> None:
    url = paced.url + INAT_PATH
    statuses = burst(url, 120)
    assert statuses == [200] * 120
    times = paced.arrivals(INAT_PATH)
    assert len(times) == 120  # not one 429 (each would have been sent again)
    assert worst_window(times, 3.0) <= 60
    assert worst_window(times, 3.0) >= 54  # the budget is used, not far too strict


def test_without_a_budget_the_same_burst_is_throttled(paced: LocalProvider) -> None:
    url = paced.url + INAT_PATH
    statuses = burst(url, 120, rate_limit=False)
    assert statuses.count(429) == 20  # 100 in the window, no retry without the budget
