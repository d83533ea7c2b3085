"""What every emulated API speaks: requests and answers, OAuth errors, base64url and JWTs.

The HTTP shell (``server``) turns bytes into a :class:`Request` and a :class:`Response`
back into bytes; the API modules (``inaturalist``, ``treesnap``, ``twitter``,
``oauth2``) only see these values. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

JSON = "application/json; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


# --------------------------------------------------------------------------- encodings
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


_DIGESTS: dict[str, Callable[[], Any]] = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}


def jwt_encode(payload: dict[str, Any], key: bytes, alg: str, header: dict[str, Any]) -> str:
    signing_input = f"{b64url(dumps(header))}.{b64url(dumps(payload))}"
    signature = hmac.new(key, signing_input.encode("ascii"), _DIGESTS[alg]).digest()
    return f"{signing_input}.{b64url(signature)}"


def jwt_decode(token: str, key: bytes, alg: str, now: float) -> dict[str, Any] | None:
    """The payload of a well-formed, correctly signed, unexpired JWT; None otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(header, dict) or header.get("alg") != alg:
        return None
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode("ascii"), _DIGESTS[alg]).digest()
    if not hmac.compare_digest(signature, expected):
        return None
    if not isinstance(payload, dict):
        return None
    exp = payload.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now:
        return None
    return payload


def pkce_matches(verifier: str, challenge: str, method: str = "S256") -> bool:
    """RFC 7636 §4.6: the verifier, hashed (``S256``) or as it is (``plain``), is the
    challenge the authorization request sent."""
    derived = b64url(hashlib.sha256(verifier.encode()).digest()) if method == "S256" else verifier
    return hmac.compare_digest(derived.encode(), challenge.encode())


# --------------------------------------------------------------------------- answers
@dataclass
class Response:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = JSON

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.payload is None:
            return b""
        return dumps(self.payload)


class Reply(Exception):
    """Raised by a handler to answer at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def oauth_error(
    status: int, error: str, description: str | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """An RFC 6749 §5.2 error answer, to raise."""
    payload: dict[str, Any] = {"error": error}
    if description is not None:
        payload["error_description"] = description
    return Reply(Response(status, payload, {**NO_STORE, **(headers or {})}))


# --------------------------------------------------------------------------- requests
@dataclass
class Request:
    method: str
    path: str
    # what a request carries (secrets, tokens) stays out of its repr
    query: str = field(repr=False)
    headers: Message = field(repr=False)
    body: bytes = field(repr=False)

    def media_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def params(self) -> dict[str, str]:
        """Body parameters of a form or JSON body; empty or null values count as absent."""
        if not self.body:
            return {}
        media = self.media_type()
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise oauth_error(400, "invalid_request", "The request body is not UTF-8.") from None
        if media == FORM:
            pairs = parse_qsl(text, keep_blank_values=True)
            names = [name for name, _ in pairs]
            if len(names) != len(set(names)):
                raise oauth_error(
                    400, "invalid_request", "A request parameter was included more than once."
                )
            return {name: value for name, value in pairs if value != ""}
        if media == "application/json" or media.endswith("+json"):
            try:
                data = json.loads(text)
            except (ValueError, RecursionError):  # RecursionError: "[[[[..." 100 000 deep
                raise oauth_error(
                    400, "invalid_request", "The request body is not valid JSON."
                ) from None
            if not isinstance(data, dict):
                raise oauth_error(400, "invalid_request", "The JSON body must be an object.")
            out: dict[str, str] = {}
            for name, value in data.items():
                if value is None or value == "":
                    continue
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise oauth_error(
                        400, "invalid_request", f"Parameter {name!r} must be a string."
                    )
                out[name] = str(value)
            return out
        raise oauth_error(
            400,
            "invalid_request",
            "The request body must be application/x-www-form-urlencoded or application/json.",
        )

    def form_params(self) -> dict[str, str]:
        """Twitter only reads form bodies: anything else has no parameters."""
        return self.params() if self.media_type() == FORM else {}

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization")
        if value is None:
            return None
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return token

    def basic(self) -> tuple[str, str] | None:
        """HTTP Basic credentials (RFC 6749 §2.3.1), None when absent; ValueError if malformed."""
        value = self.headers.get("Authorization")
        if value is None:
            return None
        scheme, _, encoded = value.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("malformed Basic credentials") from None
        if ":" not in decoded:
            raise ValueError("malformed Basic credentials")
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)


# --------------------------------------------------------------------------- routing
Handler = Callable[[Request], Response]
#: path -> method -> handler; each API module declares its own, the shell merges them
Routes = dict[str, dict[str, Handler]]
#: a path pattern (``/v1/observations/<id>``) -> method -> handler, tried after exact paths
Patterns = list[tuple[re.Pattern[str], dict[str, Handler]]]


@dataclass
class Shared:
    """What the emulated APIs share, handed to each by the shell.

    ``revoked`` and ``issued`` are the shell's sets (read and written under its lock,
    which every handler runs inside); ``revoke`` makes a token invalid in every API;
    ``url`` is the server's base URL once it runs.
    """

    revoked: set[str]
    issued: set[str]
    revoke: Callable[[str], None]
    url: Callable[[], str]


# --------------------------------------------------------------------------- device logins
#: RFC 8628 §6.1: consonants only, no look-alikes, typed as XXXX-XXXX (GitHub's too)
_USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"


def new_user_code() -> str:
    letters = "".join(secrets.choice(_USER_CODE_LETTERS) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


@dataclass
class Device:
    """A device authorization (RFC 8628 §3.2) waiting for the person at the page."""

    client_id: str
    scope: str | None
    user_code: str
    expires_at: float
    interval: int
    polled_at: float = 0.0
    approved_by: str | None = None
    denied: bool = False

    def poll(self, now: float) -> str | None:
        """The RFC 8628 §3.5 error a poll at ``now`` is answered with; None once approved.
        A poll sooner than the interval after the last is ``slow_down``, and the interval
        grows by 5 seconds."""
        if self.expires_at <= now:
            return "expired_token"
        if self.denied:
            return "access_denied"
        if self.approved_by is not None:
            return None
        too_soon = now - self.polled_at < self.interval - 0.1  # a clock's grain
        self.polled_at = now
        if too_soon:
            self.interval += 5
            return "slow_down"
        return "authorization_pending"


# --------------------------------------------------------------------------- rate limits
#: (requests, seconds): no more than that many requests in a window of that many seconds
Rate = tuple[int, float]


def _check_rate(rate: Rate) -> Rate:
    limit, seconds = rate
    if limit < 1 or not seconds > 0:
        raise ValueError(f"a rate is (requests >= 1, seconds > 0), not {rate!r}")
    return int(limit), float(seconds)


class SlidingWindow:
    """No more than ``limit`` admitted requests in any window of ``seconds`` (iNaturalist's
    throttle: it only answers 429, saying neither how many are left nor until when)."""

    def __init__(self, rate: Rate) -> None:
        self.limit, self.seconds = _check_rate(rate)
        self.admitted: deque[float] = deque()

    def admit(self, now: float) -> bool:
        while self.admitted and self.admitted[0] <= now - self.seconds:
            self.admitted.popleft()
        if len(self.admitted) >= self.limit:
            return False
        self.admitted.append(now)
        return True


class FixedWindows:
    """Per key (an endpoint), ``limit`` requests per window; a window starts with the
    first request after the last one ended (X's 15-minute windows, the IETF draft's).
    ``admit`` returns (admitted, remaining, the window's end as epoch seconds)."""

    def __init__(self, rate: Rate, *, whole_seconds: bool = False) -> None:
        self.limit, self.seconds = _check_rate(rate)
        #: X says its reset in whole epoch seconds: the window then ends on one
        self.whole_seconds = whole_seconds
        self.windows: dict[str, tuple[float, int]] = {}  # key -> (end, used)

    def admit(self, key: str, now: float) -> tuple[bool, int, float]:
        end, used = self.windows.get(key, (0.0, 0))
        if now >= end:
            end = now + self.seconds
            if self.whole_seconds:
                end = float(math.ceil(end))
            used = 0
        admitted = used < self.limit
        if admitted:
            used += 1
        self.windows[key] = (end, used)
        return admitted, self.limit - used, end
