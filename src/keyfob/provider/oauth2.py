"""Any OAuth 2.0 server: client credentials, password, refresh token, a pasted token,
and the logins that need a person (browser with PKCE, device code).

Its functions serve the kinds that are OAuth 2.0 underneath (Twitter's app-only
token, iNaturalist's password grant): they read the client's secret names from
``p.kind.client`` and bend at ``p.kind.hooks``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from keyfob import _jwt, grants
from keyfob.clientauth import SECRETLESS
from keyfob.errors import ConfigError, CredentialsMissing, InvalidCredentials
from keyfob.flow import Flow
from keyfob.provider.base import Kind, Provider
from keyfob.secretstore import Credentials
from keyfob.token import Token

#: every secret a declared OAuth2 provider may use, and what each grant needs
SECRETS = ("client_id", "client_secret", "username", "password", "refresh_token", "token")
REQUIRED = {
    "client_credentials": ("client_id", "client_secret"),
    "password": ("client_id", "username", "password"),
    "refresh_token": ("client_id", "refresh_token"),
    "paste": ("token",),
    # tokens from `keyfob login --flow browser|device`; renewed with their refresh token
    "authorization_code": ("client_id", "refresh_token"),
    "device_code": ("client_id", "refresh_token"),
}
IDENTITY = {
    "client_credentials": ("client_id",),
    "password": ("client_id", "username"),
    "refresh_token": ("client_id",),
    "paste": ("token",),
    "authorization_code": ("client_id",),
    "device_code": ("client_id",),
}


def required(grant: str, client_auth: str) -> tuple[str, ...]:
    """What ``grant`` needs; a client that authenticates without a secret (a key, a
    certificate: keyfob.clientauth) needs only its id."""
    if client_auth in SECRETLESS:
        return tuple(n for n in REQUIRED[grant] if n != "client_secret")
    return REQUIRED[grant]


def _client(p: Provider) -> tuple[str, ...]:
    """The client's secret names a login asks for: the id alone without a secret."""
    return p.kind.client[:1] if p.client_auth in SECRETLESS else p.kind.client


def pasted(value: str, now: float, source: str = "the paste") -> Token:
    """A token the person copied from a web page: its expiry is its JWT ``exp``, if any."""
    value = grants.check_token(value.strip(), source)
    return Token(value, expires=_jwt.expiry(value), issued=now)


def _auth(p: Provider, client_secret: str | None) -> str:
    """A client without a secret is a public client (PKCE logins): it sends only its id,
    unless it authenticates with no secret at all (a key, a certificate)."""
    return p.client_auth if client_secret or p.client_auth in SECRETLESS else "none"


def _token_url(p: Provider) -> str:
    if not p.token_url:
        raise ConfigError(f"provider {p.name} has no token_url", hint="set token_url or issuer")
    return p.token_url


def _finish(p: Provider, token: Token, now: float) -> Flow[Token]:
    """The provider's hooks on a token its grant produced."""
    hooks = p.kind.hooks
    if hooks.token is not None:
        token = hooks.token(token)
    if hooks.then is not None:
        token = yield from hooks.then(p, token, now)
    return token


def acquire(p: Provider, creds: Credentials, now: float) -> Flow[Token]:
    """A new token from the secrets alone: a pasted one (where the grant's own secrets
    are not all there), else a refresh token when given, else the provider's grant."""
    token = creds.get("token")
    if token and (p.grant == "paste" or any(n not in creds for n in p.required)):
        return pasted(token, now, creds.where("token"))
    return (yield from _finish(p, (yield from _grant(p, creds, now)), now))


def refresh_token_of(creds: Credentials) -> str | None:
    """The secrets' refresh token, checked (:func:`grants.check_token`), or None."""
    value = creds.get("refresh_token")
    if not value:
        return None
    return grants.check_token(value.strip(), creds.where("refresh_token"), what="refresh token")


def refresh(p: Provider, creds: Credentials, refresh_token: str, now: float) -> Flow[Token]:
    """RFC 6749 §6 at ``p``'s token endpoint: the client's id and secret from the secrets,
    sent as ``p`` authenticates its client, and ``p``'s refusal hook on an error answer."""
    id_name, secret_name = p.kind.client
    client_secret = creds.get(secret_name)
    return grants.refresh(
        _token_url(p),
        refresh_token,
        client_id=creds.get(id_name),
        client_secret=client_secret,
        client_auth=_auth(p, client_secret),
        now=now,
        refusal=p.kind.hooks.refusal,
    )


def _grant(p: Provider, creds: Credentials, now: float) -> Flow[Token]:
    id_name, secret_name = p.kind.client
    client_id, client_secret = creds.get(id_name), creds.get(secret_name)
    refusal = p.kind.hooks.refusal
    refresh_token = refresh_token_of(creds)
    if refresh_token:
        # A refresh token, when given, comes before repeating the original grant.
        try:
            return (yield from refresh(p, creds, refresh_token, now))
        except InvalidCredentials:
            if p.grant == "refresh_token":
                raise
    if p.grant == "password":
        return (
            yield from grants.password(
                _token_url(p),
                username=creds.values["username"],
                password=creds.values["password"],
                client_id=client_id,
                client_secret=client_secret,
                client_auth=p.client_auth,
                scope=p.scope,
                now=now,
                refusal=refusal,
            )
        )
    if p.grant == "client_credentials":
        return (
            yield from grants.client_credentials(
                _token_url(p),
                client_id=creds.values[id_name],
                client_secret=creds.get(secret_name),
                client_auth=p.client_auth,
                scope=p.scope,
                now=now,
                refusal=refusal,
            )
        )
    if creds.get("token"):
        return pasted(creds.values["token"], now, creds.where("token"))
    flow = "device" if p.grant == "device_code" else "browser"
    raise CredentialsMissing(
        f"{p.name} needs a person to log in: there is no refresh token to use",
        hint=f"run `keyfob login {p.name} --flow {flow}`",
    )


def interactive(
    p: Provider,
    creds: Credentials,
    flow: str,
    *,
    clock: Callable[[], float],
    timeout: float = 300.0,
) -> Flow[Token]:
    """The logins that need a person: ``browser`` (code + PKCE) and ``device`` (RFC 8628),
    then the provider's hooks on the token."""
    token = yield from _interactive(p, creds, flow, clock=clock, timeout=timeout)
    return (yield from _finish(p, token, clock()))


def _interactive(
    p: Provider,
    creds: Credentials,
    flow: str,
    *,
    clock: Callable[[], float],
    timeout: float,
) -> Flow[Token]:
    id_name, secret_name = p.kind.client
    client_id, client_secret = creds.values[id_name], creds.get(secret_name)
    client_auth = _auth(p, client_secret)
    token_url = _token_url(p)
    if flow == "browser":
        if not p.authorize_url:
            raise ConfigError(
                f"{p.name} has no authorize_url for a browser login",
                hint="set authorize_url or issuer in config.toml",
            )
        return (
            yield from grants.browser_login(
                authorize_url=p.authorize_url,
                token_url=token_url,
                client_id=client_id,
                client_secret=client_secret,
                client_auth=client_auth,
                scope=p.scope,
                redirect_uri=p.redirect_uri,
                issuer=p.issuer,
                timeout=timeout,
                clock=clock,
                refusal=p.kind.hooks.refusal,
            )
        )
    if not p.device_url:
        raise ConfigError(
            f"{p.name} has no device_url for a device login",
            hint="set device_url or issuer in config.toml",
        )
    return (
        yield from grants.device_login(
            device_url=p.device_url,
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            client_auth=client_auth,
            scope=p.scope,
            clock=clock,
            refusal=p.kind.hooks.refusal,
        )
    )


def renew(p: Provider, token: Token, creds: Credentials, now: float) -> Flow[Token] | None:
    if not token.can_refresh(now) or not p.token_url:
        return None
    assert token.refresh_token is not None
    # No scope: RFC 6749 §6 then grants the original scope; asking again for a
    # scope the server did not grant (resource scopes, say) is refused.
    return refresh(p, creds, token.refresh_token, now)


def revoke(p: Provider, token: Token, creds: Credentials) -> Flow[None] | None:
    if not p.revoke_url:
        return None
    url = p.revoke_url
    client_id, client_secret = (creds.get(name) for name in p.kind.client)

    def flow() -> Flow[None]:
        # Revoking the refresh token first also ends its access tokens (RFC 7009 §2.1).
        for value, hint in (
            (token.refresh_token, "refresh_token"),
            (token.access_token, "access_token"),
        ):
            if value:
                yield from grants.revoke(
                    url,
                    value,
                    token_type_hint=hint,
                    client_id=client_id,
                    client_secret=client_secret,
                    client_auth=p.client_auth,
                )

    return flow()


def resolve(p: Provider) -> Flow[Provider] | None:
    if p.token_url or not p.issuer:
        return None

    def flow() -> Flow[Provider]:
        assert p.issuer is not None
        meta = yield from grants.discover(p.issuer)
        found = {
            "token_url": meta.get("token_endpoint"),
            "authorize_url": meta.get("authorization_endpoint"),
            "device_url": meta.get("device_authorization_endpoint"),
            "revoke_url": meta.get("revocation_endpoint"),
            "introspect_url": meta.get("introspection_endpoint"),
        }
        from keyfob.config import check_url

        values: dict[str, Any] = {}
        for key, url in found.items():
            if isinstance(url, str) and url and getattr(p, key) is None:
                values[key] = check_url(url, f"{key} from {p.name}'s discovery document")
        return dataclasses.replace(p, **values)

    return flow()


def label(p: Provider, creds: Credentials) -> str:
    return creds.get("username") or creds.get(p.kind.client[0]) or ""


def flows(p: Provider) -> tuple[str, ...]:
    return ("password", "client", "paste", "browser", "device")


def login_secrets(p: Provider, flow: str | None) -> tuple[str, ...]:
    """The secrets a login flow asks for; ``None``: the provider's own grant."""
    client = _client(p)
    if flow == "paste" or (flow is None and p.grant == "paste"):
        return ("token",)
    if flow in ("browser", "device"):
        return client
    if flow == "password" or (flow is None and p.grant == "password"):
        return (*client, "username", "password")
    if flow is None and p.grant == "refresh_token":
        return (*client, "refresh_token")
    return client


#: the grant of a login flow that is a grant itself
FLOW_GRANTS = {"password": "password", "client": "client_credentials"}


def for_flow(p: Provider, flow: str | None) -> Provider:
    """The provider as ``--flow password`` or ``--flow client`` uses it: that grant, and
    the secrets it needs, whatever grant config.toml gave the provider."""
    grant = FLOW_GRANTS.get(flow or "")
    if grant is None or grant == p.grant:
        return p
    return dataclasses.replace(
        p, grant=grant, required=required(grant, p.client_auth), identity=IDENTITY[grant]
    )


def missing(p: Provider, creds: Credentials) -> tuple[str, ...]:
    """A pasted token stands in for a paste grant's secrets, a refresh token for any grant's."""
    if ("token" in creds and p.grant == "paste") or "refresh_token" in creds:
        return ()
    return tuple(n for n in p.required if n not in creds)


def optional(p: Provider, flow: str | None) -> frozenset[str]:
    """A public client has no secret (PKCE stands in for it), except for the client grant."""
    return frozenset() if flow == "client" else frozenset({p.kind.client[1]})


KIND = Kind(
    name="oauth2",
    acquire=acquire,
    renew=renew,
    revoke=revoke,
    flows=flows,
    login_secrets=login_secrets,
    missing=missing,
    optional=optional,
    resolve=resolve,
    label=label,
    interactive=interactive,
    for_flow=for_flow,
)
