"""The only code that talks HTTP: the sync and the async driver of a flow.

A grant is a generator that yields the effects of ``keyfob.flow`` (an
:class:`~keyfob.flow.HttpRequest`, a :class:`~keyfob.flow.Sleep`, ...) and
receives their answers (httpx's ``Auth.auth_flow`` protocol, see STYLE.md).
:class:`Transport` drives it, with ``httpx.Client`` (:meth:`Transport.run`)
or ``httpx.AsyncClient`` (:meth:`Transport.arun`, which waits with
``asyncio.sleep`` and never blocks the event loop), as httpx drives one
``auth_flow`` from ``sync_auth_flow`` and ``async_auth_flow``.

The policy is written once, sans I/O, and every driver consults it: the
``http://`` refusal, the timeouts, the bounded retries of 429 and 5xx with
backoff that honours ``Retry-After`` and ``max_wait``, and what each failure
is called (:func:`_attempts`); a driver says what its client raises
(:class:`Failures`). A third driver, on ``requests``, is
:class:`keyfob.requests_transport.RequestsTransport`. A driver only carries
out its steps: for an
``_Attempt`` it sends the request, feeds every raw chunk of the answer (still
content-encoded) to ``step.reader(content_encoding)`` (a
:class:`~keyfob.body.BodyReader`: the 1 MiB cap and the total deadline), and
answers with ``_Received(status, headers, reader.finish())``; it bounds each
read by ``step.read_timeout()`` and, where its client allows, the whole try by
``step.remaining()``, raising ``step.too_late()`` when that bound fires.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from keyfob.body import ACCEPT_ENCODING, BodyReader, total_deadline
from keyfob.config import HttpSettings, check_url, safe_url
from keyfob.errors import ConfigError, TransportError
from keyfob.flow import (
    AskPin,
    AsyncPerson,
    AwaitCallback,
    Effect,
    Finish,
    Flow,
    HttpRequest,
    HttpResponse,
    Listen,
    OpenBrowser,
    Person,
    ShowCode,
    Sleep,
    basic_auth,
)
from keyfob.network import Network, Proxy, check_verify, resolve

if TYPE_CHECKING:
    import asyncio
    import ssl

    from keyfob.clientauth import ClientCert

log = logging.getLogger("keyfob")
T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "keyfob/0.1"
#: the config.toml key that names each endpoint, for a redirect's hint
_SETTING_OF = {
    "the token endpoint": "token_url",
    "the revocation endpoint": "revoke_url",
    "the invalidate_token endpoint": "revoke_url",
    "the device authorization endpoint": "device_url",
    "the discovery document": "issuer (or token_url)",
    "iNaturalist's api_token endpoint": "jwt_url",
    "TreeSnap's refresh-tokens endpoint": "refresh_url",
}


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": str.isdigit takes any Unicode digit
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


# --------------------------------------------------------------------------- the policy
@dataclass(frozen=True)
class Failures:
    """What a driver's HTTP client raises, and the :class:`TransportError` class the
    policy raises for it: ``error(exc)`` for a request that failed, ``error(None)``
    for answers the retries could not get past (a requests driver makes them
    ``requests`` exceptions too, so its callers' ``except`` clauses still work)."""

    timeout: tuple[type[BaseException], ...]
    network: tuple[type[BaseException], ...]
    error: Callable[[BaseException | None], type[TransportError]] = lambda exc: TransportError
    #: the class of a network failure, in words, without URLs (they may carry a query)
    reason: Callable[[BaseException], str] = lambda exc: _reason(exc)


@functools.cache
def _httpx_failures() -> Failures:
    import httpx  # the drivers need it anyway

    return Failures((httpx.TimeoutException,), (httpx.HTTPError,))


@dataclass(frozen=True)
class _Attempt:
    """One try of a request on the wire.

    The driver sends it, feeds the answer's raw (still content-encoded) chunks
    to ``reader(content_encoding)`` and answers with a :class:`_Received`; it
    bounds each read by ``read_timeout()`` and, where it can, the whole try by
    ``remaining()`` seconds.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    form: Mapping[str, str] | None = field(repr=False)
    json: Mapping[str, Any] | None = field(repr=False)
    where: str = ""
    #: ``time.monotonic()`` by which the whole try must be over (see ``body.total_deadline``)
    deadline: float = float("inf")
    seconds: float = float("inf")
    timeout: float = 30.0
    #: the client certificate to present (mutual TLS), or None
    cert: ClientCert | None = None

    def reader(self, content_encoding: str | None) -> BodyReader:
        """The body reader of this try's answer: every driver reads the body through it."""
        return BodyReader(
            self.where, content_encoding, deadline=self.deadline, seconds=self.seconds
        )

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def read_timeout(self) -> float:
        """The read timeout, cut short where the deadline comes first."""
        return max(0.001, min(self.timeout, self.remaining()))

    def too_late(self) -> TransportError:
        """What a driver raises when its own bound on the whole try fired."""
        return TransportError(
            f"{self.where} did not finish answering within {self.seconds:g} s",
            hint="the provider is too slow or sends its answer drop by drop; try again "
            "later, or raise KEYFOB_TIMEOUT or [http] timeout",
        )


@dataclass(frozen=True)
class _Received:
    """The answer to an :class:`_Attempt`: status, headers, the body from its reader."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    content: bytes = field(repr=False)
    #: the client's own response object (``requests.Response``), for errors to carry
    raw: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class _Backoff:
    """Wait before the next attempt (the driver's own sleep, never the person's)."""

    seconds: float


_Steps = Generator[_Attempt | _Backoff, Any, HttpResponse]


def _attempts(
    request: HttpRequest,
    settings: HttpSettings,
    clock: Callable[[], float],
    failures: Failures,
    network: Network | None = None,
) -> _Steps:
    """The policy of sending one request, sans I/O: every driver consults it.

    Yields an :class:`_Attempt` (the driver sends it and answers with a
    :class:`_Received`, or throws in the exception its client raised) or a
    :class:`_Backoff` (the driver waits). Returns the answer to give the flow,
    or raises ``ConfigError`` (a refused ``http://`` URL, certificate checks
    switched off for a host that is not loopback) or a ``TransportError`` of the
    class ``failures`` names. ``network`` says which proxy a URL goes through (for
    the messages; the driver routes by the same answer) and which CA bundle is in use.

    A redirect (DESIGN "The network as it is") is followed once, and only for a
    ``GET`` that carries no credential, to the same host; any other is an error
    naming where it pointed: nothing is ever sent to a host keyfob was not given,
    and no credential after a redirect.
    """
    network = network or Network(proxies={})
    check_url(request.url, request.what)
    check_verify(network, request.url, request.what)

    headers = {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING, **request.headers}
    if request.basic:
        headers["Authorization"] = basic_auth(*request.basic)
    url, followed = request.url, False
    proxy = network.proxy_for(url)
    where = _where(request.what, url, proxy)
    cert = request.cert or settings.client_cert
    seconds = total_deadline(settings.connect_timeout, settings.timeout)
    attempts = settings.retries + 1
    attempt = 0
    while True:
        log.debug("%s %s (attempt %d)", request.method, safe_url(url), attempt + 1)
        wire = _Attempt(
            request.method,
            url,
            headers,
            request.form,
            request.json,
            where=where,
            deadline=time.monotonic() + seconds,
            seconds=seconds,
            timeout=settings.timeout,
            cert=cert,
        )
        try:
            raw = yield wire
            assert isinstance(raw, _Received)
        except failures.timeout as exc:
            raise failures.error(exc)(
                f"{where} did not answer in time",
                hint=_proxy_hint(proxy)
                or "the provider may be down; raise KEYFOB_TIMEOUT or [http] timeout "
                "if it is just slow",
            ) from None
        except failures.network as exc:
            refused = _tls_refusal(exc, cert)
            if refused is not None:
                raise failures.error(exc)(
                    f"cannot reach {where}: {refused[0]}", hint=refused[1]
                ) from None
            untrusted = _untrusted(exc)
            if untrusted is not None:
                raise failures.error(exc)(
                    f"{where}: the server's certificate is not trusted ({untrusted})",
                    hint="if a private CA signed it, set [http] ca_bundle in config.toml "
                    f"(or SSL_CERT_FILE) to that CA's PEM file; in use: {network.ca.shown}",
                ) from None
            reason = failures.reason(exc)
            raise failures.error(exc)(
                f"cannot reach {where}: {reason}",
                hint=_proxy_hint(proxy, reason) or TransportError.default_hint,
            ) from None
        response = HttpResponse(
            raw.status,
            {k.lower(): v for k, v in raw.headers.items()},
            raw.content,
            url,
            request.what,
            raw=raw.raw,
        )
        log.debug("%s answered HTTP %d", safe_url(url), response.status)
        if response.status in REDIRECTS and response.headers.get("location"):
            url = _redirect(request, url, response, where, failures, followed=followed)
            check_url(url, request.what)
            followed, proxy = True, network.proxy_for(url)
            where = _where(request.what, url, proxy)
            continue
        if response.status not in RETRY_STATUSES:
            return response
        wait = retry_after(response.headers.get("retry-after"), clock())
        if wait is not None and wait > settings.max_wait:
            raise failures.error(None)(
                f"{where} answered HTTP {response.status} and asked to wait {wait:.0f} s, "
                f"longer than max_wait ({settings.max_wait:g} s)",
                hint="try again later, or raise [http] max_wait in config.toml",
                status=response.status,
                response=raw.raw,
            )
        if attempt == attempts - 1:
            break
        if wait is None:
            wait = min(settings.max_wait, 0.5 * 2**attempt) * random.uniform(0.8, 1.2)
        log.info("%s answered HTTP %d; retrying in %.1f s", where, response.status, wait)
        attempt += 1
        yield _Backoff(wait)
    raise failures.error(None)(
        f"{where} answered HTTP {response.status} {attempts} times",
        hint="the provider is overloaded or down; try again later",
        status=response.status,
        response=raw.raw,
    )


def _where(what: str, url: str, proxy: Proxy | None) -> str:
    """What a message calls the request: the endpoint, its URL, the proxy it goes through."""
    through = f" through the proxy {proxy.shown}" if proxy is not None else ""
    return f"{what} ({safe_url(url)}){through}"


def _proxy_hint(proxy: Proxy | None, reason: str = "") -> str:
    if proxy is None:
        return ""
    if "(HTTP 407)" in reason or "(HTTP 401)" in reason:
        return (
            f"the proxy wants a user and password: give them in its URL in {proxy.source}, "
            "http://USER:PASSWORD@HOST:PORT (the password never shows in keyfob's output)"
        )
    return (
        f"check the proxy ({proxy.source}) and that it is running; NO_PROXY, or [http] "
        "no_proxy in config.toml, names hosts to reach without it"
    )


def _redirect(
    request: HttpRequest,
    url: str,
    response: HttpResponse,
    where: str,
    failures: Failures,
    *,
    followed: bool,
) -> str:
    """Where a redirect may be followed to; else the error that names where it pointed."""
    setting = _SETTING_OF.get(request.what, "the provider's URL")
    try:
        target = urllib.parse.urljoin(url, response.headers["location"].strip())
        here, there = urllib.parse.urlsplit(url), urllib.parse.urlsplit(target)
        there.port  # noqa: B018 - raises on a port that is not one
    except ValueError:
        raise failures.error(None)(
            f"{where} answered HTTP {response.status}, a redirect to an address that is not a URL",
            hint=f"check {setting} in config.toml",
            status=response.status,
            response=response.raw,
        ) from None
    # shown in a message: no user info, query or fragment, nothing that is not printable
    shown = urllib.parse.quote(safe_url(target), safe=":/[]@!$&'()*+,;=%~", errors="replace")
    said = f"{where} answered HTTP {response.status}, a redirect to {shown}"
    if _origin(there) != _origin(here):
        problem = "; keyfob follows no redirect to another host"
    elif followed:
        problem = "; keyfob follows one redirect, not two"
    elif (
        request.method != "GET"
        or request.basic
        or request.form is not None
        or request.json is not None
        or request.secrets
        or any(k.lower() in ("authorization", "cookie") for k in request.headers)
    ):
        problem = "; keyfob sends no credentials after a redirect"
    else:
        log.info("%s; following it once", said)
        return target
    raise failures.error(None)(
        said + problem,
        hint=f"if that is the provider's address, set {setting} in config.toml to it",
        status=response.status,
        response=response.raw,
    )


def _origin(parts: urllib.parse.SplitResult) -> tuple[str, str, int | None]:
    """Scheme, host and port: a redirect may stay within them, never leave."""
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _untrusted(exc: BaseException) -> str | None:
    """The verification failure of a server's certificate somewhere in ``exc``'s chain,
    in OpenSSL's words."""
    import ssl

    failed = _ssl_error(exc, ssl.SSLCertVerificationError)
    if failed is None:
        return None
    return str(failed.verify_message or failed.reason or "certificate verify failed")


def _ssl_error(exc: BaseException, kind: type[E]) -> E | None:
    """The first ``kind`` (an ``ssl.SSLError``) in ``exc``'s chain: httpx wraps it once;
    requests and urllib3 three times, keeping the cause in ``args`` and ``.reason`` too."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return item
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return None


def _person_call(
    effect: Effect, person: Person | AsyncPerson | None
) -> tuple[str, tuple[Any, ...]]:
    """Which method of the person carries out ``effect``, and with what (both drivers)."""
    if person is None:
        raise ConfigError(
            "this login needs a person (a browser or a code to enter)",
            hint="run `keyfob login PROVIDER --flow browser` or `--flow device`",
        )
    if isinstance(effect, Listen):
        return "listen", (effect.port, effect.path)
    if isinstance(effect, OpenBrowser):
        return "open_browser", (effect.url,)
    if isinstance(effect, AwaitCallback):
        return "await_callback", (effect.timeout,)
    if isinstance(effect, Finish):
        return "finish", (effect.ok, effect.message)
    if isinstance(effect, ShowCode):
        return "show_code", (effect,)
    if isinstance(effect, AskPin):
        return "ask_pin", (effect,)
    if isinstance(effect, Sleep):
        return "sleep", (effect.seconds, effect.until)
    raise TypeError(f"unknown effect {type(effect).__name__}")


# --------------------------------------------------------------------------- the drivers
class Transport:
    """Drives flows with httpx: ``run`` (sync) and ``arun`` (async), one policy.

    One object serves both because a broker holds one transport, configured
    once (settings, clock), and its sync and async paths must not drift; the
    clients stay apart: one ``httpx.Client`` for every thread, and one
    ``httpx.AsyncClient`` per event loop (an async client must not cross
    loops), made on first use there; each of them once per client certificate
    presented (:meth:`tls_context`). :meth:`arun` closes the loop's clients
    when the last flow running on that loop ends, so a caller's
    ``asyncio.run`` leaves no client behind; those that only :meth:`asend`
    used are closed by :meth:`aclose` in their loop.
    """

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or HttpSettings()
        self._sleep = sleep
        self._asleep = asleep  # None: asyncio.sleep, imported only by the async driver
        self._clock = clock
        #: one client per client certificate (None: none): a broker serves several providers
        self._clients: dict[ClientCert | None, Any] = {}
        self._aclients: dict[asyncio.AbstractEventLoop, dict[ClientCert | None, Any]] = {}
        self._network: Network | None = None
        #: the TLS context of each client certificate (None: none), sharing the CAs
        self._tls: dict[ClientCert | None, ssl.SSLContext] = {}
        self._arunning: dict[asyncio.AbstractEventLoop, int] = {}  # flows per loop
        # Threads of one broker share the client; two made at once would leak one's sockets.
        self._client_lock = threading.Lock()

    @property
    def network(self) -> Network:
        """The proxies and CA bundle in use (:mod:`keyfob.network`), read once."""
        if self._network is None:
            self._network = resolve(self.settings)
        return self._network

    def tls_context(self, cert: ClientCert | None = None) -> ssl.SSLContext:
        """The TLS context of the clients presenting ``cert`` (:mod:`keyfob.tls` for the
        CAs, :mod:`keyfob.clientauth` for the certificate; its files checked here)."""
        context = self._tls.get(cert)
        if context is None:
            from keyfob import tls

            context = tls.context(self.network.ca, verify=self.network.verify)
            if cert is not None:
                from keyfob.clientauth import load_client_cert

                load_client_cert(context, cert)
            self._tls[cert] = context
        return context

    def _client_options(
        self, cert: ClientCert | None = None, *, asynchronous: bool = False
    ) -> dict[str, Any]:
        import httpx  # 125 ms: only once a request is really needed

        from keyfob._routes import AsyncRoutes, Routes

        s = self.settings
        # no idle connections: each try connects, so its deadline can shut its socket
        limits = httpx.Limits(max_keepalive_connections=0)
        routes = AsyncRoutes if asynchronous else Routes
        return {
            "timeout": httpx.Timeout(s.timeout, connect=s.connect_timeout),
            # each request through the proxy keyfob.network chose for it, on one TLS context
            "transport": routes(self.network, self.tls_context(cert), limits),
            "follow_redirects": False,  # the policy decides (_redirect)
            "trust_env": False,  # never ~/.netrc; proxies and CAs come from keyfob.network
            "headers": {"User-Agent": USER_AGENT},
        }

    # ----------------------------------------------------------------------- sync
    def _http(self, cert: ClientCert | None = None) -> Any:
        client = self._clients.get(cert)
        if client is not None:
            return client
        with self._client_lock:
            client = self._clients.get(cert)
            if client is None:
                import httpx

                client = self._clients[cert] = httpx.Client(**self._client_options(cert))
        return client

    def close(self) -> None:
        """Close the sync clients (async clients: :meth:`aclose`, in their loop)."""
        with self._client_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def run(self, flow: Flow[T], person: Person | None = None) -> T:
        """Drive ``flow`` to its result; effects that need a person go to ``person``.

        An effect that fails (a request that cannot be sent, retries spent, a
        refused ``http://`` URL, a person who cannot answer) is thrown into
        the flow where it yielded it: a flow may catch it and go on (fall
        back to another grant); one that does not lets it out of ``run``.
        """
        try:
            item = next(flow)
            while True:
                try:
                    reply = self._carry_out(item, person)
                except Exception as exc:  # raised where the flow yielded it: it may catch it
                    item = flow.throw(exc)
                else:
                    item = flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()
            if person is not None:
                person.close()

    def _carry_out(self, effect: Effect, person: Person | None) -> Any:
        if isinstance(effect, HttpRequest):
            return self.send(effect)
        if isinstance(effect, Sleep) and person is None:
            self._sleep(effect.seconds)
            return None
        name, args = _person_call(effect, person)
        return getattr(person, name)(*args)

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request under the policy: its answer, or a ``KeyfobError``."""
        steps = _attempts(request, self.settings, self._clock, _httpx_failures(), self.network)
        return self._drive(steps, self._exchange)

    def _drive(self, steps: _Steps, exchange: Callable[[_Attempt], _Received]) -> HttpResponse:
        """Carry out the policy's steps, each try by ``exchange`` (the sync client's:
        httpx here, requests in ``RequestsTransport``)."""
        try:
            step = next(steps)
            while True:
                if isinstance(step, _Backoff):
                    self._sleep(step.seconds)
                    step = steps.send(None)
                    continue
                try:
                    received = exchange(step)
                except Exception as exc:  # the policy names it (or lets it through)
                    step = steps.throw(exc)
                else:
                    step = steps.send(received)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            steps.close()

    def _exchange(self, step: _Attempt) -> _Received:
        """One try with ``httpx.Client``: the body streamed through the step's reader.

        The reader bounds the body by the deadline; before the body (a server that
        drips its status line and headers) a timer shuts the try's socket at the
        deadline, which the trace of its connection hands over. The client keeps
        no idle connection, so every try has its own socket to shut.
        """
        import socket

        sockets: list[Any] = []

        def trace(event: str, info: Mapping[str, Any]) -> None:
            if event == "connection.connect_tcp.complete" and info.get("return_value"):
                sockets.append(info["return_value"].get_extra_info("socket"))

        def shut() -> None:
            for sock in sockets:
                with contextlib.suppress(OSError, AttributeError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(step.remaining(), shut)
        timer.daemon = True
        timer.start()
        try:
            with self._http(step.cert).stream(
                step.method,
                step.url,
                data=step.form,
                json=step.json,
                headers=step.headers,
                timeout=self._timeout(step),
                extensions={"trace": trace},
            ) as raw:
                reader = step.reader(raw.headers.get("content-encoding"))
                for chunk in raw.iter_raw():
                    reader.feed(chunk)
                return _Received(raw.status_code, raw.headers, reader.finish())
        except Exception:
            if step.remaining() <= 0:  # the timer cut it: name the deadline, not the cut
                raise step.too_late() from None
            raise
        finally:
            timer.cancel()

    def _timeout(self, step: _Attempt) -> Any:
        import httpx

        read = step.read_timeout()
        return httpx.Timeout(read, connect=min(self.settings.connect_timeout, read))

    # ----------------------------------------------------------------------- async
    def _ahttp(self, cert: ClientCert | None = None) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        with self._client_lock:  # held for no await: other threads run other loops
            clients = self._aclients.get(loop)
            if clients is None:
                # A client whose loop has ended can be neither used nor closed any more.
                for ended in [other for other in self._aclients if other.is_closed()]:
                    del self._aclients[ended]
                clients = self._aclients[loop] = {}
            client = clients.get(cert)
            if client is None:
                import httpx

                client = clients[cert] = httpx.AsyncClient(
                    **self._client_options(cert, asynchronous=True)
                )
        return client

    async def aclose(self) -> None:
        """Close the async clients of the running event loop, if it has any."""
        import asyncio

        with self._client_lock:
            clients = self._aclients.pop(asyncio.get_running_loop(), {})
        for client in clients.values():
            await client.aclose()

    async def _await_sleep(self, seconds: float) -> None:
        if self._asleep is not None:
            await self._asleep(seconds)
        else:
            import asyncio

            await asyncio.sleep(seconds)

    async def arun(self, flow: Flow[T], person: AsyncPerson | None = None) -> T:
        """Drive ``flow`` to its result on the running event loop, never blocking it.

        The same flows as :meth:`run`, and failures are thrown into the flow
        the same way; effects that need a person go to an
        :class:`~keyfob.flow.AsyncPerson`, whose methods are awaited.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        with self._client_lock:
            self._arunning[loop] = self._arunning.get(loop, 0) + 1
        try:
            item = next(flow)
            while True:
                try:
                    reply = await self._acarry_out(item, person)
                except Exception as exc:  # raised where the flow yielded it: it may catch it
                    item = flow.throw(exc)
                else:
                    item = flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()
            if person is not None:
                await person.aclose()
            with self._client_lock:
                self._arunning[loop] -= 1
                last = not self._arunning[loop]
                if last:
                    del self._arunning[loop]
            if last:
                await self.aclose()

    async def _acarry_out(self, effect: Effect, person: AsyncPerson | None) -> Any:
        if isinstance(effect, HttpRequest):
            return await self.asend(effect)
        if isinstance(effect, Sleep) and person is None:
            await self._await_sleep(effect.seconds)
            return None
        name, args = _person_call(effect, person)
        return await getattr(person, name)(*args)

    async def asend(self, request: HttpRequest) -> HttpResponse:
        """:meth:`send` on ``httpx.AsyncClient``: the same policy, waits with asyncio."""
        steps = _attempts(request, self.settings, self._clock, _httpx_failures(), self.network)
        try:
            step = next(steps)
            while True:
                if isinstance(step, _Backoff):
                    await self._await_sleep(step.seconds)
                    step = steps.send(None)
                    continue
                try:
                    received = await self._aexchange(step)
                except Exception as exc:  # the policy names it (or lets it through)
                    step = steps.throw(exc)
                else:
                    step = steps.send(received)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            steps.close()

    async def _aexchange(self, step: _Attempt) -> _Received:
        """:meth:`_exchange` on ``httpx.AsyncClient``; the whole try, headers included,
        also bounded by the deadline (a server that drips its headers)."""
        import asyncio

        try:
            async with asyncio.timeout(step.remaining()):
                async with self._ahttp(step.cert).stream(
                    step.method,
                    step.url,
                    data=step.form,
                    json=step.json,
                    headers=step.headers,
                    timeout=self._timeout(step),
                ) as raw:
                    reader = step.reader(raw.headers.get("content-encoding"))
                    async for chunk in raw.aiter_raw():
                        reader.feed(chunk)
                    return _Received(raw.status_code, raw.headers, reader.finish())
        except TimeoutError:
            raise step.too_late() from None


#: TLS alerts a server sends when it wants, or does not take, a client certificate
_CERT_ALERTS = (
    "CERTIFICATE_REQUIRED",
    "HANDSHAKE_FAILURE",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
    "ACCESS_DENIED",
)


def _tls_refusal(exc: BaseException, cert: ClientCert | None) -> tuple[str, str] | None:
    """What to say when the server ended the TLS handshake over the client certificate
    (mutual TLS): the words, and the hint; None for any other failure."""
    import ssl

    cause = _ssl_error(exc, ssl.SSLError)
    reason = str(getattr(cause, "reason", "") or "")
    if "ALERT" not in reason or not reason.endswith(_CERT_ALERTS):
        return None
    if cert is None:
        return (
            "the server ended the TLS handshake: it wants a client certificate (mutual TLS)",
            "set client_cert and client_key in [providers.NAME] or [http] of config.toml",
        )
    return (
        f"the server ended the TLS handshake: it did not take the client certificate {cert.cert}",
        "check that the certificate is the one registered with the server and issued by a "
        "CA it trusts",
    )


def _reason(exc: BaseException) -> str:
    """The class of network failure, never the exception's text: httpx and h11 quote
    URLs (with their queries) and header values (a token) there. An operating
    system error's own words ("Connection refused") hold neither."""
    names = {
        "ConnectError": "connection failed",
        "RemoteProtocolError": "the server broke the protocol",
        "LocalProtocolError": "the request could not be sent",
        "ReadError": "the connection broke",
        "ProxyError": "the proxy refused the connection",
    }
    reason = names.get(type(exc).__name__, type(exc).__name__)
    status = str(exc)[:3]
    if type(exc).__name__ == "ProxyError" and status.isascii() and status.isdigit():
        reason += f" (HTTP {status})"  # its own words: status and reason phrase, no URL
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError) and cause.strerror:
        reason += f" ({cause.strerror})"
    return reason
