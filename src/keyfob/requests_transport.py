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

import re
from typing import TYPE_CHECKING, Any

import requests

from keyfob.errors import TransportError
from keyfob.flow import HttpRequest, HttpResponse
from keyfob.transport import (
    USER_AGENT,
    Failures,
    Transport,
    _Attempt,
    _attempts,
    _Received,
    ssl_context,
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
    errno = _ERRNO.search(str(exc))
    return name + (f" ({errno.group(0).strip()})" if errno else "")


FAILURES = Failures(
    timeout=(requests.Timeout,),
    network=(requests.RequestException,),
    error=_error,
    reason=_reason,
)


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
            if cert not in self._sessions:
                session = requests.Session()
                # As the httpx client: no proxies, netrc or CA bundles from the environment.
                session.trust_env = False
                session.headers["User-Agent"] = USER_AGENT
                context = ssl_context(self.settings, cert)
                if context is not None:
                    session.mount("https://", _TLSAdapter(context))
                if self.settings.ca_bundle:  # else requests adds certifi's CAs to the context
                    session.verify = self.settings.ca_bundle
                self._sessions[cert] = session
        return self._sessions[cert]

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request under the shared policy, on ``requests``."""
        steps = _attempts(request, self.settings, self._clock, FAILURES)
        return self._drive(steps, self._exchange_requests)

    def _exchange_requests(self, step: _Attempt) -> _Received:
        """One try on ``requests``: the raw body streamed through the step's reader
        (the 1 MiB cap, the deadline), each read bounded by ``step.read_timeout()``.
        requests hands over no socket before the answer, so a server that drips its
        status line and headers is bounded by the read timeout per byte only."""
        read = step.read_timeout()
        raw = self._requests(step.cert).request(
            step.method,
            step.url,
            data=step.form,
            json=step.json,
            headers=dict(step.headers),
            timeout=(min(self.settings.connect_timeout, read), read),
            allow_redirects=False,
            stream=True,
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


class _TLSAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections use keyfob's TLS context (a client certificate,
    ``[http] ca_bundle``)."""

    def __init__(self, context: Any) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)
