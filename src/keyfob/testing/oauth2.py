"""A plain OAuth2 server under ``/std`` (RFC 6749, 7009, 7662, 8414).

* discovery at ``/std/.well-known/openid-configuration`` and
  ``/.well-known/oauth-authorization-server/std``;
* ``/std/token``: client credentials, password and refresh-token grants, client by
  Basic or body (not both), refresh tokens rotated unless told otherwise;
* ``/std/revoke`` (revoking a refresh token revokes its whole grant), ``/std/introspect``;
* ``/std/device`` (RFC 8628 device authorization) and ``/std/device/verify``, the page where
  the person enters the code and approves or denies; ``/std/token`` then answers the
  device code with ``authorization_pending``, ``slow_down`` (polled faster than the
  interval), ``access_denied``, ``expired_token`` or the tokens;
* ``/std/api/me``: the API, ``WWW-Authenticate: Bearer`` on 401; rate limited in fixed
  windows (``rate``), said in the IETF draft's ``RateLimit-Limit``, ``RateLimit-Remaining``
  and ``RateLimit-Reset`` (delta seconds) on every answer; once spent, 429 with
  ``Retry-After`` until the window ends.
"""

from __future__ import annotations

import hmac
import html
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

from keyfob.testing.wire import (
    NO_STORE,
    Device,
    FixedWindows,
    Handler,
    Rate,
    Request,
    Response,
    Routes,
    Shared,
    new_user_code,
    oauth_error,
)

DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-client-secret-0123456789"
DEMO_USERNAME = "demo-user"
DEMO_PASSWORD = "demo-user-password-0123456789"

#: the API's limit unless the test sets one: generous, so only tests that mean it reach it
DEFAULT_RATE: Rate = (10_000, 60.0)
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: the answers to a device code poll (RFC 8628 §3.5)
_DEVICE_ERRORS = {
    "expired_token": "The device code has expired.",
    "access_denied": "The person denied the request.",
    "slow_down": "Poll less often.",
    "authorization_pending": "The person has not approved yet.",
}


@dataclass
class _Access:
    client_id: str
    username: str | None
    scope: str | None
    expires_at: float
    grant_id: int | None


@dataclass
class _Refresh:
    client_id: str
    username: str
    scope: str | None
    grant_id: int


class OAuth2Server:
    """The state and the handlers of the plain OAuth2 server."""

    def __init__(
        self,
        shared: Shared,
        *,
        access_token_lifetime: int,
        rotate: bool,
        device_interval: int = 5,
        device_code_lifetime: int = 600,
        rate: Rate = DEFAULT_RATE,
    ) -> None:
        self.shared = shared
        self.windows = FixedWindows(rate)
        self.access_token_lifetime = access_token_lifetime
        self.rotate = rotate
        self.device_interval = device_interval
        self.device_code_lifetime = device_code_lifetime
        self.devices: dict[str, Device] = {}  # device code -> its authorization
        self.clients: dict[str, str] = {}
        self.users: dict[str, str] = {}
        self.access: dict[str, _Access] = {}
        self.refresh: dict[str, _Refresh] = {}
        self.grants = 0

    def routes(self) -> Routes:
        return {
            "/std/.well-known/openid-configuration": {"GET": self.metadata},
            "/.well-known/oauth-authorization-server/std": {"GET": self.metadata},
            "/std/token": {"POST": self.token},
            "/std/revoke": {"POST": self.revoke},
            "/std/introspect": {"POST": self.introspect},
            "/std/device": {"POST": self.device},
            "/std/device/verify": {"GET": self.verify_page, "POST": self.verify},
            "/std/api/me": {"GET": self.limited(self.me)},
        }

    @staticmethod
    def config_toml(url: str) -> str:
        return (
            f'[providers.local]\nissuer = "{url}/std"\ngrant = "password"\nenv_prefix = "LOCAL"\n'
            f'device_url = "{url}/std/device"\n'
        )

    @staticmethod
    def environ() -> dict[str, str]:
        return {
            "LOCAL_CLIENT_ID": DEMO_CLIENT_ID,
            "LOCAL_CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "LOCAL_USERNAME": DEMO_USERNAME,
            "LOCAL_PASSWORD": DEMO_PASSWORD,
        }

    # ------------------------------------------------------------------ accounts and tokens
    def add_client(self, client_id: str, client_secret: str) -> None:
        self.clients[client_id] = client_secret

    def add_user(self, username: str, password: str) -> None:
        self.users[username] = password

    def forget(self, token: str) -> None:
        self.access.pop(token, None)
        refresh = self.refresh.pop(token, None)
        if refresh is not None:
            self._revoke_grant(refresh.grant_id)

    def active(self, token: str, now: float) -> bool | None:
        """Whether this is a live token of ours; None: not one of ours."""
        if token in self.refresh:
            return True
        access = self.access.get(token)
        if access is not None:
            return access.expires_at > now
        return None

    def _revoke_grant(self, grant_id: int) -> None:
        for token, access in list(self.access.items()):
            if access.grant_id == grant_id:
                del self.access[token]
                self.shared.revoked.add(token)
        for token, refresh in list(self.refresh.items()):
            if refresh.grant_id == grant_id:
                del self.refresh[token]
                self.shared.revoked.add(token)

    # ------------------------------------------------------------------ handlers
    def metadata(self, request: Request) -> Response:
        issuer = f"{self.shared.url()}/std"
        methods = ["client_secret_basic", "client_secret_post"]
        payload = {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/token",
            "revocation_endpoint": f"{issuer}/revoke",
            "introspection_endpoint": f"{issuer}/introspect",
            "device_authorization_endpoint": f"{issuer}/device",
            "grant_types_supported": [
                "client_credentials",
                "password",
                "refresh_token",
                DEVICE_GRANT,
            ],
            "token_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_methods_supported": methods,
            "response_types_supported": [],
        }
        return Response(200, payload)

    def _client(self, request: Request, params: dict[str, str], *, public: bool = False) -> str:
        """The authenticated client id (Basic or body), or raise the RFC 6749 §5.2 error.
        ``public``: a known client may also come without its secret (the device flow of
        a public client, RFC 8628 §3.1)."""
        invalid = oauth_error(
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
                raise oauth_error(
                    400, "invalid_request", "Use only one client authentication method."
                )
            client_id, secret = basic
        elif body_id is not None and body_secret is not None:
            client_id, secret = body_id, body_secret
        elif public and body_id is not None and body_id in self.clients:
            return body_id
        else:
            raise invalid
        known = self.clients.get(client_id)
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            raise invalid
        return client_id

    def _issue(
        self, client_id: str, username: str | None, scope: str | None, grant_id: int | None
    ) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        expires_at = time.time() + self.access_token_lifetime
        self.access[token] = _Access(client_id, username, scope, expires_at, grant_id)
        payload: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
        }
        if scope is not None:
            payload["scope"] = scope
        return payload

    def _new_refresh(self, client_id: str, username: str, scope: str | None, grant: int) -> str:
        token = secrets.token_urlsafe(32)
        self.refresh[token] = _Refresh(client_id, username, scope, grant)
        return token

    def token(self, request: Request) -> Response:
        params = request.params()
        grant_type = params.get("grant_type")
        client_id = self._client(request, params, public=grant_type == DEVICE_GRANT)
        if grant_type is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        scope = params.get("scope")
        if scope is not None and not all(_SCOPE_TOKEN.fullmatch(s) for s in scope.split(" ")):
            raise oauth_error(400, "invalid_scope", "The scope is malformed.")
        if grant_type == "client_credentials":
            payload = self._issue(client_id, None, scope, None)
        elif grant_type == DEVICE_GRANT:
            payload = self._device_grant(client_id, params)
        elif grant_type == "password":
            username, password = params.get("username"), params.get("password")
            if username is None or password is None:
                missing = "username" if username is None else "password"
                raise oauth_error(400, "invalid_request", f"Missing required parameter: {missing}.")
            stored = self.users.get(username)
            if stored is None or not hmac.compare_digest(stored.encode(), password.encode()):
                raise oauth_error(400, "invalid_grant", "Invalid resource owner credentials.")
            self.grants += 1
            payload = self._issue(client_id, username, scope, self.grants)
            payload["refresh_token"] = self._new_refresh(client_id, username, scope, self.grants)
        elif grant_type == "refresh_token":
            old = params.get("refresh_token")
            if old is None:
                raise oauth_error(
                    400, "invalid_request", "Missing required parameter: refresh_token."
                )
            record = self.refresh.get(old)
            if record is None or old in self.shared.revoked or record.client_id != client_id:
                raise oauth_error(400, "invalid_grant", "The refresh token is invalid.")
            if scope is None:
                scope = record.scope
            elif record.scope is not None and not set(scope.split()) <= set(record.scope.split()):
                raise oauth_error(400, "invalid_scope", "The scope exceeds the original grant.")
            payload = self._issue(client_id, record.username, scope, record.grant_id)
            if self.rotate:
                del self.refresh[old]
                self.shared.revoked.add(old)
                payload["refresh_token"] = self._new_refresh(
                    client_id, record.username, record.scope, record.grant_id
                )
            else:
                payload["refresh_token"] = old
        else:
            raise oauth_error(
                400, "unsupported_grant_type", f"Grant type {grant_type!r} is not supported."
            )
        return Response(200, payload, dict(NO_STORE))

    # ------------------------------------------------------------------ device flow (RFC 8628)
    def device(self, request: Request) -> Response:
        """``POST /std/device``: a device code, and the user code the person types."""
        params = request.params()
        client_id = self._client(request, params, public=True)
        scope = params.get("scope")
        if scope is not None and not all(_SCOPE_TOKEN.fullmatch(s) for s in scope.split(" ")):
            raise oauth_error(400, "invalid_scope", "The scope is malformed.")
        device_code = secrets.token_urlsafe(32)
        user_code = new_user_code()
        self.devices[device_code] = Device(
            client_id,
            scope,
            user_code,
            time.time() + self.device_code_lifetime,
            self.device_interval,
        )
        page = f"{self.shared.url()}/std/device/verify"
        payload = {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": page,
            "verification_uri_complete": f"{page}?user_code={quote(user_code)}",
            "expires_in": self.device_code_lifetime,
            "interval": self.device_interval,
        }
        return Response(200, payload, dict(NO_STORE))

    def _device_grant(self, client_id: str, params: dict[str, str]) -> dict[str, Any]:
        """RFC 8628 §3.5: the answer to a poll with the device code."""
        code = params.get("device_code")
        if code is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: device_code.")
        device = self.devices.get(code)
        if device is None or device.client_id != client_id:
            raise oauth_error(400, "invalid_grant", "The device code is invalid.")
        error = device.poll(time.time())
        if error in ("expired_token", "access_denied"):
            del self.devices[code]
        if error is not None:
            raise oauth_error(400, error, _DEVICE_ERRORS[error])
        assert device.approved_by is not None  # poll() answers None once approved
        del self.devices[code]
        self.grants += 1
        payload = self._issue(client_id, device.approved_by, device.scope, self.grants)
        payload["refresh_token"] = self._new_refresh(
            client_id, device.approved_by, device.scope, self.grants
        )
        return payload

    def _by_user_code(self, user_code: str) -> Device | None:
        wanted = user_code.strip().upper().replace(" ", "")
        if "-" not in wanted and len(wanted) == 8:
            wanted = f"{wanted[:4]}-{wanted[4:]}"
        now = time.time()
        return next(
            (d for d in self.devices.values() if d.user_code == wanted and d.expires_at > now),
            None,
        )

    def _person(self) -> str:
        return next(iter(self.users), "demo-user")

    def verify_page(self, request: Request) -> Response:
        """``GET /std/device/verify``: the page where the person enters the code."""
        given = dict(parse_qsl(request.query)).get("user_code", "")
        return _page(
            200,
            "Connect a device",
            f"Signed in as {html.escape(self._person())}. Enter the code your device shows."
            '<form method="post"><p><input name="user_code" autocomplete="off" '
            f'value="{html.escape(given)}"></p>'
            '<button name="action" value="approve">Approve</button> '
            '<button name="action" value="deny">Deny</button></form>',
        )

    def verify(self, request: Request) -> Response:
        """``POST /std/device/verify`` (``user_code``, ``action=approve|deny``)."""
        params = request.params()
        device = self._by_user_code(params.get("user_code", ""))
        if device is None:
            return _page(400, "Unknown code", "That code is unknown or has expired.")
        if params.get("action") == "deny":
            device.denied = True
            return _page(200, "Denied", "The device was not connected.")
        device.approved_by = self._person()
        return _page(200, "Approved", "The device is connected: return to it.")

    def revoke(self, request: Request) -> Response:
        params = request.params()
        client_id = self._client(request, params)
        token = params.get("token")
        if token is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: token.")
        access = self.access.get(token)
        refresh = self.refresh.get(token)
        if (access is not None and access.client_id == client_id) or (
            refresh is not None and refresh.client_id == client_id
        ):
            self.shared.revoke(token)
        return Response(200, headers=dict(NO_STORE))

    def introspect(self, request: Request) -> Response:
        params = request.params()
        self._client(request, params)
        token = params.get("token")
        if token is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: token.")
        inactive = Response(200, {"active": False}, dict(NO_STORE))
        if token in self.shared.revoked:
            return inactive
        access = self.access.get(token)
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
            return Response(200, payload, dict(NO_STORE))
        refresh = self.refresh.get(token)
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
            return Response(200, payload, dict(NO_STORE))
        return inactive

    def limited(self, handler: Handler) -> Handler:
        """An API handler counted in its window, its answer saying what is left."""

        def answer(request: Request) -> Response:
            now = time.time()
            admitted, remaining, reset = self.windows.admit(request.path, now)
            delta = str(max(0, math.ceil(reset - now)))
            headers = {
                "RateLimit-Limit": str(self.windows.limit),
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": delta,
            }
            if admitted:
                response = handler(request)
            else:
                response = Response(429, {"error": "rate_limited"}, {"Retry-After": delta})
            response.headers.update(headers)
            return response

        return answer

    def me(self, request: Request) -> Response:
        token = request.bearer()
        if token is None:
            return Response(
                401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer realm="std"'}
            )
        access = self.access.get(token)
        if access is None or token in self.shared.revoked or access.expires_at <= time.time():
            return Response(
                401,
                {"error": "invalid_token"},
                {"WWW-Authenticate": 'Bearer realm="std", error="invalid_token"'},
            )
        return Response(
            200,
            {"sub": access.username or access.client_id, "client_id": access.client_id},
        )


def _page(status: int, title: str, body: str) -> Response:
    """A small HTML page (``body`` is already HTML)."""
    page = (
        f"<!DOCTYPE html><html><head><title>local: {html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{body}</p></body></html>"
    )
    return Response(
        status, raw=page.encode(), content_type="text/html; charset=utf-8", headers=dict(NO_STORE)
    )
