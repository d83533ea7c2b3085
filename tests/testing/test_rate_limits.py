"""The emulated APIs limit their callers as the real ones do, and the shell counts arrivals."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from keyfob.testing import LocalProvider
from testing.client import call, inat_jwt, std_password, tw_token


@pytest.fixture
def tight() -> Iterator[LocalProvider]:
    """Limits small enough to reach, windows short enough to wait out."""
    with LocalProvider(inat_rate=(5, 1.0), twitter_rate=(3, 1.0), std_rate=(3, 1.0)) as p:
        yield p


def test_arrivals_are_counted_per_path_with_their_times(tight: LocalProvider) -> None:
    before = time.time()
    for _ in range(3):
        call("GET", tight.url + "/std/api/me")
    call("GET", tight.url + "/v1/users/me")
    after = time.time()
    times = tight.arrivals("/std/api/me")
    assert len(times) == 3 == tight.count("/std/api/me")
    assert times == sorted(times) and before <= times[0] and times[-1] <= after
    assert len(tight.arrivals("/v1/users/me")) == 1
    assert tight.arrivals("/nowhere") == []
    tight.reset_counts()
    assert tight.arrivals("/std/api/me") == []


def test_the_accept_queue_takes_a_fleet_at_once() -> None:
    from keyfob.testing.server import _Server

    assert _Server.request_queue_size >= 128


def test_inaturalist_answers_429_past_its_limit_in_any_window(tight: LocalProvider) -> None:
    jwt = inat_jwt(tight)
    statuses = [call("GET", tight.url + "/v1/users/me", bearer=jwt).status for _ in range(5)]
    statuses.append(call("GET", tight.url + "/v1/observations/42", bearer=jwt).status)
    assert statuses == [200] * 5 + [429]  # every /v1 route shares the window
    spent = call("GET", tight.url + "/v1/users/me", bearer=jwt)
    assert spent.status == 429
    assert spent.json() == {"error": "Too Many Requests", "status": 429}
    assert spent.headers.get("Retry-After") is None  # iNaturalist does not say until when
    time.sleep(1.05)
    assert call("GET", tight.url + "/v1/users/me", bearer=jwt).status == 200


def test_inaturalist_default_is_100_a_minute() -> None:
    with LocalProvider() as p:
        statuses = [call("GET", p.url + "/v1/users/me").status for _ in range(101)]
    assert statuses[:100] == [401] * 100 and statuses[100] == 429


def test_x_says_what_is_left_per_endpoint_and_answers_code_88_when_spent(
    tight: LocalProvider,
) -> None:
    token = tw_token(tight).json()["access_token"]
    answers = [call("GET", tight.url + "/2/tweets/search/recent", bearer=token) for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-rate-limit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-rate-limit-limit"] for a in answers} == {"3"}
    resets = {int(a.headers["x-rate-limit-reset"]) for a in answers}
    assert len(resets) == 1  # one window, its end in whole epoch seconds
    reset = resets.pop()
    assert time.time() < reset <= math.ceil(time.time() + 1.0)
    assert answers[3].json() == {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
    # the token endpoint is not the API: it is not counted in that window
    assert tw_token(tight).status == 200
    time.sleep(max(0.0, reset - time.time()) + 0.01)
    again = call("GET", tight.url + "/2/tweets/search/recent", bearer=token)
    assert again.status == 200 and again.headers["x-rate-limit-remaining"] == "2"


def test_the_plain_api_sends_the_ietf_headers(tight: LocalProvider) -> None:
    token = std_password(tight)["access_token"]
    answers = [call("GET", tight.url + "/std/api/me", bearer=token) for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"3"}
    assert all(0 <= int(a.headers["RateLimit-Reset"]) <= 1 for a in answers)
    assert answers[3].headers["Retry-After"] == answers[3].headers["RateLimit-Reset"]
    # a 401 counts too: the limit is on requests, not on successes
    assert call("GET", tight.url + "/std/api/me").headers["RateLimit-Remaining"] == "0"


def test_a_rate_must_allow_something() -> None:
    with pytest.raises(ValueError):
        LocalProvider(inat_rate=(0, 60.0))
    with pytest.raises(ValueError):
        LocalProvider(twitter_rate=(1, 0.0))
