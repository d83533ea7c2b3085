"""The sans-I/O vocabulary of a flow: requests, answers, and what a flow asks of a person.

A flow (a grant, a provider's quirk step, a whole login) is a generator that
yields an :data:`Effect` and receives its answer: an :class:`HttpRequest` is
answered with an :class:`HttpResponse`, a :class:`Sleep` with ``None``, and
the effects that need a person with what the :class:`Person` (or, under the
async driver, the :class:`AsyncPerson`) returns. An effect that fails is
raised inside the flow at its ``yield``, so a flow can catch a
``TransportError`` and fall back, as it would catch a call's exception. It is
httpx's ``Auth.auth_flow`` protocol (STYLE.md §1): the flow does no I/O, so
one definition serves any driver (``keyfob.transport``), and tests drive it
with plain values.

Cheap to import: nothing here touches the network or imports httpx.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keyfob.config import safe_url
from keyfob.errors import ProviderError

if TYPE_CHECKING:
    from keyfob.clientauth import ClientCert

T = TypeVar("T")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    what: str = "the token endpoint"
    form: Mapping[str, str] | None = field(default=None, repr=False)
    json: Mapping[str, Any] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    basic: tuple[str, str] | None = field(default=None, repr=False)
    #: secret values to scrub from anything the server sends back into a message
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: the client certificate to present (mutual TLS); None: the transport's default
    cert: ClientCert | None = None
    #: how the request authenticates the client, where that is completed as it is
    #: sent (``private_key_jwt``: a fresh assertion, see ``keyfob.clientauth``)
    client_auth: str = ""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str] = field(repr=False)
    content: bytes = field(repr=False)
    url: str = ""
    what: str = "the token endpoint"
    #: the driver's own response object (``requests.Response`` from the requests
    #: driver): flows never read it; an error built from this answer hands it on
    #: as ``response``, where ``requests`` users look
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON, or a ProviderError naming what came instead."""
        try:
            return json.loads(self.content)
        except (ValueError, RecursionError):
            kind = self.content_type or "no content type"
            if self.content.lstrip()[:1] == b"<":
                kind = "HTML" if "html" in kind or b"<html" in self.content[:200].lower() else kind
            raise ProviderError(
                f"{self.what} ({safe_url(self.url)}) answered HTTP {self.status} with {kind}, "
                "not JSON",
                hint="check the provider's URL in config.toml; a proxy or login page may be "
                "in the way",
                status=self.status,
                response=self.raw,
            ) from None


@dataclass(frozen=True)
class Sleep:
    seconds: float
    #: the epoch second the wait is for (a device code's expiry), to show the time left
    until: float | None = None


# Effects of the flows that need a person (browser login, device flow); a
# :class:`Person` carries them out.


@dataclass(frozen=True)
class Listen:
    """Bind the one-shot callback listener on 127.0.0.1; the answer is the redirect URI."""

    port: int
    path: str


@dataclass(frozen=True)
class OpenBrowser:
    url: str = field(repr=False)


@dataclass(frozen=True)
class AwaitCallback:
    """Wait for the callback's query parameters (a dict), at most ``timeout`` seconds."""

    timeout: float


@dataclass(frozen=True)
class Finish:
    """What the browser tab should say, once the flow has judged the callback."""

    ok: bool
    message: str


@dataclass(frozen=True)
class ShowCode:
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float


@dataclass(frozen=True)
class AskPin:
    """OAuth 1.0a out of band: show the address where the person allows access (the
    first time) and read the PIN it gives; the answer is the PIN as typed."""

    url: str = field(repr=False)
    tries_left: int = 1
    first: bool = True


Effect = HttpRequest | Sleep | Listen | OpenBrowser | AwaitCallback | Finish | ShowCode | AskPin
Flow = Generator[Effect, Any, T]


class Person(Protocol):
    """Who carries out the effects that need a person (see ``keyfob.loopback``)."""

    def listen(self, port: int, path: str) -> str: ...
    def open_browser(self, url: str) -> None: ...
    def await_callback(self, timeout: float) -> dict[str, str]: ...
    def finish(self, ok: bool, message: str) -> None: ...
    def show_code(self, code: ShowCode) -> None: ...
    def ask_pin(self, ask: AskPin) -> str: ...
    def sleep(self, seconds: float, until: float | None) -> None: ...
    def close(self) -> None: ...


class AsyncPerson(Protocol):
    """A :class:`Person` for the async driver: the same effects, each a coroutine."""

    async def listen(self, port: int, path: str) -> str: ...
    async def open_browser(self, url: str) -> None: ...
    async def await_callback(self, timeout: float) -> dict[str, str]: ...
    async def finish(self, ok: bool, message: str) -> None: ...
    async def show_code(self, code: ShowCode) -> None: ...
    async def ask_pin(self, ask: AskPin) -> str: ...
    async def sleep(self, seconds: float, until: float | None) -> None: ...
    async def aclose(self) -> None: ...


def basic_auth(user: str, password: str) -> str:
    """RFC 6749 §2.3.1: form-encode id and secret, then Basic (RFC 7617)."""
    pair = f"{urllib.parse.quote_plus(user)}:{urllib.parse.quote_plus(password)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()
