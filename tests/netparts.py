"""Real network parts for the proxy, TLS and redirect tests: a private CA (trustme),
the emulator over https, and a tinyproxy forward proxy started on a free loopback port.

tinyproxy comes from Debian (``scripts/setup-proxy.sh``); without it the proxy tests
are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from keyfob import grants
from keyfob.config import HttpSettings
from keyfob.flow import Flow, HttpRequest, HttpResponse, Person, ShowCode
from keyfob.requests_transport import RequestsTransport
from keyfob.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, LocalProvider
from keyfob.token import Token
from keyfob.transport import Transport

TOKEN = "/std/token"
DISCOVERY = "/std/.well-known/openid-configuration"  # answers GET 200 without credentials


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- drivers
class Driver:
    """``Transport.send``/``run`` on httpx.Client; each call closes the transport after."""

    name = "sync"
    transport: type[Transport] = Transport

    def make(self, **settings: Any) -> Transport:
        base: dict[str, Any] = {"connect_timeout": 2.0, "timeout": 5.0, "retries": 0}
        base.update(settings)
        return self.transport(HttpSettings(**base))

    def send(self, transport: Transport, request: HttpRequest) -> HttpResponse:
        try:
            return transport.send(request)
        finally:
            transport.close()

    def run(self, transport: Transport, flow: Flow[Any], person: Person | None = None) -> Any:
        try:
            return transport.run(flow, person)
        finally:
            transport.close()

    def token(self, transport: Transport, url: str) -> Token:
        """A client-credentials token from ``url`` (the demo client, Basic auth)."""
        flow = grants.client_credentials(
            url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, now=time.time()
        )
        return self.run(transport, flow)  # type: ignore[no-any-return]


class AsyncPerson:
    """The same person for the async driver: each method a coroutine."""

    def __init__(self, person: Person) -> None:
        self.person = person

    async def listen(self, port: int, path: str) -> str:
        return self.person.listen(port, path)

    async def open_browser(self, url: str) -> None:
        self.person.open_browser(url)

    async def await_callback(self, timeout: float) -> dict[str, str]:
        return self.person.await_callback(timeout)

    async def finish(self, ok: bool, message: str) -> None:
        self.person.finish(ok, message)

    async def show_code(self, code: ShowCode) -> None:
        self.person.show_code(code)

    async def sleep(self, seconds: float, until: float | None) -> None:
        self.person.sleep(seconds, until)

    async def aclose(self) -> None:
        self.person.close()


class AsyncDriver(Driver):
    """``Transport.asend``/``arun`` on httpx.AsyncClient, each in a new event loop closed
    with its client."""

    name = "async"

    def send(self, transport: Transport, request: HttpRequest) -> HttpResponse:
        return asyncio.run(self._closing(transport, transport.asend(request)))  # type: ignore[no-any-return]

    def run(self, transport: Transport, flow: Flow[Any], person: Person | None = None) -> Any:
        awaited = AsyncPerson(person) if person is not None else None
        return asyncio.run(self._closing(transport, transport.arun(flow, awaited)))

    @staticmethod
    async def _closing(transport: Transport, work: Awaitable[Any]) -> Any:
        try:
            return await work
        finally:
            await transport.aclose()


class RequestsDriver(Driver):
    """``RequestsTransport.run`` on requests.Session (keyfob.inaturalist's)."""

    name = "requests"
    transport = RequestsTransport


DRIVERS = {"sync": Driver, "async": AsyncDriver, "requests": RequestsDriver}


# --------------------------------------------------------------------------- TLS
class PrivateCA:
    """A CA of the tests' own, and a server certificate it signed for 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.pem = folder / "private-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.pem))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(context)
        return context


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return PrivateCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_local(private_ca: PrivateCA, no_secret_leaks: Any) -> Iterator[LocalProvider]:
    """The emulator over https, its certificate signed by ``private_ca``."""
    with LocalProvider(ssl_context=private_ca.server_context()) as provider:
        no_secret_leaks.providers.append(provider)
        yield provider
    assert not provider.errors, provider.errors


# --------------------------------------------------------------------------- tinyproxy
def tinyproxy_binary() -> str | None:
    return shutil.which("tinyproxy") or next(
        (p for p in ("/usr/bin/tinyproxy", "/usr/sbin/tinyproxy") if os.access(p, os.X_OK)),
        None,
    )


def need_tinyproxy() -> str:
    binary = tinyproxy_binary()
    if binary is None:
        message = "tinyproxy is not installed (run scripts/setup-proxy.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class Tinyproxy:
    """One tinyproxy on 127.0.0.1, its config and log in ``folder``, stopped by PID.

    No ``ConnectPort`` line: CONNECT may reach any port (the emulator's is a free
    one, not 443), and nothing stops it reaching 127.0.0.1 targets."""

    def __init__(self, binary: str, folder: Path, *, basic_auth: tuple[str, str] | None = None):
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.log_file = folder / "tinyproxy.log"
        self.conf = folder / "tinyproxy.conf"
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            f'LogFile "{self.log_file}"',
            "LogLevel Connect",
            f'PidFile "{folder / "tinyproxy.pid"}"',
            "MaxClients 20",
            "Allow 127.0.0.1",
        ]
        if basic_auth:
            lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
        self.conf.write_text("\n".join(lines) + "\n")
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-d", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tinyproxy did not start: {self.log()}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def requests(self) -> list[str]:
        """The request lines the proxy received: ``CONNECT 127.0.0.1:PORT HTTP/1.1``,
        ``POST http://127.0.0.1:PORT/std/token HTTP/1.1``."""
        return re.findall(r"Request \(file descriptor \d+\): (.*)", self.log())


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    proxy = Tinyproxy(need_tinyproxy(), tmp_path)
    proxy.start()
    yield proxy
    proxy.stop()


class Silent:
    """A listening socket that never accepts: connections open (the backlog) and
    then hear nothing, as from a proxy that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()
