"""The rate budget: static windows shared by threads and processes, learned blocks,
the header parsers, and the config that declares limits.

The cross-process tests count at a server: workers start behind a barrier (a
start file, then a thread barrier), take from the budget and send; the
server records each arrival's time, and no window of the limit's length may
hold more than the limit, while at least 90 % of the allowed rate is used. The
same test with sharing switched off (``Limiter(store=MemoryStore())``, an
argument, not an environment variable) sees the limit exceeded.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import keyfob
from keyfob import config, ratelimit
from keyfob.errors import ConfigError, RateLimited
from keyfob.provider import registry
from keyfob.ratelimit import CLEAR_FOR, Limiter, MemoryStore, learn, parse_limit
from keyfob.testing import LocalProvider, worst_window

NOW = 1_700_000_000.0


# -- counting at the server ----------------------------------------------------


def used_share(arrivals: list[float], count: int, seconds: float) -> float:
    """How much of the allowed rate was used after the first full burst."""
    times = sorted(arrivals)
    span = times[-1] - times[0]
    return (len(times) - count) / (span / seconds * count)


#: where the race's requests go, on the emulator, which notes when each one arrived
RACE_PATH = "/race"


@pytest.fixture
def counter() -> Iterator[LocalProvider]:
    with LocalProvider() as provider:
        yield provider


WORKER = textwrap.dedent(
    """
    import json, sys, threading, time, urllib.error, urllib.request
    from pathlib import Path
    from keyfob.ratelimit import Limiter, MemoryStore

    folder, url, limit, threads, per, ready, start, mode = sys.argv[1:9]
    cache_url = sys.argv[9] if len(sys.argv) > 9 else None
    if mode == "unshared":
        limiter = Limiter(store=MemoryStore())
    else:
        limiter = Limiter(folder=folder, cache_url=cache_url)
    budget = limiter.budget("api", None, [limit])
    budget.left(); budget._ensure()  # opens the file or connection before the race, taking nothing
    barrier = threading.Barrier(int(threads))
    errors = []

    def work():
        try:
            barrier.wait()
            for _ in range(int(per)):
                budget.take(max_wait=30)
                try:
                    urllib.request.urlopen(url, timeout=30).close()
                except urllib.error.HTTPError as err:  # the emulator knows no such path: 404
                    err.close()
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    Path(ready).touch()
    while not Path(start).exists():
        time.sleep(0.005)
    pool = [threading.Thread(target=work) for _ in range(int(threads))]
    for t in pool: t.start()
    for t in pool: t.join()
    print(json.dumps({"errors": errors}))
    """
)


def race(
    tmp_path: Path,
    url: str,
    limit: str,
    *,
    processes: int,
    threads: int,
    per: int,
    mode: str = "shared",
    folders: list[Path] | None = None,
    cache_url: str | None = None,
) -> None:
    """Start the workers, release them at once, wait for them all."""
    start = tmp_path / "start"
    ready = [tmp_path / f"ready{i}" for i in range(processes)]
    workers = []
    for i in range(processes):
        folder = (folders[i] if folders else tmp_path / "cache") if mode != "unshared" else tmp_path
        args = [str(folder), url, limit, str(threads), str(per), str(ready[i]), str(start), mode]
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, *args, *([cache_url] if cache_url else [])],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, "the workers never got ready"
            assert all(w.poll() is None for w in workers), "a worker died before the start"
            time.sleep(0.01)
        start.touch()
        for w in workers:
            out, err = w.communicate(timeout=90)
            assert w.returncode == 0, err[-2000:]
            assert json.loads(out)["errors"] == []
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()


LIMIT, COUNT, SECONDS = "16/2s", 16, 2.0


@pytest.mark.slow
def test_processes_and_threads_share_one_budget_counted_at_the_server(
    tmp_path: Path, counter: LocalProvider
) -> None:
    race(tmp_path, counter.url + RACE_PATH, LIMIT, processes=8, threads=4, per=2)
    arrivals = counter.arrivals(RACE_PATH)
    assert len(arrivals) == 64
    assert worst_window(arrivals, SECONDS) <= COUNT
    assert used_share(arrivals, COUNT, SECONDS) >= 0.9


def test_without_sharing_the_same_fleet_goes_over_the_limit(
    tmp_path: Path, counter: LocalProvider
) -> None:
    race(tmp_path, counter.url + RACE_PATH, LIMIT, processes=8, threads=4, per=2, mode="unshared")
    assert worst_window(counter.arrivals(RACE_PATH), SECONDS) > COUNT


# -- one budget, in process ----------------------------------------------------


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_spent_budget_waits_for_its_window_then_takes() -> None:
    clock = Clock()
    budget = Limiter(store=MemoryStore(clock), clock=clock).budget("api", None, ["5/2s"])
    assert [budget.take(sleep=clock.sleep) for _ in range(5)] == [0.0] * 5
    waited = budget.take(sleep=clock.sleep)
    assert 2.0 < waited <= 2.0 + ratelimit.margin(2.0) + 0.01
    assert {str(lim): n for lim, n in budget.left()} == {"5/2s": 4}  # the first five are out


def test_all_limits_hold_at_once() -> None:
    clock = Clock()
    budget = Limiter(store=MemoryStore(clock), clock=clock).budget("api", None, ["3/1s", "4/1m"])
    taken = 0
    while clock.now < NOW + 30:
        if budget.try_take() == 0.0:
            taken += 1
        clock.now += 0.1
    assert taken == 4


def test_a_wait_past_max_wait_raises_before_anything_is_taken() -> None:
    clock = Clock()
    budget = Limiter(store=MemoryStore(clock), clock=clock, max_wait=1).budget(
        "api", None, ["2/10s"]
    )
    budget.take(sleep=clock.sleep)
    budget.take(sleep=clock.sleep)
    with pytest.raises(RateLimited) as caught:
        budget.take(sleep=clock.sleep)
    assert caught.value.exit_code == 5
    assert NOW + 10 <= caught.value.retry_at <= NOW + 11
    assert clock.now == NOW  # never slept
    assert budget.left()[0][1] == 0


def test_a_block_learned_by_one_worker_is_obeyed_by_another(tmp_path: Path) -> None:
    first = Limiter(folder=str(tmp_path)).budget("twitter", None, [])
    second = Limiter(folder=str(tmp_path)).budget("twitter", None, [])
    reset = time.time() + 30
    headers = {
        "x-rate-limit-limit": "15",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(int(reset)),
    }
    first.learn("GET", "/2/users/me", 200, headers)
    assert second.try_take("GET /2/users/me") > 25
    assert second.try_take("GET /2/tweets") == 0.0  # another endpoint is not blocked
    with pytest.raises(RateLimited):
        second.take("GET /2/users/me", max_wait=1)


def test_the_budget_file_is_private_and_holds_no_secret(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    budget = Limiter(folder=str(folder)).budget("inaturalist", "me", ["60/minute"])
    budget.take()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("ratelimit.sqlite3", "ratelimit.sqlite3.lock"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600


def test_a_damaged_budget_file_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "ratelimit.sqlite3").write_bytes(b"this is not a database" * 100)
    budget = Limiter(folder=str(tmp_path)).budget("api", None, ["2/1m"])
    assert budget.try_take() == 0.0
    assert (tmp_path / "ratelimit.sqlite3.damaged").exists()


def test_an_unwritable_folder_keeps_the_limit_in_process(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    warnings: list[str] = []
    try:
        budget = Limiter(folder=str(folder / "cache"), on_warning=warnings.append).budget(
            "api", None, ["2/1m"]
        )
        assert [budget.try_take() == 0.0 for _ in range(3)] == [True, True, False]
    finally:
        folder.chmod(0o700)
    if os.geteuid() != 0:
        assert warnings and "per process" in warnings[0]


def test_a_clock_that_goes_back_loses_no_request(tmp_path: Path) -> None:
    clock = Clock()
    budget = Limiter(folder=str(tmp_path), clock=clock).budget("api", None, ["3/10s"])
    for _ in range(3):
        assert budget.try_take() == 0.0
    clock.now -= 3600  # an hour back: what was taken is still counted, from now
    wait = budget.try_take()
    assert 0 < wait <= 10 + ratelimit.margin(10) + 0.01


# -- the headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "endpoint", "everything"),
    [
        (429, {"Retry-After": "30"}, None, NOW + 30),
        (503, {"Retry-After": formatdate(NOW + 90, usegmt=True)}, None, NOW + 90),
        (200, {"Retry-After": "30"}, None, None),  # only on 429 and 503
        (
            200,
            {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(NOW) + 600)},
            NOW + 600,
            None,
        ),
        (
            200,
            {"x-rate-limit-remaining": "3", "x-rate-limit-reset": str(int(NOW) + 600)},
            None,
            None,
        ),
        (
            200,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 60)},
            NOW + 60,
            None,
        ),
        (200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "45"}, NOW + 45, None),
        (200, {"RateLimit": "limit=10, remaining=0, reset=20"}, NOW + 20, None),
        (200, {"RateLimit": '"default";r=0;t=15'}, NOW + 15, None),
        (
            429,
            {
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(NOW) + 60),
                "Retry-After": "10",
            },
            NOW + 60,
            None,
        ),
        (
            200,
            {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(NOW) - 60)},
            None,
            None,
        ),  # past
        (429, {"Retry-After": "-5"}, None, None),
        (429, {"Retry-After": "soon"}, None, None),
        (429, {"Retry-After": "nan"}, None, None),
        (200, {"x-rate-limit-remaining": "zero", "x-rate-limit-reset": "later"}, None, None),
    ],
)
def test_what_the_headers_teach(
    status: int, headers: dict[str, str], endpoint: float | None, everything: float | None
) -> None:
    lesson = learn(status, headers, NOW)
    assert (lesson.endpoint, lesson.everything) == (endpoint, everything)


def test_a_reset_further_than_a_day_is_capped() -> None:
    lesson = learn(429, {"Retry-After": str(10**9)}, NOW)
    assert lesson.everything == NOW + 86400 and lesson.capped


header_values = st.one_of(
    st.text(max_size=40),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(0, 2**33).map(lambda t: formatdate(t, usegmt=True)),
)
HEADER_NAMES = [
    "Retry-After",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit",
]


@given(
    status=st.sampled_from([200, 429, 503]),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values),
)
def test_no_header_crashes_or_asks_for_more_than_a_day(
    status: int, headers: dict[str, str]
) -> None:
    lesson = learn(status, headers, NOW)
    for until in (lesson.endpoint, lesson.everything):
        assert until is None or NOW < until <= NOW + 86400


# -- limits in config --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [
        ("60/minute", 60, 60),
        ("10000/day", 10000, 86400),
        ("20/10s", 20, 10),
        ("5/2s", 5, 2),
        ("1/h", 1, 3600),
    ],
)
def test_limits_parse(text: str, count: int, seconds: float) -> None:
    lim = parse_limit(text)
    assert (lim.count, lim.seconds) == (count, seconds)


@pytest.mark.parametrize(
    "text", ["60", "60/fortnight", "0/minute", "-1/s", "x/s", "1/0s", "1/30d", 60]
)
def test_bad_limits_do_not_parse(text: object) -> None:
    with pytest.raises(ValueError):
        parse_limit(text)


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    monkeypatch.setenv("KEYFOB_CONFIG", str(path))


def test_inaturalist_is_limited_by_default_and_config_changes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, monkeypatch, "")
    assert registry(config.load())["inaturalist"].rate_limits == ("60/minute", "10000/day")
    write_config(
        tmp_path,
        monkeypatch,
        "[providers.inaturalist]\nrate_limits = []\n"
        '[providers.twitter]\nrate_limits = ["20/10s"]\n',
    )
    known = registry(config.load())
    assert known["inaturalist"].rate_limits == ()
    assert known["twitter"].rate_limits == ("20/10s",)


def test_a_rate_limit_that_does_not_parse_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        tmp_path, monkeypatch, '[providers.inaturalist]\nrate_limits = ["60/minute", "lots/day"]\n'
    )
    with pytest.raises(ConfigError, match=r"rate_limits.*'lots/day'"):
        registry(config.load())
    write_config(tmp_path, monkeypatch, '[providers.inaturalist]\nrate_limits = "60/minute"\n')
    with pytest.raises(ConfigError, match="rate_limits must be a list"):
        registry(config.load())


def test_the_limits_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_config(tmp_path, monkeypatch, "[limits]\nmax_wait = 5\nretries = 1\nmax_wiat = 3\n")
    settings = config.load()
    assert (settings.limits.max_wait, settings.limits.retries) == (5.0, 1)
    assert "did you mean `max_wait`" in caplog.text
    write_config(tmp_path, monkeypatch, "[limits]\nmax_wait = -1\n")
    with pytest.raises(ConfigError, match=r"\[limits\] max_wait"):
        config.load()


def test_keyfob_wait_is_public() -> None:
    assert keyfob.wait is not None and keyfob.RateLimited.exit_code == 5


def test_a_block_learned_elsewhere_is_obeyed_within_clear_for_even_after_a_clear_look(
    tmp_path: Path,
) -> None:
    first = Limiter(folder=str(tmp_path)).budget("twitter", None, [])
    second = Limiter(folder=str(tmp_path)).budget("twitter", None, [])
    assert second.try_take("GET /2/users/me") == 0.0  # seen clear: trusted for CLEAR_FOR
    first.learn("GET", "/2/users/me", 429, {"retry-after": "30"})

    time.sleep(CLEAR_FOR * 1.5)  # not a timing assertion: past the trust, it asks again

    assert second.try_take("GET /2/users/me") > 25


def test_keyfob_wait_fast_path_never_takes_from_a_signing_providers_budget_of_no_user(
    home: Path,
) -> None:
    # Without a user, an OAuth 1.0a provider's budget is the provider's own; once one
    # logs in, the broker and the adapters take from that user's. The fast path keys
    # by the command line's --account alone: it must not answer from the first.
    from keyfob import _budgetfile, _paths
    from keyfob.broker import Broker

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        '[providers.twitter-oauth1]\nrate_limits = ["5/minute"]\n'
        '[providers.inaturalist]\nrate_limits = ["5/minute"]\n'
    )
    environ = {k: v for k, v in os.environ.items() if k.startswith("KEYFOB_")}
    broker = Broker(environ=environ)
    for name in ("twitter-oauth1", "inaturalist"):
        assert broker.budget(name).take() == 0.0  # the full path, as `keyfob wait NAME`

    def fast(name: str) -> bool | None:
        now_ms = int(time.time() * 1000)
        key = ratelimit.budget_key(name, None)
        return _budgetfile.take(_paths.cache_dir(), key, _paths.config_signature(), now_ms)

    assert fast("inaturalist") is True
    assert fast("twitter-oauth1") is None
