"""TreeSnap: a personal token that lives a year, refreshed through its own endpoint.

``POST /web-services/v1/refresh-tokens`` wants the token twice, as bearer and
as ``access_token`` in the body, and answers ``{access_token, expires_at:
{date, timezone_type, timezone}, error_code, message}``. ``error_code`` 1000
(the token does not exist) and 1100 (header and body tokens differ) can come
with any HTTP status. keyfob refreshes once less than a tenth of the token's
lifetime is left (``Token.refresh_ratio``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from keyfob import _jwt, grants
from keyfob.config import safe_url
from keyfob.errors import ConfigError, InvalidCredentials, ProviderError
from keyfob.flow import Flow, HttpRequest
from keyfob.provider.base import Kind, Provider, interactive_optional, own_secrets
from keyfob.secretstore import Credentials
from keyfob.token import Token

LIFETIME = 365 * 24 * 3600.0
REFRESH_RATIO = 0.1
NEW_TOKEN_HINT = (
    "make a new personal token on TreeSnap's developer page, then "
    "`keyfob login treesnap --flow paste` (or set TREESNAP_TOKEN)"
)


def personal(value: str, now: float, source: str = "the paste") -> Token:
    value = grants.check_token(value.strip(), source)
    claims = _jwt.claims(value) or {}
    expires = _jwt.expiry(value)
    issued = claims.get("iat")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        issued = expires - LIFETIME if expires else now
    return renewable(
        Token(
            value,
            expires=expires if expires is not None else now + LIFETIME,
            issued=float(issued),
            refresh_ratio=REFRESH_RATIO,
        )
    )


def renewable(token: Token) -> Token:
    """A personal token is also what renews it (the refresh endpoint takes the token
    itself): it is its own refresh token, so a cache that drops a refused access token
    keeps what a renewal needs."""
    return token.replace(refresh_token=token.access_token, refresh_expires=token.expires)


def expires_at(value: object) -> float | None:
    """PHP's DateTime as JSON: ``{"date": "2019-07-03 19:32:09.000000",
    "timezone_type": 3, "timezone": "UTC"}``."""
    if not isinstance(value, dict) or not isinstance(value.get("date"), str):
        return None
    try:
        when = datetime.strptime(value["date"].strip()[:26], "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        try:
            when = datetime.strptime(value["date"].strip()[:19], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
    zone = value.get("timezone")
    tz: timezone | object = UTC
    if isinstance(zone, str) and zone.upper() not in ("UTC", "Z", "+00:00"):
        hh, mm = zone[1:3], zone[4:6]
        if zone[:1] in "+-" and len(zone) == 6 and f"{hh}{mm}".isascii() and f"{hh}{mm}".isdigit():
            sign = 1 if zone[0] == "+" else -1
            try:
                tz = timezone(sign * timedelta(hours=int(hh), minutes=int(mm)))
            except ValueError:  # 24 hours or more: no such zone
                return None
        else:
            try:
                from zoneinfo import ZoneInfo

                tz = ZoneInfo(zone)
            except (ValueError, KeyError, OSError):
                return None
    return when.replace(tzinfo=tz).timestamp()  # type: ignore[arg-type]


def acquire(p: Provider, creds: Credentials, now: float) -> Flow[Token]:
    return personal(creds.values["token"], now, creds.where("token"))
    yield  # a generator like every acquire; the personal token needs no request


def renew(p: Provider, token: Token, creds: Credentials, now: float) -> Flow[Token] | None:
    current = token.refresh_token or token.access_token
    if not p.refresh_url or not current:
        return None
    return refresh(p, current, now)


def refresh(p: Provider, current: str, now: float) -> Flow[Token]:
    if not p.refresh_url:
        raise ConfigError("provider treesnap has no refresh_url")
    request = HttpRequest(
        "POST",
        p.refresh_url,
        "TreeSnap's refresh-tokens endpoint",
        headers={"Authorization": f"Bearer {current}"},
        form={"access_token": current},
        secrets=(current,),
    )
    response = yield request
    assert response is not None
    where = f"TreeSnap ({safe_url(p.refresh_url)})"
    try:
        data = response.json()
    except ProviderError:
        if response.status == 401:
            raise InvalidCredentials(
                f"{where} refused the token (HTTP 401)", hint=NEW_TOKEN_HINT, status=401
            ) from None
        raise
    code = data.get("error_code") if isinstance(data, dict) else None
    message = grants.clean(data.get("message", ""), (current,)) if isinstance(data, dict) else ""
    if code == 1000:
        raise InvalidCredentials(
            f"{where}: the token does not exist (error 1000: {message})",
            hint=NEW_TOKEN_HINT,
            error="1000",
            description=message,
            status=response.status,
        )
    if code == 1100:
        raise ProviderError(
            f"{where}: the tokens in the header and the body differ (error 1100: {message})",
            hint="this is a bug in the client or a proxy rewriting headers; run with --debug",
            error="1100",
            description=message,
            status=response.status,
        )
    if code not in (None, 0, "0") or not 200 <= response.status < 300:
        if response.status == 401:
            raise InvalidCredentials(
                f"{where} refused the token (HTTP 401)", hint=NEW_TOKEN_HINT, status=401
            )
        raise ProviderError(
            f"{where} answered HTTP {response.status} (error {code}: {message})",
            status=response.status,
        )
    token = grants.parse_token_response(
        response, requested_at=now, secrets=(current,), refresh_ratio=REFRESH_RATIO
    )
    expires = expires_at(data.get("expires_at")) or token.expires or now + LIFETIME
    return renewable(token.replace(expires=expires, issued=now))


def revoke(p: Provider, token: Token, creds: Credentials) -> Flow[None] | None:
    return None  # TreeSnap documents no revocation endpoint


def label(p: Provider, creds: Credentials) -> str:
    claims = _jwt.claims(creds.get("token") or "") or {}
    sub = claims.get("sub")
    return f"user {sub}" if isinstance(sub, str | int) else ""


def words(p: Provider, name: str) -> str:
    site = p.site or "https://treesnap.org"
    return (
        f"TreeSnap personal access token (made on the developer page of your account at {site})"
        if name == "token"
        else f"TreeSnap {name}"
    )


KIND = Kind(
    name="treesnap",
    acquire=acquire,
    renew=renew,
    revoke=revoke,
    flows=lambda p: ("paste",),
    login_secrets=own_secrets,
    optional=interactive_optional,
    label=label,
    supersedes="token",
    words=words,
)

PROVIDER = Provider(
    name="treesnap",
    kind=KIND,
    grant="paste",
    description="TreeSnap: a one-year personal token, refreshed through its own endpoint",
    refresh_url="https://treesnap.org/web-services/v1/refresh-tokens",
    api_url="https://treesnap.org/web-services/v1",
    env_prefix="TREESNAP",
    secrets=("token",),
    required=("token",),
    identity=("token",),
    env={"token": "TREESNAP_TOKEN"},
    builtin=True,
)
