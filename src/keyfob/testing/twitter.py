"""Twitter/X as keyfob meets it: app-only bearer tokens (OAuth 2.0 client credentials).

* ``/oauth2/token``: Basic auth with the API key and secret, a form body; the same
  token until it is invalidated; errors as ``{"errors": [{"code": ...}]}`` with 403;
* ``/oauth2/invalidate_token``;
* ``/2/tweets/search/recent``: an API endpoint that takes app-only tokens (the search
  itself is not emulated: no tweets match), 401 as ``application/problem+json``;
* the API is rate limited per endpoint and per app (app-only) or per user (user
  context, :mod:`keyfob.testing.twitter_user`, whose ``/2/users/me`` refuses app-only
  tokens) in fixed windows (75 requests in 15 minutes, or ``rate``): every answer says
  ``x-rate-limit-limit``, ``x-rate-limit-remaining`` and ``x-rate-limit-reset`` (epoch
  seconds), and once spent it answers 429 with code 88 until the reset.
"""

from __future__ import annotations

import hmac
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

from keyfob.testing.wire import (
    FixedWindows,
    Handler,
    Rate,
    Reply,
    Request,
    Response,
    Routes,
    Shared,
)

DEMO_TWITTER_API_KEY = "demo-api-key"
DEMO_TWITTER_API_SECRET = "demo-api-secret-0123456789"

_PREFIX = "AAAAAAAAAAAAAAAAAAAAA"
_ALNUM = string.ascii_letters + string.digits
_BAD_CREDENTIALS: dict[str, Any] = {
    "errors": [
        {
            "code": 99,
            "message": "Unable to verify your credentials",
            "label": "authenticity_token_error",
        }
    ]
}
_RATE_LIMITED: dict[str, Any] = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
#: GET /2/users/me: 75 requests per 15 minutes (per user; the emulator counts per endpoint)
DEFAULT_RATE: Rate = (75, 900.0)
_UNAUTHORIZED: dict[str, Any] = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}


def _missing(name: str) -> dict[str, Any]:
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


class Twitter:
    """The state and the handlers of the emulated Twitter/X."""

    def __init__(self, shared: Shared, *, rate: Rate = DEFAULT_RATE) -> None:
        self.shared = shared
        self.windows = FixedWindows(rate, whole_seconds=True)
        self.apps: dict[str, str] = {}
        self.current: dict[str, str] = {}  # api key -> bearer token
        self.tokens: dict[str, str] = {}  # bearer token -> api key

    def routes(self) -> Routes:
        return {
            "/oauth2/token": {"POST": self.token},
            "/oauth2/invalidate_token": {"POST": self.invalidate},
            "/2/tweets/search/recent": {"GET": self.limited(self.search)},
        }

    @staticmethod
    def config_toml(url: str) -> str:
        return (
            "[providers.twitter]\n"
            f'token_url = "{url}/oauth2/token"\n'
            f'revoke_url = "{url}/oauth2/invalidate_token"\n'
            f'api_url = "{url}/2"\n'
        )

    @staticmethod
    def environ() -> dict[str, str]:
        return {
            "TWITTER_API_KEY": DEMO_TWITTER_API_KEY,
            "TWITTER_API_SECRET": DEMO_TWITTER_API_SECRET,
        }

    # ------------------------------------------------------------------ accounts and tokens
    def add_app(self, api_key: str, api_secret: str) -> None:
        self.apps[api_key] = api_secret

    def forget(self, token: str) -> None:
        api_key = self.tokens.pop(token, None)
        if api_key is not None and self.current.get(api_key) == token:
            del self.current[api_key]

    def active(self, token: str, now: float) -> bool | None:
        """Whether this is a live token of ours; None: not one of ours."""
        return True if token in self.tokens else None

    # ------------------------------------------------------------------ handlers
    def owner(self, request: Request) -> str:
        """Whose window a request counts in: X counts app-only requests per app."""
        app = self.tokens.get(request.bearer() or "")
        return f"app {app}" if app is not None else "nobody"

    def limited(self, handler: Handler, owner: Callable[[Request], str] | None = None) -> Handler:
        """An API handler counted in its endpoint's window of the app or user
        (``owner``), its answer saying what is left."""
        whose = owner or self.owner

        def answer(request: Request) -> Response:
            admitted, remaining, reset = self.windows.admit(
                f"{whose(request)} {request.method} {request.path}", time.time()
            )
            headers = {
                "x-rate-limit-limit": str(self.windows.limit),
                "x-rate-limit-remaining": str(remaining),
                "x-rate-limit-reset": str(int(reset)),
            }
            response = handler(request) if admitted else Response(429, dict(_RATE_LIMITED))
            response.headers.update(headers)
            return response

        return answer

    def _app(self, request: Request) -> str:
        try:
            credentials = request.basic()
        except ValueError:
            credentials = None
        if credentials is not None:
            api_key, api_secret = credentials
            known = self.apps.get(api_key)
            if known is not None and hmac.compare_digest(known, api_secret):
                return api_key
        raise Reply(Response(403, _BAD_CREDENTIALS))

    def token(self, request: Request) -> Response:
        api_key = self._app(request)
        if request.form_params().get("grant_type") != "client_credentials":
            return Response(403, _missing("grant_type"))
        token = self.current.get(api_key)
        if token is None:
            token = (
                f"{_PREFIX}{_random_alnum(8)}AAAAAAAA"
                f"{_random_alnum(24)}%2B{_random_alnum(20)}%3D{_random_alnum(40)}"
            )
            self.current[api_key] = token
            self.tokens[token] = api_key
        return Response(200, {"token_type": "bearer", "access_token": token})

    def invalidate(self, request: Request) -> Response:
        api_key = self._app(request)
        token = request.form_params().get("access_token")
        if token is None:
            return Response(403, _missing("access_token"))
        if self.tokens.get(token) != api_key:
            return Response(403, {"errors": [{"code": 89, "message": "Invalid or expired token."}]})
        self.shared.revoke(token)
        return Response(200, {"access_token": token})

    def search(self, request: Request) -> Response:
        token = request.bearer()
        if token is None or token not in self.tokens or token in self.shared.revoked:
            return unauthorized()
        return Response(200, {"meta": {"result_count": 0}})


def unauthorized() -> Response:
    """The API's 401, as X sends it (``application/problem+json``)."""
    return Response(401, dict(_UNAUTHORIZED), content_type="application/problem+json")
