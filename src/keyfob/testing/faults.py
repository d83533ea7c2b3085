"""Misbehaviour on demand, for any path of the emulator: delays, failures, garbage bodies.

The shell (``server``) asks before each answer whether to sleep, whether to answer a
made-up failure instead, and how to spoil a real answer. Standard library only.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from keyfob.testing.wire import FORM, NO_STORE, Request, Response

GARBAGE_KINDS = frozenset(
    {
        "html",
        "text",
        "json_array",
        "no_access_token",
        # GitHub's form answer (application/x-www-form-urlencoded) without a token
        "form_without_token",
        "expires_in_string",
        "expires_in_garbage",
        "expires_in_negative",
        "expires_in_huge",
        "truncated",
        # hostile answers: a token that would break out of a header or a terminal
        "access_token_newline",
        "access_token_surrogate",
        "token_type_crlf",
        # a server that quotes the request back in its error (body, then Authorization)
        "echo",
        # OAuth 1.0a form answers: a token without its secret; a request token whose
        # callback the server did not confirm (OAuth 1.0, not 1.0a)
        "no_token_secret",
        "callback_unconfirmed",
    }
)
#: what each OAuth 1.0a kind does to a form answer's fields
_FORM_CHANGES: dict[str, tuple[str, str | None]] = {
    "no_token_secret": ("oauth_token_secret", None),
    "callback_unconfirmed": ("oauth_callback_confirmed", "false"),
}

#: what each hostile kind puts into a real token answer
_HOSTILE: dict[str, dict[str, Any]] = {
    "access_token_newline": {"access_token": "hostile-token\nX-Injected: yes"},
    "access_token_surrogate": {"access_token": "hostile-token-\ud800"},
    "token_type_crlf": {"token_type": "Bearer\r\nX-Injected: yes"},
}


@dataclass
class Fault:
    kind: str  # "fail", "redirect" or one of GARBAGE_KINDS
    remaining: int
    status: int = 200
    retry_after: str | None = None
    location: str | None = None


@dataclass
class _Delay:
    seconds: float
    remaining: int | None


class Faults:
    """The delays and faults pending on each path, consumed in order."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._faults: dict[str, deque[Fault]] = {}
        self._delays: dict[str, deque[_Delay]] = {}

    def delay(self, path: str, seconds: float, times: int | None) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._delays.setdefault(path, deque()).append(_Delay(seconds, times))

    def fail(self, path: str, status: int, *, times: int, retry_after: str | None) -> None:
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        self._add(path, Fault("fail", times, status, retry_after), times)

    def redirect(self, path: str, location: str, *, status: int, times: int) -> None:
        if status not in (301, 302, 303, 307, 308):
            raise ValueError("status must be a redirect: 301, 302, 303, 307 or 308")
        self._add(path, Fault("redirect", times, status, location=location), times)

    def garbage(self, path: str, kind: str, *, times: int) -> None:
        if kind not in GARBAGE_KINDS:
            raise ValueError(f"unknown garbage kind {kind!r}; one of {sorted(GARBAGE_KINDS)}")
        self._add(path, Fault(kind, times), times)

    def clear(self, path: str | None) -> None:
        with self._lock:
            if path is None:
                self._faults.clear()
                self._delays.clear()
            else:
                self._faults.pop(path, None)
                self._delays.pop(path, None)

    def _add(self, path: str, fault: Fault, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(path, deque()).append(fault)

    def take_delay(self, path: str) -> float:
        with self._lock:
            queue = self._delays.get(path)
            if not queue:
                return 0.0
            head = queue[0]
            if head.remaining is not None:
                head.remaining -= 1
                if head.remaining <= 0:
                    queue.popleft()
            return head.seconds

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            if not queue:
                return None
            head = queue[0]
            head.remaining -= 1
            if head.remaining <= 0:
                queue.popleft()
            return head


def synthetic(fault: Fault, request: Request) -> Response | None:
    """The made-up answer that replaces the real one; None: spoil the real one instead."""
    if fault.kind == "echo":
        said = request.body.decode("utf-8", "replace")
        if request.headers.get("Authorization"):
            said += " " + str(request.headers.get("Authorization"))
        return Response(400, {"error": "invalid_request", "error_description": said})
    if fault.kind == "redirect":
        return Response(fault.status, None, {"Location": fault.location or "/"})
    if fault.kind == "fail":
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        return Response(fault.status, {"error": "temporarily_unavailable"}, headers)
    if fault.kind == "html":
        page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>" + (
            b"<h1>Please sign in</h1><form><input name='password'></form></body></html>"
        )
        return Response(200, raw=page, content_type="text/html; charset=utf-8")
    if fault.kind == "text":
        return Response(200, raw=b"OK", content_type="text/plain; charset=utf-8")
    if fault.kind == "json_array":
        return Response(200, raw=b"[]")
    if fault.kind == "no_access_token":
        return Response(200, {"token_type": "Bearer"}, dict(NO_STORE))
    if fault.kind == "form_without_token":
        body = b"scope=repo&token_type=bearer"
        return Response(200, raw=body, content_type="application/x-www-form-urlencoded")
    return None


def spoil(fault: Fault, response: Response) -> Response:
    """The real answer, cut in half, with a bad ``expires_in`` or a hostile field."""
    if fault.kind == "truncated":
        body = response.body()
        return Response(200, raw=body[: len(body) // 2], headers=response.headers)
    if fault.kind in _FORM_CHANGES:
        if response.content_type != FORM or response.raw is None:
            return response
        name, new = _FORM_CHANGES[fault.kind]
        pairs = [(k, v) for k, v in parse_qsl(response.raw.decode()) if k != name]
        if new is not None:
            pairs.append((name, new))
        response.raw = urlencode(pairs).encode()
        return response
    if fault.kind in _HOSTILE:
        if isinstance(response.payload, dict):
            field = "api_token" if "api_token" in response.payload else None
            changes = dict(_HOSTILE[fault.kind])
            if field and "access_token" in changes:  # iNaturalist's JWT answer
                changes[field] = changes.pop("access_token")
            response.payload = {**response.payload, **changes}
        return response
    if response.status == 200 and isinstance(response.payload, dict):
        value: Any = {
            "expires_in_string": "3599",
            "expires_in_garbage": "soon",
            "expires_in_huge": 1e300,
        }.get(fault.kind, -5)
        response.payload = {**response.payload, "expires_in": value}
    return response
