"""What only the async driver (``Transport.arun``/``asend``) promises.

It never blocks the event loop: a ticker task keeps ticking while a request
waits on a slow endpoint or the driver sleeps through a backoff. Its client
belongs to one event loop. Effects that need a person go to an
``AsyncPerson``, awaited. (What both drivers share is in test_transport.py,
run under each.)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from keyfob.config import HttpSettings
from keyfob.errors import ConfigError
from keyfob.flow import Flow, HttpRequest, HttpResponse, ShowCode, Sleep
from keyfob.testing import LocalProvider
from keyfob.transport import Transport

PATH = "/std/.well-known/openid-configuration"  # answers GET 200 without credentials
T = TypeVar("T")


def get(local: LocalProvider) -> HttpRequest:
    return HttpRequest("GET", local.url + PATH, "the discovery document")


def transport(**settings: Any) -> Transport:
    base = {"connect_timeout": 2.0, "timeout": 5.0, "retries": 3, "max_wait": 60.0}
    base.update(settings)
    return Transport(HttpSettings(**base))


def on_a_loop(t: Transport, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in a new event loop, and close the transport's client of that loop."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await t.aclose()

    return asyncio.run(main())


async def ticking(work: Awaitable[T]) -> tuple[T, int, float]:
    """``work``'s result, how often a 10 ms ticker ticked meanwhile, and how long it took."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        result = await work
    finally:
        done.set()
        await task
    return result, ticks, time.monotonic() - started


# --------------------------------------------------------------------------- never blocks the loop
def test_the_loop_keeps_running_while_the_endpoint_is_slow(local: LocalProvider) -> None:
    local.delay(PATH, 0.5, times=1)
    t = transport()
    response, ticks, took = on_a_loop(t, lambda: ticking(t.asend(get(local))))
    assert response.status == 200
    assert took >= 0.45
    # A blocked loop ticks once or twice in 0.5 s; a free one about 50 times.
    assert ticks >= 20


def test_the_loop_keeps_running_through_a_retry_after_backoff(local: LocalProvider) -> None:
    local.fail(PATH, 503, times=1, retry_after="1")
    t = transport()  # the real asyncio.sleep: nothing injected
    response, ticks, took = on_a_loop(t, lambda: ticking(t.asend(get(local))))
    assert response.status == 200
    assert local.count(PATH) == 2
    assert took >= 0.95
    assert ticks >= 40


def test_the_loop_keeps_running_while_a_flow_sleeps(local: LocalProvider) -> None:
    def flow() -> Flow[int]:
        yield Sleep(0.5)
        response = yield get(local)
        return response.status

    t = transport()
    status, ticks, took = on_a_loop(t, lambda: ticking(t.arun(flow())))
    assert status == 200
    assert took >= 0.45
    assert ticks >= 20


# --------------------------------------------------------------------------- one client per loop
def test_two_event_loops_at_once_each_get_their_own_client(local: LocalProvider) -> None:
    # An httpx.AsyncClient must not cross loops: two threads, each with its own
    # loop, send through one Transport at the same time (the delay overlaps them).
    local.delay(PATH, 0.3)
    t = transport(retries=0)
    both = threading.Barrier(2)
    answers: list[int] = []
    failures: list[BaseException] = []

    def in_a_thread() -> None:
        async def work() -> HttpResponse:
            both.wait()
            first = await t.asend(get(local))
            await t.asend(get(local))  # the kept-alive connection of this loop
            return first

        try:
            answers.append(on_a_loop(t, work).status)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=in_a_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert answers == [200, 200]
    assert local.count(PATH) == 4


def test_one_transport_serves_one_loop_after_another(local: LocalProvider) -> None:
    t = transport(retries=0)
    for _ in range(2):
        assert on_a_loop(t, lambda: t.asend(get(local))).status == 200
    assert local.count(PATH) == 2


def test_aclose_without_a_client_in_this_loop_does_nothing() -> None:
    t = transport()
    asyncio.run(t.aclose())


# --------------------------------------------------------------------------- a person, awaited
class AsyncPersonLog:
    """An AsyncPerson that records what the flow asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def listen(self, port: int, path: str) -> str:
        self.calls.append(("listen", port, path))
        return f"http://127.0.0.1:{port}{path}"

    async def open_browser(self, url: str) -> None:
        self.calls.append(("open_browser", url))

    async def await_callback(self, timeout: float) -> dict[str, str]:
        self.calls.append(("await_callback", timeout))
        return {"code": "c"}

    async def finish(self, ok: bool, message: str) -> None:
        self.calls.append(("finish", ok, message))

    async def show_code(self, code: ShowCode) -> None:
        self.calls.append(("show_code", code.user_code))

    async def sleep(self, seconds: float, until: float | None) -> None:
        self.calls.append(("sleep", seconds, until))

    async def aclose(self) -> None:
        self.calls.append(("aclose",))


def device_like(local: LocalProvider) -> Flow[int]:
    yield ShowCode("WDJB-MJHT", local.url + "/device", None, expires_at=2e9)
    yield Sleep(5.0, until=2e9)
    response = yield get(local)
    return response.status


def test_effects_that_need_a_person_are_awaited_on_the_async_person(
    local: LocalProvider,
) -> None:
    person = AsyncPersonLog()
    t = transport()
    assert on_a_loop(t, lambda: t.arun(device_like(local), person)) == 200
    # the flow's own wait goes to the person (it shows the time left), not to asyncio.sleep
    assert person.calls == [("show_code", "WDJB-MJHT"), ("sleep", 5.0, 2e9), ("aclose",)]


def test_an_effect_that_needs_a_person_without_one_is_a_config_error(
    local: LocalProvider,
) -> None:
    t = transport()
    with pytest.raises(ConfigError, match="needs a person"):
        on_a_loop(t, lambda: t.arun(device_like(local)))
    assert local.count(PATH) == 0


# --------------------------------------------------------------------------- cancellation
def test_a_cancelled_arun_closes_the_flow_without_throwing_the_cancel_into_it(
    local: LocalProvider,
) -> None:
    # Failures of effects are thrown into the flow; a cancellation is not a failure:
    # the flow is closed (GeneratorExit), never handed the CancelledError to catch.
    local.delay(PATH, 2.0, times=1)
    events: list[str] = []

    def flow() -> Flow[None]:
        try:
            yield get(local)
        except (Exception, asyncio.CancelledError):
            events.append("caught")
            raise
        finally:
            events.append("closed")

    t = transport()

    async def cancel_it() -> None:
        task = asyncio.create_task(t.arun(flow()))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    on_a_loop(t, cancel_it)
    assert events == ["closed"]
