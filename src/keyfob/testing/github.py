"""GitHub as keyfob meets it: user tokens of OAuth apps and GitHub Apps, quirks included.

* ``POST /login/device/code`` (only ``client_id`` needed) and ``GET``/``POST
  /login/device``, the page where the signed-in person enters the code and
  approves or denies;
* ``GET /login/oauth/authorize``: the signed-in person (``authorize_as``)
  approves at once, or denies (``deny``), and is sent back to the app's
  callback; a loopback callback ``http://127.0.0.1/...`` takes any port; PKCE
  (S256) is checked when the app sent a challenge;
* ``POST /login/oauth/access_token``: the device code (``authorization_pending``,
  ``slow_down`` with the new ``interval`` when polled faster than it,
  ``expired_token``, ``access_denied``), the authorization code and the
  refresh token; **every answer is HTTP 200, errors included, and a form
  (``access_token=...&token_type=bearer``) unless the request says ``Accept:
  application/json``**;
* client kinds: an OAuth app (``gho_`` tokens that never expire, no refresh
  token) and a GitHub App (``ghu_`` tokens of 8 hours, ``ghr_`` refresh tokens
  of about six months that rotate: a spent one answers ``bad_refresh_token``);
* ``DELETE /applications/{client_id}/token``: HTTP Basic with the app's id and
  secret, ``{"access_token": ...}``; 204, 422 for a token it does not know, 404
  for wrong app credentials. Revoking a GitHub App's token also ends the
  refresh token it came with (GitHub does not say; the emulator assumes it);
* ``GET /user``: the API, with ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset``
  (epoch seconds), ``-Used`` and ``-Resource`` on every answer (5000 an hour,
  or ``rate``); 401 ``Bad credentials`` for a bad token, 403 ``API rate limit
  exceeded`` once spent.

Standard library only; every credential in here is made up.
"""

from __future__ import annotations

import hmac
import html
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from keyfob.testing.wire import (
    FORM,
    Device,
    FixedWindows,
    Handler,
    Patterns,
    Rate,
    Reply,
    Request,
    Response,
    Routes,
    Shared,
    new_user_code,
    pkce_matches,
)

DEMO_GITHUB_APP_CLIENT_ID = "Iv1.demo0123456789ab"
DEMO_GITHUB_APP_CLIENT_SECRET = "demo-github-app-secret-0123456789abcdef"
DEMO_GITHUB_OAUTH_CLIENT_ID = "Ov23lidemo0123456789"
DEMO_GITHUB_OAUTH_CLIENT_SECRET = "demo-github-oauth-secret-0123456789abcdef"
DEMO_GITHUB_LOGIN = "octocat"

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: GitHub's documented lives: a GitHub App's user token, its refresh token, a device code
APP_TOKEN_LIFETIME = 28800
REFRESH_TOKEN_LIFETIME = 15897600
DEVICE_CODE_LIFETIME = 900
#: GET /user: 5000 requests an hour for a user's token
DEFAULT_RATE: Rate = (5000, 3600.0)
_ALNUM = string.ascii_letters + string.digits
_DOCS = "https://docs.github.com/apps/oauth"
#: GitHub's words for the answers to a device code poll (RFC 8628 §3.5)
_DEVICE_ERRORS = {
    "expired_token": "This 'device_code' has expired.",
    "access_denied": "The authorization request was denied.",
    "slow_down": "Too many requests have been made in the same timeframe.",
    "authorization_pending": "The authorization request is still pending.",
}


def _token(prefix: str, length: int = 36) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass
class _App:
    client_id: str
    client_secret: str
    kind: str  # "oauth" or "app"
    callback: str | None  # the registered callback URL; None: any loopback one
    device_flow: bool = True


@dataclass
class _Access:
    client_id: str
    login: str
    scope: str
    expires_at: float | None
    #: an access token's refresh token, a refresh token's access token (None: none)
    pair: str | None = None


@dataclass
class _Code:
    client_id: str
    login: str
    scope: str
    redirect_uri: str | None
    challenge: str | None
    expires_at: float


@dataclass
class GitHub:
    """The state and the handlers of the emulated GitHub."""

    shared: Shared
    rate: Rate = DEFAULT_RATE
    authorize_as: str | None = DEMO_GITHUB_LOGIN
    deny: bool = False
    device_interval: int = 5
    #: a GitHub App's user token lifetime (tests shorten it)
    app_token_lifetime: int = APP_TOKEN_LIFETIME
    apps: dict[str, _App] = field(default_factory=dict)
    access: dict[str, _Access] = field(default_factory=dict)
    refresh: dict[str, _Access] = field(default_factory=dict)  # refresh token -> its grant
    devices: dict[str, Device] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    #: token requests answered as a form (sent without Accept: application/json)
    form_answers: int = 0
    #: refresh tokens presented again after they were spent
    spent_refresh_tokens_sent: int = 0
    #: the parameter names of each device code request
    device_code_params: list[set[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.windows = FixedWindows(self.rate, whole_seconds=True)
        self.spent: set[str] = set()

    def routes(self) -> Routes:
        return {
            "/login/device/code": {"POST": self.device_code},
            "/login/device": {"GET": self.device_page, "POST": self.device_verify},
            "/login/oauth/authorize": {"GET": self.authorize},
            "/login/oauth/access_token": {"POST": self.token},
            "/user": {"GET": self.limited(self.user)},
        }

    def patterns(self) -> Patterns:
        return [(re.compile(r"/applications/[^/]+/token"), {"DELETE": self.delete_token})]

    @staticmethod
    def config_toml(url: str) -> str:
        return (
            "[providers.github]\n"
            f'token_url = "{url}/login/oauth/access_token"\n'
            f'authorize_url = "{url}/login/oauth/authorize"\n'
            f'device_url = "{url}/login/device/code"\n'
            f'revoke_url = "{url}/applications/{{client_id}}/token"\n'
            f'api_url = "{url}"\n'
        )

    @staticmethod
    def environ() -> dict[str, str]:
        return {
            "GITHUB_CLIENT_ID": DEMO_GITHUB_APP_CLIENT_ID,
            "GITHUB_CLIENT_SECRET": DEMO_GITHUB_APP_CLIENT_SECRET,
        }

    # ------------------------------------------------------------------ accounts and tokens
    def add_app(
        self,
        client_id: str,
        client_secret: str,
        *,
        kind: str = "app",
        callback: str | None = None,
        device_flow: bool = True,
    ) -> None:
        if kind not in ("oauth", "app"):
            raise ValueError("kind is 'oauth' (an OAuth app) or 'app' (a GitHub App)")
        self.apps[client_id] = _App(client_id, client_secret, kind, callback, device_flow)

    def issue(
        self, client_id: str, login: str = DEMO_GITHUB_LOGIN, scope: str = ""
    ) -> dict[str, Any]:
        """A user token of the app, as its token endpoint would answer it."""
        app = self.apps[client_id]
        if app.kind == "oauth":
            token = _token("gho_")
            self.access[token] = _Access(client_id, login, scope, None)
            payload: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
        else:
            token, refresh = _token("ghu_"), _token("ghr_", 76)
            grant = _Access(client_id, login, scope, time.time() + self.app_token_lifetime, refresh)
            self.access[token] = grant
            self.refresh[refresh] = _Access(
                client_id, login, scope, time.time() + REFRESH_TOKEN_LIFETIME, token
            )
            payload = {
                "access_token": token,
                "expires_in": self.app_token_lifetime,
                "refresh_token": refresh,
                "refresh_token_expires_in": REFRESH_TOKEN_LIFETIME,
                "token_type": "bearer",
            }
        payload["scope"] = scope
        self.shared.issued.update(v for k, v in payload.items() if k.endswith("_token"))
        return payload

    def forget(self, token: str) -> None:
        access = self.access.pop(token, None)
        if access is not None and access.pair is not None:
            self.refresh.pop(access.pair, None)
            self.shared.revoked.add(access.pair)
        grant = self.refresh.pop(token, None)
        if grant is not None and grant.pair is not None:
            self.access.pop(grant.pair, None)

    def active(self, token: str, now: float) -> bool | None:
        """Whether this is a live token of ours; None: not one of ours."""
        if token in self.spent:
            return False
        for table in (self.access, self.refresh):
            found = table.get(token)
            if found is not None:
                return found.expires_at is None or found.expires_at > now
        return None

    # ------------------------------------------------------------------ answers
    def _answer(self, request: Request, payload: dict[str, Any]) -> Response:
        """HTTP 200, as JSON when asked for, else as a form (GitHub's default)."""
        if "application/json" in (request.headers.get("Accept") or ""):
            return Response(200, payload)
        self.form_answers += 1
        body = urlencode({k: str(v) for k, v in payload.items()}).encode()
        return Response(200, payload, raw=body, content_type=FORM)

    def _error(self, request: Request, error: str, description: str, **more: Any) -> Reply:
        payload = {
            "error": error,
            "error_description": description,
            "error_uri": f"{_DOCS}/troubleshooting#{error.replace('_', '-')}",
            **more,
        }
        return Reply(self._answer(request, payload))

    def _app(self, request: Request, params: dict[str, str], *, secret: bool) -> _App:
        app = self.apps.get(params.get("client_id", ""))
        if app is None or (
            secret
            and not hmac.compare_digest(
                app.client_secret.encode(), params.get("client_secret", "").encode()
            )
        ):
            raise self._error(
                request,
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            )
        return app

    # ------------------------------------------------------------------ the device flow
    def device_code(self, request: Request) -> Response:
        params = request.params()
        self.device_code_params.append(set(params))
        app = self._app(request, params, secret=False)
        if not app.device_flow:
            raise self._error(request, "device_flow_disabled", "Device Flow must be enabled.")
        code = secrets.token_hex(20)
        user_code = new_user_code()
        self.devices[code] = Device(
            app.client_id,
            params.get("scope", ""),
            user_code,
            time.time() + DEVICE_CODE_LIFETIME,
            self.device_interval,
        )
        return self._answer(
            request,
            {
                "device_code": code,
                "user_code": user_code,
                "verification_uri": f"{self.shared.url()}/login/device",
                "expires_in": DEVICE_CODE_LIFETIME,
                "interval": self.device_interval,
            },
        )

    def device_by_user_code(self, user_code: str) -> Device | None:
        wanted = user_code.strip().upper()
        now = time.time()
        return next(
            (d for d in self.devices.values() if d.user_code == wanted and d.expires_at > now),
            None,
        )

    def device_page(self, request: Request) -> Response:
        given = dict(parse_qsl(request.query)).get("user_code", "")
        who = html.escape(self.authorize_as or "nobody")
        return _page(
            200,
            "Device Activation",
            f"Signed in as {who}. Enter the code displayed on your device."
            '<form method="post"><p><input name="user_code" autocomplete="off" '
            f'value="{html.escape(given)}"></p>'
            '<button name="action" value="approve">Authorize</button> '
            '<button name="action" value="deny">Cancel</button></form>',
        )

    def device_verify(self, request: Request) -> Response:
        params = request.params()
        device = self.device_by_user_code(params.get("user_code", ""))
        if device is None or self.authorize_as is None:
            return _page(400, "Unknown code", "That code is unknown or has expired.")
        if params.get("action") == "deny":
            device.denied = True
            return _page(200, "Cancelled", "The device was not authorized.")
        device.approved_by = self.authorize_as
        return _page(200, "Congratulations, you're all set!", "Your device is now connected.")

    def _device_grant(self, request: Request, params: dict[str, str]) -> Response:
        app = self._app(request, params, secret=False)
        device = self.devices.get(params.get("device_code", ""))
        if device is None or device.client_id != app.client_id:
            raise self._error(request, "incorrect_device_code", "The device_code is not valid.")
        error = device.poll(time.time())
        if error == "slow_down":
            raise self._error(request, error, _DEVICE_ERRORS[error], interval=device.interval)
        if error is not None:
            raise self._error(request, error, _DEVICE_ERRORS[error])
        assert device.approved_by is not None  # poll() answers None once approved
        del self.devices[params["device_code"]]
        return self._answer(
            request, self.issue(app.client_id, device.approved_by, device.scope or "")
        )

    # ------------------------------------------------------------------ the browser login
    def authorize(self, request: Request) -> Response:
        query = dict(parse_qsl(request.query))
        app = self.apps.get(query.get("client_id", ""))
        if app is None:
            return _page(404, "Not Found", "No application with that client ID.")
        redirect = query.get("redirect_uri") or app.callback
        if redirect is None or not _callback_ok(app.callback, redirect):
            return _page(
                400,
                "Redirect URI mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            )
        back: dict[str, str] = {}
        if "state" in query:
            back["state"] = query["state"]
        method = query.get("code_challenge_method", "S256" if "code_challenge" in query else "")
        if method and method != "S256":
            back.update(error="invalid_request", error_description="Unsupported PKCE method.")
        elif self.authorize_as is None:
            return _page(200, "Sign in to GitHub", "Sign in to continue.")
        elif self.deny:
            back.update(
                error="access_denied",
                error_description="The user has denied your application access.",
                error_uri=f"{_DOCS}/troubleshooting#access-denied",
            )
        else:
            code = secrets.token_hex(10)
            self.codes[code] = _Code(
                app.client_id,
                self.authorize_as,
                query.get("scope", ""),
                query.get("redirect_uri"),
                query.get("code_challenge"),
                time.time() + 600,
            )
            self.shared.issued.add(code)
            back["code"] = code
        separator = "&" if urlsplit(redirect).query else "?"
        return Response(302, headers={"Location": redirect + separator + urlencode(back)})

    def _code_grant(self, request: Request, params: dict[str, str]) -> Response:
        app = self._app(request, params, secret=True)
        code = self.codes.pop(params.get("code", ""), None)
        bad = self._error(
            request, "bad_verification_code", "The code passed is incorrect or expired."
        )
        if code is None or code.client_id != app.client_id or code.expires_at <= time.time():
            raise bad
        if code.redirect_uri is not None and params.get("redirect_uri") != code.redirect_uri:
            raise self._error(
                request,
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            )
        if code.challenge is not None and not pkce_matches(
            params.get("code_verifier", ""), code.challenge
        ):
            raise bad
        return self._answer(request, self.issue(app.client_id, code.login, code.scope))

    # ------------------------------------------------------------------ refreshing
    def _refresh_grant(self, request: Request, params: dict[str, str]) -> Response:
        app = self._app(request, params, secret=True)
        old = params.get("refresh_token", "")
        if old in self.spent:
            self.spent_refresh_tokens_sent += 1
        grant = self.refresh.get(old)
        if (
            grant is None
            or grant.client_id != app.client_id
            or old in self.shared.revoked
            or (grant.expires_at is not None and grant.expires_at <= time.time())
        ):
            raise self._error(
                request, "bad_refresh_token", "The refresh token passed is incorrect or expired."
            )
        # The refresh token rotates: the old one, and the token it came with, are spent.
        del self.refresh[old]
        self.spent.add(old)
        if grant.pair is not None:
            self.access.pop(grant.pair, None)
        return self._answer(request, self.issue(app.client_id, grant.login, grant.scope))

    def token(self, request: Request) -> Response:
        params = request.params()
        grant_type = params.get("grant_type")
        if grant_type == DEVICE_GRANT:
            return self._device_grant(request, params)
        if grant_type == "refresh_token":
            return self._refresh_grant(request, params)
        if grant_type in (None, "authorization_code"):
            return self._code_grant(request, params)
        raise self._error(request, "unsupported_grant_type", "The grant type is not supported.")

    # ------------------------------------------------------------------ revoking
    def delete_token(self, request: Request) -> Response:
        client_id = request.path.split("/")[2]
        app = self.apps.get(client_id)
        try:
            basic = request.basic()
        except ValueError:
            basic = None
        not_found = Response(
            404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        )
        if (
            app is None
            or basic is None
            or basic[0] != client_id
            or not hmac.compare_digest(app.client_secret.encode(), basic[1].encode())
        ):
            return not_found
        token = request.params().get("access_token", "")
        access = self.access.get(token)
        if access is None or access.client_id != client_id:
            return Response(422, {"message": "Validation Failed", "status": "422"})
        self.shared.revoke(token)
        return Response(204)

    # ------------------------------------------------------------------ the API
    def limited(self, handler: Handler) -> Handler:
        """An API handler in the core budget, its answer saying what is left."""

        def answer(request: Request) -> Response:
            admitted, remaining, reset = self.windows.admit("core", time.time())
            headers = {
                "X-RateLimit-Limit": str(self.windows.limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(reset)),
                "X-RateLimit-Used": str(self.windows.limit - remaining),
                "X-RateLimit-Resource": "core",
            }
            if admitted:
                response = handler(request)
            else:
                response = Response(
                    403,
                    {
                        "message": "API rate limit exceeded for user.",
                        "documentation_url": "https://docs.github.com/rest/rate-limit",
                    },
                )
            response.headers.update(headers)
            return response

        return answer

    def user(self, request: Request) -> Response:
        value = request.headers.get("Authorization") or ""
        scheme, _, token = value.strip().partition(" ")
        access = self.access.get(token.strip()) if scheme.lower() in ("bearer", "token") else None
        if (
            access is None
            or token.strip() in self.shared.revoked
            or (access.expires_at is not None and access.expires_at <= time.time())
        ):
            return Response(
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        return Response(200, {"login": access.login, "id": 583231, "type": "User"})


def _callback_ok(registered: str | None, redirect: str) -> bool:
    """GitHub's rule: the host and port match the callback and the path lies under its
    path; a loopback callback takes any port (RFC 8252 §7.3). None: any loopback."""
    given = urlsplit(redirect)
    if registered is None:
        return given.scheme == "http" and given.hostname in ("127.0.0.1", "::1")
    wanted = urlsplit(registered)
    loopback = wanted.hostname in ("127.0.0.1", "::1") and wanted.scheme == "http"
    return (
        given.scheme == wanted.scheme
        and given.hostname == wanted.hostname
        and (loopback or given.port == wanted.port)
        and given.path.startswith(wanted.path.rstrip("/"))
    )


def _page(status: int, title: str, body: str) -> Response:
    page = (
        f"<!DOCTYPE html><html><head><title>GitHub: {html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{body}</p></body></html>"
    )
    return Response(status, raw=page.encode(), content_type="text/html; charset=utf-8")
