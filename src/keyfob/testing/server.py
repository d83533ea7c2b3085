"""A local emulator of the token endpoints keyfob talks to.

One HTTP server on 127.0.0.1 (ephemeral port) plays four providers at once:

* iNaturalist: ``/oauth/authorize`` (auto-approved as a signed-in user, or denied, on
  demand), ``/oauth/token`` (password and authorization-code grants, PKCE),
  ``/users/api_token`` (OAuth token -> JWT), ``/v1/observations/<id>`` (private
  coordinates only with the owner's JWT), ``/oauth/revoke``;
* TreeSnap: ``/web-services/v1/refresh-tokens`` and ``/web-services/v1/my-observations``;
* Twitter/X: ``/oauth2/token``, ``/oauth2/invalidate_token`` and ``/2/users/me``;
* a plain OAuth2 server under ``/std`` (RFC 6749, 7009, 7662, 8414).

It refuses what the real services refuse, can misbehave on demand (delays, 429/503,
garbage bodies), counts requests per path, and never logs or prints anything.
Standard library only; every credential in here is made up.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import socket
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_INAT_APP_ID",
    "DEMO_INAT_APP_SECRET",
    "DEMO_INAT_PASSWORD",
    "DEMO_INAT_USERNAME",
    "DEMO_PASSWORD",
    "DEMO_TREESNAP_USER",
    "DEMO_TWITTER_API_KEY",
    "DEMO_TWITTER_API_SECRET",
    "DEMO_USERNAME",
    "GARBAGE_KINDS",
    "LocalProvider",
]

# --------------------------------------------------------------------------- demo accounts
DEMO_INAT_APP_ID = "demo-app-id"
DEMO_INAT_APP_SECRET = "demo-app-secret-0123456789"
DEMO_INAT_USERNAME = "demo-naturalist"
DEMO_INAT_PASSWORD = "demo-password-0123456789"
DEMO_TWITTER_API_KEY = "demo-api-key"
DEMO_TWITTER_API_SECRET = "demo-api-secret-0123456789"
DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-client-secret-0123456789"
DEMO_USERNAME = "demo-user"
DEMO_PASSWORD = "demo-user-password-0123456789"
DEMO_TREESNAP_USER = "demo-treesnapper"

GARBAGE_KINDS = frozenset(
    {
        "html",
        "text",
        "json_array",
        "no_access_token",
        "expires_in_string",
        "expires_in_garbage",
        "expires_in_negative",
        "truncated",
    }
)

_MAX_BODY = 1 << 20
_JSON = "application/json; charset=utf-8"
_FORM = "application/x-www-form-urlencoded"
_TWITTER_PREFIX = "AAAAAAAAAAAAAAAAAAAAA"
_ALNUM = string.ascii_letters + string.digits
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_OBSERVATION = re.compile(r"/v1/observations/([0-9]{1,18})")
_PKCE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1-4.2
_INAT_SCOPES = frozenset({"login", "write"})
_EXACT = [-84.123456, 35.654321]  # GeoJSON order: longitude, latitude
_ROUNDED = [-84.1, 35.7]

_INAT_INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)
_INAT_INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
_INAT_UNAUTHORIZED: dict[str, Any] = {"error": "Unauthorized", "status": 401}
_TWITTER_BAD_CREDENTIALS: dict[str, Any] = {
    "errors": [
        {
            "code": 99,
            "message": "Unable to verify your credentials",
            "label": "authenticity_token_error",
        }
    ]
}
_TWITTER_UNAUTHORIZED: dict[str, Any] = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# --------------------------------------------------------------------------- small helpers
def _twitter_missing(name: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "code": 170,
                "message": f"Missing required parameter: {name}",
                "label": "forbidden_missing_parameter",
            }
        ]
    }


def _random_alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


_DIGESTS: dict[str, Callable[[], Any]] = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}


def _jwt_encode(payload: dict[str, Any], key: bytes, alg: str, header: dict[str, Any]) -> str:
    signing_input = f"{_b64url(_dumps(header))}.{_b64url(_dumps(payload))}"
    signature = hmac.new(key, signing_input.encode("ascii"), _DIGESTS[alg]).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _jwt_decode(token: str, key: bytes, alg: str, now: float) -> dict[str, Any] | None:
    """The payload of a well-formed, correctly signed, unexpired JWT; None otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url_decode(parts[0]))
        payload = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
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


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


# --------------------------------------------------------------------------- request/response
@dataclass
class _Response:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = _JSON

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.payload is None:
            return b""
        return _dumps(self.payload)


class _Reply(Exception):
    """Raised by a handler to answer at once."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


def _oauth_error(
    status: int, error: str, description: str | None = None, headers: dict[str, str] | None = None
) -> _Reply:
    payload: dict[str, Any] = {"error": error}
    if description is not None:
        payload["error_description"] = description
    return _Reply(_Response(status, payload, {**_NO_STORE, **(headers or {})}))


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: Message
    body: bytes

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
            raise _oauth_error(400, "invalid_request", "The request body is not UTF-8.") from None
        if media == _FORM:
            pairs = parse_qsl(text, keep_blank_values=True)
            names = [name for name, _ in pairs]
            if len(names) != len(set(names)):
                raise _oauth_error(
                    400, "invalid_request", "A request parameter was included more than once."
                )
            return {name: value for name, value in pairs if value != ""}
        if media == "application/json" or media.endswith("+json"):
            try:
                data = json.loads(text)
            except ValueError:
                raise _oauth_error(
                    400, "invalid_request", "The request body is not valid JSON."
                ) from None
            if not isinstance(data, dict):
                raise _oauth_error(400, "invalid_request", "The JSON body must be an object.")
            out: dict[str, str] = {}
            for name, value in data.items():
                if value is None or value == "":
                    continue
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise _oauth_error(
                        400, "invalid_request", f"Parameter {name!r} must be a string."
                    )
                out[name] = str(value)
            return out
        raise _oauth_error(
            400,
            "invalid_request",
            "The request body must be application/x-www-form-urlencoded or application/json.",
        )

    def form_params(self) -> dict[str, str]:
        """Twitter only reads form bodies: anything else has no parameters."""
        return self.params() if self.media_type() == _FORM else {}

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


# --------------------------------------------------------------------------- state records
@dataclass
class _StdAccess:
    client_id: str
    username: str | None
    scope: str | None
    expires_at: float
    grant_id: int | None


@dataclass
class _StdRefresh:
    client_id: str
    username: str
    scope: str | None
    grant_id: int


@dataclass
class _InatCode:
    """An authorization code of iNaturalist's ``/oauth/authorize`` (Doorkeeper)."""

    app_id: str
    redirect_uri: str
    username: str
    scope: str
    challenge: str | None
    method: str | None
    expires_at: float
    token: str | None = None  # the access token it was redeemed for (replay revokes it)


@dataclass
class _Fault:
    kind: str  # "fail" or one of GARBAGE_KINDS
    remaining: int
    status: int = 200
    retry_after: str | None = None


@dataclass
class _Delay:
    seconds: float
    remaining: int | None


Route = Callable[[_Request], _Response]


# --------------------------------------------------------------------------- HTTP plumbing
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a fleet of cold clients connects at once (socketserver says 5)

    def __init__(self, address: tuple[str, int], provider: LocalProvider) -> None:
        self.provider = provider
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Never print: a client hanging up mid-answer is not our business."""


class _Handler(BaseHTTPRequestHandler):
    server_version = "keyfob-emulator/1"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: request lines can hold secrets in their query strings."""

    @property
    def provider(self) -> LocalProvider:
        server: BaseServer = self.server
        assert isinstance(server, _Server)
        return server.provider

    def setup(self) -> None:
        super().setup()
        self.provider._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.provider._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        provider = self.provider
        provider._record(split.path)
        if self.headers.get("Transfer-Encoding"):
            self._send(_Response(411, {"error": "length_required"}), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0:
            self._send(_Response(400, {"error": "invalid_request"}), close=True)
            return
        if length > _MAX_BODY:
            self._send(_Response(413, {"error": "request_too_large"}), close=True)
            return
        body = self.rfile.read(length) if length else b""
        request = _Request(self.command, split.path, split.query, self.headers, body)
        self._send(provider._answer(request))

    def _send(self, response: _Response, *, close: bool = False) -> None:
        body = response.body()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if body or response.raw is not None:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------- the provider
class LocalProvider:
    """An in-process fake of iNaturalist, TreeSnap, Twitter/X and a plain OAuth2 server.

    >>> with LocalProvider() as provider:
    ...     provider.url  # 'http://127.0.0.1:PORT'
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_token_lifetime: int = 3600,
        jwt_lifetime: int = 86400,
        treesnap_lifetime: int = 365 * 86400,
        rotate_refresh_tokens: bool = True,
        demo_accounts: bool = True,
        inat_authorize_as: str | None = DEMO_INAT_USERNAME,
        inat_deny: bool = False,
        inat_code_lifetime: int = 60,
    ) -> None:
        if host != "127.0.0.1":
            raise ValueError("LocalProvider only binds 127.0.0.1")
        self.host = host
        self.port = port
        self.url = ""
        self.access_token_lifetime = access_token_lifetime
        self.jwt_lifetime = jwt_lifetime
        self.treesnap_lifetime = treesnap_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        #: iNaturalist's authorize endpoint approves at once as this signed-in user
        #: (tests need no browser); None: nobody is signed in, it answers a sign-in page
        self.inat_authorize_as = inat_authorize_as
        #: the person clicks "Deny": the authorize endpoint redirects with access_denied
        self.inat_deny = inat_deny
        self.inat_code_lifetime = inat_code_lifetime
        #: exceptions raised inside request handlers (answered with 500); should stay empty
        self.errors: list[BaseException] = []

        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._counts: Counter[str] = Counter()
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, deque[_Delay]] = {}
        self._revoked: set[str] = set()
        self._issued: set[str] = set()

        self._jwt_key = secrets.token_bytes(64)
        self._treesnap_key = secrets.token_bytes(32)

        # iNaturalist
        self._inat_apps: dict[str, str] = {}
        self._inat_redirects: dict[str, str | None] = {}  # app id -> registered redirect URI
        self._inat_codes: dict[str, _InatCode] = {}
        self._inat_users: dict[str, str] = {}
        self._inat_user_ids: dict[str, int] = {DEMO_INAT_USERNAME: 1}
        self._inat_tokens: dict[str, str] = {}  # OAuth access token -> login
        # TreeSnap
        self._treesnap_user_ids: dict[str, str] = {}
        # Twitter
        self._twitter_apps: dict[str, str] = {}
        self._twitter_current: dict[str, str] = {}  # api key -> bearer token
        self._twitter_tokens: dict[str, str] = {}  # bearer token -> api key
        # plain OAuth2
        self._std_clients: dict[str, str] = {}
        self._std_users: dict[str, str] = {}
        self._std_access: dict[str, _StdAccess] = {}
        self._std_refresh: dict[str, _StdRefresh] = {}
        self._std_grants = 0

        self._routes: dict[str, dict[str, Route]] = {
            "/oauth/authorize": {"GET": self._inat_authorize},
            "/oauth/token": {"POST": self._inat_token},
            "/users/api_token": {"GET": self._inat_api_token},
            "/oauth/revoke": {"POST": self._inat_revoke},
            "/web-services/v1/refresh-tokens": {"POST": self._treesnap_refresh},
            "/web-services/v1/my-observations": {"GET": self._treesnap_observations},
            "/oauth2/token": {"POST": self._twitter_token},
            "/oauth2/invalidate_token": {"POST": self._twitter_invalidate},
            "/2/users/me": {"GET": self._twitter_me},
            "/std/.well-known/openid-configuration": {"GET": self._std_metadata},
            "/.well-known/oauth-authorization-server/std": {"GET": self._std_metadata},
            "/std/token": {"POST": self._std_token},
            "/std/revoke": {"POST": self._std_revoke},
            "/std/introspect": {"POST": self._std_introspect},
            "/std/api/me": {"GET": self._std_me},
        }

        if demo_accounts:
            self.add_inat_app(DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET)
            self.add_inat_user(DEMO_INAT_USERNAME, DEMO_INAT_PASSWORD)
            self.add_twitter_app(DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET)
            self.add_oauth_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
            self.add_oauth_user(DEMO_USERNAME, DEMO_PASSWORD)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalProvider:
        with self._lock:
            if self._server is not None:
                raise RuntimeError("LocalProvider is already running")
            server = _Server((self.host, self.port), self)
            self._server = server
            self.url = f"http://{self.host}:{server.server_address[1]}"
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="keyfob-local-provider",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            connections = list(self._connections)
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for connection in connections:  # kept-alive connections must not outlive the server
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join()

    def __enter__(self) -> LocalProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def server_address(self) -> tuple[str, int]:
        """The bound (host, port); only while running."""
        if self._server is None:
            raise RuntimeError("LocalProvider is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # ------------------------------------------------------------------ accounts
    def add_inat_app(self, app_id: str, app_secret: str, redirect_uri: str | None = None) -> None:
        """An iNaturalist app. ``redirect_uri``: the one it registered; a loopback one
        (``http://127.0.0.1/...``) matches any port (RFC 8252 §7.3). None: a native app
        that takes any loopback redirect, ``http://127.0.0.1:<any port>/<any path>``."""
        with self._lock:
            self._inat_apps[app_id] = app_secret
            self._inat_redirects[app_id] = redirect_uri

    def deny_authorizations(self, deny: bool = True) -> None:
        """From now on the person denies (or, with False, approves) at ``/oauth/authorize``."""
        with self._lock:
            self.inat_deny = deny

    def add_inat_user(self, username: str, password: str) -> None:
        with self._lock:
            self._inat_users[username] = password
            if username not in self._inat_user_ids:
                self._inat_user_ids[username] = max(self._inat_user_ids.values()) + 1

    def add_oauth_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._std_clients[client_id] = client_secret

    def add_oauth_user(self, username: str, password: str) -> None:
        with self._lock:
            self._std_users[username] = password

    def add_twitter_app(self, api_key: str, api_secret: str) -> None:
        with self._lock:
            self._twitter_apps[api_key] = api_secret

    def issue_treesnap_token(
        self, user: str = DEMO_TREESNAP_USER, lifetime: int | None = None, *, age: int = 0
    ) -> str:
        """A TreeSnap personal access token (HS256 JWT); a negative lifetime makes it expired.

        ``age``: how many seconds ago it was issued (``exp`` is ``iat + lifetime``)."""
        with self._lock:
            if user not in self._treesnap_user_ids:
                self._treesnap_user_ids[user] = str(len(self._treesnap_user_ids) + 1)
            sub = self._treesnap_user_ids[user]
        token = self._treesnap_jwt(
            sub, self.treesnap_lifetime if lifetime is None else lifetime, age=age
        )
        with self._lock:
            self._issued.add(token)
        return token

    def issued(self) -> set[str]:
        """Every token this server has handed out: tests search outputs for them."""
        with self._lock:
            return set(self._issued)

    def _treesnap_jwt(self, sub: str, lifetime: int, *, age: int = 0) -> str:
        now = int(time.time()) - age
        payload = {"sub": sub, "jti": secrets.token_hex(16), "iat": now, "exp": now + lifetime}
        return _jwt_encode(payload, self._treesnap_key, "HS256", {"typ": "JWT", "alg": "HS256"})

    # ------------------------------------------------------------------ acting behind the back
    def revoke(self, token: str) -> None:
        """Make any token or refresh token invalid everywhere."""
        with self._lock:
            self._revoked.add(token)
            self._inat_tokens.pop(token, None)
            api_key = self._twitter_tokens.pop(token, None)
            if api_key is not None and self._twitter_current.get(api_key) == token:
                del self._twitter_current[api_key]
            self._std_access.pop(token, None)
            refresh = self._std_refresh.pop(token, None)
            if refresh is not None:
                self._std_revoke_grant(refresh.grant_id)

    def is_active(self, token: str) -> bool:
        with self._lock:
            now = time.time()
            if token in self._revoked:
                return False
            if token in self._inat_tokens or token in self._twitter_tokens:
                return True
            if token in self._std_refresh:
                return True
            access = self._std_access.get(token)
            if access is not None:
                return access.expires_at > now
            return (
                _jwt_decode(token, self._jwt_key, "HS512", now) is not None
                or _jwt_decode(token, self._treesnap_key, "HS256", now) is not None
            )

    # ------------------------------------------------------------------ observation
    def count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    def _record(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    # ------------------------------------------------------------------ misbehaviour
    def delay(self, path: str, seconds: float, times: int | None = None) -> None:
        """Sleep ``seconds`` before answering the next ``times`` requests (None: all of them)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._delays.setdefault(path, deque()).append(_Delay(seconds, times))

    def fail(
        self, path: str, status: int, *, times: int = 1, retry_after: str | None = None
    ) -> None:
        """Answer the next ``times`` requests with ``status`` and an optional Retry-After."""
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        self._add_fault(path, _Fault("fail", times, status, retry_after), times)

    def garbage(self, path: str, kind: str, *, times: int = 1) -> None:
        """Answer the next ``times`` requests with a malformed body of the given kind."""
        if kind not in GARBAGE_KINDS:
            raise ValueError(f"unknown garbage kind {kind!r}; one of {sorted(GARBAGE_KINDS)}")
        self._add_fault(path, _Fault(kind, times), times)

    def clear_faults(self, path: str | None = None) -> None:
        """Forget pending delays, failures and garbage (for one path, or all)."""
        with self._lock:
            if path is None:
                self._faults.clear()
                self._delays.clear()
            else:
                self._faults.pop(path, None)
                self._delays.pop(path, None)

    def _add_fault(self, path: str, fault: _Fault, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(path, deque()).append(fault)

    def _take_delay(self, path: str) -> float:
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

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            if not queue:
                return None
            head = queue[0]
            head.remaining -= 1
            if head.remaining <= 0:
                queue.popleft()
            return head

    # ------------------------------------------------------------------ configuration
    def config_toml(self) -> str:
        u = self._require_url()
        return (
            "[providers.inaturalist]\n"
            f'token_url = "{u}/oauth/token"\n'
            f'authorize_url = "{u}/oauth/authorize"\n'
            f'jwt_url = "{u}/users/api_token"\n'
            f'revoke_url = "{u}/oauth/revoke"\n'
            f'api_url = "{u}/v1"\n'
            "\n"
            "[providers.treesnap]\n"
            f'refresh_url = "{u}/web-services/v1/refresh-tokens"\n'
            f'api_url = "{u}/web-services/v1"\n'
            "\n"
            "[providers.twitter]\n"
            f'token_url = "{u}/oauth2/token"\n'
            f'revoke_url = "{u}/oauth2/invalidate_token"\n'
            f'api_url = "{u}/2"\n'
            "\n"
            "[providers.local]\n"
            f'issuer = "{u}/std"\n'
            'grant = "password"\n'
            'env_prefix = "LOCAL"\n'
        )

    def environ(self) -> dict[str, str]:
        return {
            "INAT_USERNAME": DEMO_INAT_USERNAME,
            "INAT_PASSWORD": DEMO_INAT_PASSWORD,
            "INAT_APP_ID": DEMO_INAT_APP_ID,
            "INAT_APP_SECRET": DEMO_INAT_APP_SECRET,
            "TWITTER_API_KEY": DEMO_TWITTER_API_KEY,
            "TWITTER_API_SECRET": DEMO_TWITTER_API_SECRET,
            "LOCAL_CLIENT_ID": DEMO_CLIENT_ID,
            "LOCAL_CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "LOCAL_USERNAME": DEMO_USERNAME,
            "LOCAL_PASSWORD": DEMO_PASSWORD,
        }

    def _require_url(self) -> str:
        if not self.url:
            raise RuntimeError("start() the LocalProvider first")
        return self.url

    # ------------------------------------------------------------------ answering
    def _answer(self, request: _Request) -> _Response:
        pause = self._take_delay(request.path)
        if pause:
            time.sleep(pause)
        fault = self._take_fault(request.path)
        if fault is not None:
            synthetic = self._synthetic(fault)
            if synthetic is not None:
                return synthetic
        response = self._route(request)
        if isinstance(response.payload, dict):
            with self._lock:
                self._issued.update(
                    v
                    for k in ("access_token", "refresh_token", "api_token")
                    if isinstance(v := response.payload.get(k), str) and v
                )
        if fault is None:
            return response
        if fault.kind == "truncated":
            body = response.body()
            return _Response(200, raw=body[: len(body) // 2], headers=response.headers)
        if response.status == 200 and isinstance(response.payload, dict):
            value: Any = {"expires_in_string": "3599", "expires_in_garbage": "soon"}.get(
                fault.kind, -5
            )
            response.payload = {**response.payload, "expires_in": value}
        return response

    @staticmethod
    def _synthetic(fault: _Fault) -> _Response | None:
        if fault.kind == "fail":
            headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
            return _Response(fault.status, {"error": "temporarily_unavailable"}, headers)
        if fault.kind == "html":
            page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>" + (
                b"<h1>Please sign in</h1><form><input name='password'></form></body></html>"
            )
            return _Response(200, raw=page, content_type="text/html; charset=utf-8")
        if fault.kind == "text":
            return _Response(200, raw=b"OK", content_type="text/plain; charset=utf-8")
        if fault.kind == "json_array":
            return _Response(200, raw=b"[]")
        if fault.kind == "no_access_token":
            return _Response(200, {"token_type": "Bearer"}, dict(_NO_STORE))
        return None

    def _route(self, request: _Request) -> _Response:
        methods = self._routes.get(request.path)
        handler: Route | None
        if methods is None:
            match = _OBSERVATION.fullmatch(request.path)
            methods = {"GET": self._inat_observation} if match else None
        if methods is None:
            return _Response(404, {"error": "not_found"})
        handler = methods.get(request.method)
        if handler is None:
            allow = ", ".join(sorted(methods))
            return _Response(405, {"error": "method_not_allowed"}, {"Allow": allow})
        if request.method == "POST" and request.query:
            return _oauth_error(
                400,
                "invalid_request",
                "Parameters must be sent in the request body, not the URI.",
            ).response
        try:
            with self._lock:
                return handler(request)
        except _Reply as reply:
            return reply.response
        except Exception as exc:  # a bug in the emulator: answer 500, keep it for the tests
            with self._lock:
                self.errors.append(exc)
            return _Response(500, {"error": "server_error"})

    # ------------------------------------------------------------------ iNaturalist
    def _inat_token(self, request: _Request) -> _Response:
        params = request.params()
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise _oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        if grant_type == "authorization_code":
            return self._inat_code_grant(request, params)
        if grant_type != "password":
            raise _oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            )
        app_id, app_secret = params.get("client_id"), params.get("client_secret")
        known = self._inat_apps.get(app_id or "")
        if app_secret is None or known is None or not hmac.compare_digest(known, app_secret):
            raise _oauth_error(401, "invalid_client", _INAT_INVALID_CLIENT)
        username, password = params.get("username"), params.get("password")
        if username is None or password is None:
            missing = "username" if username is None else "password"
            raise _oauth_error(400, "invalid_request", f"Missing required parameter: {missing}.")
        stored = self._inat_users.get(username)
        if stored is None or not hmac.compare_digest(stored, password):
            raise _oauth_error(400, "invalid_grant", _INAT_INVALID_GRANT)
        return self._inat_issue(username, "write login")

    def _inat_issue(self, username: str, scope: str) -> _Response:
        """An OAuth access token as Doorkeeper answers it for iNaturalist: no expires_in."""
        token = secrets.token_urlsafe(32)
        self._inat_tokens[token] = username
        payload = {
            "access_token": token,
            "token_type": "Bearer",
            "scope": scope,
            "created_at": int(time.time()),
        }
        return _Response(200, payload, dict(_NO_STORE))

    @staticmethod
    def _inat_page(status: int, title: str, message: str) -> _Response:
        page = (
            "<!DOCTYPE html><html><head><title>iNaturalist</title></head><body>"
            f"<h1>{title}</h1><p>{message}</p></body></html>"
        )
        return _Response(
            status, raw=page.encode(), content_type="text/html; charset=utf-8", headers=_NO_STORE
        )

    def _inat_redirect_ok(self, app_id: str, redirect_uri: str) -> bool:
        """Exact match with the registered URI, any port for a loopback one (RFC 8252
        §7.3); without one registered, any http loopback URI. Never a look-alike."""
        try:
            asked = urlsplit(redirect_uri)
            port = asked.port
        except ValueError:
            return False
        if asked.fragment or asked.username or asked.password:
            return False  # RFC 6749 §3.1.2: no fragment; no userinfo tricks
        loopback = asked.scheme == "http" and asked.hostname in ("127.0.0.1", "::1")
        registered = self._inat_redirects.get(app_id)
        if registered is None:
            return loopback and port is not None
        if redirect_uri == registered:
            return True
        known = urlsplit(registered)
        return (
            loopback
            and known.scheme == "http"
            and known.hostname == asked.hostname
            and (known.path, known.query) == (asked.path, asked.query)
        )

    def _inat_authorize(self, request: _Request) -> _Response:
        """``GET /oauth/authorize``: errors about the client or the redirect URI are a
        page (never a redirect there); the rest go back to the redirect URI."""
        pairs = parse_qsl(request.query, keep_blank_values=True)
        names = [name for name, _ in pairs]
        if len(names) != len(set(names)):
            return self._inat_page(400, "Bad request", "A parameter was given more than once.")
        query = {name: value for name, value in pairs if value != ""}
        app_id = query.get("client_id")
        if app_id is None or app_id not in self._inat_apps:
            return self._inat_page(
                400, "An error has occurred", "Client authentication failed due to unknown client."
            )
        redirect_uri = query.get("redirect_uri") or self._inat_redirects.get(app_id)
        if redirect_uri is None or not self._inat_redirect_ok(app_id, redirect_uri):
            return self._inat_page(
                400, "An error has occurred", "The redirect uri included is not valid."
            )
        state = query.get("state")

        def back(**params: str) -> _Response:
            if state is not None:
                params["state"] = state
            separator = "&" if urlsplit(redirect_uri).query else "?"
            location = redirect_uri + separator + urlencode(params)
            return _Response(302, headers={"Location": location, **_NO_STORE})

        if query.get("response_type") != "code":
            return back(
                error="unsupported_response_type",
                error_description="The authorization server does not support this response type.",
            )
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method")
        if challenge is None and method is not None:
            return back(error="invalid_request", error_description="Missing code_challenge.")
        if challenge is not None:
            method = method or "plain"  # RFC 7636 §4.3
            if method not in ("S256", "plain") or not _PKCE.fullmatch(challenge):
                return back(
                    error="invalid_request",
                    error_description="The code challenge or its method is invalid.",
                )
        scope = query.get("scope") or "login"
        if not set(scope.split(" ")) <= _INAT_SCOPES:
            return back(
                error="invalid_scope",
                error_description="The requested scope is invalid, unknown, or malformed.",
            )
        username = self.inat_authorize_as
        if username is None:
            return self._inat_page(200, "Sign in", "Sign in to iNaturalist to continue.")
        if self.inat_deny:
            return back(
                error="access_denied",
                error_description="The resource owner denied the request.",
            )
        code = secrets.token_urlsafe(32)
        self._inat_codes[code] = _InatCode(
            app_id=app_id,
            redirect_uri=redirect_uri,
            username=username,
            scope=scope,
            challenge=challenge,
            method=method if challenge is not None else None,
            expires_at=time.time() + self.inat_code_lifetime,
        )
        self._issued.add(code)
        return back(code=code)

    def _inat_code_grant(self, request: _Request, params: dict[str, str]) -> _Response:
        """The authorization-code grant: client by Basic or body; its secret may be left
        out only when the authorization used PKCE; codes are single-use."""
        try:
            basic = request.basic()
        except ValueError:
            raise _oauth_error(401, "invalid_client", _INAT_INVALID_CLIENT) from None
        body_id, body_secret = params.get("client_id"), params.get("client_secret")
        app_id: str | None
        app_secret: str | None
        if basic is not None:
            if body_secret is not None or (body_id is not None and body_id != basic[0]):
                raise _oauth_error(401, "invalid_client", _INAT_INVALID_CLIENT)
            app_id, app_secret = basic[0], basic[1] or None
        else:
            app_id, app_secret = body_id, body_secret
        known = self._inat_apps.get(app_id or "")
        if known is None or (app_secret and not hmac.compare_digest(known, app_secret)):
            raise _oauth_error(401, "invalid_client", _INAT_INVALID_CLIENT)
        code = params.get("code")
        if code is None:
            raise _oauth_error(400, "invalid_request", "Missing required parameter: code.")
        grant = self._inat_codes.get(code)
        if grant is None or grant.app_id != app_id:
            raise _oauth_error(400, "invalid_grant", _INAT_INVALID_GRANT)
        if grant.token is not None:
            # Used before: refused, and what it gave is revoked (RFC 6749 §4.1.2).
            self.revoke(grant.token)
            raise _oauth_error(400, "invalid_grant", _INAT_INVALID_GRANT)
        if grant.expires_at <= time.time():
            del self._inat_codes[code]
            raise _oauth_error(400, "invalid_grant", _INAT_INVALID_GRANT)
        if app_secret is None and grant.challenge is None:
            raise _oauth_error(401, "invalid_client", _INAT_INVALID_CLIENT)
        if params.get("redirect_uri") != grant.redirect_uri:
            raise _oauth_error(400, "invalid_grant", _INAT_INVALID_GRANT)
        if grant.challenge is not None:
            verifier = params.get("code_verifier")
            if verifier is None or not _PKCE.fullmatch(verifier):
                raise _oauth_error(400, "invalid_grant", _INAT_INVALID_GRANT)
            if grant.method == "S256":
                derived = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
            else:
                derived = verifier
            if not hmac.compare_digest(derived.encode(), grant.challenge.encode()):
                raise _oauth_error(400, "invalid_grant", _INAT_INVALID_GRANT)
        response = self._inat_issue(grant.username, grant.scope)
        grant.token = response.payload["access_token"]
        return response

    def _inat_api_token(self, request: _Request) -> _Response:
        token = request.bearer()
        login = self._inat_tokens.get(token or "")
        if token is None or login is None or token in self._revoked:
            return _Response(401, dict(_INAT_UNAUTHORIZED))
        now = int(time.time())
        payload = {
            "user_id": self._inat_user_ids[login],
            "login": login,
            "iat": now,
            "exp": now + self.jwt_lifetime,
        }
        jwt = _jwt_encode(payload, self._jwt_key, "HS512", {"alg": "HS512"})
        return _Response(200, {"api_token": jwt})

    def _inat_observation(self, request: _Request) -> _Response:
        match = _OBSERVATION.fullmatch(request.path)
        assert match is not None
        observation_id = int(match.group(1))
        value = (request.headers.get("Authorization") or "").strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        owner = False
        if value:
            if _looks_like_jwt(value):
                claims = _jwt_decode(value, self._jwt_key, "HS512", time.time())
                if claims is None or value in self._revoked:
                    return _Response(401, dict(_INAT_UNAUTHORIZED))
                owner = claims.get("user_id") == self._inat_user_ids[DEMO_INAT_USERNAME]
            elif value not in self._inat_tokens:
                return _Response(401, dict(_INAT_UNAUTHORIZED))
        result: dict[str, Any] = {
            "id": observation_id,
            "obscured": True,
            "geoprivacy": "obscured",
            "geojson": {"type": "Point", "coordinates": list(_ROUNDED)},
            "user": {"id": self._inat_user_ids[DEMO_INAT_USERNAME], "login": DEMO_INAT_USERNAME},
        }
        if owner:
            result["private_geojson"] = {"type": "Point", "coordinates": list(_EXACT)}
        return _Response(200, {"total_results": 1, "page": 1, "per_page": 1, "results": [result]})

    def _inat_revoke(self, request: _Request) -> _Response:
        token = request.params().get("token")
        if token is None:
            raise _oauth_error(400, "invalid_request", "Missing required parameter: token.")
        if token in self._inat_tokens:
            self.revoke(token)
        return _Response(200, {})

    # ------------------------------------------------------------------ TreeSnap
    def _treesnap_valid(self, token: str) -> dict[str, Any] | None:
        if token in self._revoked:
            return None
        return _jwt_decode(token, self._treesnap_key, "HS256", time.time())

    def _treesnap_refresh(self, request: _Request) -> _Response:
        header_token = request.bearer()
        body_token = request.params().get("access_token")
        if header_token is None or body_token is None:
            return _Response(
                400, {"error_code": 1000, "message": "The access token field is required."}
            )
        if not hmac.compare_digest(header_token.encode(), body_token.encode()):
            message = "The access token in the header does not match the token in the request body."
            return _Response(200, {"error_code": 1100, "message": message})
        claims = self._treesnap_valid(header_token)
        if claims is None:
            return _Response(
                401, {"error_code": 1000, "message": "The access token does not exist."}
            )
        new_token = self._treesnap_jwt(str(claims["sub"]), self.treesnap_lifetime)
        self.revoke(header_token)
        expires = datetime.fromtimestamp(int(time.time()) + self.treesnap_lifetime, UTC)
        payload = {
            "access_token": new_token,
            "expires_at": {
                "date": expires.strftime("%Y-%m-%d %H:%M:%S.000000"),
                "timezone_type": 3,
                "timezone": "UTC",
            },
            "error_code": 0,
            "message": "Token refreshed.",
        }
        return _Response(200, payload)

    def _treesnap_observations(self, request: _Request) -> _Response:
        token = request.bearer()
        if token is None or self._treesnap_valid(token) is None:
            return _Response(401, {"message": "Unauthenticated."})
        return _Response(200, {"data": [{"id": 1, "observation_category": "American Chestnut"}]})

    # ------------------------------------------------------------------ Twitter / X
    def _twitter_app(self, request: _Request) -> str:
        try:
            credentials = request.basic()
        except ValueError:
            credentials = None
        if credentials is not None:
            api_key, api_secret = credentials
            known = self._twitter_apps.get(api_key)
            if known is not None and hmac.compare_digest(known, api_secret):
                return api_key
        raise _Reply(_Response(403, _TWITTER_BAD_CREDENTIALS))

    def _twitter_token(self, request: _Request) -> _Response:
        api_key = self._twitter_app(request)
        if request.form_params().get("grant_type") != "client_credentials":
            return _Response(403, _twitter_missing("grant_type"))
        token = self._twitter_current.get(api_key)
        if token is None:
            token = (
                f"{_TWITTER_PREFIX}{_random_alnum(8)}AAAAAAAA"
                f"{_random_alnum(24)}%2B{_random_alnum(20)}%3D{_random_alnum(40)}"
            )
            self._twitter_current[api_key] = token
            self._twitter_tokens[token] = api_key
        return _Response(200, {"token_type": "bearer", "access_token": token})

    def _twitter_invalidate(self, request: _Request) -> _Response:
        api_key = self._twitter_app(request)
        token = request.form_params().get("access_token")
        if token is None:
            return _Response(403, _twitter_missing("access_token"))
        if self._twitter_tokens.get(token) != api_key:
            return _Response(
                403, {"errors": [{"code": 89, "message": "Invalid or expired token."}]}
            )
        self.revoke(token)
        return _Response(200, {"access_token": token})

    def _twitter_me(self, request: _Request) -> _Response:
        token = request.bearer()
        if token is None or token not in self._twitter_tokens or token in self._revoked:
            return _Response(
                401, dict(_TWITTER_UNAUTHORIZED), content_type="application/problem+json"
            )
        return _Response(200, {"data": {"id": "1", "username": "demo"}})

    # ------------------------------------------------------------------ plain OAuth2 (/std)
    def _std_metadata(self, request: _Request) -> _Response:
        issuer = f"{self._require_url()}/std"
        methods = ["client_secret_basic", "client_secret_post"]
        payload = {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/token",
            "revocation_endpoint": f"{issuer}/revoke",
            "introspection_endpoint": f"{issuer}/introspect",
            "grant_types_supported": ["client_credentials", "password", "refresh_token"],
            "token_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_methods_supported": methods,
            "response_types_supported": [],
        }
        return _Response(200, payload)

    def _std_client(self, request: _Request, params: dict[str, str]) -> str:
        """The authenticated client id (Basic or body), or raise the RFC 6749 §5.2 error."""
        invalid = _oauth_error(
            401,
            "invalid_client",
            "Client authentication failed.",
            {"WWW-Authenticate": 'Basic realm="std"'},
        )
        try:
            basic = request.basic()
        except ValueError:
            raise invalid from None
        body_id, body_secret = params.get("client_id"), params.get("client_secret")
        if basic is not None:
            if body_secret is not None or (body_id is not None and body_id != basic[0]):
                raise _oauth_error(
                    400, "invalid_request", "Use only one client authentication method."
                )
            client_id, secret = basic
        elif body_id is not None and body_secret is not None:
            client_id, secret = body_id, body_secret
        else:
            raise invalid
        known = self._std_clients.get(client_id)
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            raise invalid
        return client_id

    def _std_issue(
        self, client_id: str, username: str | None, scope: str | None, grant_id: int | None
    ) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        expires_at = time.time() + self.access_token_lifetime
        self._std_access[token] = _StdAccess(client_id, username, scope, expires_at, grant_id)
        payload: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
        }
        if scope is not None:
            payload["scope"] = scope
        return payload

    def _std_new_refresh(self, client_id: str, username: str, scope: str | None, grant: int) -> str:
        token = secrets.token_urlsafe(32)
        self._std_refresh[token] = _StdRefresh(client_id, username, scope, grant)
        return token

    def _std_token(self, request: _Request) -> _Response:
        params = request.params()
        client_id = self._std_client(request, params)
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise _oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        scope = params.get("scope")
        if scope is not None and not all(_SCOPE_TOKEN.fullmatch(s) for s in scope.split(" ")):
            raise _oauth_error(400, "invalid_scope", "The scope is malformed.")
        if grant_type == "client_credentials":
            payload = self._std_issue(client_id, None, scope, None)
        elif grant_type == "password":
            username, password = params.get("username"), params.get("password")
            if username is None or password is None:
                missing = "username" if username is None else "password"
                raise _oauth_error(
                    400, "invalid_request", f"Missing required parameter: {missing}."
                )
            stored = self._std_users.get(username)
            if stored is None or not hmac.compare_digest(stored.encode(), password.encode()):
                raise _oauth_error(400, "invalid_grant", "Invalid resource owner credentials.")
            self._std_grants += 1
            payload = self._std_issue(client_id, username, scope, self._std_grants)
            payload["refresh_token"] = self._std_new_refresh(
                client_id, username, scope, self._std_grants
            )
        elif grant_type == "refresh_token":
            old = params.get("refresh_token")
            if old is None:
                raise _oauth_error(
                    400, "invalid_request", "Missing required parameter: refresh_token."
                )
            record = self._std_refresh.get(old)
            if record is None or old in self._revoked or record.client_id != client_id:
                raise _oauth_error(400, "invalid_grant", "The refresh token is invalid.")
            if scope is None:
                scope = record.scope
            elif record.scope is not None and not set(scope.split()) <= set(record.scope.split()):
                raise _oauth_error(400, "invalid_scope", "The scope exceeds the original grant.")
            payload = self._std_issue(client_id, record.username, scope, record.grant_id)
            if self.rotate_refresh_tokens:
                del self._std_refresh[old]
                self._revoked.add(old)
                payload["refresh_token"] = self._std_new_refresh(
                    client_id, record.username, record.scope, record.grant_id
                )
            else:
                payload["refresh_token"] = old
        else:
            raise _oauth_error(
                400, "unsupported_grant_type", f"Grant type {grant_type!r} is not supported."
            )
        return _Response(200, payload, dict(_NO_STORE))

    def _std_revoke_grant(self, grant_id: int) -> None:
        for token, access in list(self._std_access.items()):
            if access.grant_id == grant_id:
                del self._std_access[token]
                self._revoked.add(token)
        for token, refresh in list(self._std_refresh.items()):
            if refresh.grant_id == grant_id:
                del self._std_refresh[token]
                self._revoked.add(token)

    def _std_revoke(self, request: _Request) -> _Response:
        params = request.params()
        client_id = self._std_client(request, params)
        token = params.get("token")
        if token is None:
            raise _oauth_error(400, "invalid_request", "Missing required parameter: token.")
        access = self._std_access.get(token)
        refresh = self._std_refresh.get(token)
        if (access is not None and access.client_id == client_id) or (
            refresh is not None and refresh.client_id == client_id
        ):
            self.revoke(token)
        return _Response(200, headers=dict(_NO_STORE))

    def _std_introspect(self, request: _Request) -> _Response:
        params = request.params()
        self._std_client(request, params)
        token = params.get("token")
        if token is None:
            raise _oauth_error(400, "invalid_request", "Missing required parameter: token.")
        inactive = _Response(200, {"active": False}, dict(_NO_STORE))
        if token in self._revoked:
            return inactive
        access = self._std_access.get(token)
        if access is not None:
            if access.expires_at <= time.time():
                return inactive
            payload: dict[str, Any] = {
                "active": True,
                "client_id": access.client_id,
                "sub": access.username or access.client_id,
                "exp": int(access.expires_at),
                "token_type": "Bearer",
            }
            if access.username is not None:
                payload["username"] = access.username
            if access.scope is not None:
                payload["scope"] = access.scope
            return _Response(200, payload, dict(_NO_STORE))
        refresh = self._std_refresh.get(token)
        if refresh is not None:
            payload = {
                "active": True,
                "client_id": refresh.client_id,
                "sub": refresh.username,
                "username": refresh.username,
                "token_type": "refresh_token",
            }
            if refresh.scope is not None:
                payload["scope"] = refresh.scope
            return _Response(200, payload, dict(_NO_STORE))
        return inactive

    def _std_me(self, request: _Request) -> _Response:
        token = request.bearer()
        if token is None:
            return _Response(
                401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer realm="std"'}
            )
        access = self._std_access.get(token)
        if access is None or token in self._revoked or access.expires_at <= time.time():
            return _Response(
                401,
                {"error": "invalid_token"},
                {"WWW-Authenticate": 'Bearer realm="std", error="invalid_token"'},
            )
        return _Response(
            200,
            {"sub": access.username or access.client_id, "client_id": access.client_id},
        )
