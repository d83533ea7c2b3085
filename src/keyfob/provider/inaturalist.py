"""iNaturalist: the password grant, then the OAuth token traded for a JWT.

The OAuth token (from ``/oauth/token``, which does not say when it expires)
is what ``GET /users/api_token`` trades for a JWT (``{"api_token": ...}``);
the v1 API shows private fields only to the JWT. The JWT lives 24 hours (its
``exp`` says so). keyfob keeps the OAuth token as the JWT's refresh token:
a new JWT then costs one GET, not the password again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from keyfob import grants
from keyfob.errors import ConfigError, KeyfobError, ProviderError
from keyfob.flow import Flow, HttpRequest
from keyfob.provider import oauth2
from keyfob.provider.base import (
    Hooks,
    Kind,
    Provider,
    env,
    interactive_optional,
    own_secrets,
    plain,
)
from keyfob.secretstore import Credentials
from keyfob.token import Token

JWT_LIFETIME = 24 * 3600.0

log = logging.getLogger("keyfob")


def trade(p: Provider, oauth_token: str, now: float) -> Flow[Token]:
    """``GET /users/api_token`` with the OAuth token: the JWT, kept with the OAuth token."""
    if not p.jwt_url:
        raise ConfigError("provider inaturalist has no jwt_url")
    response = yield HttpRequest(
        "GET",
        p.jwt_url,
        "iNaturalist's api_token endpoint",
        headers={"Authorization": f"Bearer {oauth_token}"},
        secrets=(oauth_token,),
    )
    assert response is not None
    token = grants.parse_token_response(
        response,
        requested_at=now,
        secrets=(oauth_token,),
        default_lifetime=JWT_LIFETIME,
        field="api_token",
    )
    if token.expires is None:
        raise ProviderError("iNaturalist's api_token endpoint gave a token without expiry")
    return token.replace(refresh_token=oauth_token, token_type="Bearer")


def jwt(p: Provider, oauth: Token, now: float) -> Flow[Token]:
    """The hook after the password grant and the browser login: the JWT for the OAuth token."""
    return trade(p, oauth.access_token, now)


def interactive(
    p: Provider,
    creds: Credentials,
    flow: str,
    *,
    clock: Callable[[], float],
    timeout: float = 300.0,
) -> Flow[Token]:
    """A browser login with PKCE (iNaturalist's newer apps: no app secret needed); the
    OAuth token is then traded for a JWT as after the password grant."""
    if flow != "browser":
        raise ConfigError("iNaturalist has no device login", hint="use --flow browser")
    return oauth2.interactive(p, creds, flow, clock=clock, timeout=timeout)


def identify(p: Provider, token: Token) -> Flow[dict[str, str]]:
    """Whose a browser login's token is: iNaturalist's JWT names only a ``user_id``, so
    ``GET /users/me`` of the v1 API (the JWT as ``Authorization``) tells the ``login``.
    The login then has the identity of a password login as that user. Best effort: when
    the API cannot say, the login keeps no username and works all the same."""
    if not p.api_url or not token.access_token:
        return {}
    try:
        response = yield HttpRequest(
            "GET",
            f"{p.api_url.rstrip('/')}/users/me",
            "iNaturalist's users/me endpoint",
            headers={"Authorization": token.access_token},
            secrets=(token.access_token,),
        )
        assert response is not None
        data = response.json() if response.status == 200 else None
    except KeyfobError as exc:
        log.info("inaturalist: could not ask whose the token is (%s)", type(exc).__name__)
        return {}
    results = data.get("results") if isinstance(data, dict) else None
    user = results[0] if isinstance(results, list) and results else None
    login = user.get("login") if isinstance(user, dict) else None
    return {"username": login} if isinstance(login, str) and login else {}


def renew(p: Provider, token: Token, creds: Credentials, now: float) -> Flow[Token] | None:
    if not token.refresh_token:
        return None  # a pasted JWT: only a new paste or the password gets another
    return trade(p, token.refresh_token, now)


def revoke(p: Provider, token: Token, creds: Credentials) -> Flow[None] | None:
    if not p.revoke_url or not token.refresh_token:
        return None
    return grants.revoke(
        p.revoke_url,
        token.refresh_token,
        client_id=creds.get("app_id"),
        client_secret=creds.get("app_secret"),
        client_auth="client_secret_post",
    )


def label(p: Provider, creds: Credentials) -> str:
    return creds.get("username") or ""


def missing(p: Provider, creds: Credentials) -> tuple[str, ...]:
    """A pasted JWT stands in for the four secrets of the password grant."""
    return () if "token" in creds else tuple(n for n in p.required if n not in creds)


def words(p: Provider, name: str) -> str:
    """iNaturalist's own names for the secrets, and where its site shows them."""
    site = p.site or "https://www.inaturalist.org"
    apps = f"{site}/oauth/applications"
    return {
        "username": "iNaturalist username or email",
        "password": "iNaturalist password",
        "app_id": f"iNaturalist app ID (listed at {apps})",
        "app_secret": f"iNaturalist app secret (shown once when you created the app at {apps})",
        "token": f"iNaturalist API token (the api_token shown at {site}/users/api_token "
        "while signed in)",
    }.get(name, f"iNaturalist {plain(name)}")


def check(p: Provider, token: Token) -> Flow[None] | None:
    """``GET /v1/users/me`` with the token: iNaturalist's own check of a token (as
    pyinaturalist's ``validate_token``); a refusal is InvalidCredentials."""
    if not p.api_url:
        return None
    return _check(users_me(p.api_url, token.access_token))


def users_me(api_url: str, value: str) -> HttpRequest:
    """``GET /v1/users/me`` with ``value`` (a JWT or an OAuth token) as the bearer token."""
    return HttpRequest(
        "GET",
        api_url.rstrip("/") + "/users/me",
        "iNaturalist's users/me endpoint",
        headers={"Authorization": f"Bearer {value}"},
        secrets=(value,),
    )


def _check(request: HttpRequest) -> Flow[None]:
    response = yield request
    assert response is not None
    if not 200 <= response.status < 300:
        raise grants.error_from_response(response, request.secrets)
    return None


#: the password grant of any OAuth2 server (the app's id and secret in the body),
#: then the OAuth token traded for a JWT
KIND = Kind(
    name="inaturalist",
    acquire=oauth2.acquire,
    renew=renew,
    revoke=revoke,
    flows=lambda p: ("password", "paste", "browser"),
    login_secrets=own_secrets,
    missing=missing,
    optional=interactive_optional,
    label=label,
    interactive=interactive,
    identify=identify,
    client=("app_id", "app_secret"),
    stand_ins=frozenset({"token"}),  # oauth2.acquire uses it only without the four
    hooks=Hooks(then=jwt),
    words=words,
    check=check,
)

SECRETS = ("username", "password", "app_id", "app_secret", "token")
PROVIDER = Provider(
    name="inaturalist",
    kind=KIND,
    grant="password",
    description="iNaturalist: password grant, then the OAuth token traded for a 24-hour JWT",
    token_url="https://www.inaturalist.org/oauth/token",
    authorize_url="https://www.inaturalist.org/oauth/authorize",
    jwt_url="https://www.inaturalist.org/users/api_token",
    revoke_url="https://www.inaturalist.org/oauth/revoke",
    api_url="https://api.inaturalist.org/v1",
    # iNaturalist's API recommended practices: at most 60 a minute and 10,000 a day
    rate_limits=("60/minute", "10000/day"),
    client_auth="client_secret_post",  # iNaturalist takes the app id and secret in the body
    env_prefix="INAT",
    secrets=SECRETS,
    required=("username", "password", "app_id", "app_secret"),
    identity=("username", "app_id"),
    env=env("INAT", SECRETS),
    keyring_service="/inaturalist",
    builtin=True,
)


def without_jwt(p: Provider) -> Provider:
    """The provider whose grant stops at the OAuth token: pyinaturalist's
    ``get_access_token(jwt=False)``, which never asks ``/users/api_token``."""
    hooks = dataclasses.replace(p.kind.hooks, then=None)
    return dataclasses.replace(p, kind=dataclasses.replace(p.kind, hooks=hooks))
