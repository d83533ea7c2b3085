"""The only code that talks HTTP.

A grant is a generator that yields the effects of ``keyfob.flow`` (an
:class:`~keyfob.flow.HttpRequest`, a :class:`~keyfob.flow.Sleep`, ...) and
receives their answers (httpx's ``Auth.auth_flow`` protocol, see STYLE.md);
:class:`Transport` drives it. Here live the timeouts, the TLS and
``http://`` policy, and the bounded retries of 429 and 5xx with backoff that
honours ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from keyfob.config import HttpSettings, check_url, safe_url
from keyfob.errors import ConfigError, TransportError
from keyfob.flow import (
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

log = logging.getLogger("keyfob")
T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "keyfob/0.1"


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


class Transport:
    """Sends requests with httpx; ``run`` drives a grant's flow to its result."""

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or HttpSettings()
        self._sleep = sleep
        self._clock = clock
        self._client: Any = None
        # Threads of one broker share the client; two made at once would leak one's sockets.
        self._client_lock = threading.Lock()

    def _http(self) -> Any:
        if self._client is not None:
            return self._client
        with self._client_lock:
            if self._client is not None:
                return self._client
            import httpx  # 125 ms: only once a request is really needed

            s = self.settings
            self._client = httpx.Client(
                timeout=httpx.Timeout(s.timeout, connect=s.connect_timeout),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def run(self, flow: Flow[T], person: Person | None = None) -> T:
        """Drive ``flow`` to its result; effects that need a person go to ``person``."""
        reply: Any = None
        try:
            item = next(flow)
            while True:
                if isinstance(item, HttpRequest):
                    reply = self.send(item)
                elif isinstance(item, Sleep):
                    if person is not None:
                        person.sleep(item.seconds, item.until)
                    else:
                        self._sleep(item.seconds)
                    reply = None
                else:
                    reply = self._interact(item, person)
                item = flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()
            if person is not None:
                person.close()

    @staticmethod
    def _interact(effect: Effect, person: Person | None) -> Any:
        if person is None:
            raise ConfigError(
                "this login needs a person (a browser or a code to enter)",
                hint="run `keyfob login PROVIDER --flow browser` or `--flow device`",
            )
        if isinstance(effect, Listen):
            return person.listen(effect.port, effect.path)
        if isinstance(effect, OpenBrowser):
            return person.open_browser(effect.url)
        if isinstance(effect, AwaitCallback):
            return person.await_callback(effect.timeout)
        if isinstance(effect, Finish):
            return person.finish(effect.ok, effect.message)
        if isinstance(effect, ShowCode):
            return person.show_code(effect)
        raise TypeError(f"unknown effect {type(effect).__name__}")

    def send(self, request: HttpRequest) -> HttpResponse:
        check_url(request.url, request.what)
        import httpx

        headers = {"Accept": "application/json", **request.headers}
        if request.basic:
            headers["Authorization"] = basic_auth(*request.basic)
        where = f"{request.what} ({safe_url(request.url)})"
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            log.debug("%s %s (attempt %d)", request.method, safe_url(request.url), attempt + 1)
            try:
                raw = self._http().request(
                    request.method,
                    request.url,
                    data=request.form,
                    json=request.json,
                    headers=headers,
                )
                content = raw.content
            except httpx.TimeoutException:
                raise TransportError(
                    f"{where} did not answer in time",
                    hint="the provider may be down; raise KEYFOB_TIMEOUT or [http] timeout "
                    "if it is just slow",
                ) from None
            except httpx.HTTPError as exc:
                raise TransportError(f"cannot reach {where}: {_reason(exc)}") from None
            response = HttpResponse(
                raw.status_code,
                {k.lower(): v for k, v in raw.headers.items()},
                content,
                request.url,
                request.what,
            )
            log.debug("%s answered HTTP %d", safe_url(request.url), response.status)
            if response.status not in RETRY_STATUSES:
                return response
            wait = retry_after(response.headers.get("retry-after"), self._clock())
            if wait is not None and wait > self.settings.max_wait:
                raise TransportError(
                    f"{where} answered HTTP {response.status} and asked to wait {wait:.0f} s, "
                    f"longer than max_wait ({self.settings.max_wait:g} s)",
                    hint="try again later, or raise [http] max_wait in config.toml",
                    status=response.status,
                )
            if attempt == attempts - 1:
                break
            if wait is None:
                wait = min(self.settings.max_wait, 0.5 * 2**attempt) * random.uniform(0.8, 1.2)
            log.info("%s answered HTTP %d; retrying in %.1f s", where, response.status, wait)
            self._sleep(wait)
        raise TransportError(
            f"{where} answered HTTP {response.status} {attempts} times",
            hint="the provider is overloaded or down; try again later",
            status=response.status,
        )


def _reason(exc: Exception) -> str:
    """The class of network failure, without URLs (they may carry a query)."""
    text = str(exc).split(" for url ")[0].strip()
    names = {
        "ConnectError": "connection failed",
        "RemoteProtocolError": "the server broke the protocol",
        "ReadError": "the connection broke",
    }
    return names.get(type(exc).__name__, type(exc).__name__) + (f" ({text})" if text else "")
