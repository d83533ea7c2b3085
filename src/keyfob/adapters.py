"""requests and httpx auth: the header in, and on a 401 one retry with a new token.

Each adapter holds a broker (composition, not inheritance of a client): it
asks the broker for a token per request (from memory: microseconds) and, on a
401, tells the broker to drop that token, asks for a new one (a refresh or the
grant, never a person) and sends the request again, once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

import httpx
import requests
from requests.auth import AuthBase

from keyfob import wiring
from keyfob.token import Token

if TYPE_CHECKING:
    from keyfob.broker import Broker


class _Bound:
    """A provider, an account and credentials, bound to a broker."""

    def __init__(
        self,
        provider: str,
        *,
        account: str | None = None,
        broker: Broker | None = None,
        **credentials: Any,
    ) -> None:
        self.provider = provider
        self.account = account
        self._credentials = credentials
        self._broker = broker

    @property
    def broker(self) -> Broker:
        return self._broker if self._broker is not None else wiring.default()

    def token(self) -> Token:
        return self.broker.get_token(self.provider, account=self.account, **self._credentials)

    def peek(self) -> Token | None:
        return self.broker.peek(self.provider, account=self.account, **self._credentials)

    def replace(self, refused: Token) -> Token:
        self.broker.invalidate(self.provider, refused, account=self.account)
        return self.token()

    async def atoken(self) -> Token:
        return await self.broker.aget_token(
            self.provider, account=self.account, **self._credentials
        )

    async def areplace(self, refused: Token) -> Token:
        self.broker.invalidate(self.provider, refused, account=self.account)
        return await self.atoken()

    def __repr__(self) -> str:
        account = f" account={self.account!r}" if self.account else ""
        return f"<{type(self).__name__} {self.provider}{account}>"


class RequestsAuth(_Bound, AuthBase):
    """``requests`` auth: ``requests.get(url, auth=keyfob.requests_auth("twitter"))``."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.token()
        r.headers["Authorization"] = token.authorization
        r.register_hook("response", self._on_response)  # type: ignore[no-untyped-call]
        r._keyfob_token = token  # type: ignore[attr-defined]
        return r

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, "_keyfob_retried", False):
            return response
        refused = getattr(request, "_keyfob_token", None)
        if refused is None:
            return response
        token = self.replace(refused)
        response.content  # noqa: B018 - read the body so the connection is released
        response.close()
        retry = request.copy()
        retry.headers["Authorization"] = token.authorization
        retry._keyfob_retried = True  # type: ignore[attr-defined]
        retry._keyfob_token = token  # type: ignore[attr-defined]
        connection = response.connection
        new = connection.send(retry, **kwargs)
        new.history.append(response)
        new.request = retry
        return new


class HttpxAuth(_Bound, httpx.Auth):
    """``httpx`` auth for ``httpx.Client`` and ``httpx.AsyncClient``."""

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code == 401 and _saw_token(response, request):
            response.read()
            request.headers["Authorization"] = self.replace(token).authorization
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # From memory at once; otherwise the broker's async path, on this loop.
        token = self.peek() or await self.atoken()
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code == 401 and _saw_token(response, request):
            await response.aread()
            fresh = await self.areplace(token)
            request.headers["Authorization"] = fresh.authorization
            yield request


def _saw_token(response: httpx.Response, request: httpx.Request) -> bool:
    """Whether the 401 came from where the token was sent. httpx hands the auth flow
    the answer at the end of the redirects, and drops ``Authorization`` when they
    leave the origin: a 401 from there says nothing of the token. (requests calls
    the hook per answer and only the first request carries the token: no check.)"""
    sent, answered = request.url, response.request.url
    return (sent.scheme, sent.host, sent.port) == (answered.scheme, answered.host, answered.port)


def requests_auth(provider: str, **kw: Any) -> RequestsAuth:
    """A ``requests.auth.AuthBase`` that sets ``Authorization`` and, on a 401,
    drops the token, gets a new one and retries once."""
    return RequestsAuth(provider, **kw)


def httpx_auth(provider: str, **kw: Any) -> HttpxAuth:
    """The same as an ``httpx.Auth``, for ``httpx.Client`` and ``httpx.AsyncClient``."""
    return HttpxAuth(provider, **kw)


def session(provider: str, **kw: Any) -> requests.Session:
    """A ``requests.Session`` with ``requests_auth(provider, **kw)`` attached."""
    s = requests.Session()
    s.auth = requests_auth(provider, **kw)
    return s
