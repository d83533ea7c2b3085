"""Twitter/X: app-only authentication (client credentials with HTTP Basic).

The bearer token does not expire; Twitter hands the same one to an app until
it is invalidated at ``/oauth2/invalidate_token``. Errors come as
``{"errors": [{"code": 99, "message": ...}]}`` with HTTP 403.
"""

from __future__ import annotations

from keyfob import grants
from keyfob.errors import ConfigError, InvalidCredentials, ProviderError
from keyfob.flow import Flow, HttpResponse
from keyfob.provider import Kind, Provider
from keyfob.secretstore import Credentials
from keyfob.token import Token

#: codes that mean the key, secret or token is not (or no longer) good
CREDENTIAL_CODES = frozenset({32, 89, 99})


def _check(response: HttpResponse, secrets: tuple[str, ...]) -> None:
    if 200 <= response.status < 300:
        return
    try:
        data = response.json()
    except ProviderError:
        data = None
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        message = grants.clean(errors[0].get("message", ""), secrets)
        where = f"Twitter ({response.what})"
        if code in CREDENTIAL_CODES:
            raise InvalidCredentials(
                f"{where} refused the credentials: {message} (code {code})",
                error=str(code),
                description=message,
                status=response.status,
            )
        raise ProviderError(
            f"{where} answered HTTP {response.status}: {message} (code {code})",
            error=str(code),
            description=message,
            status=response.status,
        )
    raise grants.error_from_response(response, secrets)


def acquire(p: Provider, creds: Credentials, now: float) -> Flow[Token]:
    if not p.token_url:
        raise ConfigError("provider twitter has no token_url")
    request = grants.token_request(
        p.token_url,
        {"grant_type": "client_credentials"},
        client_id=creds.values["api_key"],
        client_secret=creds.values["api_secret"],
    )
    response = yield request
    assert response is not None
    _check(response, request.secrets)
    token = grants.parse_token_response(response, requested_at=now, secrets=request.secrets)
    return token.replace(expires=None)  # app-only tokens live until invalidated


def renew(p: Provider, token: Token, creds: Credentials, now: float) -> Flow[Token] | None:
    return None


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
        _check(response, request.secrets)
        return None

    return flow()


def label(p: Provider, creds: Credentials) -> str:
    key = creds.get("api_key") or ""
    return f"app {key[:6]}…" if key else ""


KIND = Kind(acquire=acquire, renew=renew, revoke=revoke, label=label)
