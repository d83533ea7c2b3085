"""The OAuth 2.0 grants as sans-I/O generators (see ``transport``).

Each builds its request, yields it, and reads the answer: a :class:`Token`, or
a keyfob error made from the OAuth error answer (RFC 6749 §5.2). No sockets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from keyfob import _jwt
from keyfob.config import safe_url
from keyfob.errors import InvalidCredentials, KeyfobError, ProviderError
from keyfob.token import Token
from keyfob.transport import Flow, HttpRequest, HttpResponse

# Errors that mean "these credentials are no good" (RFC 6749 §5.2).
CREDENTIAL_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def clean(text: object, secrets: tuple[str, ...] = (), limit: int = 200) -> str:
    """Server text made fit for a one-line message: no secret, no control
    characters, no endless length (a hostile server chooses these bytes)."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    out = " ".join(_CONTROL.sub(" ", out).split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def error_from_response(
    response: HttpResponse, secrets: tuple[str, ...] = (), *, hint: str | None = None
) -> KeyfobError:
    """An OAuth error answer (RFC 6749 §5.2) or any other failure, as a keyfob error."""
    where = f"{response.what} ({safe_url(response.url)})"
    not_json: ProviderError | None = None
    try:
        data = response.json()
    except ProviderError as exc:
        data, not_json = None, exc  # says what came instead: an HTML proxy or login page
    error = description = None
    if isinstance(data, dict):
        if isinstance(data.get("error"), str):
            error = clean(data["error"], secrets, 60)
        if isinstance(data.get("error_description"), str):
            description = clean(data["error_description"], secrets)
    said = f": {error}" + (f" ({description})" if description else "") if error else ""
    # 401 is a refusal whatever the body calls it (iNaturalist: {"error": "Unauthorized"}).
    if error in CREDENTIAL_ERRORS or response.status == 401:
        return InvalidCredentials(
            f"{where} refused the credentials (HTTP {response.status}){said}",
            hint=hint,
            error=error,
            description=description,
            status=response.status,
        )
    if not_json is not None:
        return not_json
    return ProviderError(
        f"{where} answered HTTP {response.status}{said}",
        error=error,
        description=description,
        status=response.status,
    )


def number(value: object, what: str) -> float:
    """A JSON number, or a numeric string (some servers send ``"3599"``)."""
    if isinstance(value, bool):
        raise ValueError(what)
    if isinstance(value, str):
        value = value.strip()
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer of 400 digits
        raise ValueError(what) from None
    if not math.isfinite(result):
        raise ValueError(what)
    return result


def parse_token_response(
    response: HttpResponse,
    *,
    requested_at: float,
    secrets: tuple[str, ...] = (),
    default_lifetime: float | None = None,
    refresh_ratio: float = 0.0,
    field: str = "access_token",
) -> Token:
    """Read a token answer (RFC 6749 §5.1).

    The expiry comes from ``expires_in`` counted from ``requested_at`` (when the
    request was sent, so a slow answer errs on the early side), else from the
    JWT's ``exp``, else from the provider's documented lifetime, else never.
    """
    if not 200 <= response.status < 300:
        raise error_from_response(response, secrets)
    where = f"{response.what} ({safe_url(response.url)})"
    data = response.json()
    if not isinstance(data, dict):
        raise ProviderError(f"{where} answered with JSON that is not an object")
    if isinstance(data.get("error"), str):
        raise error_from_response(response, secrets)
    access_token = data.get(field)
    if not isinstance(access_token, str) or not access_token.strip():
        raise ProviderError(
            f"{where} answered without an {field}",
            hint="check that token_url points at the token endpoint",
        )
    access_token = access_token.strip()
    token_type = data.get("token_type", "Bearer")
    if not isinstance(token_type, str) or not token_type.strip():
        token_type = "Bearer"

    expires: float | None = None
    if data.get("expires_in") is not None:
        try:
            expires_in = number(data["expires_in"], "expires_in")
        except ValueError:
            raise ProviderError(
                f"{where} answered with an expires_in that is not a number",
                hint="the server breaks RFC 6749 §5.1; report it to its operator",
            ) from None
        if expires_in < 0:
            raise ProviderError(
                f"{where} answered with a negative expires_in ({expires_in:g})",
                hint="the server's clock or configuration is wrong; report it to its operator",
            )
        expires = requested_at + expires_in
    else:
        expires = _jwt.expiry(access_token)
        if expires is None and default_lifetime is not None:
            expires = requested_at + default_lifetime

    refresh = data.get("refresh_token")
    refresh_expires = None
    if data.get("refresh_expires_in") is not None:
        try:
            refresh_expires = requested_at + number(data["refresh_expires_in"], "refresh")
        except ValueError:
            refresh_expires = None
    scope = data.get("scope")
    return Token(
        access_token,
        token_type.strip(),
        expires=expires,
        issued=requested_at,
        refresh_token=refresh.strip() if isinstance(refresh, str) and refresh.strip() else None,
        refresh_expires=refresh_expires,
        scope=scope if isinstance(scope, str) else None,
        refresh_ratio=refresh_ratio,
    )


def token_request(
    url: str,
    params: Mapping[str, str | None],
    *,
    client_id: str | None,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    secrets: tuple[str, ...] = (),
    what: str = "the token endpoint",
) -> HttpRequest:
    """A POST to a token-like endpoint with client authentication (RFC 6749 §2.3)."""
    form = {k: v for k, v in params.items() if v is not None}
    basic = None
    if client_id and client_secret and client_auth == "client_secret_basic":
        basic = (client_id, client_secret)
    elif client_id:
        form["client_id"] = client_id
        if client_secret and client_auth == "client_secret_post":
            form["client_secret"] = client_secret
    all_secrets = tuple(s for s in (*secrets, client_secret, *params.values()) if s)
    return HttpRequest("POST", url, what, form=form, basic=basic, secrets=all_secrets)


def client_credentials(
    url: str,
    *,
    client_id: str,
    client_secret: str,
    client_auth: str = "client_secret_basic",
    scope: str | None = None,
    now: float,
    default_lifetime: float | None = None,
) -> Flow[Token]:
    """RFC 6749 §4.4."""
    request = token_request(
        url,
        {"grant_type": "client_credentials", "scope": scope},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
    )
    response = yield request
    assert response is not None
    return parse_token_response(
        response, requested_at=now, secrets=request.secrets, default_lifetime=default_lifetime
    )


def password(
    url: str,
    *,
    username: str,
    password: str,
    client_id: str | None,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    scope: str | None = None,
    now: float,
) -> Flow[Token]:
    """RFC 6749 §4.3: the resource owner's password."""
    request = token_request(
        url,
        {"grant_type": "password", "username": username, "password": password, "scope": scope},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
    )
    response = yield request
    assert response is not None
    return parse_token_response(response, requested_at=now, secrets=request.secrets)


def refresh(
    url: str,
    refresh_token: str,
    *,
    client_id: str | None,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    scope: str | None = None,
    now: float,
) -> Flow[Token]:
    """RFC 6749 §6. A server that does not rotate keeps the old refresh token valid."""
    request = token_request(
        url,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": scope},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
    )
    response = yield request
    assert response is not None
    token = parse_token_response(response, requested_at=now, secrets=request.secrets)
    if token.refresh_token is None:
        token = token.replace(refresh_token=refresh_token)
    return token


def revoke(
    url: str,
    token: str,
    *,
    token_type_hint: str = "access_token",
    client_id: str | None,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
) -> Flow[None]:
    """RFC 7009: revoke a token. 200 (also for unknown tokens) is success."""
    request = token_request(
        url,
        {"token": token, "token_type_hint": token_type_hint},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
        what="the revocation endpoint",
    )
    response = yield request
    assert response is not None
    if not 200 <= response.status < 300:
        raise error_from_response(response, request.secrets)
    return None


def discover(issuer: str) -> Flow[dict[str, Any]]:
    """Authorization server metadata: OpenID discovery, then RFC 8414 §3."""
    base = issuer.rstrip("/")
    split = base.split("/", 3)
    origin, path = "/".join(split[:3]), ("/" + split[3] if len(split) > 3 else "")
    candidates = [
        f"{base}/.well-known/openid-configuration",
        f"{origin}/.well-known/oauth-authorization-server{path}",
    ]
    last: HttpResponse | None = None
    for url in candidates:
        response = yield HttpRequest("GET", url, "the discovery document")
        assert response is not None
        last = response
        if response.status != 200:
            continue
        data = response.json()
        if not isinstance(data, dict) or not isinstance(data.get("token_endpoint"), str):
            raise ProviderError(
                f"the discovery document at {safe_url(url)} names no token_endpoint",
                hint="set token_url in config.toml",
            )
        if isinstance(data.get("issuer"), str) and data["issuer"].rstrip("/") != base:
            raise ProviderError(
                f"the discovery document at {safe_url(url)} is for another issuer",
                hint="check issuer in config.toml (RFC 8414 §3.3)",
            )
        return data
    assert last is not None
    raise ProviderError(
        f"no discovery document for {safe_url(base)} (HTTP {last.status})",
        hint="check issuer in config.toml, or give token_url",
        status=last.status,
    )
