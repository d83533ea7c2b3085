"""The requests driver of a flow: what ``keyfob.inaturalist`` talks HTTP through.

pyinaturalist talks HTTP through ``requests``, and so do the tools its users
test with: requests-mock, responses, VCR.py cassettes, requests-cache. A
drop-in that sent its token requests with httpx would slip past all of them.
:class:`RequestsTransport` is :class:`~keyfob.transport.Transport` whose sync
requests go out on a ``requests.Session``; the policy (timeouts, retries and
backoff, the ``http://`` refusal, what each failure is called) is the same
sans-I/O :func:`keyfob.transport._attempts` the httpx drivers consult; only the
call on the wire and the names of its failures are this module's. A failure is
a keyfob :class:`~keyfob.errors.TransportError` and the ``requests`` exception
its callers already catch (``ConnectionError``, ``Timeout``, ``HTTPError``),
with ``response`` set where the server answered.

The async driver stays httpx's (``requests`` has none). Importing this module
imports ``requests``: only the code that uses the driver does.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import warnings
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from keyfob.errors import TransportError
from keyfob.flow import HttpRequest, HttpResponse
from keyfob.transport import (
    USER_AGENT,
    Failures,
    Transport,
    _Attempt,
    _attempts,
    _Received,
)

if TYPE_CHECKING:
    from keyfob.clientauth import ClientCert

__all__ = [
    "ConnectTimedOut",
    "HTTPFailed",
    "RequestsTransport",
    "TimedOut",
    "Unreachable",
]


class Unreachable(TransportError, requests.ConnectionError):
    """The request could not be sent, or its answer not read."""


class TimedOut(TransportError, requests.Timeout):
    """No answer within the read timeout."""


class ConnectTimedOut(TransportError, requests.ConnectTimeout):
    """No connection within the connect timeout (a ``ConnectionError`` and a ``Timeout``)."""


class HTTPFailed(TransportError, requests.HTTPError):
    """Answers the retries could not get past (429, 5xx); ``response`` is the last one."""


def _error(exc: BaseException | None) -> type[TransportError]:
    if exc is None:
        return HTTPFailed
    if isinstance(exc, requests.ConnectTimeout):
        return ConnectTimedOut
    if isinstance(exc, requests.Timeout):
        return TimedOut
    return Unreachable


_TUNNEL = re.compile(r"Tunnel connection failed: ([0-9]{3})\b")
_ERRNO = re.compile(r"\[Errno -?[0-9]+\] [A-Za-z][A-Za-z ,.-]*")


def _reason(exc: BaseException) -> str:
    """The class of failure and the system's words for it; never requests' text,
    which holds the URL with its query."""
    names = {
        requests.exceptions.SSLError: "TLS failed",
        requests.exceptions.ProxyError: "the proxy failed",
        requests.exceptions.ChunkedEncodingError: "the connection broke",
        requests.ConnectionError: "connection failed",
    }
    name = next((n for cls, n in names.items() if isinstance(exc, cls)), type(exc).__name__)
    tunnel = _TUNNEL.search(str(exc))
    if tunnel:  # the proxy answered the CONNECT with a refusal
        return f"the proxy refused the connection (HTTP {tunnel.group(1)})"
    errno = _ERRNO.search(str(exc))
    return name + (f" ({errno.group(0).strip()})" if errno else "")


FAILURES = Failures(
    timeout=(requests.Timeout,),
    network=(requests.RequestException,),
    error=_error,
    reason=_reason,
)


class _TlsAdapter(HTTPAdapter):
    """requests' adapter on keyfob's TLS context (:func:`keyfob.tls.context`), for
    every pool, proxied or not. requests would otherwise load its own CA bundle into
    that context on each connection (``cert_verify``)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host, kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pool: dict[str, Any] = dict(kwargs)
        pool.pop("ca_certs", None)
        pool.pop("ca_cert_dir", None)
        pool["ssl_context"] = self._context
        pool["cert_reqs"] = self._cert_reqs()
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs = self._cert_reqs()
        conn.ca_certs = conn.ca_cert_dir = None

    def _cert_reqs(self) -> Any:
        # urllib3 sets the context's verify_mode from this on every connection
        return "CERT_NONE" if self._context.verify_mode == ssl.CERT_NONE else "CERT_REQUIRED"


class _Session(requests.Session):
    """A session that leaves redirects to the policy (``transport._redirect``): even with
    ``allow_redirects=False`` requests parses a Location header to offer ``Response.next``,
    and a hostile one escapes as a bare ``ValueError`` or ``UnicodeDecodeError``."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


class RequestsTransport(Transport):
    """:class:`~keyfob.transport.Transport` with its sync requests on ``requests``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: one session per client certificate (None: none), as the httpx clients
        self._sessions: dict[ClientCert | None, requests.Session] = {}

    def _requests(self, cert: ClientCert | None = None) -> requests.Session:
        session = self._sessions.get(cert)
        if session is not None:
            return session
        with self._client_lock:
            session = self._sessions.get(cert)
            if session is None:
                session = _Session()
                # As the httpx client: never ~/.netrc; the proxies and CA bundle are
                # keyfob.network's (config.toml, then the environment), given explicitly.
                session.trust_env = False
                session.headers["User-Agent"] = USER_AGENT
                adapter = _TlsAdapter(self.tls_context(cert))
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                self._sessions[cert] = session
        return session

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request under the shared policy, on ``requests``."""
        steps = _attempts(request, self.settings, self._clock, FAILURES, self.network)
        return self._drive(steps, self._exchange_requests)

    def _exchange_requests(self, step: _Attempt) -> _Received:
        """One try on ``requests``: the raw body streamed through the step's reader
        (the 1 MiB cap, the deadline), each read bounded by ``step.read_timeout()``.
        requests hands over no socket before the answer, so a server that drips its
        status line and headers is bounded by the read timeout per byte only."""
        read = step.read_timeout()
        proxy = self.network.proxy_for(step.url)
        with contextlib.ExitStack() as quiet:
            if not self.network.verify:  # asked for, and for loopback hosts only (the policy)
                quiet.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            raw = self._requests(step.cert).request(
                step.method,
                step.url,
                data=step.form,
                json=step.json,
                headers=dict(step.headers),
                timeout=(min(self.settings.connect_timeout, read), read),
                allow_redirects=False,  # the policy decides
                stream=True,
                proxies={"http": proxy.url, "https": proxy.url} if proxy is not None else {},
            )
        try:
            reader = step.reader(raw.headers.get("content-encoding"))
            for chunk in raw.raw.stream(65536, decode_content=False):
                reader.feed(chunk)
            body = reader.finish()
        finally:
            raw.close()
        raw._content = body  # what requests-mock users and e.response.json() read
        return _Received(raw.status_code, raw.headers, body, raw=raw)

    def close(self) -> None:
        super().close()
        with self._client_lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()
