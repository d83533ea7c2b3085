"""OAuth 1.0a (RFC 5849): X's ``twitter-oauth1``, and any provider config.toml declares
with ``protocol = "oauth1"``.

Such a provider gives no bearer token: every request is signed with the
consumer (the app's key and secret) and the access token with its secret,
which do not expire. So its kind has a ``signer`` and its own logins
(``sign_in``: ``pin``, ``browser``, ``paste``) where an OAuth2 kind has grants;
``acquire`` says where to go instead (``keyfob header``, the adapters). The
protocol itself is :mod:`keyfob.oauth1`, imported only when one is used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from keyfob.errors import ConfigError, CredentialsMissing, KeyfobError
from keyfob.flow import Flow
from keyfob.provider.base import Kind, Provider, Signer
from keyfob.secretstore import Credentials
from keyfob.token import Token

if TYPE_CHECKING:
    from keyfob.oauth1 import Consumer, Endpoints

FLOWS = ("pin", "browser", "paste")
#: the access token and its secret; the user they belong to, as the server named it
TOKEN_SECRETS = ("token", "token_secret")
NAMES = ("user_id", "screen_name")


def consumer(p: Provider, creds: Credentials) -> Consumer:
    from keyfob.oauth1 import Consumer, read_rsa_key

    key_name, secret_name = p.kind.client
    rsa = None
    if p.signature_method == "RSA-SHA1":
        if not p.rsa_key:
            raise ConfigError(
                f"[providers.{p.name}] signature_method RSA-SHA1 needs rsa_key",
                hint="set rsa_key to the path of the RSA private key file (PEM)",
            )
        rsa = read_rsa_key(p.rsa_key, lambda: f"[providers.{p.name}]")
        _need_rsa_libraries(p)
    return Consumer(
        creds.values[key_name],
        creds.get(secret_name) or "",
        method=p.signature_method,
        signature_type=p.signature_type,
        rsa_key=rsa,
    )


def _need_rsa_libraries(p: Provider) -> None:
    from importlib.util import find_spec

    if find_spec("jwt") is None or find_spec("cryptography") is None:
        raise ConfigError(
            f"{p.name} signs with RSA-SHA1, which needs PyJWT and cryptography",
            hint="pip install 'keyfob[rsa]'",
        )


def endpoints(p: Provider) -> Endpoints:
    from keyfob.oauth1 import Endpoints

    missing = [
        name
        for name in ("request_token_url", "authorize_url", "access_token_url")
        if not getattr(p, name)
    ]
    if missing:
        raise ConfigError(
            f"{p.name} has no {', '.join(missing)}",
            hint=f"set {', '.join(missing)} in [providers.{p.name}] of config.toml",
        )
    assert p.request_token_url and p.authorize_url and p.access_token_url
    return Endpoints(p.request_token_url, p.authorize_url, p.access_token_url, p.revoke_url)


def who(creds: Credentials) -> str:
    """Whose requests a signer makes, for the rate budget (X counts user context per
    user): X's access tokens start with the user's id; else the stored ``user_id`` of
    a stored token; else a digest of the token, never the token."""
    token = creds.values["token"]
    match = re.match(r"^(\d{1,20})-", token)
    if match:
        return f"user {match.group(1)}"
    user = creds.get("user_id")
    if user and creds.stored("user_id") and creds.stored("token"):
        return f"user {user}"
    return "token " + hashlib.sha256(token.encode()).hexdigest()[:12]


def signer(p: Provider, creds: Credentials) -> Signer:
    from keyfob.oauth1 import Signer as OAuth1Signer

    return OAuth1Signer(
        consumer(p, creds), creds.values["token"], creds.values["token_secret"], who=who(creds)
    )


def sign_in(
    p: Provider,
    creds: Credentials,
    flow: str,
    *,
    clock: Callable[[], float],
    timeout: float,
) -> Flow[dict[str, str]]:
    """The secrets a login keeps: the access token and its secret, and the user's names."""
    from keyfob import oauth1

    if flow == "paste":
        missing = [n for n in TOKEN_SECRETS if not creds.get(n)]
        if missing:
            raise CredentialsMissing(
                f"{p.name}: no {' or '.join(missing)} to paste",
                hint=f"set {', '.join(p.env_var(n) for n in missing)}, or run "
                f"`keyfob login {p.name} --flow paste` in a terminal",
            )
        return {n: creds.values[n].strip() for n in TOKEN_SECRETS}
        yield  # a generator all the same: nothing to ask of the server
    ends, app = endpoints(p), consumer(p, creds)
    if flow == "browser":
        done = yield from oauth1.browser_login(
            ends, app, redirect_uri=p.redirect_uri, timeout=timeout
        )
    else:
        done = yield from oauth1.pin_login(ends, app)
    return {
        "token": done.token,
        "token_secret": done.secret,
        **{n: v for n, v in done.extra.items() if n in NAMES},
    }


def acquire(p: Provider, creds: Credentials, now: float) -> Flow[Token]:
    raise ConfigError(
        f"{p.name} signs each request (OAuth 1.0a): it has no bearer token to print",
        hint=f"use `keyfob header {p.name} --method GET --url URL`, keyfob exec, or "
        "keyfob.requests_auth / httpx_auth, which sign every request",
    )
    yield  # pragma: no cover - a flow all the same


def renew(p: Provider, token: Token, creds: Credentials, now: float) -> Flow[Token] | None:
    return None


def revoke(p: Provider, token: Token, creds: Credentials) -> Flow[None] | None:
    """Invalidate the stored access token, signed with it (X: ``invalidate_token``)."""
    from keyfob import oauth1

    key_name, _ = p.kind.client
    if not p.revoke_url or not all(creds.get(n) for n in (key_name, *TOKEN_SECRETS)):
        return None
    return oauth1.revoke(
        p.revoke_url, consumer(p, creds), creds.values["token"], creds.values["token_secret"]
    )


def missing(p: Provider, creds: Credentials) -> tuple[str, ...]:
    return tuple(n for n in p.required if n not in creds and n not in optional(p, None))


def optional(p: Provider, flow: str | None) -> frozenset[str]:
    """RSA-SHA1 signs with the private key file: there is no consumer secret."""
    return frozenset({p.kind.client[1]}) if p.signature_method == "RSA-SHA1" else frozenset()


def login_secrets(p: Provider, flow: str | None) -> tuple[str, ...]:
    if flow == "paste":
        return (*p.kind.client, *TOKEN_SECRETS)
    return p.kind.client


def refused(p: Provider, flow: str | None, exc: KeyfobError) -> tuple[str, ...]:
    """Only a refusal of the consumer itself (at the request-token endpoint) asks for
    the key and secret again; a PIN, a denial or a callback are not theirs."""
    return p.kind.client if exc.error == "consumer_refused" else ()


def label(p: Provider, creds: Credentials) -> str:
    name = creds.get("screen_name")
    if name and creds.stored("screen_name"):
        return f"@{name}"
    return who(creds) if creds.get("token") else ""


def generic_words(p: Provider, name: str) -> str:
    return {
        "client_id": f"{p.name} consumer key (from the app you registered at "
        f"{p.site or 'the provider'})",
        "client_secret": f"{p.name} consumer secret (given with the consumer key)",
        "token": f"{p.name} access token",
        "token_secret": f"{p.name} access token secret",
    }.get(name, f"{p.name} {name}")


def twitter_words(p: Provider, name: str) -> str:
    """The names on X's developer portal: the app's key and secret as the app-only
    provider says them, and the access token and secret on the same page."""
    from keyfob.provider import twitter

    return {
        "token": 'Twitter/X access token ("Access Token and Secret" on the same page)',
        "token_secret": "Twitter/X access token secret (shown with the access token)",
    }.get(name) or twitter.words(p, name)


def make_kind(name: str, client: tuple[str, str], words: Callable[[Provider, str], str]) -> Kind:
    return Kind(
        name=name,
        acquire=acquire,
        renew=renew,
        revoke=revoke,
        flows=lambda p: FLOWS,
        login_secrets=login_secrets,
        missing=missing,
        optional=optional,
        label=label,
        client=client,
        words=words,
        refused=refused,
        signer=signer,
        sign_in=sign_in,
        protocol="OAuth 1.0a",
    )


#: a provider config.toml declares with protocol = "oauth1"
KIND = make_kind("oauth1", ("client_id", "client_secret"), generic_words)
SECRETS = ("client_id", "client_secret", *TOKEN_SECRETS, *NAMES)
REQUIRED = ("client_id", "client_secret", *TOKEN_SECRETS)
IDENTITY = ("client_id",)

TWITTER_KIND = make_kind("twitter-oauth1", ("api_key", "api_secret"), twitter_words)
TWITTER_SECRETS = ("api_key", "api_secret", *TOKEN_SECRETS, *NAMES)
PROVIDER = Provider(
    name="twitter-oauth1",
    kind=TWITTER_KIND,
    grant="oauth1",
    description="Twitter/X: OAuth 1.0a user context; every request signed; tokens do not expire",
    request_token_url="https://api.x.com/oauth/request_token",
    authorize_url="https://api.x.com/oauth/authorize",
    access_token_url="https://api.x.com/oauth/access_token",
    revoke_url="https://api.x.com/1.1/oauth/invalidate_token",
    api_url="https://api.x.com/1.1",
    env_prefix="TWITTER",
    secrets=TWITTER_SECRETS,
    required=("api_key", "api_secret", *TOKEN_SECRETS),
    identity=("api_key",),
    env={
        "api_key": "TWITTER_API_KEY",
        "api_secret": "TWITTER_API_SECRET",
        "token": "TWITTER_ACCESS_TOKEN",
        "token_secret": "TWITTER_ACCESS_TOKEN_SECRET",
        "user_id": "TWITTER_USER_ID",
        "screen_name": "TWITTER_SCREEN_NAME",
    },
    builtin=True,
)
