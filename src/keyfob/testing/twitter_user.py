"""X's OAuth 2.0 user context, as X's documentation describes it
("OAuth 2.0 Authorization Code Flow with PKCE").

* ``/i/oauth2/authorize``: approves at once as a signed-in user (``authorize_as``;
  tests need no browser), or the person denies (``deny``: back with
  ``error=access_denied``); the ``redirect_uri`` must be the client's registered
  callback, byte for byte, and PKCE (``S256`` or ``plain``) is required; a bad
  client, callback or challenge is an error page, never a redirect;
* ``/2/oauth2/token``: ``authorization_code`` with ``code_verifier`` and
  ``refresh_token``; a confidential client authenticates with HTTP Basic, a public
  one sends ``client_id`` in the body; tokens live 7200 s; with ``offline.access``
  a refresh token comes too, and each refresh answers a new one while the old one
  stops working (rotation); X's errors: ``invalid_request`` "Value passed for the
  token was invalid." (a spent, revoked or unknown refresh token), 401
  ``unauthorized_client`` "Missing valid authorization header";
* ``/2/oauth2/revoke``: ``token`` and ``token_type_hint``, client as for the token
  endpoint; ``{"revoked": true}``;
* ``/2/users/me``: a user's token -> ``{"data": {"id", "name", "username"}}``; an
  app-only token -> 403 "Unsupported Authentication"; rate limited per user and
  endpoint in the windows of :mod:`keyfob.testing.twitter`.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from keyfob.testing.twitter import Twitter, unauthorized
from keyfob.testing.wire import (
    NO_STORE,
    Reply,
    Request,
    Response,
    Routes,
    Shared,
    b64url,
    oauth_error,
    pkce_matches,
)

DEMO_TWITTER_CLIENT_ID = "demo-x-client-id"
DEMO_TWITTER_CLIENT_SECRET = "demo-x-client-secret-0123456789"
#: the signed-in user of the demo: (id, name, username)
DEMO_X_USER = ("1460000000000000001", "Demo User", "demo_user")
DEFAULT_SCOPE = "tweet.read users.read offline.access"
SCOPES = frozenset(
    {
        "tweet.read",
        "tweet.write",
        "users.read",
        "follows.read",
        "follows.write",
        "offline.access",
        "like.read",
        "like.write",
        "dm.read",
        "dm.write",
    }
)
_PKCE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_DEAD_TOKEN = "Value passed for the token was invalid."
_DEAD_CODE = "Value passed for the authorization code was invalid."
_BAD_GRANT = "Value passed for the grant type was invalid."
_NO_AUTH = "Missing valid authorization header"
_UNSUPPORTED: dict[str, Any] = {
    "title": "Unsupported Authentication",
    "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  "
    "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
    "type": "https://api.twitter.com/2/problems/unsupported-authentication",
    "status": 403,
}


@dataclass
class _Client:
    secret: str | None  # None: a public client
    redirect_uri: str


@dataclass
class _Grant:
    client_id: str
    user_id: str
    scope: str


@dataclass
class _Code:
    grant: _Grant
    redirect_uri: str
    challenge: str
    method: str
    expires_at: float


def _page(message: str) -> Response:
    page = (
        "<!DOCTYPE html><html><head><title>X</title></head><body>"
        f"<h1>Something went wrong</h1><p>{message}</p></body></html>"
    )
    return Response(400, raw=page.encode(), content_type="text/html; charset=utf-8")


class TwitterUser:
    """The state and the handlers of X's OAuth 2.0 user context."""

    def __init__(
        self, shared: Shared, app: Twitter, *, lifetime: int = 7200, code_lifetime: int = 30
    ) -> None:
        self.shared = shared
        self.app = app  # the app-only tokens /2/users/me refuses, and the rate windows
        self.lifetime = lifetime
        self.code_lifetime = code_lifetime
        self.authorize_as: str | None = DEMO_X_USER[0]
        self.deny = False
        self.clients: dict[str, _Client] = {}
        self.users: dict[str, tuple[str, str]] = {DEMO_X_USER[0]: DEMO_X_USER[1:]}
        self.codes: dict[str, _Code] = {}
        self.access: dict[str, tuple[_Grant, float]] = {}  # token -> grant, expiry
        self.refresh: dict[str, _Grant] = {}  # live refresh tokens
        self.spent: set[str] = set()  # refresh tokens rotated away
        #: token requests that presented a refresh token already rotated away
        self.spent_uses = 0

    def routes(self) -> Routes:
        return {
            "/i/oauth2/authorize": {"GET": self.authorize},
            "/2/oauth2/token": {"POST": self.token},
            "/2/oauth2/revoke": {"POST": self.revoke},
            "/2/users/me": {"GET": self.app.limited(self.me, self.owner)},
        }

    def config_toml(self, url: str, redirect_uri: str | None) -> str:
        return (
            "[providers.twitter-user]\n"
            f'authorize_url = "{url}/i/oauth2/authorize"\n'
            f'token_url = "{url}/2/oauth2/token"\n'
            f'revoke_url = "{url}/2/oauth2/revoke"\n'
            f'api_url = "{url}/2"\n'
            + (f'redirect_uri = "{redirect_uri}"\n' if redirect_uri else "")
        )

    @staticmethod
    def environ() -> dict[str, str]:
        return {
            "TWITTER_CLIENT_ID": DEMO_TWITTER_CLIENT_ID,
            "TWITTER_CLIENT_SECRET": DEMO_TWITTER_CLIENT_SECRET,
        }

    # ------------------------------------------------------------------ accounts and tokens
    def add_client(self, client_id: str, secret: str | None, redirect_uri: str) -> None:
        self.clients[client_id] = _Client(secret, redirect_uri)

    def add_user(self, user_id: str, name: str, username: str) -> None:
        self.users[user_id] = (name, username)

    def issue(self, grant: _Grant) -> dict[str, Any]:
        """A token answer as X's: bearer, 7200 s, the scope, a refresh token with
        ``offline.access``."""
        token = b64url(secrets.token_bytes(48))
        self.access[token] = (grant, time.time() + self.lifetime)
        answer: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": self.lifetime,
            "access_token": token,
            "scope": grant.scope,
        }
        if "offline.access" in grant.scope.split():
            refresh = b64url(secrets.token_bytes(48))
            self.refresh[refresh] = grant
            answer["refresh_token"] = refresh
        self.shared.issued.update(v for k, v in answer.items() if k.endswith("_token"))
        return answer

    def forget(self, token: str) -> None:
        self.access.pop(token, None)
        self.refresh.pop(token, None)

    def active(self, token: str, now: float) -> bool | None:
        if token in self.refresh:
            return True
        if token in self.access:
            return self.access[token][1] > now
        return False if token in self.spent else None

    def user_of(self, token: str) -> str | None:
        """The user id of a live access token; None otherwise."""
        known = self.access.get(token)
        if known is None or known[1] <= time.time() or token in self.shared.revoked:
            return None
        return known[0].user_id

    def owner(self, request: Request) -> str:
        """X counts user-context requests per user, app-only ones per app."""
        user = self.user_of(request.bearer() or "")
        return f"user {user}" if user is not None else self.app.owner(request)

    # ------------------------------------------------------------------ handlers
    def authorize(self, request: Request) -> Response:
        pairs = parse_qsl(request.query, keep_blank_values=True)
        query = dict(pairs)
        if len(query) != len(pairs):
            return _page("A parameter was given more than once.")
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            return _page("You weren't able to give access to the App: unknown client.")
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri != client.redirect_uri:
            return _page("You weren't able to give access to the App: the callback URL is wrong.")
        challenge, method = query.get("code_challenge", ""), query.get("code_challenge_method")
        if not _PKCE.fullmatch(challenge) or method not in ("S256", "plain"):
            return _page("You weren't able to give access to the App: PKCE is required.")
        state = query.get("state")

        def back(**params: str) -> Response:
            if state is not None:
                params["state"] = state
            location = redirect_uri + "?" + urlencode(params)
            return Response(302, headers={"Location": location, **NO_STORE})

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        scope = " ".join(query.get("scope", "").split())
        if not scope or not set(scope.split()) <= SCOPES:
            return back(error="invalid_scope", error_description="Invalid scope.")
        if self.authorize_as is None:
            return Response(
                200, raw=b"<h1>Sign in to X</h1>", content_type="text/html; charset=utf-8"
            )
        if self.deny:
            return back(error="access_denied", error_description="The user denied access.")
        code = b64url(secrets.token_bytes(32))
        grant = _Grant(query["client_id"], self.authorize_as, scope)
        expires_at = time.time() + self.code_lifetime
        self.codes[code] = _Code(grant, redirect_uri, challenge, method, expires_at)
        self.shared.issued.add(code)
        return back(code=code)

    def _client(self, request: Request, params: dict[str, str]) -> str:
        """A confidential client by HTTP Basic, a public one by ``client_id`` in the body."""
        try:
            basic = request.basic()
        except ValueError:
            basic = None
        if basic is not None:
            known = self.clients.get(basic[0])
            if (
                known is not None
                and known.secret is not None
                and hmac.compare_digest(known.secret, basic[1])
            ):
                return basic[0]
            raise oauth_error(401, "unauthorized_client", _NO_AUTH)
        client_id = params.get("client_id", "")
        known = self.clients.get(client_id)
        if known is None or known.secret is not None:
            raise oauth_error(401, "unauthorized_client", _NO_AUTH)
        return client_id

    def token(self, request: Request) -> Response:
        params = request.form_params()
        client_id = self._client(request, params)
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            answer = self._code(client_id, params)
        elif grant_type == "refresh_token":
            answer = self._refresh(client_id, params)
        else:
            raise oauth_error(400, "invalid_request", _BAD_GRANT)
        return Response(200, answer, dict(NO_STORE))

    def _code(self, client_id: str, params: dict[str, str]) -> dict[str, Any]:
        code = self.codes.pop(params.get("code", ""), None)
        if code is None or code.grant.client_id != client_id or code.expires_at <= time.time():
            raise oauth_error(400, "invalid_request", _DEAD_CODE)
        if params.get("redirect_uri") != code.redirect_uri:
            raise oauth_error(400, "invalid_request", _DEAD_CODE)
        verifier = params.get("code_verifier", "")
        if not _PKCE.fullmatch(verifier) or not pkce_matches(verifier, code.challenge, code.method):
            raise oauth_error(400, "invalid_request", _DEAD_CODE)
        return self.issue(code.grant)

    def _refresh(self, client_id: str, params: dict[str, str]) -> dict[str, Any]:
        token = params.get("refresh_token", "")
        grant = self.refresh.get(token)
        if token in self.spent:
            self.spent_uses += 1
        if grant is None or grant.client_id != client_id or token in self.shared.revoked:
            raise oauth_error(400, "invalid_request", _DEAD_TOKEN)
        del self.refresh[token]  # rotation: the old one stops working
        self.spent.add(token)
        return self.issue(grant)

    def revoke(self, request: Request) -> Response:
        params = request.form_params()
        client_id = self._client(request, params)
        token = params.get("token")
        if not token:
            raise oauth_error(400, "invalid_request", "Missing required parameter [token].")
        grant = self.refresh.get(token) or self.access.get(token, (None, 0))[0]
        if grant is not None and grant.client_id == client_id:
            self.shared.revoke(token)
        return Response(200, {"revoked": True})

    def me(self, request: Request) -> Response:
        token = request.bearer() or ""
        user = self.user_of(token)
        if user is not None:
            name, username = self.users.get(user, ("", ""))
            return Response(200, {"data": {"id": user, "name": name, "username": username}})
        if token in self.app.tokens and token not in self.shared.revoked:
            return Response(403, dict(_UNSUPPORTED), content_type="application/problem+json")
        raise Reply(unauthorized())
