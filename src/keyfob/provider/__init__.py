"""The provider registry: the built-ins, and the providers config.toml declares or changes.

A provider is data (:class:`Provider`) whose ``kind`` does the work; each
module here exports one kind, and each built-in module its ``PROVIDER``. A
provider declared in config.toml is an OAuth2 provider. Adding a built-in:
its module, one line in ``BUILTINS``, its emulator module, its tests, the docs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from keyfob.config import Settings, check_url
from keyfob.errors import ConfigError
from keyfob.provider import inaturalist, oauth2, treesnap, twitter
from keyfob.provider.base import (
    FLOWS,
    PUBLIC_NAMES,
    Hooks,
    Kind,
    Provider,
    env,
    login_flow,
)

__all__ = [
    "BUILTINS",
    "FLOWS",
    "PUBLIC_NAMES",
    "Hooks",
    "Kind",
    "Provider",
    "login_flow",
    "registry",
]

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

BUILTINS: dict[str, Provider] = {
    p.name: p for p in (inaturalist.PROVIDER, treesnap.PROVIDER, twitter.PROVIDER)
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
        kind=oauth2.KIND,
        secrets=oauth2.SECRETS,
        required=oauth2.REQUIRED[grant],
        identity=oauth2.IDENTITY[grant],
        env=env(prefix, oauth2.SECRETS),
        **values,
    )
