"""iNaturalist as its own code says it is: Doorkeeper configured by iNaturalist's
``config/initializers/doorkeeper.rb``, the errors of its ``OauthTokensController``,
the JWT trade, and two endpoints of the v1 API.

* ``/oauth/authorize``: auto-approved as a signed-in user, or denied, on demand;
* ``/oauth/token``: the grants ``authorization_code`` (PKCE), ``client_credentials``
  and ``password`` (the user as ``login``, ``email`` or ``username``); default scopes
  ``write login``; access tokens never expire (``access_token_expires_in nil``) and
  come without a refresh token. A bad login is ``invalid_grant`` "Invalid email,
  username, or password."; a suspended user is HTTP 401 ``suspended``; a child
  without permission and an unconfirmed account are ``invalid_grant`` with their
  own descriptions;
* ``/users/api_token``: an OAuth token with the ``write`` scope -> an HS512 JWT of
  ``user_id``, ``oauth_application_id`` and ``exp`` (24 hours) only: two JWTs of
  one user and app made within the same second are the same string;
* ``/v1/users/me``: the user of a live JWT or OAuth token (``id``, ``login``); else 401;
* ``/v1/observations/<id>``: private coordinates only with the owner's JWT;
* the v1 API throttles: past 100 requests a minute (``rate``) it answers 429
  ``{"error": "Too Many Requests", "status": 429}``, without saying until when;
* ``/oauth/revoke``.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from keyfob.testing.wire import (
    NO_STORE,
    Handler,
    Patterns,
    Rate,
    Reply,
    Request,
    Response,
    Routes,
    Shared,
    SlidingWindow,
    jwt_decode,
    jwt_encode,
    oauth_error,
    pkce_matches,
)

DEMO_INAT_APP_ID = "demo-app-id"
DEMO_INAT_APP_SECRET = "demo-app-secret-0123456789"
DEMO_INAT_USERNAME = "demo-naturalist"
DEMO_INAT_PASSWORD = "demo-password-0123456789"
DEMO_INAT_EMAIL = "demo-naturalist@example.org"
#: what ``LocalProvider.mark_inat_user`` can make of an account
ACCOUNT_STATES = ("suspended", "unconfirmed", "child")

_OBSERVATION = re.compile(r"/v1/observations/([0-9]{1,18})")
_PKCE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1-4.2
_SCOPES = frozenset({"login", "write"})
_DEFAULT_SCOPES = "write login"  # doorkeeper.rb: default_scopes :write, :login
_EXACT = [-84.123456, 35.654321]  # GeoJSON order: longitude, latitude
_ROUNDED = [-84.1, 35.7]

_INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)
_INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
_INVALID_SCOPE = "The requested scope is invalid, unknown, or malformed."
_UNSUPPORTED_GRANT = "The authorization grant type is not supported by the authorization server."
_UNAUTHORIZED: dict[str, Any] = {"error": "Unauthorized", "status": 401}
_TOO_MANY: dict[str, Any] = {"error": "Too Many Requests", "status": 429}
#: iNaturalist's API throttles past 100 requests a minute (it asks for 60)
DEFAULT_RATE: Rate = (100, 60.0)
# OauthTokensController's own descriptions, by I18n key: devise.failure.invalid (as
# iNaturalist words it), this_user_has_been_suspended and
# please_ask_your_parents_for_permission (texts inferred from their keys), and
# devise.failure.unconfirmed (Devise's English).
_BAD_LOGIN = "Invalid email, username, or password."
_SUSPENDED = "This user has been suspended."
_CHILD = "Please ask your parents for permission."
_UNCONFIRMED = "You have to confirm your email address before continuing."


@dataclass
class _Code:
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
class _Access:
    """A Doorkeeper access token: it never expires and has no refresh token."""

    login: str | None  # None: the app's own token (client credentials), no user
    app_id: str
    scope: str


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def _page(status: int, title: str, message: str) -> Response:
    page = (
        "<!DOCTYPE html><html><head><title>iNaturalist</title></head><body>"
        f"<h1>{title}</h1><p>{message}</p></body></html>"
    )
    return Response(
        status, raw=page.encode(), content_type="text/html; charset=utf-8", headers=NO_STORE
    )


class INaturalist:
    """The state and the handlers of the emulated iNaturalist."""

    def __init__(
        self,
        shared: Shared,
        *,
        jwt_lifetime: int,
        authorize_as: str | None,
        deny: bool,
        code_lifetime: int,
        rate: Rate = DEFAULT_RATE,
    ) -> None:
        self.shared = shared
        self.throttle = SlidingWindow(rate)
        self.jwt_lifetime = jwt_lifetime
        self.authorize_as = authorize_as
        self.deny = deny
        self.code_lifetime = code_lifetime
        self.jwt_key = secrets.token_bytes(64)
        self.apps: dict[str, str] = {}
        self.app_ids: dict[str, int] = {}  # app id (uid) -> oauth_application_id
        self.redirects: dict[str, str | None] = {}  # app id -> registered redirect URI
        self.codes: dict[str, _Code] = {}
        self.users: dict[str, str] = {}
        self.user_ids: dict[str, int] = {DEMO_INAT_USERNAME: 1}
        self.emails: dict[str, str] = {}  # lower-case email -> login
        self.states: dict[str, str] = {}  # login -> one of ACCOUNT_STATES
        self.tokens: dict[str, _Access] = {}

    def routes(self) -> Routes:
        return {
            "/oauth/authorize": {"GET": self.authorize},
            "/oauth/token": {"POST": self.token},
            "/users/api_token": {"GET": self.api_token},
            "/v1/users/me": {"GET": self.throttled(self.me)},
            "/oauth/revoke": {"POST": self.revoke},
        }

    def patterns(self) -> Patterns:
        return [(_OBSERVATION, {"GET": self.throttled(self.observation)})]

    def throttled(self, handler: Handler) -> Handler:
        """A v1 API handler behind the throttle: every ``/v1`` route shares one window."""

        def answer(request: Request) -> Response:
            if not self.throttle.admit(time.time()):
                return Response(429, dict(_TOO_MANY))
            return handler(request)

        return answer

    def config_toml(self, url: str) -> str:
        return (
            "[providers.inaturalist]\n"
            f'token_url = "{url}/oauth/token"\n'
            f'authorize_url = "{url}/oauth/authorize"\n'
            f'jwt_url = "{url}/users/api_token"\n'
            f'revoke_url = "{url}/oauth/revoke"\n'
            f'api_url = "{url}/v1"\n'
        )

    @staticmethod
    def environ() -> dict[str, str]:
        return {
            "INAT_USERNAME": DEMO_INAT_USERNAME,
            "INAT_PASSWORD": DEMO_INAT_PASSWORD,
            "INAT_APP_ID": DEMO_INAT_APP_ID,
            "INAT_APP_SECRET": DEMO_INAT_APP_SECRET,
        }

    # ------------------------------------------------------------------ accounts and tokens
    def add_app(self, app_id: str, app_secret: str, redirect_uri: str | None) -> None:
        self.apps[app_id] = app_secret
        self.app_ids.setdefault(app_id, len(self.app_ids) + 1)
        self.redirects[app_id] = redirect_uri

    def add_user(self, username: str, password: str, email: str | None = None) -> None:
        self.users[username] = password
        if username not in self.user_ids:
            self.user_ids[username] = max(self.user_ids.values()) + 1
        if email is not None:
            self.emails[email.lower()] = username

    def mark(self, username: str, state: str | None) -> None:
        if username not in self.users:
            raise KeyError(username)
        if state is None:
            self.states.pop(username, None)
        elif state in ACCOUNT_STATES:
            self.states[username] = state
        else:
            raise ValueError(f"state must be one of {ACCOUNT_STATES} or None")

    def _find(self, name: str) -> str | None:
        """The login a sign-in name means: a login or an email, in any case (as
        iNaturalist's ``User.find_for_authentication``)."""
        lower = name.lower()
        for login in self.users:
            if login.lower() == lower:
                return login
        return self.emails.get(lower)

    def forget(self, token: str) -> None:
        self.tokens.pop(token, None)

    def active(self, token: str, now: float) -> bool | None:
        """Whether this is a live token of ours; None: not one of ours."""
        if token in self.tokens:
            return True
        if jwt_decode(token, self.jwt_key, "HS512", now) is not None:
            return True
        return None

    # ------------------------------------------------------------------ handlers
    def token(self, request: Request) -> Response:
        """``POST /oauth/token``: doorkeeper.rb's ``grant_flows``; other grants are
        ``unsupported_grant_type``."""
        params = request.params()
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        if grant_type == "authorization_code":
            return self._code_grant(request, params)
        if grant_type == "password":
            return self._password_grant(request, params)
        if grant_type == "client_credentials":
            app_id = self._client(request, params, secret_required=True)
            return self._issue(None, app_id, self._scope(params))
        raise oauth_error(400, "unsupported_grant_type", _UNSUPPORTED_GRANT)

    def _client(self, request: Request, params: dict[str, str], *, secret_required: bool) -> str:
        """The app, by HTTP Basic or by ``client_id``/``client_secret`` in the body
        (Doorkeeper's default ``client_credentials :from_basic, :from_params``)."""
        try:
            basic = request.basic()
        except ValueError:
            raise oauth_error(401, "invalid_client", _INVALID_CLIENT) from None
        body_id, body_secret = params.get("client_id"), params.get("client_secret")
        app_id: str | None
        app_secret: str | None
        if basic is not None:
            if body_secret is not None or (body_id is not None and body_id != basic[0]):
                raise oauth_error(401, "invalid_client", _INVALID_CLIENT)
            app_id, app_secret = basic[0], basic[1] or None
        else:
            app_id, app_secret = body_id, body_secret
        known = self.apps.get(app_id or "")
        if app_id is None or known is None or (app_secret is None and secret_required):
            raise oauth_error(401, "invalid_client", _INVALID_CLIENT)
        if app_secret is not None and not hmac.compare_digest(known, app_secret):
            raise oauth_error(401, "invalid_client", _INVALID_CLIENT)
        return app_id

    @staticmethod
    def _scope(params: dict[str, str]) -> str:
        asked = params.get("scope")
        if asked is None:
            return _DEFAULT_SCOPES
        scopes = asked.split()
        if not scopes or not set(scopes) <= _SCOPES:
            raise oauth_error(400, "invalid_scope", _INVALID_SCOPE)
        return " ".join(scopes)

    def _password_grant(self, request: Request, params: dict[str, str]) -> Response:
        """doorkeeper.rb's ``resource_owner_from_credentials``: the user as ``login``,
        ``email`` or ``username`` (in that order), found by login or email; the user
        is judged before the app is (Doorkeeper asks for the resource owner first)."""
        name = params.get("login") or params.get("email") or params.get("username")
        password = params.get("password")
        if name is None or password is None:
            missing = "username" if name is None else "password"
            raise oauth_error(400, "invalid_request", f"Missing required parameter: {missing}.")
        login = self._find(name)
        stored = self.users.get(login) if login is not None else None
        if login is None or stored is None or not hmac.compare_digest(stored, password):
            raise oauth_error(400, "invalid_grant", _BAD_LOGIN)
        self._admit(login)
        if self.states.get(login) == "child":
            raise oauth_error(400, "invalid_grant", _CHILD)
        if self.states.get(login) == "unconfirmed":
            raise oauth_error(400, "invalid_grant", _UNCONFIRMED)
        app_id = self._client(request, params, secret_required=True)
        return self._issue(login, app_id, self._scope(params))

    def _admit(self, login: str) -> None:
        """A suspended user gets no token, whatever the grant (OauthTokensController)."""
        if self.states.get(login) == "suspended":
            raise Reply(
                Response(
                    401,
                    {
                        "error": "suspended",
                        "error_description": _SUSPENDED,
                        "suspended_until": None,  # suspended until further notice
                    },
                    dict(NO_STORE),
                )
            )

    def _issue(self, login: str | None, app_id: str, scope: str) -> Response:
        """An access token as Doorkeeper answers it with ``access_token_expires_in nil``
        and no ``use_refresh_token``: no ``expires_in``, no ``refresh_token``."""
        token = secrets.token_urlsafe(32)
        self.tokens[token] = _Access(login, app_id, scope)
        payload = {
            "access_token": token,
            "token_type": "Bearer",
            "scope": scope,
            "created_at": int(time.time()),
        }
        return Response(200, payload, dict(NO_STORE))

    def _redirect_ok(self, app_id: str, redirect_uri: str) -> bool:
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
        registered = self.redirects.get(app_id)
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

    def authorize(self, request: Request) -> Response:
        """``GET /oauth/authorize``: errors about the client or the redirect URI are a
        page (never a redirect there); the rest go back to the redirect URI."""
        pairs = parse_qsl(request.query, keep_blank_values=True)
        names = [name for name, _ in pairs]
        if len(names) != len(set(names)):
            return _page(400, "Bad request", "A parameter was given more than once.")
        query = {name: value for name, value in pairs if value != ""}
        app_id = query.get("client_id")
        if app_id is None or app_id not in self.apps:
            return _page(
                400, "An error has occurred", "Client authentication failed due to unknown client."
            )
        redirect_uri = query.get("redirect_uri") or self.redirects.get(app_id)
        if redirect_uri is None or not self._redirect_ok(app_id, redirect_uri):
            return _page(400, "An error has occurred", "The redirect uri included is not valid.")
        state = query.get("state")

        def back(**params: str) -> Response:
            if state is not None:
                params["state"] = state
            separator = "&" if urlsplit(redirect_uri).query else "?"
            location = redirect_uri + separator + urlencode(params)
            return Response(302, headers={"Location": location, **NO_STORE})

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
        scope = " ".join((query.get("scope") or _DEFAULT_SCOPES).split())
        if not set(scope.split(" ")) <= _SCOPES:
            return back(
                error="invalid_scope",
                error_description="The requested scope is invalid, unknown, or malformed.",
            )
        username = self.authorize_as
        if username is None:
            return _page(200, "Sign in", "Sign in to iNaturalist to continue.")
        if self.deny:
            return back(
                error="access_denied",
                error_description="The resource owner denied the request.",
            )
        code = secrets.token_urlsafe(32)
        self.codes[code] = _Code(
            app_id=app_id,
            redirect_uri=redirect_uri,
            username=username,
            scope=scope,
            challenge=challenge,
            method=method if challenge is not None else None,
            expires_at=time.time() + self.code_lifetime,
        )
        self.shared.issued.add(code)
        return back(code=code)

    def _code_grant(self, request: Request, params: dict[str, str]) -> Response:
        """The authorization-code grant: client by Basic or body; its secret may be left
        out only when the authorization used PKCE; codes are single-use."""
        app_id = self._client(request, params, secret_required=False)
        basic = request.basic()
        app_secret = basic[1] if basic is not None and basic[1] else params.get("client_secret")
        code = params.get("code")
        if code is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: code.")
        grant = self.codes.get(code)
        if grant is None or grant.app_id != app_id:
            raise oauth_error(400, "invalid_grant", _INVALID_GRANT)
        if grant.token is not None:
            # Used before: refused, and what it gave is revoked (RFC 6749 §4.1.2).
            self.shared.revoke(grant.token)
            raise oauth_error(400, "invalid_grant", _INVALID_GRANT)
        if grant.expires_at <= time.time():
            del self.codes[code]
            raise oauth_error(400, "invalid_grant", _INVALID_GRANT)
        if app_secret is None and grant.challenge is None:
            raise oauth_error(401, "invalid_client", _INVALID_CLIENT)
        if params.get("redirect_uri") != grant.redirect_uri:
            raise oauth_error(400, "invalid_grant", _INVALID_GRANT)
        if grant.challenge is not None:
            verifier = params.get("code_verifier")
            if verifier is None or not _PKCE.fullmatch(verifier):
                raise oauth_error(400, "invalid_grant", _INVALID_GRANT)
            if not pkce_matches(verifier, grant.challenge, grant.method or "plain"):
                raise oauth_error(400, "invalid_grant", _INVALID_GRANT)
        self._admit(grant.username)
        response = self._issue(grant.username, app_id, grant.scope)
        grant.token = response.payload["access_token"]
        return response

    def api_token(self, request: Request) -> Response:
        """``GET /users/api_token``: needs a user's token with the ``write`` scope; the
        JWT is iNaturalist's ``JsonWebToken.encode``: user, app, expiry second."""
        token = request.bearer()
        access = self.tokens.get(token or "")
        if token is None or access is None or access.login is None or token in self.shared.revoked:
            return Response(401, dict(_UNAUTHORIZED))
        if "write" not in access.scope.split():
            raise oauth_error(
                403, "insufficient_scope", 'Access to this resource requires scope "write".'
            )
        payload = {
            "user_id": self.user_ids[access.login],
            "oauth_application_id": self.app_ids[access.app_id],
            "exp": int(time.time()) + self.jwt_lifetime,
        }
        jwt = jwt_encode(payload, self.jwt_key, "HS512", {"alg": "HS512"})
        return Response(200, {"api_token": jwt})

    def _api_value(self, request: Request) -> str:
        """The v1 API reads the JWT from ``Authorization``, with or without ``Bearer``."""
        value = (request.headers.get("Authorization") or "").strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        return value

    def _user_of(self, jwt: str) -> str | None:
        """The login of a live JWT's user; None: not a live JWT of ours."""
        claims = jwt_decode(jwt, self.jwt_key, "HS512", time.time())
        if claims is None or jwt in self.shared.revoked:
            return None
        user_id = claims.get("user_id")
        return next((login for login, n in self.user_ids.items() if n == user_id), None)

    def me(self, request: Request) -> Response:
        """``GET /v1/users/me``: the user of a live JWT or OAuth token, as the v1 API
        answers a user (a browser login's identity; pyinaturalist's ``validate_token``)."""
        value = self._api_value(request)
        if _looks_like_jwt(value):
            login = self._user_of(value)
        else:
            access = self.tokens.get(value)
            login = access.login if access and access.login else None
        if login is None:
            return Response(401, dict(_UNAUTHORIZED))
        user = {"id": self.user_ids[login], "login": login}
        return Response(200, {"total_results": 1, "page": 1, "per_page": 1, "results": [user]})

    def observation(self, request: Request) -> Response:
        match = _OBSERVATION.fullmatch(request.path)
        assert match is not None
        observation_id = int(match.group(1))
        value = self._api_value(request)
        owner = False
        if value:
            if _looks_like_jwt(value):
                login = self._user_of(value)
                if login is None:
                    return Response(401, dict(_UNAUTHORIZED))
                owner = login == DEMO_INAT_USERNAME
            elif value not in self.tokens:
                return Response(401, dict(_UNAUTHORIZED))
        result: dict[str, Any] = {
            "id": observation_id,
            "obscured": True,
            "geoprivacy": "obscured",
            "geojson": {"type": "Point", "coordinates": list(_ROUNDED)},
            "user": {"id": self.user_ids[DEMO_INAT_USERNAME], "login": DEMO_INAT_USERNAME},
        }
        if owner:
            result["private_geojson"] = {"type": "Point", "coordinates": list(_EXACT)}
        return Response(200, {"total_results": 1, "page": 1, "per_page": 1, "results": [result]})

    def revoke(self, request: Request) -> Response:
        token = request.params().get("token")
        if token is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: token.")
        if token in self.tokens:
            self.shared.revoke(token)
        return Response(200, {})
