"""Providers are data: endpoints, grant, secret names; plus small functions for quirks.

A built-in provider and one declared in config.toml are the same type. The
functions of each *kind* (``oauth2``, ``inaturalist``, ``treesnap``,
``twitter``) live in the sibling modules and are looked up in a plain dict.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyfob.config import Settings, check_url
from keyfob.errors import ConfigError

ENDPOINTS = (
    "token_url",
    "authorize_url",
    "device_url",
    "revoke_url",
    "introspect_url",
    "jwt_url",
    "refresh_url",
    "api_url",
)
SETTINGS = (
    *ENDPOINTS,
    "issuer",
    "grant",
    "client_auth",
    "scope",
    "env_prefix",
    "redirect_uri",
    "leeway",
    "description",
)
GRANTS = (
    "client_credentials",
    "password",
    "refresh_token",
    "paste",
    "authorization_code",
    "device_code",
)
CLIENT_AUTHS = ("client_secret_basic", "client_secret_post", "none")

#: what each grant of a generic OAuth2 provider needs, and may use
OAUTH2_SECRETS = ("client_id", "client_secret", "username", "password", "refresh_token", "token")
OAUTH2_REQUIRED = {
    "client_credentials": ("client_id", "client_secret"),
    "password": ("client_id", "username", "password"),
    "refresh_token": ("client_id", "refresh_token"),
    "paste": ("token",),
    # tokens from `keyfob login --flow browser|device`; renewed with their refresh token
    "authorization_code": ("client_id", "refresh_token"),
    "device_code": ("client_id", "refresh_token"),
}
OAUTH2_IDENTITY = {
    "client_credentials": ("client_id",),
    "password": ("client_id", "username"),
    "refresh_token": ("client_id",),
    "paste": ("token",),
    "authorization_code": ("client_id",),
    "device_code": ("client_id",),
}
#: secrets that are not secret: shown in prompts as plain input, usable as identity
PUBLIC_NAMES = frozenset({"username", "client_id", "app_id", "api_key"})


@dataclass(frozen=True)
class Provider:
    name: str
    kind: str = "oauth2"
    grant: str = "client_credentials"
    description: str = ""
    token_url: str | None = None
    authorize_url: str | None = None
    device_url: str | None = None
    revoke_url: str | None = None
    introspect_url: str | None = None
    jwt_url: str | None = None
    refresh_url: str | None = None
    api_url: str | None = None
    issuer: str | None = None
    client_auth: str = "client_secret_basic"
    scope: str | None = None
    env_prefix: str = ""
    redirect_uri: str | None = None
    leeway: float = 60.0
    #: every secret the provider may use, in prompt order, and the ones its grant needs
    secrets: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()
    #: secret name -> environment variable
    env: Mapping[str, str] = field(default_factory=dict)
    #: keyring service of the default account (iNaturalist shares pyinaturalist's)
    keyring_service: str = ""
    builtin: bool = False

    def service(self, account: str = "") -> str:
        if account:
            return f"keyfob:{self.name}:{account}"
        return self.keyring_service or f"keyfob:{self.name}"

    def env_var(self, name: str) -> str:
        return self.env.get(name) or f"{self.env_prefix}_{name.upper()}"

    @property
    def identity_env(self) -> str:
        return ",".join(f"{name}={self.env_var(name)}" for name in self.identity)


def _env(prefix: str, names: tuple[str, ...]) -> dict[str, str]:
    return {name: f"{prefix}_{name.upper()}" for name in names}


BUILTINS: dict[str, Provider] = {
    "inaturalist": Provider(
        name="inaturalist",
        kind="inaturalist",
        grant="password",
        description="iNaturalist: password grant, then the OAuth token traded for a 24-hour JWT",
        token_url="https://www.inaturalist.org/oauth/token",
        authorize_url="https://www.inaturalist.org/oauth/authorize",
        jwt_url="https://www.inaturalist.org/users/api_token",
        revoke_url="https://www.inaturalist.org/oauth/revoke",
        api_url="https://api.inaturalist.org/v1",
        env_prefix="INAT",
        secrets=("username", "password", "app_id", "app_secret", "token"),
        required=("username", "password", "app_id", "app_secret"),
        identity=("username", "app_id"),
        env=_env("INAT", ("username", "password", "app_id", "app_secret", "token")),
        keyring_service="/inaturalist",
        builtin=True,
    ),
    "treesnap": Provider(
        name="treesnap",
        kind="treesnap",
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
    ),
    "twitter": Provider(
        name="twitter",
        kind="twitter",
        grant="client_credentials",
        description="Twitter/X: app-only bearer token (client credentials); it does not expire",
        token_url="https://api.twitter.com/oauth2/token",
        revoke_url="https://api.twitter.com/oauth2/invalidate_token",
        api_url="https://api.twitter.com/2",
        env_prefix="TWITTER",
        secrets=("api_key", "api_secret"),
        required=("api_key", "api_secret"),
        identity=("api_key",),
        env=_env("TWITTER", ("api_key", "api_secret")),
        builtin=True,
    ),
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def registry(settings: Settings) -> dict[str, Provider]:
    """Built-ins with their config overrides, plus the providers config.toml declares."""
    known = dict(BUILTINS)
    for name, table in settings.providers.items():
        if not _NAME.match(name):
            raise ConfigError(
                f"{settings.path}: provider name {name!r} must be lower-case letters, digits, "
                "'-', '_' or '.'"
            )
        known[name] = _configure(known.get(name), name, table, settings.path)
    return known


def _configure(base: Provider | None, name: str, table: Mapping[str, Any], path: str) -> Provider:
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"{path}: [providers.{name}] has unknown setting(s): {', '.join(unknown)}",
            hint=f"known settings: {', '.join(SETTINGS)}",
        )
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key == "leeway":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{path}: [providers.{name}] leeway must be seconds (>= 0)")
            values[key] = float(value)
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: [providers.{name}] {key} must be a non-empty string")
        if key in ENDPOINTS or key == "issuer":
            check_url(value, f"[providers.{name}] {key}")
        values[key] = value.strip()
    if base is not None:
        if "grant" in values and values["grant"] != base.grant and base.builtin:
            raise ConfigError(f"{path}: the grant of built-in provider {name} cannot be changed")
        return dataclasses.replace(base, **values)

    grant = values.setdefault("grant", "client_credentials")
    if grant not in GRANTS:
        raise ConfigError(
            f"{path}: [providers.{name}] grant {grant!r} is not one of {', '.join(GRANTS)}"
        )
    if values.setdefault("client_auth", "client_secret_basic") not in CLIENT_AUTHS:
        raise ConfigError(
            f"{path}: [providers.{name}] client_auth must be one of {', '.join(CLIENT_AUTHS)}"
        )
    if not values.get("token_url") and not values.get("issuer") and grant != "paste":
        raise ConfigError(
            f"{path}: [providers.{name}] needs token_url or issuer",
            hint="give issuer for discovery (RFC 8414), or token_url",
        )
    prefix = values.setdefault("env_prefix", re.sub(r"[^A-Z0-9]", "_", name.upper()))
    if not re.match(r"^[A-Z][A-Z0-9_]*$", prefix):
        raise ConfigError(f"{path}: [providers.{name}] env_prefix must be an upper-case name")
    return Provider(
        name=name,
        kind="oauth2",
        secrets=OAUTH2_SECRETS,
        required=OAUTH2_REQUIRED[grant],
        identity=OAUTH2_IDENTITY[grant],
        env=_env(prefix, OAUTH2_SECRETS),
        **values,
    )


@dataclass(frozen=True)
class Kind:
    """The functions that make a kind of provider work (see oauth2.py for the contract)."""

    acquire: Callable[..., Any]
    renew: Callable[..., Any]
    revoke: Callable[..., Any]
    resolve: Callable[..., Any] | None = None
    label: Callable[..., str] | None = None
    #: the stored secret a renewed token replaces (TreeSnap's personal token)
    supersedes: str | None = None
    #: ``interactive(p, creds, flow, clock=, timeout=)``: a flow that needs
    #: a person (``browser``, ``device``), or None where the kind has none
    interactive: Callable[..., Any] | None = None
    #: the secret names of the client (app) for interactive logins
    client: tuple[str, str] = ("client_id", "client_secret")
    #: ``identify(p, token)``: identity names a token itself tells (after a browser
    #: login, where no username was typed), or None
    identify: Callable[..., dict[str, str]] | None = None


def kind_of(provider: Provider) -> Kind:
    from keyfob.provider import inaturalist, oauth2, treesnap, twitter

    kinds = {
        "oauth2": oauth2.KIND,
        "inaturalist": inaturalist.KIND,
        "treesnap": treesnap.KIND,
        "twitter": twitter.KIND,
    }
    return kinds[provider.kind]
