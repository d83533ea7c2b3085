"""Any OAuth 2.0 server: client credentials, password, refresh token, a pasted token.

The functions every kind provides (see ``Kind``):

- ``acquire(p, creds, now)``: a flow to a new token from the secrets alone;
- ``renew(p, token, creds, now)``: a flow to a new token from the cached one
  (its refresh token), or ``None`` when that is not possible;
- ``revoke(p, token, creds)``: a flow that revokes at the server, or ``None``;
- ``resolve(p)``: endpoints from discovery, when only ``issuer`` is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from keyfob import _jwt, grants
from keyfob.errors import ConfigError, CredentialsMissing, InvalidCredentials
from keyfob.flow import Flow
from keyfob.provider import Kind, Provider
from keyfob.secretstore import Credentials
from keyfob.token import Token


def pasted(value: str, now: float) -> Token:
    """A token the person copied from a web page: its expiry is its JWT ``exp``, if any."""
    return Token(value.strip(), expires=_jwt.expiry(value.strip()), issued=now)


def _auth(p: Provider, client_secret: str | None) -> str:
    """A client without a secret is a public client (PKCE logins): it sends only its id."""
    return p.client_auth if client_secret else "none"


def _token_url(p: Provider) -> str:
    if not p.token_url:
        raise ConfigError(f"provider {p.name} has no token_url", hint="set token_url or issuer")
    return p.token_url


def acquire(p: Provider, creds: Credentials, now: float) -> Flow[Token]:
    client_id, client_secret = creds.get("client_id"), creds.get("client_secret")
    if creds.get("token") and p.grant == "paste":
        return pasted(creds.values["token"], now)
    refresh_token = creds.get("refresh_token")
    if refresh_token:
        # A refresh token, when given, comes before repeating the original grant.
        try:
            return (
                yield from grants.refresh(
                    _token_url(p),
                    refresh_token,
                    client_id=client_id,
                    client_secret=client_secret,
                    client_auth=_auth(p, client_secret),
                    now=now,
                )
            )
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
            )
        )
    if p.grant == "client_credentials":
        return (
            yield from grants.client_credentials(
                _token_url(p),
                client_id=creds.values["client_id"],
                client_secret=creds.values["client_secret"],
                client_auth=p.client_auth,
                scope=p.scope,
                now=now,
            )
        )
    if creds.get("token"):
        return pasted(creds.values["token"], now)
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
    client: tuple[str, str] = ("client_id", "client_secret"),
) -> Flow[Token]:
    """The logins that need a person: ``browser`` (code + PKCE) and ``device`` (RFC 8628)."""
    client_id, client_secret = creds.values[client[0]], creds.get(client[1])
    client_auth = _auth(p, client_secret)
    token_url = _token_url(p)
    if flow == "browser":
        if not p.authorize_url:
            raise ConfigError(
                f"{p.name} has no authorize_url for a browser login",
                hint="set authorize_url or issuer in config.toml",
            )
        return grants.browser_login(
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
        )
    if not p.device_url:
        raise ConfigError(
            f"{p.name} has no device_url for a device login",
            hint="set device_url or issuer in config.toml",
        )
    return grants.device_login(
        device_url=p.device_url,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
        scope=p.scope,
        interval=_test_interval(),
        clock=clock,
    )


def _test_interval() -> float | None:
    """KEYFOB_TEST_DEVICE_INTERVAL: tests poll faster than RFC 8628's 5 s."""
    import os

    value = os.environ.get("KEYFOB_TEST_DEVICE_INTERVAL")
    return float(value) if value else None


def renew(p: Provider, token: Token, creds: Credentials, now: float) -> Flow[Token] | None:
    if not token.can_refresh(now) or not p.token_url:
        return None
    assert token.refresh_token is not None
    # No scope: RFC 6749 §6 then grants the original scope; asking again for a
    # scope the server did not grant (resource scopes, say) is refused.
    return grants.refresh(
        p.token_url,
        token.refresh_token,
        client_id=creds.get("client_id"),
        client_secret=creds.get("client_secret"),
        client_auth=_auth(p, creds.get("client_secret")),
        now=now,
    )


def revoke(p: Provider, token: Token, creds: Credentials) -> Flow[None] | None:
    if not p.revoke_url:
        return None
    url = p.revoke_url
    client_id, client_secret = creds.get("client_id"), creds.get("client_secret")

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
    return creds.get("username") or creds.get("client_id") or ""


KIND = Kind(
    acquire=acquire,
    renew=renew,
    revoke=revoke,
    resolve=resolve,
    label=label,
    interactive=interactive,
)
