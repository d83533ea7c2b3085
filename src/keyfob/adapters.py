"""requests and httpx auth: the header in, and on a 401 one retry with a new token.

Each adapter holds a broker (composition, not inheritance of a client): it
asks the broker for a token per request (from memory: microseconds) and, on a
401, tells the broker to drop that token, asks for a new one (a refresh or the
grant, never a person) and sends the request again, once.

A provider that signs (OAuth 1.0a) gets each request signed instead (method,
URL, query and form body; a fresh nonce and timestamp each time, also for a
429 sent again); its 401 is returned as it is: nothing would change. Its rate
budget is the user's (X counts user-context requests per user).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

import httpx
import requests
from requests.auth import AuthBase

from keyfob import wiring
from keyfob.errors import RateLimited
from keyfob.ratelimit import IDEMPOTENT, scope_of
from keyfob.token import Token

if TYPE_CHECKING:
    from keyfob.broker import Broker
    from keyfob.provider.base import Signer
    from keyfob.ratelimit import Budget


def _scope(method: str | None, url: object) -> str:
    """``METHOD /path`` of a request: a learned block's scope. By hand, not urlsplit:
    the auth hook's budget is microseconds (a test pins that both agree)."""
    text = str(url)
    start = text.find("://") + 3
    end = len(text)
    for mark in "/?#":  # the authority ends at the first of these
        at = text.find(mark, start, end)
        if at >= 0:
            end = at
    if end == len(text) or text[end] != "/":
        return scope_of(method or "GET", "/")
    start, end = end, len(text)
    for mark in "?#":
        at = text.find(mark, start, end)
        if at >= 0:
            end = at
    return scope_of(method or "GET", text[start:end])


def _again(budget: Budget | None, method: str | None, status: int, tries: int, left: int) -> bool:
    """Whether an answer is a 429/503 to wait out and send again."""
    return (
        budget is not None
        and status in (429, 503)
        and (method or "GET").upper() in IDEMPOTENT
        and tries < left
    )


class _Bound:
    """A provider, an account and credentials, bound to a broker."""

    def __init__(
        self,
        provider: str,
        *,
        account: str | None = None,
        broker: Broker | None = None,
        rate_limit: bool = True,
        **credentials: Any,
    ) -> None:
        self.provider = provider
        self.account = account
        #: take from the rate budget, learn from rate headers, retry a 429 (see keyfob.ratelimit)
        self.rate_limit = rate_limit
        self._credentials = credentials
        self._broker = broker
        self._budget: tuple[Broker, Budget] | None = None  # the broker's, looked up once
        #: whether the provider signs each request (OAuth 1.0a); None: not asked yet
        self._signs: bool | None = None
        self._signer: tuple[Broker, Signer] | None = None

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

    def budget(self) -> Budget | None:
        if not self.rate_limit:
            return None
        broker, known = self.broker, self._budget
        if known is not None and known[0] is broker:
            return known[1]
        account = self.account
        if account is None and self._signer is not None:
            # a signing provider's limits are the user's: this adapter's (its arguments
            # may name another user than the stored secrets do)
            account = self._signer[1].who
        budget = broker.budget(self.provider, account)
        self._budget = (broker, budget)
        return budget

    def signs(self) -> bool:
        """Whether the provider signs each request (asked once)."""
        if self._signs is None:
            self._signs = self.broker.provider(self.provider).kind.signer is not None
        return self._signs

    def signer(self) -> Signer:
        broker, known = self.broker, self._signer
        if known is not None and known[0] is broker:
            return known[1]
        signer = broker.signer(self.provider, account=self.account, **self._credentials)
        assert signer is not None
        self._signer = (broker, signer)
        return signer

    def retries(self) -> int:
        return self.broker.limiter.retries

    def __repr__(self) -> str:
        account = f" account={self.account!r}" if self.account else ""
        return f"<{type(self).__name__} {self.provider}{account}>"


class RequestsAuth(_Bound, AuthBase):
    """``requests`` auth: ``requests.get(url, auth=keyfob.requests_auth("twitter"))``."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        signer = self.signer() if self._signs is not False and self.signs() else None
        budget = self.budget()
        if budget is not None:
            budget.take(_scope(r.method, r.url))  # RateLimited before anything is sent
        if signer is not None:
            r._keyfob_unsigned = (r.url, r.headers.copy(), r.body)  # type: ignore[attr-defined]
            _sign_prepared(r, signer)
        else:
            token = self.token()
            r.headers["Authorization"] = token.authorization
            r._keyfob_token = token  # type: ignore[attr-defined]
        r.register_hook("response", self._on_answer)  # type: ignore[no-untyped-call]
        return r

    def _on_answer(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """One hook (each costs the auth hook a microsecond): the rate budget, then a 401."""
        if self.rate_limit:
            response = self._on_rate(response, **kwargs)
        return self._on_response(response, **kwargs)

    def _on_rate(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """Learn from the answer's rate headers; wait out a 429/503 and send again."""
        budget = self.budget()
        assert budget is not None
        request = response.request
        scope = _scope(request.method, request.url)
        tries = 0
        while True:
            budget.learn(
                request.method or "GET",
                scope.split(" ", 1)[1],
                response.status_code,
                response.headers,
            )
            if not _again(budget, request.method, response.status_code, tries, self.retries()):
                return response
            try:
                budget.take(scope)
            except RateLimited:
                return response  # not within max_wait: the answer as the server sent it
            tries += 1
            response.content  # noqa: B018 - release the connection
            response.close()
            retry = request.copy()
            unsigned = getattr(request, "_keyfob_unsigned", None)
            if unsigned is not None:  # signed again: a fresh nonce, or the server refuses it
                retry.url, headers, retry.body = unsigned
                retry.headers = headers.copy()
                _sign_prepared(retry, self.signer())
            new = response.connection.send(retry, **kwargs)
            new.history.append(response)
            new.request = retry
            response = new

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
        signer = self.signer() if self._signs is not False and self.signs() else None
        budget = self.budget()
        if budget is not None:
            scope = scope_of(request.method, request.url.path)  # httpx parsed it
            budget.take(scope)
        if signer is not None:
            if _is_form(request):
                request.read()
            unsigned = _unsigned(request)
            _sign_httpx(request, signer, unsigned)
        else:
            token = self.token()
            request.headers["Authorization"] = token.authorization
        response = yield request
        tries = 0
        while budget is not None:
            budget.learn(request.method, request.url.path, response.status_code, response.headers)
            if not _again(budget, request.method, response.status_code, tries, self.retries()):
                break
            try:
                budget.take(scope)
            except RateLimited:
                return
            tries += 1
            response.read()
            if signer is not None:  # signed again: a fresh nonce, or the server refuses it
                _sign_httpx(request, signer, unsigned)
            response = yield request
        # A signed request's 401 is returned as it is: signed again, it would say the same.
        if signer is None and response.status_code == 401 and _saw_token(response, request):
            response.read()
            request.headers["Authorization"] = self.replace(token).authorization
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        signer = self.signer() if self._signs is not False and self.signs() else None
        budget = self.budget()
        if budget is not None:
            scope = scope_of(request.method, request.url.path)  # httpx parsed it
            await budget.atake(scope)  # asyncio.sleep: the loop runs on while this waits
        if signer is not None:
            if _is_form(request):
                await request.aread()
            unsigned = _unsigned(request)
            _sign_httpx(request, signer, unsigned)
        else:
            # From memory at once; otherwise the broker's async path, on this loop.
            token = self.peek() or await self.atoken()
            request.headers["Authorization"] = token.authorization
        response = yield request
        tries = 0
        while budget is not None:
            budget.learn(request.method, request.url.path, response.status_code, response.headers)
            if not _again(budget, request.method, response.status_code, tries, self.retries()):
                break
            try:
                await budget.atake(scope)
            except RateLimited:
                return
            tries += 1
            await response.aread()
            if signer is not None:
                _sign_httpx(request, signer, unsigned)
            response = yield request
        if signer is None and response.status_code == 401 and _saw_token(response, request):
            await response.aread()
            fresh = await self.areplace(token)
            request.headers["Authorization"] = fresh.authorization
            yield request


def _sign_prepared(r: requests.PreparedRequest, signer: Signer) -> None:
    """Sign a prepared request in place: a form body is signed with it, a file or
    stream body is sent as it is, unsigned (RFC 5849 §3.4.1.3.1)."""
    body = r.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    readable = body if isinstance(body, bytes) else None
    url, headers, signed = signer.sign(r.method or "GET", r.url or "", r.headers, readable)
    r.url = url
    for name, value in headers.items():
        r.headers[name] = value
    if readable is not None and signed is not None and signed != readable:
        r.body = signed
        r.headers["Content-Length"] = str(len(signed))


def _is_form(request: httpx.Request) -> bool:
    kind: str = request.headers.get("content-type", "")
    return kind.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"


def _unsigned(request: httpx.Request) -> tuple[str, list[tuple[str, str]], bytes | None]:
    """The request before signing: each attempt is signed afresh from it."""
    try:
        body: bytes | None = request.content
    except httpx.RequestNotRead:
        body = None  # a stream: sent as it is, unsigned
    return str(request.url), list(request.headers.multi_items()), body


def _sign_httpx(
    request: httpx.Request,
    signer: Signer,
    unsigned: tuple[str, list[tuple[str, str]], bytes | None],
) -> None:
    url, headers, body = unsigned
    request.headers = httpx.Headers(headers)
    signed_url, signed_headers, signed_body = signer.sign(
        request.method, url, dict(request.headers), body
    )
    request.url = httpx.URL(signed_url)
    for name, value in signed_headers.items():
        request.headers[name] = value
    if body is not None and signed_body is not None:
        request.stream = httpx.ByteStream(signed_body)
        request._content = signed_body
        request.headers["Content-Length"] = str(len(signed_body))


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
