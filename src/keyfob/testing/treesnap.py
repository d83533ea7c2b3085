"""TreeSnap as keyfob meets it: personal access tokens (HS256 JWTs) and their refresh call.

* ``/web-services/v1/refresh-tokens``: the token in the header and in the body, a new
  token back, the old one revoked; errors as ``error_code`` in the body;
* ``/web-services/v1/my-observations``: the API, for a valid token only.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from keyfob.testing.wire import Request, Response, Routes, Shared, jwt_decode, jwt_encode

DEMO_TREESNAP_USER = "demo-treesnapper"


class TreeSnap:
    """The state and the handlers of the emulated TreeSnap."""

    def __init__(self, shared: Shared, *, lifetime: int) -> None:
        self.shared = shared
        self.lifetime = lifetime
        self.key = secrets.token_bytes(32)
        self.user_ids: dict[str, str] = {}

    def routes(self) -> Routes:
        return {
            "/web-services/v1/refresh-tokens": {"POST": self.refresh},
            "/web-services/v1/my-observations": {"GET": self.observations},
        }

    @staticmethod
    def config_toml(url: str) -> str:
        return (
            "[providers.treesnap]\n"
            f'refresh_url = "{url}/web-services/v1/refresh-tokens"\n'
            f'api_url = "{url}/web-services/v1"\n'
        )

    # ------------------------------------------------------------------ tokens
    def issue(self, user: str, lifetime: int | None, *, age: int) -> str:
        """A personal access token of ``user``, issued ``age`` seconds ago."""
        if user not in self.user_ids:
            self.user_ids[user] = str(len(self.user_ids) + 1)
        return self._jwt(self.user_ids[user], self.lifetime if lifetime is None else lifetime, age)

    def _jwt(self, sub: str, lifetime: int, age: int = 0) -> str:
        now = int(time.time()) - age
        payload = {"sub": sub, "jti": secrets.token_hex(16), "iat": now, "exp": now + lifetime}
        return jwt_encode(payload, self.key, "HS256", {"typ": "JWT", "alg": "HS256"})

    def active(self, token: str, now: float) -> bool | None:
        """Whether this is a live token of ours; None: not one of ours."""
        return True if jwt_decode(token, self.key, "HS256", now) is not None else None

    def _valid(self, token: str) -> dict[str, Any] | None:
        if token in self.shared.revoked:
            return None
        return jwt_decode(token, self.key, "HS256", time.time())

    # ------------------------------------------------------------------ handlers
    def refresh(self, request: Request) -> Response:
        header_token = request.bearer()
        body_token = request.params().get("access_token")
        if header_token is None or body_token is None:
            return Response(
                400, {"error_code": 1000, "message": "The access token field is required."}
            )
        if not hmac.compare_digest(header_token.encode(), body_token.encode()):
            message = "The access token in the header does not match the token in the request body."
            return Response(200, {"error_code": 1100, "message": message})
        claims = self._valid(header_token)
        if claims is None:
            return Response(
                401, {"error_code": 1000, "message": "The access token does not exist."}
            )
        new_token = self._jwt(str(claims["sub"]), self.lifetime)
        self.shared.revoke(header_token)
        expires = datetime.fromtimestamp(int(time.time()) + self.lifetime, UTC)
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
        return Response(200, payload)

    def observations(self, request: Request) -> Response:
        token = request.bearer()
        if token is None or self._valid(token) is None:
            return Response(401, {"message": "Unauthenticated."})
        return Response(200, {"data": [{"id": 1, "observation_category": "American Chestnut"}]})
