"""A local emulator of the token endpoints keyfob talks to: the HTTP shell.

One HTTP server on 127.0.0.1 (ephemeral port) plays four providers at once, each in
its own module that holds its state and handlers and declares its routes:

* iNaturalist (``inaturalist``): ``/oauth/authorize``, ``/oauth/token``,
  ``/users/api_token``, ``/v1/users/me``, ``/v1/observations/<id>``, ``/oauth/revoke``;
* TreeSnap (``treesnap``): ``/web-services/v1/refresh-tokens`` and
  ``/web-services/v1/my-observations``;
* Twitter/X (``twitter``): ``/oauth2/token``, ``/oauth2/invalidate_token`` and
  ``/2/tweets/search/recent`` (app-only); (``twitter_user``) ``/i/oauth2/authorize``,
  ``/2/oauth2/token``, ``/2/oauth2/revoke`` and ``/2/users/me`` (user context);
* a plain OAuth2 server under ``/std`` (``oauth2``; RFC 6749, 7009, 7662, 8414, 8628);
* OAuth 1.0a (``oauth1``, RFC 5849, on oauthlib): X's ``/oauth/request_token``,
  ``/oauth/authorize``, ``/oauth/access_token``, ``/1.1/...``, and a plain one under ``/oauth1``.
* GitHub (``github``): ``/login/device/code``, ``/login/device``, ``/login/oauth/authorize``,
  ``/login/oauth/access_token``, ``/applications/<client_id>/token`` and ``/user``.

The APIs limit their callers as the real ones do (``inat_rate``, ``twitter_rate``,
``std_rate``: (requests, seconds), short in tests), and the shell keeps the time of
every arrival per path (:meth:`LocalProvider.arrivals`), so tests count at the server.

This module is the shell around them: the server and its request handler, routing
through one table, what every path shares (misbehaving on demand: delays, 429/503,
garbage bodies; counting requests per path; revoking behind the back), and the
:class:`LocalProvider` facade. It refuses what the real services refuse and never
logs or prints anything. Standard library only; every credential in here is made up.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseServer
from types import TracebackType
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

from keyfob.testing import github, inaturalist, oauth1, oauth2, twitter, twitter_user
from keyfob.testing.faults import GARBAGE_KINDS, Faults, spoil, synthetic
from keyfob.testing.github import (
    DEMO_GITHUB_APP_CLIENT_ID,
    DEMO_GITHUB_APP_CLIENT_SECRET,
    DEMO_GITHUB_LOGIN,
    DEMO_GITHUB_OAUTH_CLIENT_ID,
    DEMO_GITHUB_OAUTH_CLIENT_SECRET,
    GitHub,
)
from keyfob.testing.inaturalist import (
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_EMAIL,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    INaturalist,
)
from keyfob.testing.oauth1 import (
    DEMO_OAUTH1_CONSUMER_KEY,
    DEMO_OAUTH1_CONSUMER_SECRET,
    OAuth1Server,
)
from keyfob.testing.oauth2 import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    OAuth2Server,
)
from keyfob.testing.treesnap import DEMO_TREESNAP_USER, TreeSnap
from keyfob.testing.twitter import DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET, Twitter
from keyfob.testing.twitter_user import (
    DEMO_TWITTER_CLIENT_ID,
    DEMO_TWITTER_CLIENT_SECRET,
    DEMO_X_USER,
    TwitterUser,
)
from keyfob.testing.wire import (
    Handler,
    Patterns,
    Rate,
    Reply,
    Request,
    Response,
    Routes,
    Shared,
    oauth_error,
)

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_GITHUB_APP_CLIENT_ID",
    "DEMO_GITHUB_APP_CLIENT_SECRET",
    "DEMO_GITHUB_LOGIN",
    "DEMO_GITHUB_OAUTH_CLIENT_ID",
    "DEMO_GITHUB_OAUTH_CLIENT_SECRET",
    "DEMO_INAT_APP_ID",
    "DEMO_INAT_APP_SECRET",
    "DEMO_INAT_PASSWORD",
    "DEMO_INAT_USERNAME",
    "DEMO_OAUTH1_CONSUMER_KEY",
    "DEMO_OAUTH1_CONSUMER_SECRET",
    "DEMO_PASSWORD",
    "DEMO_TREESNAP_USER",
    "DEMO_TWITTER_API_KEY",
    "DEMO_TWITTER_API_SECRET",
    "DEMO_TWITTER_CLIENT_ID",
    "DEMO_TWITTER_CLIENT_SECRET",
    "DEMO_USERNAME",
    "GARBAGE_KINDS",
    "LocalProvider",
]

_MAX_BODY = 1 << 20


# --------------------------------------------------------------------------- HTTP plumbing
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a fleet of cold clients connects at once (socketserver says 5)

    def __init__(
        self, address: tuple[str, int], provider: LocalProvider, tls: ssl.SSLContext | None
    ) -> None:
        self.provider = provider
        self.tls = tls
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Over https, the handshake happens here, in the connection's own thread: a
        client that never finishes it holds up no one else."""
        if self.tls is not None:
            request.settimeout(_Handler.timeout)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ValueError):  # a client that does not trust us, or hangs up
                with contextlib.suppress(OSError):
                    request.close()
                return
            try:
                super().finish_request(request, client_address)
            finally:  # shutdown_request() closes the plain socket, which the wrap detached
                with contextlib.suppress(OSError):
                    request.close()
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Never print: a client hanging up mid-answer is not our business."""


class _Handler(BaseHTTPRequestHandler):
    server_version = "keyfob-emulator/1"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30
    # headers and body go out in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms a request on a kept-alive connection)
    disable_nagle_algorithm = True

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
        provider._record(split.path, self.headers.get("Authorization"))
        if self.headers.get("Transfer-Encoding"):
            self._send(Response(411, {"error": "length_required"}), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0:
            self._send(Response(400, {"error": "invalid_request"}), close=True)
            return
        if length > _MAX_BODY:
            self._send(Response(413, {"error": "request_too_large"}), close=True)
            return
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, split.path, split.query, self.headers, body)
        self._send(provider._answer(request))

    def _send(self, response: Response, *, close: bool = False) -> None:
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
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worst_window(times: list[float], seconds: float) -> int:
    """The most arrivals in any window of ``seconds`` (of :meth:`LocalProvider.arrivals`):
    what a rate limit's claim "never more than N in any window" is checked against."""
    times = sorted(times)
    worst = first = 0
    for last, t in enumerate(times):
        while times[first] <= t - seconds:
            first += 1
        worst = max(worst, last - first + 1)
    return worst


_T = TypeVar("_T")


class _Setting(Generic[_T]):
    """An attribute of :class:`LocalProvider` kept by the API(s) it concerns: read from
    the first, set on each, under the provider's lock."""

    def __init__(self, name: str, *apis: str, doc: str | None = None) -> None:
        self.name = name
        self.apis = apis
        self.__doc__ = doc

    @overload
    def __get__(self, provider: None, owner: type[Any]) -> _Setting[_T]: ...

    @overload
    def __get__(self, provider: LocalProvider, owner: type[Any]) -> _T: ...

    def __get__(self, provider: LocalProvider | None, owner: type[Any]) -> _T | _Setting[_T]:
        if provider is None:
            return self
        value: _T = getattr(getattr(provider, self.apis[0]), self.name)
        return value

    def __set__(self, provider: LocalProvider, value: _T) -> None:
        with provider._lock:
            for api in self.apis:
                setattr(getattr(provider, api), self.name, value)


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
        device_interval: int = 5,
        device_code_lifetime: int = 600,
        inat_rate: Rate = inaturalist.DEFAULT_RATE,
        twitter_rate: Rate = twitter.DEFAULT_RATE,
        std_rate: Rate = oauth2.DEFAULT_RATE,
        github_rate: Rate = github.DEFAULT_RATE,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: a server context (its certificate for 127.0.0.1 loaded) to
        answer over https instead of http; ``url`` is then ``https://127.0.0.1:PORT``
        and so is every endpoint of :meth:`config_toml`."""
        if host != "127.0.0.1":
            raise ValueError("LocalProvider only binds 127.0.0.1")
        self.host = host
        self.port = port
        self.url = ""
        self.ssl_context = ssl_context
        #: exceptions raised inside request handlers (answered with 500); should stay empty
        self.errors: list[BaseException] = []

        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._counts: Counter[str] = Counter()
        self._arrivals: dict[str, list[float]] = {}
        self._schemes: dict[str, list[str]] = {}
        self._faults = Faults(self._lock)
        self._revoked: set[str] = set()
        self._issued: set[str] = set()

        shared = Shared(self._revoked, self._issued, self.revoke, self._require_url)
        self._inat = INaturalist(
            shared,
            jwt_lifetime=jwt_lifetime,
            authorize_as=inat_authorize_as,
            deny=inat_deny,
            code_lifetime=inat_code_lifetime,
            rate=inat_rate,
        )
        self._treesnap = TreeSnap(shared, lifetime=treesnap_lifetime)
        self._twitter = Twitter(shared, rate=twitter_rate)
        self._x_user = TwitterUser(shared, self._twitter)
        #: the demo X client's registered callback (a free loopback port, chosen now)
        self.twitter_redirect_uri = f"http://127.0.0.1:{_free_port()}/callback"
        self._oauth2 = OAuth2Server(
            shared,
            access_token_lifetime=access_token_lifetime,
            rotate=rotate_refresh_tokens,
            device_interval=device_interval,
            device_code_lifetime=device_code_lifetime,
            rate=std_rate,
        )
        #: GitHub (``keyfob.testing.github``): its state and switches, for tests to read and set
        self.github = GitHub(shared, rate=github_rate, device_interval=device_interval)
        self._routes: Routes = {
            **self._inat.routes(),
            **self._treesnap.routes(),
            **self._twitter.routes(),
            **self._x_user.routes(),
            **self._oauth2.routes(),
            **self.github.routes(),
        }
        self._x_oauth1 = OAuth1Server(shared, flavour="x")
        self._oauth1 = OAuth1Server(shared, flavour="plain")
        self._query_on_post = oauth1.mount(
            self._routes, self._x_oauth1, self._oauth1, self._twitter.limited
        )
        self._patterns: Patterns = self._inat.patterns() + self.github.patterns()

        if demo_accounts:
            self.add_inat_app(DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET)
            self.add_inat_user(DEMO_INAT_USERNAME, DEMO_INAT_PASSWORD, email=DEMO_INAT_EMAIL)
            self.add_twitter_app(DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET)
            self.add_twitter_client(
                DEMO_TWITTER_CLIENT_ID, DEMO_TWITTER_CLIENT_SECRET, self.twitter_redirect_uri
            )
            self.add_oauth_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
            self.add_oauth_user(DEMO_USERNAME, DEMO_PASSWORD)
            self.add_oauth1_consumer(DEMO_OAUTH1_CONSUMER_KEY, DEMO_OAUTH1_CONSUMER_SECRET)
            self.add_github_app(DEMO_GITHUB_APP_CLIENT_ID, DEMO_GITHUB_APP_CLIENT_SECRET)
            self.add_github_app(
                DEMO_GITHUB_OAUTH_CLIENT_ID, DEMO_GITHUB_OAUTH_CLIENT_SECRET, kind="oauth"
            )

    # ------------------------------------------------------------------ settings
    # Public attributes of old, each now kept by the API it concerns.
    access_token_lifetime = _Setting[int]("access_token_lifetime", "_oauth2")
    rotate_refresh_tokens = _Setting[bool]("rotate", "_oauth2")
    jwt_lifetime = _Setting[int]("jwt_lifetime", "_inat")
    treesnap_lifetime = _Setting[int]("lifetime", "_treesnap")
    inat_authorize_as = _Setting[str | None](
        "authorize_as",
        "_inat",
        doc="iNaturalist's authorize endpoint approves at once as this signed-in user (tests "
        "need no browser); None: nobody is signed in, it answers a sign-in page.",
    )
    inat_deny = _Setting[bool](
        "deny",
        "_inat",
        doc='The person clicks "Deny": the authorize endpoint redirects with access_denied.',
    )
    inat_code_lifetime = _Setting[int]("code_lifetime", "_inat")
    twitter_authorize_as = _Setting[str | None](
        "authorize_as",
        "_x_user",
        doc="The X user id ``/i/oauth2/authorize`` approves as at once; None: a sign-in page.",
    )
    twitter_deny = _Setting[bool](
        "deny",
        "_x_user",
        doc='The person clicks "Cancel" on X: the authorize endpoint answers access_denied.',
    )
    twitter_token_lifetime = _Setting[int](
        "lifetime", "_x_user", doc="Seconds an X user-context access token lives (X: 7200)."
    )
    # Both OAuth 1.0a servers, X's and the plain one, share these.
    oauth1_authorize_as = _Setting[str | None](
        "authorize_as",
        "_x_oauth1",
        "_oauth1",
        doc="Both OAuth 1.0a authorize pages approve at once as this signed-in user (a screen "
        "name); None: nobody is signed in, they answer a sign-in page.",
    )
    oauth1_deny = _Setting[bool](
        "deny",
        "_x_oauth1",
        "_oauth1",
        doc='The person clicks "Cancel": the callback gets ``denied=<request token>`` (X\'s '
        "answer), an ``oob`` login a page without a PIN.",
    )
    oauth1_forge_callback = _Setting[bool](
        "forge_callback",
        "_x_oauth1",
        "_oauth1",
        doc="The authorize page redirects to the callback with another ``oauth_token`` than "
        "the request token's (a forged callback: the client must refuse it).",
    )
    oauth1_timestamp_lifetime = _Setting[int](
        "timestamp_lifetime",
        "_x_oauth1",
        "_oauth1",
        doc="How far (seconds) an ``oauth_timestamp`` may be from the server's clock.",
    )
    oauth1_request_token_lifetime = _Setting[int](
        "request_token_lifetime",
        "_x_oauth1",
        "_oauth1",
        doc="Seconds a request token may wait for its approval and its access token.",
    )

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalProvider:
        with self._lock:
            if self._server is not None:
                raise RuntimeError("LocalProvider is already running")
            server = _Server((self.host, self.port), self, self.ssl_context)
            self._server = server
            scheme = "https" if self.ssl_context is not None else "http"
            self.url = f"{scheme}://{self.host}:{server.server_address[1]}"
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
            self._inat.add_app(app_id, app_secret, redirect_uri)

    def deny_authorizations(self, deny: bool = True) -> None:
        """From now on the person denies (or, with False, approves) at ``/oauth/authorize``."""
        with self._lock:
            self._inat.deny = deny

    def add_inat_user(self, username: str, password: str, *, email: str | None = None) -> None:
        """An iNaturalist user; the password grant takes its login or its ``email``."""
        with self._lock:
            self._inat.add_user(username, password, email)

    def mark_inat_user(self, username: str, state: str | None) -> None:
        """Make an iNaturalist account ``"suspended"``, ``"unconfirmed"`` or ``"child"``
        (a child without a parent's permission), or, with None, an ordinary one again:
        the token endpoint then refuses it as iNaturalist does."""
        with self._lock:
            self._inat.mark(username, state)

    def add_oauth_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._oauth2.add_client(client_id, client_secret)

    def add_oauth_user(self, username: str, password: str) -> None:
        with self._lock:
            self._oauth2.add_user(username, password)

    def add_twitter_app(self, api_key: str, api_secret: str) -> None:
        with self._lock:
            self._twitter.add_app(api_key, api_secret)
            self._x_oauth1.add_consumer(api_key, api_secret)  # X's OAuth 1.0a consumer too

    def add_github_app(
        self,
        client_id: str,
        client_secret: str,
        *,
        kind: str = "app",
        callback: str | None = None,
        device_flow: bool = True,
    ) -> None:
        """A GitHub ``kind="app"`` (a GitHub App: 8 h tokens, rotating refresh tokens) or
        ``kind="oauth"`` (an OAuth app: tokens that never expire). ``callback``: its
        registered callback URL; None: any loopback one."""
        with self._lock:
            self.github.add_app(
                client_id, client_secret, kind=kind, callback=callback, device_flow=device_flow
            )

    def issue_github_token(
        self, client_id: str = DEMO_GITHUB_APP_CLIENT_ID, login: str = DEMO_GITHUB_LOGIN
    ) -> dict[str, Any]:
        """A user's token of a GitHub app, as its token endpoint answers it (a GitHub
        App's has a ``refresh_token``), without a login."""
        with self._lock:
            return self.github.issue(client_id, login)

    def approve_github_device(self, user_code: str, *, deny: bool = False) -> bool:
        """The signed-in person enters ``user_code`` at /login/device and authorizes (or
        cancels); False when no device login waits for that code."""
        with self._lock:
            device = self.github.device_by_user_code(user_code)
            if device is None:
                return False
            device.denied = deny
            device.approved_by = None if deny else self.github.authorize_as
            return True

    def add_twitter_client(
        self, client_id: str, client_secret: str | None, redirect_uri: str
    ) -> None:
        """An X app's OAuth 2.0 client: confidential with a secret, public with None;
        ``redirect_uri``: its registered callback, which X matches byte for byte."""
        with self._lock:
            self._x_user.add_client(client_id, client_secret, redirect_uri)

    def add_twitter_user(self, user_id: str, name: str, username: str) -> None:
        with self._lock:
            self._x_user.add_user(user_id, name, username)

    def twitter_refresh_token(
        self,
        user_id: str = DEMO_X_USER[0],
        client_id: str = DEMO_TWITTER_CLIENT_ID,
        scope: str = twitter_user.DEFAULT_SCOPE,
    ) -> str:
        """An X user-context refresh token, as a browser login would have given it."""
        with self._lock:
            answer = self._x_user.issue(twitter_user._Grant(client_id, user_id, scope))
        return str(answer["refresh_token"])

    def twitter_spent_uses(self) -> int:
        """Token requests that presented an X refresh token already rotated away."""
        with self._lock:
            return self._x_user.spent_uses

    def issue_treesnap_token(
        self, user: str = DEMO_TREESNAP_USER, lifetime: int | None = None, *, age: int = 0
    ) -> str:
        """A TreeSnap personal access token (HS256 JWT); a negative lifetime makes it expired.

        ``age``: how many seconds ago it was issued (``exp`` is ``iat + lifetime``)."""
        with self._lock:
            token = self._treesnap.issue(user, lifetime, age=age)
            self._issued.add(token)
        return token

    def issued(self) -> set[str]:
        """Every token this server has handed out: tests search outputs for them."""
        with self._lock:
            return set(self._issued)

    # ------------------------------------------------------------------ OAuth 1.0a
    def add_oauth1_consumer(
        self,
        key: str,
        secret: str,
        *,
        rsa_public_key: str | None = None,
        callbacks: tuple[str, ...] | None = None,
        x: bool = False,
    ) -> None:
        """A consumer of the plain OAuth 1.0a server (``x=True``: of X's). It signs with
        HMAC-SHA1, HMAC-SHA256 or PLAINTEXT with ``secret``, or RSA-SHA1 with the private
        half of ``rsa_public_key`` (PEM). ``callbacks``: its approved callback URLs (a
        loopback one matches any port); None: any loopback callback."""
        with self._lock:
            server = self._x_oauth1 if x else self._oauth1
            server.add_consumer(key, secret, rsa_public_key=rsa_public_key, callbacks=callbacks)

    def add_oauth1_user(self, screen_name: str, user_id: str, *, x: bool = False) -> None:
        """A user who can sign in at the authorize page (see :attr:`oauth1_authorize_as`)."""
        with self._lock:
            (self._x_oauth1 if x else self._oauth1).add_user(screen_name, user_id)

    def oauth1_verifier(self, request_token: str) -> str | None:
        """The verifier (X's PIN for ``oob``) given for this request token once approved."""
        with self._lock:
            return self._x_oauth1.verifier(request_token) or self._oauth1.verifier(request_token)

    def x_statuses(self) -> list[str]:
        """What was posted to X's ``/1.1/statuses/update.json``, in order."""
        with self._lock:
            return list(self._x_oauth1.statuses)

    @property
    def oauth1_consumer_key(self) -> str:
        """The plain OAuth 1.0a server's demo consumer (made up)."""
        return DEMO_OAUTH1_CONSUMER_KEY

    @property
    def oauth1_consumer_secret(self) -> str:
        return DEMO_OAUTH1_CONSUMER_SECRET

    def oauth1_urls(self, *, x: bool = False) -> dict[str, str]:
        """The endpoints of the plain OAuth 1.0a server (``x=True``: X's): request_token,
        authorize, access_token, revoke (and resource: an API that answers who signed)."""
        base = self._require_url()
        paths = (self._x_oauth1 if x else self._oauth1).paths
        return {name: base + path for name, path in paths.items()}

    def oauth1_environ(self, name: str = "local-oauth1") -> dict[str, str]:
        """The plain server's demo consumer as a declared provider ``name`` reads it."""
        prefix = name.upper().replace("-", "_")
        return {
            f"{prefix}_CLIENT_ID": DEMO_OAUTH1_CONSUMER_KEY,
            f"{prefix}_CLIENT_SECRET": DEMO_OAUTH1_CONSUMER_SECRET,
        }

    def oauth1_config_toml(self, name: str = "local-oauth1") -> str:
        """A ``protocol = "oauth1"`` provider section for the plain OAuth 1.0a server."""
        urls = self.oauth1_urls()
        return (
            f"[providers.{name}]\n"
            'protocol = "oauth1"\n'
            f'request_token_url = "{urls["request_token"]}"\n'
            f'authorize_url = "{urls["authorize"]}"\n'
            f'access_token_url = "{urls["access_token"]}"\n'
            f'revoke_url = "{urls["revoke"]}"\n'
        )

    # ------------------------------------------------------------------ acting behind the back
    def revoke(self, token: str) -> None:
        """Make any token or refresh token invalid everywhere."""
        with self._lock:
            self._revoked.add(token)
            self._inat.forget(token)
            self._twitter.forget(token)
            self._x_user.forget(token)
            self._oauth2.forget(token)
            self._x_oauth1.forget(token)
            self._oauth1.forget(token)
            self.github.forget(token)

    def is_active(self, token: str) -> bool:
        with self._lock:
            now = time.time()
            if token in self._revoked:
                return False
            apis = (
                self._inat,
                self._twitter,
                self._x_user,
                self._oauth2,
                self._treesnap,
                self._x_oauth1,
                self._oauth1,
                self.github,
            )
            for active in (api.active(token, now) for api in apis):
                if active is not None:
                    return active
            return False

    # ------------------------------------------------------------------ observation
    def count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def arrivals(self, path: str) -> list[float]:
        """When each request to ``path`` arrived (epoch seconds, in order): taken as its
        request line is read, before anything else is done with it."""
        with self._lock:
            return list(self._arrivals.get(path, ()))

    def authorizations(self, path: str) -> list[str]:
        """The scheme of each request's ``Authorization`` header to ``path`` (``"Basic"``,
        ``"Bearer"``), ``""`` for a request without one: what credentials arrived."""
        with self._lock:
            return list(self._schemes.get(path, ()))

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._arrivals.clear()
            self._schemes.clear()

    def _record(self, path: str, authorization: str | None = None) -> None:
        now = time.time()
        scheme = (authorization or "").strip().split(" ", 1)[0]
        with self._lock:
            self._counts[path] += 1
            self._arrivals.setdefault(path, []).append(now)
            self._schemes.setdefault(path, []).append(scheme)

    # ------------------------------------------------------------------ misbehaviour
    def delay(self, path: str, seconds: float, times: int | None = None) -> None:
        """Sleep ``seconds`` before answering the next ``times`` requests (None: all of them)."""
        self._faults.delay(path, seconds, times)

    def fail(
        self, path: str, status: int, *, times: int = 1, retry_after: str | None = None
    ) -> None:
        """Answer the next ``times`` requests with ``status`` and an optional Retry-After."""
        self._faults.fail(path, status, times=times, retry_after=retry_after)

    def garbage(self, path: str, kind: str, *, times: int = 1) -> None:
        """Answer the next ``times`` requests with a malformed body of the given kind."""
        self._faults.garbage(path, kind, times=times)

    def redirect(self, path: str, location: str, *, status: int = 302, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` with a redirect to ``location``
        (an absolute URL, or a path on this server)."""
        self._faults.redirect(path, location, status=status, times=times)

    def clear_faults(self, path: str | None = None) -> None:
        """Forget pending delays, failures and garbage (for one path, or all)."""
        self._faults.clear(path)

    # ------------------------------------------------------------------ configuration
    def config_toml(self) -> str:
        u = self._require_url()
        sections = (
            self._inat.config_toml(u),
            self._treesnap.config_toml(u),
            self._twitter.config_toml(u),
            self.github.config_toml(u),
            self._x_user.config_toml(u, self.twitter_redirect_uri),
            self._oauth2.config_toml(u),  # the last: tests append keys to [providers.local]
        )
        return "\n".join(sections)

    def environ(self) -> dict[str, str]:
        return {
            **self._inat.environ(),
            **self._twitter.environ(),
            **self._x_user.environ(),
            **self._oauth2.environ(),
            **self.github.environ(),
        }

    def _require_url(self) -> str:
        if not self.url:
            raise RuntimeError("start() the LocalProvider first")
        return self.url

    # ------------------------------------------------------------------ answering
    def _answer(self, request: Request) -> Response:
        pause = self._faults.take_delay(request.path)
        if pause:
            time.sleep(pause)
        fault = self._faults.take_fault(request.path)
        if fault is not None:
            made_up = synthetic(fault, request)
            if made_up is not None:
                return made_up
        response = self._route(request)
        if isinstance(response.payload, dict):
            with self._lock:
                self._issued.update(
                    v
                    for k in ("access_token", "refresh_token", "api_token", "device_code")
                    if isinstance(v := response.payload.get(k), str) and v
                )
        if fault is None:
            return response
        return spoil(fault, response)

    def _route(self, request: Request) -> Response:
        methods = self._routes.get(request.path)
        handler: Handler | None
        if methods is None:
            methods = next(
                (
                    by_method
                    for pattern, by_method in self._patterns
                    if pattern.fullmatch(request.path)
                ),
                None,
            )
        if methods is None:
            return Response(404, {"error": "not_found"})
        handler = methods.get(request.method)
        if handler is None:
            allow = ", ".join(sorted(methods))
            return Response(405, {"error": "method_not_allowed"}, {"Allow": allow})
        if request.method == "POST" and request.query and request.path not in self._query_on_post:
            return oauth_error(
                400,
                "invalid_request",
                "Parameters must be sent in the request body, not the URI.",
            ).response
        try:
            with self._lock:
                return handler(request)
        except Reply as reply:
            return reply.response
        except Exception as exc:  # a bug in the emulator: answer 500, keep it for the tests
            with self._lock:
                self.errors.append(exc)
            return Response(500, {"error": "server_error"})
