"""OAuth 1.0a (RFC 5849) servers: X's, and a plain one under ``/oauth1``.

Both are oauthlib's endpoints (``RequestTokenEndpoint``, ``AuthorizationEndpoint``,
``AccessTokenEndpoint``, ``ResourceEndpoint``) over one strict request validator
(:class:`_Validator`) that keeps the consumers, request tokens, verifiers, access tokens
and the nonces seen within the timestamp window, and checks every signature (HMAC-SHA1,
HMAC-SHA256, RSA-SHA1 with the consumer's public key, PLAINTEXT; in the header, the query
or a form body, whose parameters are signed too). oauthlib is imported on the first
OAuth 1.0a request, never by ``import keyfob.testing``.

X's flavour (``OAuth1Server(flavour="x")``):

* ``POST /oauth/request_token`` (``oauth_callback``: ``oob`` or an approved callback URL);
* ``GET /oauth/authorize`` and ``/oauth/authenticate``: approved at once as the signed-in
  user; ``oob`` shows the PIN on a page, a callback is redirected to with ``oauth_token``
  and ``oauth_verifier``, a denial with ``denied=<request token>``;
* ``POST /oauth/access_token`` (``oauth_verifier``): ``oauth_token``,
  ``oauth_token_secret``, ``user_id``, ``screen_name``;
* ``POST /1.1/oauth/invalidate_token``, ``GET /1.1/account/verify_credentials.json``,
  ``POST /1.1/statuses/update.json`` (a form body) and ``GET /2/users/me``: signed with
  the access token. Errors as X says them: 401 ``{"errors": [{"code": 32, ...}]}``
  (could not authenticate), 89 (invalid or expired token), 135 (timestamp out of
  bounds), 403 with 415 (callback not approved), 400 with 215 (bad authentication data).

The plain flavour (Trello, Flickr and the like) has the same flow under ``/oauth1``
(``request_token``, ``authorize``, ``access_token``, ``revoke``, ``resource``) and answers
failures as forms with ``oauth_problem`` (the OAuth Problem Reporting extension).
"""

from __future__ import annotations

import contextlib
import hmac
import html
import importlib
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from keyfob.testing.wire import FORM, NO_STORE, Handler, Request, Response, Routes, Shared

DEMO_OAUTH1_CONSUMER_KEY = "demo-oauth1-consumer-key"
DEMO_OAUTH1_CONSUMER_SECRET = "demo-oauth1-consumer-secret-0123456789"
#: the signed-in user of each flavour: (user id, screen name)
DEMO_X_USER = ("1234567890", "demo")
DEMO_OAUTH1_USER = ("42", "demo-user")

Flavour = Literal["x", "plain"]
ALL_METHODS = ("HMAC-SHA1", "HMAC-SHA256", "RSA-SHA1", "PLAINTEXT")
#: a protected resource's handler: the request and the access token it was signed with
Protected = Callable[[Request, "AccessToken"], Response]
_ALNUM = string.ascii_letters + string.digits
_SAFE = frozenset(_ALNUM + "-_")
_X_PATHS = {
    "request_token": "/oauth/request_token",
    "authorize": "/oauth/authorize",
    "access_token": "/oauth/access_token",
    "revoke": "/1.1/oauth/invalidate_token",
}
_PLAIN_PATHS = {
    "request_token": "/oauth1/request_token",
    "authorize": "/oauth1/authorize",
    "access_token": "/oauth1/access_token",
    "revoke": "/oauth1/revoke",
    "resource": "/oauth1/resource",
}
_X_ERRORS: dict[str, tuple[int, int, str]] = {
    "timestamp_refused": (401, 135, "Timestamp out of bounds."),
    "token_rejected": (401, 89, "Invalid or expired token."),
    "callback_rejected": (
        403,
        415,
        "Callback URL not approved for this client application. Approved callback URLs "
        "can be adjusted in your application settings",
    ),
    "parameter_absent": (400, 215, "Bad Authentication data."),
}
#: what X's access-token endpoint says, as plain text, of a bad request token or verifier
_X_TEXT = {
    "token_rejected": "Error processing your OAuth request: Invalid request token",
    "verifier_invalid": "Error processing your OAuth request: Invalid oauth_verifier parameter",
}


#: the loggers oauthlib verifies requests under: silenced while the emulator verifies, as
#: they say signature base strings (the emulator never logs); a client's own are untouched
_OAUTHLIB_LOGGERS = (
    "oauthlib",
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
    "oauthlib.oauth1.rfc5849.endpoints.request_token",
    "oauthlib.oauth1.rfc5849.endpoints.access_token",
    "oauthlib.oauth1.rfc5849.endpoints.resource",
)
_verifying = threading.local()


class _WhileVerifying:
    """A logging filter (any object with ``filter`` is one): logging is imported late."""

    def filter(self, record: object) -> bool:
        return not getattr(_verifying, "on", False)


def _silence_oauthlib() -> None:
    import logging

    for name in _OAUTHLIB_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WhileVerifying) for f in logger.filters):
            logger.addFilter(_WhileVerifying())


def x_error(code: int, message: str, status: int = 401) -> Response:
    return Response(status, {"errors": [{"code": code, "message": message}]})


def _random(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _page(status: int, title: str, body: str) -> Response:
    page = (
        f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head>"
        f"<body>{body}</body></html>"
    )
    return Response(status, raw=page.encode(), content_type="text/html; charset=utf-8")


def _form(
    status: int, pairs: list[tuple[str, str]], headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status,
        raw=urlencode(pairs).encode(),
        content_type=FORM,
        headers={**NO_STORE, **(headers or {})},
    )


def _is_loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "::1")


@cache
def _dummy_rsa_public_key() -> str:
    """A key no consumer holds: RSA signatures of unknown consumers are checked against it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


# --------------------------------------------------------------------------- state
@dataclass
class Consumer:
    key: str
    secret: str
    rsa_public_key: str | None = None
    #: the approved callback URLs; None: any loopback one (``http://127.0.0.1:<port>/...``)
    callbacks: tuple[str, ...] | None = None


@dataclass
class RequestToken:
    token: str
    secret: str
    consumer: str
    callback: str
    created: float
    verifier: str | None = None
    user: tuple[str, str] | None = None  # (user id, screen name) who approved


@dataclass
class AccessToken:
    token: str
    secret: str
    consumer: str
    user: tuple[str, str]


class _Validator:
    """oauthlib's ``RequestValidator`` for one server: mixed in before it (see
    :meth:`OAuth1Server._oauthlib`), so oauthlib's own format checks (``check_*``) stay.

    Every failure is remembered in ``problem`` (the first one of the request: oauthlib
    goes on with dummy values after it, so that a wrong key takes as long as a right one)."""

    def __init__(self, server: OAuth1Server) -> None:
        self.server = server
        self.problem: str | None = None

    def fail(self, problem: str) -> bool:
        if self.problem is None:
            self.problem = problem
        return False

    # ------------------------------------------------------------------ settings
    enforce_ssl = False  # the emulator is plain http on 127.0.0.1
    safe_characters = _SAFE  # X's access tokens are "<user id>-<random>"
    client_key_length = (8, 64)
    request_token_length = (20, 64)
    access_token_length = (20, 100)
    nonce_length = (8, 64)
    verifier_length = (7, 64)  # X's PIN has 7 digits
    realms: list[str] = []
    dummy_client = "dummy-consumer-key-0000"
    dummy_request_token = "dummy-request-token-000000000000"
    dummy_access_token = "dummy-access-token-0000000000000"

    @property
    def timestamp_lifetime(self) -> int:
        return self.server.timestamp_lifetime

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        return self.server.signature_methods

    def check_realms(self, realms: list[str]) -> bool:
        return True  # realms are accepted and ignored, as X does

    # ------------------------------------------------------------------ consumers
    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key in self.server.consumers or self.fail("consumer_key_unknown")

    def get_client_secret(self, client_key: str, request: Any) -> str:
        consumer = self.server.consumers.get(client_key)
        return consumer.secret if consumer else "dummy-consumer-secret-000000000000"

    def get_rsa_key(self, client_key: str, request: Any) -> str:
        consumer = self.server.consumers.get(client_key)
        if consumer is not None and consumer.rsa_public_key:
            return consumer.rsa_public_key
        return _dummy_rsa_public_key()

    def validate_timestamp_and_nonce(
        self,
        client_key: str,
        timestamp: str,
        nonce: str,
        request: Any,
        request_token: str | None = None,
        access_token: str | None = None,
    ) -> bool:
        key = (client_key, timestamp, nonce, request_token or access_token or "")
        return self.server.remember_nonce(key, int(timestamp)) or self.fail("nonce_used")

    # ------------------------------------------------------------------ realms (unused)
    def get_default_realms(self, client_key: str, request: Any) -> list[str]:
        return []

    def get_realms(self, token: str, request: Any) -> list[str]:
        return []

    def validate_requested_realms(self, client_key: str, realms: Any, request: Any) -> bool:
        return True

    def verify_realms(self, token: str, realms: Any, request: Any) -> bool:
        return True

    def validate_realms(self, *args: Any, **kwargs: Any) -> bool:
        return True

    # ------------------------------------------------------------------ request tokens
    def validate_redirect_uri(self, client_key: str, redirect_uri: str, request: Any) -> bool:
        consumer = self.server.consumers.get(client_key)
        approved = consumer is not None and self.server.callback_approved(consumer, redirect_uri)
        return approved or self.fail("callback_rejected")

    def save_request_token(self, token: dict[str, str], request: Any) -> None:
        self.server.request_tokens[token["oauth_token"]] = RequestToken(
            token["oauth_token"],
            token["oauth_token_secret"],
            request.client_key,
            request.redirect_uri,
            time.time(),
        )

    def _request_token(self, token: str) -> RequestToken | None:
        found = self.server.request_tokens.get(token)
        if found is None or time.time() - found.created > self.server.request_token_lifetime:
            return None
        return found

    def verify_request_token(self, token: str, request: Any) -> bool:
        found = self._request_token(token)
        return found is not None and found.verifier is None

    def get_redirect_uri(self, token: str, request: Any) -> str:
        found = self._request_token(token)
        return found.callback if found else "oob"

    def save_verifier(self, token: str, verifier: dict[str, str], request: Any) -> None:
        found = self.server.request_tokens[token]
        found.verifier = verifier["oauth_verifier"]
        found.user = self.server.signed_in()

    def validate_request_token(self, client_key: str, token: str, request: Any) -> bool:
        found = self._request_token(token)
        if found is None or found.consumer != client_key or found.verifier is None:
            return self.fail("token_rejected")
        return True

    def validate_verifier(self, client_key: str, token: str, verifier: str, request: Any) -> bool:
        found = self._request_token(token)
        if found is None or found.verifier is None:
            return self.fail("verifier_invalid")
        return hmac.compare_digest(found.verifier, verifier) or self.fail("verifier_invalid")

    def get_request_token_secret(self, client_key: str, token: str, request: Any) -> str:
        found = self._request_token(token)
        if found is None or found.consumer != client_key:
            return "dummy-request-token-secret-00000"
        return found.secret

    def invalidate_request_token(self, client_key: str, request_token: str, request: Any) -> None:
        self.server.request_tokens.pop(request_token, None)

    # ------------------------------------------------------------------ access tokens
    def save_access_token(self, token: dict[str, str], request: Any) -> None:
        found = self.server.request_tokens[request.resource_owner_key]
        assert found.user is not None
        self.server.access_tokens[token["oauth_token"]] = AccessToken(
            token["oauth_token"], token["oauth_token_secret"], request.client_key, found.user
        )

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        found = self.server.access_tokens.get(token)
        if found is None or found.consumer != client_key or token in self.server.shared.revoked:
            return self.fail("token_rejected")
        return True

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        found = self.server.access_tokens.get(token)
        if found is None or found.consumer != client_key:
            return "dummy-access-token-secret-000000"
        return found.secret


@dataclass
class _Endpoints:
    validator: _Validator
    request_token: Any
    authorize_pin: Any  # its verifiers are X's 7-digit PINs
    authorize: Any
    access_token: Any
    resource: Any
    error: type[Exception]


# --------------------------------------------------------------------------- the server
class OAuth1Server:
    """The state and handlers of one OAuth 1.0a server (X's or the plain one)."""

    def __init__(self, shared: Shared, *, flavour: Flavour) -> None:
        self.shared = shared
        self.flavour = flavour
        self.paths = _X_PATHS if flavour == "x" else _PLAIN_PATHS
        self.consumers: dict[str, Consumer] = {}
        self.request_tokens: dict[str, RequestToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.nonces: dict[tuple[str, str, str, str], int] = {}
        user_id, screen_name = DEMO_X_USER if flavour == "x" else DEMO_OAUTH1_USER
        self.users = {screen_name: user_id}  # screen name -> user id
        #: the authorize page approves at once as this signed-in user; None: a sign-in page
        self.authorize_as: str | None = screen_name
        self.deny = False  #: the person clicks "Cancel": redirected with ``denied=``
        self.forge_callback = False  #: the callback carries another ``oauth_token``
        self.timestamp_lifetime = 300
        #: X signs with HMAC-SHA1 only (its documentation knows no other method)
        self.signature_methods = ("HMAC-SHA1",) if flavour == "x" else ALL_METHODS
        self.request_token_lifetime = 600
        self.statuses: list[str] = []  # what was posted to statuses/update
        self._endpoints: _Endpoints | None = None

    def routes(self) -> Routes:
        p = self.paths
        routes: Routes = {
            p["request_token"]: {"POST": self.request_token},
            p["authorize"]: {"GET": self.authorize},
            p["access_token"]: {"POST": self.access_token},
            p["revoke"]: {"POST": self.signed(self.invalidate)},
        }
        if self.flavour == "plain":  # Flickr asks for its tokens with GET
            routes[p["request_token"]]["GET"] = self.request_token
            routes[p["access_token"]]["GET"] = self.access_token
        if self.flavour == "x":
            routes["/oauth/authenticate"] = {"GET": self.authorize}
            routes["/1.1/account/verify_credentials.json"] = {"GET": self.signed(self.account)}
            routes["/1.1/statuses/update.json"] = {"POST": self.signed(self.update)}
        else:
            resource = self.signed(self.resource)
            routes[p["resource"]] = {"GET": resource, "POST": resource}
        return routes

    # ------------------------------------------------------------------ accounts and tokens
    def add_consumer(
        self,
        key: str,
        secret: str,
        *,
        rsa_public_key: str | None = None,
        callbacks: tuple[str, ...] | None = None,
    ) -> None:
        self.consumers[key] = Consumer(key, secret, rsa_public_key, callbacks)

    def add_user(self, screen_name: str, user_id: str) -> None:
        self.users[screen_name] = user_id

    def signed_in(self) -> tuple[str, str]:
        """(user id, screen name) of the person approving at the authorize page."""
        name = self.authorize_as or ""
        return self.users.get(name) or str(10**9 + len(self.users)), name

    def callback_approved(self, consumer: Consumer, callback: str) -> bool:
        if callback == "oob":
            return True
        try:
            url = urlsplit(callback)
            port = url.port
        except ValueError:
            return False
        if url.scheme not in ("http", "https") or not url.hostname:
            return False
        if consumer.callbacks is None:
            return _is_loopback(url.hostname)
        for approved in consumer.callbacks:
            known = urlsplit(approved)
            same_port = known.port == port or _is_loopback(url.hostname)  # RFC 8252 §7.3
            same = (known.scheme, known.hostname, known.path) == (
                url.scheme,
                url.hostname,
                url.path,
            )
            if same and same_port:
                return True
        return False

    def remember_nonce(self, key: tuple[str, str, str, str], timestamp: int) -> bool:
        """False if this nonce was seen with this timestamp, consumer and token already."""
        now = time.time()
        for old in [k for k, t in self.nonces.items() if t < now - self.timestamp_lifetime]:
            del self.nonces[old]
        if key in self.nonces:
            return False
        self.nonces[key] = timestamp
        return True

    def forget(self, token: str) -> None:
        self.access_tokens.pop(token, None)
        self.request_tokens.pop(token, None)

    def active(self, token: str, now: float) -> bool | None:
        if token in self.access_tokens:
            return True
        return None

    def verifier(self, request_token: str) -> str | None:
        found = self.request_tokens.get(request_token)
        return found.verifier if found else None

    # ------------------------------------------------------------------ oauthlib
    def _oauthlib(self) -> _Endpoints:
        if self._endpoints is None:
            _silence_oauthlib()
            oauth1 = importlib.import_module("oauthlib.oauth1")
            errors = importlib.import_module("oauthlib.oauth1.rfc5849.errors")
            validator_class = type("StrictValidator", (_Validator, oauth1.RequestValidator), {})
            validator = validator_class(self)

            def tokens() -> str:
                return _random(40)

            self._endpoints = _Endpoints(
                validator,
                oauth1.RequestTokenEndpoint(validator, token_generator=tokens),
                oauth1.AuthorizationEndpoint(
                    validator, token_generator=lambda: _random(7, "0123456789")
                ),
                oauth1.AuthorizationEndpoint(validator, token_generator=lambda: _random(32)),
                oauth1.AccessTokenEndpoint(validator, token_generator=tokens),
                oauth1.ResourceEndpoint(validator),
                errors.OAuth1Error,
            )
        self._endpoints.validator.problem = None
        return self._endpoints

    def _uri(self, request: Request) -> str:
        served = urlsplit(self.shared.url())  # https when the emulator serves TLS
        host = request.headers.get("Host") or served.netloc
        return urlunsplit((served.scheme, host, request.path, request.query, ""))

    def _verify(self, call: Callable[..., Any], request: Request, **kw: Any) -> Any:
        """One of oauthlib's endpoint methods on this request, its logs silenced."""
        _verifying.on = True
        try:
            return call(
                uri=self._uri(request),
                http_method=request.method,
                body=request.body.decode("utf-8", "replace"),
                headers=dict(request.headers.items()),
                **kw,
            )
        finally:
            _verifying.on = False

    def _stale(self, request: Request) -> bool:
        """The request's ``oauth_timestamp`` is outside the window (X says so first)."""
        utils = importlib.import_module("oauthlib.oauth1.rfc5849.utils")
        params: list[tuple[str, str]] = parse_qsl(request.query)
        if request.media_type() == FORM:
            params += parse_qsl(request.body.decode("utf-8", "replace"))
        header = request.headers.get("Authorization") or ""
        if header[:6].lower() == "oauth ":
            with contextlib.suppress(ValueError):
                params += utils.parse_authorization_header(header)
        stamps = [v for k, v in params if k == "oauth_timestamp"]
        if len(stamps) != 1 or not stamps[0].isdigit():
            return False
        return abs(time.time() - int(stamps[0])) > self.timestamp_lifetime

    def refused(self, problem: str | None, *, step: str, detail: str = "") -> Response:
        """A failed OAuth 1.0a request, in this server's words."""
        problem = problem or "signature_invalid"
        if self.flavour == "plain":
            pairs = [("oauth_problem", problem)]
            if detail:
                pairs.append(("oauth_problem_advice", detail))
            status = 400 if problem in ("parameter_absent", "signature_method_rejected") else 401
            return _form(status, pairs, {"WWW-Authenticate": 'OAuth realm="keyfob-emulator"'})
        if step == "access_token" and problem in _X_TEXT:
            return Response(401, raw=_X_TEXT[problem].encode(), content_type="text/plain")
        if problem == "token_rejected" and step == "request_token":
            problem = "signature_invalid"
        status, code, message = _X_ERRORS.get(problem, (401, 32, "Could not authenticate you."))
        return x_error(code, message, status)

    def _issued(self, *values: str) -> None:
        self.shared.issued.update(v for v in values if v)

    # ------------------------------------------------------------------ handlers
    def request_token(self, request: Request) -> Response:
        if self._stale(request):
            return self.refused("timestamp_refused", step="request_token")
        endpoints = self._oauthlib()
        try:
            _, body, status = self._verify(
                endpoints.request_token.create_request_token_response, request
            )
        except ValueError:  # oauthlib's word for a malformed header or body
            return self.refused("parameter_absent", step="request_token")
        if status != 200:
            problem = _problem(body) if status == 400 else endpoints.validator.problem
            return self.refused(problem, step="request_token", detail=_advice(body))
        pairs = parse_qsl(body)
        self._issued(*(v for k, v in pairs if k in ("oauth_token", "oauth_token_secret")))
        return _form(200, pairs)

    def authorize(self, request: Request) -> Response:
        title = "Authorize application" if self.flavour == "x" else "Authorize"
        token = dict(parse_qsl(request.query)).get("oauth_token", "")
        found = self.request_tokens.get(token)
        if found is None or found.verifier is not None:
            return _page(
                400,
                title,
                "<p>The request token for this page is invalid. It may have already been "
                "used, or expired because it is too old.</p>",
            )
        if self.authorize_as is None:
            return _page(200, "Sign in", "<h1>Sign in to continue.</h1><form method='post'></form>")
        if self.deny:
            del self.request_tokens[token]
            if found.callback == "oob":
                return _page(200, title, "<p>You have not authorized the application.</p>")
            return Response(
                302, headers={"Location": _add_query(found.callback, [("denied", token)])}
            )
        endpoints = self._oauthlib()
        endpoint = endpoints.authorize_pin if found.callback == "oob" else endpoints.authorize
        try:
            headers, body, status = self._verify(
                endpoint.create_authorization_response, request, realms=[]
            )
        except (endpoints.error, ValueError):
            return _page(400, title, "<p>The request token for this page is invalid.</p>")
        if status == 200:  # oob: the person copies the PIN into the application
            pin = html.escape(dict(parse_qsl(body))["oauth_verifier"])
            return _page(
                200,
                title,
                "<p id='code-desc'>Next, return to the application and enter this PIN to "
                f"complete the authorization process:</p><div id='oauth_pin'><p><kbd "
                f"aria-labelledby='code-desc'><code>{pin}</code></kbd></p></div>",
            )
        location = headers["Location"]
        if self.forge_callback:
            split = urlsplit(location)
            query = [
                (k, _random(40) if k == "oauth_token" else v) for k, v in parse_qsl(split.query)
            ]
            location = urlunsplit(split._replace(query=urlencode(query)))
        return Response(302, headers={"Location": location})

    def access_token(self, request: Request) -> Response:
        if self._stale(request):
            return self.refused("timestamp_refused", step="access_token")
        endpoints = self._oauthlib()
        try:
            _, body, status = self._verify(
                endpoints.access_token.create_access_token_response, request
            )
        except ValueError:
            return self.refused("parameter_absent", step="access_token")
        if status != 200:
            problem = _problem(body) if status == 400 else endpoints.validator.problem
            return self.refused(problem, step="access_token", detail=_advice(body))
        made = self.access_tokens.pop(dict(parse_qsl(body))["oauth_token"])
        if self.flavour == "x":  # X's access tokens are "<user id>-<random>"
            made.token = f"{made.user[0]}-{made.token}"
        self.access_tokens[made.token] = made
        self._issued(made.token, made.secret)
        pairs = [("oauth_token", made.token), ("oauth_token_secret", made.secret)]
        if self.flavour == "x":
            pairs += [("user_id", made.user[0]), ("screen_name", made.user[1])]
        return _form(200, pairs)

    def signed(self, handler: Protected) -> Handler:
        """A protected resource: a request signed with a live access token, or refused."""

        def answer(request: Request) -> Response:
            if self._stale(request):
                return self.refused("timestamp_refused", step="resource")
            endpoints = self._oauthlib()
            try:
                valid, checked = self._verify(
                    endpoints.resource.validate_protected_resource_request, request, realms=[]
                )
            except ValueError:
                return self.refused("parameter_absent", step="resource")
            if not valid:
                problem = endpoints.validator.problem
                if checked is not None and checked.signature_method not in self.signature_methods:
                    problem = "signature_method_rejected"
                elif checked is None or (problem is None and not checked.validator_log):
                    problem = "parameter_absent"
                return self.refused(problem, step="resource")
            return handler(request, self.access_tokens[checked.resource_owner_key])

        return answer

    def invalidate(self, request: Request, token: AccessToken) -> Response:
        self.shared.revoke(token.token)
        if self.flavour == "x":
            return Response(200, {"access_token": token.token})
        return Response(200, {})

    def account(self, request: Request, token: AccessToken) -> Response:
        user_id, screen_name = token.user
        return Response(
            200,
            {
                "id": int(user_id),
                "id_str": user_id,
                "name": screen_name,
                "screen_name": screen_name,
            },
        )

    def me(self, request: Request, token: AccessToken) -> Response:
        user_id, screen_name = token.user
        return Response(
            200, {"data": {"id": user_id, "name": screen_name, "username": screen_name}}
        )

    def update(self, request: Request, token: AccessToken) -> Response:
        status = request.form_params().get("status")
        if not status:
            return x_error(170, "Missing required parameter: status.", 400)
        self.statuses.append(status)
        number = str(1_000_000 + len(self.statuses))
        user_id, screen_name = token.user
        user = {"id": int(user_id), "id_str": user_id, "screen_name": screen_name}
        return Response(200, {"id": int(number), "id_str": number, "text": status, "user": user})

    def resource(self, request: Request, token: AccessToken) -> Response:
        params = parse_qsl(request.query)
        if request.media_type() == FORM:
            params += parse_qsl(request.body.decode("utf-8", "replace"))
        received = {k: v for k, v in params if not k.startswith("oauth_")}
        user_id, screen_name = token.user
        return Response(
            200,
            {
                "user_id": user_id,
                "username": screen_name,
                "method": request.method,
                "params": received,
            },
        )


def _problem(body: str | None) -> str:
    """The OAuth problem of one of oauthlib's 400 answers (a form with ``error``)."""
    said = dict(parse_qsl(body or ""))
    if said.get("error") == "invalid_signature_method":
        return "signature_method_rejected"
    if "verifier" in said.get("error_description", ""):
        return "verifier_invalid"  # missing, or not a verifier's format
    return "parameter_absent"


def _advice(body: str | None) -> str:
    return dict(parse_qsl(body or "")).get("error_description", "")


def _add_query(url: str, pairs: list[tuple[str, str]]) -> str:
    split = urlsplit(url)
    query = urlencode(parse_qsl(split.query) + pairs)
    return urlunsplit(split._replace(query=query))


def mount(
    routes: Routes,
    x: OAuth1Server,
    plain: OAuth1Server,
    limited: Callable[[Handler], Handler] = lambda handler: handler,
) -> set[str]:
    """Add both servers' routes to the emulator's: X's ``GET /oauth/authorize`` shares its
    path with iNaturalist's (a request with ``oauth_token`` is X's), and ``GET /2/users/me``
    takes an OAuth 1.0a signed request too (``Authorization: OAuth ...``), counted by
    ``limited`` (X's rate limit of that endpoint). Returns the paths whose POST may carry
    parameters in the query (the query signature type)."""
    for server in (x, plain):
        for path, methods in server.routes().items():
            if path in routes:
                for method, handler in methods.items():
                    other = routes[path].get(method)
                    routes[path][method] = handler if other is None else _either(handler, other)
            else:
                routes[path] = dict(methods)
    users_me = routes.get("/2/users/me", {}).get("GET")
    if users_me is not None:
        routes["/2/users/me"]["GET"] = _either(limited(x.signed(x.me)), users_me)
    return set(x.routes()) | set(plain.routes())


def _either(oauth1: Handler, other: Handler) -> Handler:
    """The OAuth 1.0a handler for a request that speaks OAuth 1.0a, else the other one."""

    def answer(request: Request) -> Response:
        auth = (request.headers.get("Authorization") or "")[:6].lower()
        speaks = auth == "oauth " or "oauth_token" in dict(parse_qsl(request.query))
        return oauth1(request) if speaks else other(request)

    return answer
