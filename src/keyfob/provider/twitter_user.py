"""Twitter/X user context: OAuth 2.0 authorization code with PKCE, then rotating refreshes.

X's documentation ("OAuth 2.0 Authorization Code Flow with PKCE"): the person
approves the app at ``https://x.com/i/oauth2/authorize``; the code is traded at
``https://api.x.com/2/oauth2/token``, by a confidential client with HTTP Basic
(client ID and secret) and by a public client with ``client_id`` in the body;
access tokens live two hours; with the ``offline.access`` scope a refresh token
comes too, and each refresh answers a new one while the old one stops working
(rotation: the broker keeps the new one before the token is used, see
:mod:`keyfob.rotation`). X wants the exact callback URL registered for the app,
so ``redirect_uri`` is set in config.toml; keyfob listens on its port and path.
A spent or revoked refresh token is answered ``invalid_request`` "Value passed
for the token was invalid.": the person logs in again.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from keyfob import grants
from keyfob.errors import ConfigError, CredentialsMissing, InvalidCredentials, KeyfobError
from keyfob.flow import Flow, HttpRequest, HttpResponse
from keyfob.provider import oauth2
from keyfob.provider.base import (
    Hooks,
    Kind,
    Provider,
    env,
    interactive_optional,
    login_command,
)
from keyfob.secretstore import Credentials
from keyfob.token import Token

#: X's words for a refresh token (or code) it does not know: spent, revoked or made up
DEAD = "Value passed for the token was invalid."
EXAMPLE_REDIRECT = "http://127.0.0.1:8765/callback"


def refusal(response: HttpResponse, secrets: tuple[str, ...]) -> KeyfobError | None:
    """X's token endpoint answers a refresh token it no longer knows with HTTP 400
    ``invalid_request`` (not RFC 6749's ``invalid_grant``): a refusal of the
    credentials all the same. Anything else is read as an OAuth error."""
    try:
        data = response.json()
    except KeyfobError:
        return None
    if not isinstance(data, dict) or data.get("error") != "invalid_request":
        return None
    description = grants.clean(data.get("error_description", ""), secrets)
    if "was invalid" not in description:
        return None
    return InvalidCredentials(
        f"X ({response.what}) refused the token: {description}",
        error="invalid_request",
        description=description,
        status=response.status,
    )


def redirect_uri(p: Provider) -> str:
    """The configured callback, checked: a loopback ``http://`` address keyfob can
    listen on. Without one, a ConfigError saying what to register and set."""
    where = f"[providers.{p.name}] of config.toml"
    if not p.redirect_uri:
        raise ConfigError(
            f"{p.name} needs the callback URL registered for your app on X (redirect_uri)",
            hint=f"add a callback such as {EXAMPLE_REDIRECT} to the app's User authentication "
            f'settings at developer.x.com, then set redirect_uri = "{EXAMPLE_REDIRECT}" in '
            f"{where}",
        )
    try:
        parts = urllib.parse.urlsplit(p.redirect_uri)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme != "http"
        or parts.hostname not in ("127.0.0.1", "localhost")  # the listener's IPv4 loopback
        or port is None
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"{p.name}: redirect_uri must be a loopback address with a port keyfob can listen "
            f"on, like {EXAMPLE_REDIRECT}",
            hint=f"register such a callback for your app at developer.x.com and set it in {where}",
        )
    return p.redirect_uri


def login_secrets(p: Provider, flow: str | None) -> tuple[str, ...]:
    """The app's client ID and secret (none for a public client); the callback is
    checked first, so that nobody types a secret for a login that cannot work."""
    redirect_uri(p)
    return p.kind.client


def interactive(
    p: Provider,
    creds: Credentials,
    flow: str,
    *,
    clock: Callable[[], float],
    timeout: float = 300.0,
) -> Flow[Token]:
    """The browser login at the registered callback (authorization code + PKCE S256)."""
    if flow != "browser":
        raise ConfigError(f"{p.name} logs in with a browser only", hint="use --flow browser")
    redirect_uri(p)
    return oauth2.interactive(p, creds, flow, clock=clock, timeout=timeout)


def acquire(p: Provider, creds: Credentials, now: float) -> Flow[Token]:
    """A new token from a refresh token: the only grant without a person."""
    refresh_token = oauth2.refresh_token_of(creds)
    if not refresh_token:
        raise CredentialsMissing(
            f"{p.name} needs a person to log in once: there is no refresh token to use",
            hint=f"run `{login_command(p)}` (or set {p.env_var('refresh_token')})",
        )
    return (yield from oauth2.refresh(p, creds, refresh_token, now))


def identify(p: Provider, token: Token) -> Flow[dict[str, str]]:
    """Whose the token is: ``GET /2/users/me`` tells the ``username`` (best effort)."""
    if not p.api_url:
        return {}
    try:
        response = yield HttpRequest(
            "GET",
            f"{p.api_url.rstrip('/')}/users/me",
            "X's users/me endpoint",
            headers={"Authorization": f"Bearer {token.access_token}"},
            secrets=(token.access_token,),
        )
        assert response is not None
        data = response.json() if response.status == 200 else None
    except KeyfobError:
        return {}
    user = data.get("data") if isinstance(data, dict) else None
    name = user.get("username") if isinstance(user, dict) else None
    ok = isinstance(name, str) and 0 < len(name) <= 50 and name.isascii() and name.isprintable()
    return {"username": name} if ok and isinstance(name, str) else {}


def label(p: Provider, creds: Credentials) -> str:
    username = creds.get("username")
    return f"@{username}" if username else ""


def words(p: Provider, name: str) -> str:
    """The names on X's developer portal ("Keys and tokens", OAuth 2.0 Client ID and Secret)."""
    return {
        "client_id": 'Twitter/X OAuth 2.0 client ID (the app\'s "Keys and tokens" at '
        "developer.x.com)",
        "client_secret": "Twitter/X OAuth 2.0 client secret (confidential clients only)",
        "refresh_token": "Twitter/X OAuth 2.0 refresh token",
    }.get(name, f"Twitter/X {name}")


#: a user's OAuth 2.0 token: a browser login, then refreshes whose tokens rotate
KIND = Kind(
    name="twitter-user",
    acquire=acquire,
    renew=oauth2.renew,
    revoke=oauth2.revoke,
    flows=lambda p: ("browser",),
    login_secrets=login_secrets,
    optional=interactive_optional,
    label=label,
    interactive=interactive,
    identify=identify,
    hooks=Hooks(refusal=refusal),
    words=words,
    rotates=True,
    token_kind="user (OAuth 2.0)",
)

SECRETS = ("client_id", "client_secret", "refresh_token", "username")
PROVIDER = Provider(
    name="twitter-user",
    kind=KIND,
    grant="authorization_code",
    description="Twitter/X: a user's token (OAuth 2.0, browser login with PKCE); "
    "2-hour tokens, refresh tokens that rotate",
    token_url="https://api.x.com/2/oauth2/token",
    authorize_url="https://x.com/i/oauth2/authorize",
    revoke_url="https://api.x.com/2/oauth2/revoke",
    api_url="https://api.x.com/2",
    scope="tweet.read users.read offline.access",
    env_prefix="TWITTER",
    secrets=SECRETS,
    required=("client_id", "refresh_token"),
    identity=("client_id",),
    env=env("TWITTER", SECRETS),
    builtin=True,
)
