"""Single flight: however many threads and processes ask at once from cold,
the token endpoint sees exactly one request, and everyone gets that token.

The processes are real (``subprocess`` running a small script); each one
waits for a start file and then releases its threads behind a barrier, so
they really race. A broker built with ``flight=Unlocked()`` runs the same
algorithm without its locks, to show that the same test then fails.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx

import keyfob
from keyfob.broker import Broker
from keyfob.cache.sqlite import SQLiteCache
from keyfob.flight import Unlocked
from keyfob.flow import HttpRequest, HttpResponse
from keyfob.testing import LocalProvider
from keyfob.transport import Transport

PROCESSES = 4
THREADS = 8

WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, threading, time
    from pathlib import Path

    import httpx  # the heavy imports before the start, so the race is about tokens
    from keyfob.broker import Broker
    from keyfob.flight import Unlocked

    threads, ready, start = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else "threads"
    broker = Broker(flight=Unlocked()) if mode == "unlocked" else Broker()
    barrier = threading.Barrier(threads)
    tokens, errors = [], []

    def ask():
        try:
            barrier.wait()
            tokens.append(broker.get_token("local").access_token)
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    async def tasks():  # mode "async": as many tasks on one event loop
        async def one():
            try:
                tokens.append((await broker.aget_token("local")).access_token)
            except BaseException as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        await asyncio.gather(*(one() for _ in range(threads)))

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    ready.touch()
    while not start.exists():
        time.sleep(0.002)
    if mode == "async":
        asyncio.run(tasks())
    else:
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    print(json.dumps({"tokens": tokens, "errors": errors}))
    """
)


def race_processes(tmp_path: Path, no_secret_leaks, *, mode: str = "threads") -> list[str]:
    """Start PROCESSES x THREADS callers of get_token("local") (``mode``: "threads",
    "unlocked": the same without locks, "async": tasks on an event loop); their tokens."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start = tmp_path / "start"
    ready = [tmp_path / f"ready-{i}" for i in range(PROCESSES)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(THREADS), str(r), str(start), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    return release(workers, ready, start, no_secret_leaks)


def release(
    workers: list[subprocess.Popen[str]], ready: list[Path], start: Path, no_secret_leaks
) -> list[str]:
    """Wait until every worker is ready, start them at once, collect their tokens."""
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, "the workers never got ready"
            assert all(w.poll() is None for w in workers), "a worker died before the start"
            time.sleep(0.01)
        start.touch()
        tokens: list[str] = []
        for w in workers:
            out, err = w.communicate(timeout=60)
            no_secret_leaks.add("stderr of a racing worker", err)
            assert w.returncode == 0, err[-2000:]
            result = json.loads(out)
            assert result["errors"] == []
            tokens.extend(result["tokens"])
        return tokens
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()


def race_threads(count: int, broker: Broker | None = None) -> list[str]:
    ask_for = broker.get_token if broker is not None else keyfob.get_token
    barrier = threading.Barrier(count)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            barrier.wait()
            tokens.append(ask_for("local").access_token)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return tokens


def test_processes_and_threads_from_cold_make_one_token_request(
    configured: LocalProvider, tmp_path: Path, no_secret_leaks
) -> None:
    tokens = race_processes(tmp_path, no_secret_leaks)

    assert len(tokens) == PROCESSES * THREADS
    assert configured.count("/std/token") == 1
    assert len(set(tokens)) == 1
    assert configured.is_active(tokens[0])


def test_processes_and_threads_without_locks_stampede_the_token_endpoint(
    configured: LocalProvider, tmp_path: Path, no_secret_leaks
) -> None:
    # Proves the test above can fail: same race, locks switched off.
    configured.delay("/std/token", 0.2)
    tokens = race_processes(tmp_path, no_secret_leaks, mode="unlocked")

    assert len(tokens) == PROCESSES * THREADS
    assert configured.count("/std/token") > 1
    assert len(set(tokens)) > 1


def test_processes_wait_for_a_slow_token_endpoint_instead_of_asking_again(
    configured: LocalProvider, tmp_path: Path, no_secret_leaks
) -> None:
    configured.delay("/std/token", 0.5)
    tokens = race_processes(tmp_path, no_secret_leaks)

    assert len(tokens) == PROCESSES * THREADS
    assert configured.count("/std/token") == 1
    assert len(set(tokens)) == 1


def test_processes_of_async_tasks_wait_for_a_slow_token_endpoint_instead_of_asking_again(
    configured: LocalProvider, tmp_path: Path, no_secret_leaks
) -> None:
    configured.delay("/std/token", 0.5)
    tokens = race_processes(tmp_path, no_secret_leaks, mode="async")

    assert len(tokens) == PROCESSES * THREADS
    assert configured.count("/std/token") == 1
    assert len(set(tokens)) == 1


def test_threads_in_one_process_from_cold_make_one_token_request(
    configured: LocalProvider,
) -> None:
    tokens = race_threads(32)

    assert len(tokens) == 32
    assert configured.count("/std/token") == 1
    assert len(set(tokens)) == 1


def test_threads_wait_for_a_slow_token_endpoint_instead_of_asking_again(
    configured: LocalProvider,
) -> None:
    configured.delay("/std/token", 0.5)
    tokens = race_threads(16)

    assert configured.count("/std/token") == 1
    assert len(set(tokens)) == 1


def test_threads_without_locks_stampede_the_token_endpoint(configured: LocalProvider) -> None:
    configured.delay("/std/token", 0.2)
    broker = Broker(flight=Unlocked())
    try:
        tokens = race_threads(16, broker)
    finally:
        broker.transport.close()

    assert len(tokens) == 16
    assert configured.count("/std/token") > 1


class OnTheLoop(Transport):
    """The transport, noting the thread of every token request and whether the
    sync driver was used at all."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []
        self.sync_requests = 0

    async def asend(self, request: HttpRequest) -> HttpResponse:
        self.threads.append(threading.current_thread())
        return await super().asend(request)

    def send(self, request: HttpRequest) -> HttpResponse:
        self.sync_requests += 1
        return super().send(request)


async def _hundred_tasks(url: str, broker: Broker) -> tuple[list[int], int, threading.Thread]:
    """100 concurrent requests through one cold httpx.AsyncClient, and a ticker beside
    them: their statuses, the ticks, and the loop's thread."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    async with httpx.AsyncClient(auth=keyfob.httpx_auth("local", broker=broker)) as client:
        answers = await asyncio.gather(*(client.get(url) for _ in range(100)))
    done.set()
    await ticking
    return [a.status_code for a in answers], ticks, threading.current_thread()


def test_async_tasks_from_cold_make_one_token_request_on_the_loop(
    configured: LocalProvider,
) -> None:
    configured.delay("/std/token", 0.3)
    transport = OnTheLoop()
    broker = Broker(transport=transport)

    statuses, ticks, loop_thread = asyncio.run(
        _hundred_tasks(f"{configured.url}/std/api/me", broker)
    )

    assert statuses == [200] * 100
    assert configured.count("/std/token") == 1
    assert set(transport.threads) == {loop_thread}  # the async driver asked, on the loop
    assert transport.sync_requests == 0  # no thread ran the blocking driver
    assert ticks > 5  # and the loop went on while the token endpoint took its time


def test_async_tasks_without_locks_stampede_the_token_endpoint(
    configured: LocalProvider,
) -> None:
    configured.delay("/std/token", 0.2)
    broker = Broker(flight=Unlocked())
    try:
        statuses, _, _ = asyncio.run(_hundred_tasks(f"{configured.url}/std/api/me", broker))
    finally:
        broker.transport.close()

    assert statuses == [200] * 100
    assert configured.count("/std/token") > 1


def test_a_stopped_lock_holder_delays_a_token_only_by_the_lock_wait(
    configured: LocalProvider, stopped_holder: tuple[Path, int]
) -> None:
    folder, pid = stopped_holder
    warnings: list[str] = []
    broker = Broker(cache=SQLiteCache(str(folder), on_warning=warnings.append, wait=1.0))

    started = time.monotonic()
    try:
        token = broker.get_token("local")
    finally:
        broker.transport.close()

    assert token.access_token in configured.issued()
    assert time.monotonic() - started < 10
    assert configured.count("/std/token") == 1
    assert any(f"held by process {pid} (stopped)" in w for w in warnings)
