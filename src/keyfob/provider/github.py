"""GitHub: a user's token from an OAuth app or a GitHub App, or one pasted (as gh takes it).

From GitHub's documentation ("Authorizing OAuth apps", "Generating a user
access token for a GitHub App", "Refreshing user access tokens", "Delete an
app token"):

- device flow (the default, as ``gh auth login`` does): ``POST
  /login/device/code`` with only the client id, then polling ``POST
  /login/oauth/access_token`` with ``grant_type=urn:ietf:params:oauth:grant-type:device_code``;
  GitHub answers ``authorization_pending`` and ``slow_down`` with HTTP 200;
- browser login: ``/login/oauth/authorize`` with PKCE (S256), any port of a
  registered ``http://127.0.0.1/...`` callback;
- the token endpoint answers as a form unless asked for JSON (keyfob asks),
  and every error (``bad_verification_code``, ``incorrect_client_credentials``,
  ``bad_refresh_token``...) with HTTP 200: the shared grants read both;
- a GitHub App's user token lives 8 hours (``expires_in`` 28800) and comes
  with a refresh token of about six months (``refresh_token_expires_in``); a
  refresh (client id and secret in the body) hands out a new refresh token
  and spends the old one; an OAuth app's token never expires and has no
  refresh token, so a login keeps it in the keyring like a pasted one;
- revoking: ``DELETE https://api.github.com/applications/{client_id}/token``
  with HTTP Basic (client id and secret) and ``{"access_token": ...}``;
- ``GH_TOKEN``, else ``GITHUB_TOKEN``, is a token to use as it is, before any
  stored login (gh's precedence);
- the REST API says its budget in ``X-RateLimit-Limit``, ``-Remaining``,
  ``-Reset`` (epoch seconds), ``-Used`` and ``-Resource``: the rate budget
  learns them from every answer the adapters see.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from keyfob import grants
from keyfob.errors import ConfigError, InvalidCredentials, ProviderError
from keyfob.flow import Flow, HttpRequest, basic_auth
from keyfob.provider import oauth2
from keyfob.provider.base import Kind, Provider, interactive_optional, own_secrets
from keyfob.secretstore import Credentials
from keyfob.token import Token

#: GitHub's advice for REST calls; its token endpoints take plain JSON
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def acquire(p: Provider, creds: Credentials, now: float) -> Flow[Token]:
    """A token without a person: ``GH_TOKEN`` / ``GITHUB_TOKEN`` (or a kept or pasted
    token) as it is, else a GitHub App's refresh token, refreshed."""
    token = creds.get("token")
    if token and (creds.given("token") or not creds.get("refresh_token")):
        return oauth2.pasted(token, now, creds.where("token"))
    refresh_token = oauth2.refresh_token_of(creds)
    if not refresh_token:  # `missing` said so first; a guard for direct callers
        raise InvalidCredentials(f"{p.name} has no token", hint=f"run `keyfob login {p.name}`")
    if not creds.get("client_id"):
        raise InvalidCredentials(
            f"{p.name} has a refresh token but no client ID to use it with",
            hint=f"set {p.env_var('client_id')}, or run `keyfob login {p.name}`",
        )
    return (yield from oauth2.refresh(p, creds, refresh_token, now))


def interactive(
    p: Provider,
    creds: Credentials,
    flow: str,
    *,
    clock: Callable[[], float],
    timeout: float = 300.0,
) -> Flow[Token]:
    """The device flow needs only the client id (GitHub: "client_secret is not needed");
    the browser login sends the secret, where there is one, with the code."""
    if flow == "device":
        device_url = p.device_url
        if not device_url:
            raise ConfigError(f"{p.name} has no device_url", hint="set device_url in config.toml")
        return (
            yield from grants.device_login(
                device_url=device_url,
                token_url=oauth2._token_url(p),
                client_id=creds.values["client_id"],
                client_secret=None,
                client_auth="none",
                scope=p.scope,
                clock=clock,
            )
        )
    return (yield from oauth2.interactive(p, creds, flow, clock=clock, timeout=timeout))


def revoke(p: Provider, token: Token, creds: Credentials) -> Flow[None] | None:
    """``DELETE /applications/{client_id}/token``: needs the app's id and secret."""
    client_id, client_secret = creds.get("client_id"), creds.get("client_secret")
    if not p.revoke_url or not client_id or not client_secret:
        return None
    url = p.revoke_url.replace("{client_id}", urllib.parse.quote(client_id, safe=""))
    pair = (client_id, client_secret)
    request = HttpRequest(
        "DELETE",
        url,
        "the token revocation endpoint",
        json={"access_token": token.access_token},
        headers=API_HEADERS,
        basic=pair,
        secrets=(client_secret, token.access_token, basic_auth(*pair).partition(" ")[2]),
    )

    def flow() -> Flow[None]:
        response = yield request
        assert response is not None
        if 200 <= response.status < 300:
            return None
        if response.status == 422:  # "Validation failed": GitHub knows no such token
            raise InvalidCredentials(f"{p.name} knows this token no more", status=422)
        if response.status == 404:  # what GitHub answers a wrong client id or secret here
            raise ProviderError(
                f"{p.name}'s token revocation endpoint answered HTTP 404: the client ID "
                "or secret is wrong",
                hint=f"check {p.env_var('client_id')} and {p.env_var('client_secret')}",
                status=404,
            )
        raise grants.error_from_response(response, request.secrets)

    return flow()


def check(p: Provider, token: Token) -> Flow[None] | None:
    """``GET /user``: a pasted token GitHub does not take is refused (HTTP 401)."""
    if not p.api_url:
        return None
    request = HttpRequest(
        "GET",
        p.api_url.rstrip("/") + "/user",
        "the GitHub API",
        headers={**API_HEADERS, "Authorization": token.authorization},
        secrets=(token.access_token,),
    )

    def flow() -> Flow[None]:
        response = yield request
        assert response is not None
        if response.status == 401:
            raise InvalidCredentials(
                f"{p.name} refused the token (HTTP 401: Bad credentials)", status=401
            )
        return None

    return flow()


def flows(p: Provider) -> tuple[str, ...]:
    return ("device", "browser", "paste")


def missing(p: Provider, creds: Credentials) -> tuple[str, ...]:
    """A token (pasted or kept) or a refresh token; else a person must log in."""
    return () if "token" in creds or "refresh_token" in creds else ("token",)


def label(p: Provider, creds: Credentials) -> str:
    if creds.given("token"):
        return creds.sources["token"].removeprefix("environment (").removesuffix(")")
    return creds.get("client_id") or ""


def words(p: Provider, name: str) -> str:
    return {
        "client_id": "GitHub client ID (of the OAuth app or GitHub App you registered at "
        "github.com/settings/developers)",
        "client_secret": "GitHub client secret (given with the client ID; the device flow "
        "needs none, refreshing a GitHub App's token does)",
        "token": "GitHub token (a personal access token, or `gh auth token`)",
        "refresh_token": "GitHub App refresh token",
    }.get(name, f"GitHub {name}")


KIND = Kind(
    name="github",
    acquire=acquire,
    renew=oauth2.renew,
    revoke=revoke,
    flows=flows,
    login_secrets=own_secrets,
    missing=missing,
    optional=interactive_optional,
    label=label,
    interactive=interactive,
    # a token from GH_TOKEN / GITHUB_TOKEN is all a run needs: the keyring is not asked
    stand_ins=frozenset({"client_id", "client_secret", "refresh_token"}),
    words=words,
    check=check,
    # a GitHub App's refresh token rotates: the broker keeps the new one before use
    rotates=True,
)

SECRETS = ("client_id", "client_secret", "refresh_token", "token")
PROVIDER = Provider(
    name="github",
    kind=KIND,
    grant="device_code",
    description="GitHub: device or browser login with an OAuth app or a GitHub App "
    "(8 h tokens, refreshed), or a token in GH_TOKEN / GITHUB_TOKEN",
    token_url="https://github.com/login/oauth/access_token",
    authorize_url="https://github.com/login/oauth/authorize",
    device_url="https://github.com/login/device/code",
    revoke_url="https://api.github.com/applications/{client_id}/token",
    api_url="https://api.github.com",
    # GitHub takes the client's id and secret in the body of its token requests
    client_auth="client_secret_post",
    # gh's minimum scopes; a GitHub App's permissions come from the app, not the scope
    scope="repo read:org gist",
    env_prefix="GITHUB",
    secrets=SECRETS,
    required=("token",),
    identity=("client_id", "token"),
    env={
        "client_id": "GITHUB_CLIENT_ID",
        "client_secret": "GITHUB_CLIENT_SECRET",
        "refresh_token": "GITHUB_REFRESH_TOKEN",
        "token": "GH_TOKEN",
    },
    env_also={"token": ("GITHUB_TOKEN",)},
    builtin=True,
)
