"""Twitter/X: app-only authentication (client credentials with HTTP Basic).

The bearer token does not expire; Twitter hands the same one to an app until
it is invalidated at ``/oauth2/invalidate_token``. Errors come as
``{"errors": [{"code": 99, "message": ...}]}`` with HTTP 403.
"""

from __future__ import annotations

from keyfob import grants
from keyfob.errors import InvalidCredentials, KeyfobError, ProviderError
from keyfob.flow import Flow, HttpResponse
from keyfob.provider import oauth2
from keyfob.provider.base import Hooks, Kind, Provider, env, interactive_optional, own_secrets
from keyfob.secretstore import Credentials
from keyfob.token import Token

#: codes that mean the key, secret or token is not (or no longer) good
CREDENTIAL_CODES = frozenset({32, 89, 99})


def refusal(response: HttpResponse, secrets: tuple[str, ...]) -> KeyfobError | None:
    """Twitter's error answer, ``{"errors": [{"code": 99, "message": ...}]}``; None
    when the answer is not in that shape (then it is read as an OAuth error)."""
    try:
        data = response.json()
    except ProviderError:
        return None
    errors = data.get("errors") if isinstance(data, dict) else None
    if not (isinstance(errors, list) and errors and isinstance(errors[0], dict)):
        return None
    code = errors[0].get("code")
    message = grants.clean(errors[0].get("message", ""), secrets)
    where = f"Twitter ({response.what})"
    if code in CREDENTIAL_CODES:
        return InvalidCredentials(
            f"{where} refused the credentials: {message} (code {code})",
            error=str(code),
            description=message,
            status=response.status,
        )
    return ProviderError(
        f"{where} answered HTTP {response.status}: {message} (code {code})",
        error=str(code),
        description=message,
        status=response.status,
    )


def never_expires(token: Token) -> Token:
    """App-only tokens live until invalidated, whatever the answer says."""
    return token.replace(expires=None)


def revoke(p: Provider, token: Token, creds: Credentials) -> Flow[None] | None:
    if not p.revoke_url or not creds.get("api_key") or not creds.get("api_secret"):
        return None
    url = p.revoke_url

    def flow() -> Flow[None]:
        request = grants.token_request(
            url,
            {"access_token": token.access_token},
            client_id=creds.values["api_key"],
            client_secret=creds.values["api_secret"],
            what="the invalidate_token endpoint",
        )
        response = yield request
        assert response is not None
        if not 200 <= response.status < 300:
            raise refusal(response, request.secrets) or grants.error_from_response(
                response, request.secrets
            )
        return None

    return flow()


def label(p: Provider, creds: Credentials) -> str:
    key = creds.get("api_key") or ""
    return f"app {key[:6]}…" if key else ""


def words(p: Provider, name: str) -> str:
    """The names on X's developer portal, where an app's "Keys and tokens" are."""
    return {
        "api_key": 'Twitter/X API key (the app\'s "Keys and tokens" at developer.x.com)',
        "api_secret": "Twitter/X API key secret (shown with the API key)",
    }.get(name, f"Twitter/X {name}")


#: client credentials of any OAuth2 server, with Twitter's own names and error answers
KIND = Kind(
    name="twitter",
    acquire=oauth2.acquire,
    renew=oauth2.renew,
    revoke=revoke,
    flows=lambda p: ("client",),
    login_secrets=own_secrets,
    optional=interactive_optional,
    label=label,
    client=("api_key", "api_secret"),
    hooks=Hooks(refusal=refusal, token=never_expires),
    words=words,
    token_kind="app-only",
)

SECRETS = ("api_key", "api_secret")
PROVIDER = Provider(
    name="twitter",
    kind=KIND,
    grant="client_credentials",
    description="Twitter/X: app-only bearer token (client credentials); it does not expire",
    token_url="https://api.twitter.com/oauth2/token",
    revoke_url="https://api.twitter.com/oauth2/invalidate_token",
    api_url="https://api.twitter.com/2",
    env_prefix="TWITTER",
    secrets=SECRETS,
    required=SECRETS,
    identity=("api_key",),
    env=env("TWITTER", SECRETS),
    builtin=True,
)
