"""The provider registry: the built-ins, and the providers config.toml declares or changes.

A provider is data (:class:`Provider`) whose ``kind`` does the work; each
module here exports one kind, and each built-in module its ``PROVIDER``. A
provider declared in config.toml is an OAuth2 provider. Adding a built-in:
its module, one line in ``BUILTINS``, its emulator module, its tests, the docs.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

from keyfob.config import Settings, check_url, warn_unknown
from keyfob.errors import ConfigError
from keyfob.provider import inaturalist, oauth2, treesnap, twitter, twitter_user
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
    "rate_limits",
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
    p.name: p
    for p in (inaturalist.PROVIDER, treesnap.PROVIDER, twitter.PROVIDER, twitter_user.PROVIDER)
}

#: a year: leeway beyond any token's life is a mistake (and inf or nan never a number)
MAX_LEEWAY = 366 * 86400

log = logging.getLogger("keyfob")

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
        if name not in known and not set(table) & {*ENDPOINTS, "issuer"}:
            builtin = next((b for b in BUILTINS if _one_edit(name, b)), None)
            if builtin is not None:
                # A new provider needs an endpoint: this is a built-in's name, mistyped.
                log.warning(
                    "%s: [providers.%s] declares no endpoint, ignored (did you mean %s?)",
                    settings.path,
                    name,
                    builtin,
                )
                continue
        p = _configure(known.get(name), name, table, settings.path)
        if name not in BUILTINS and "env_prefix" not in table:
            twin = next((o for o in known.values() if o.env_prefix == p.env_prefix), None)
            if twin is not None:
                raise ConfigError(
                    f"{settings.path}: [providers.{name}] would read the same "
                    f"{p.env_prefix}_* variables as {twin.name}",
                    hint=f"give [providers.{name}] its own env_prefix, or rename it",
                )
        known[name] = p
    return known


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with one letter added, dropped or changed, or two swapped."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1:
            return a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        return len(diff) == 1
    if abs(len(a) - len(b)) != 1:
        return False
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def _rate_limits(value: object, where: str, fix: str) -> tuple[str, ...]:
    """``["60/minute", "10000/day"]``, each checked; ``[]`` for none."""
    from keyfob.ratelimit import parse_limit

    if not isinstance(value, list):
        raise ConfigError(
            f'{where} must be a list like ["60/minute", "10000/day"], not {value!r}', hint=fix
        )
    for item in value:
        try:
            parse_limit(item)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}", hint=fix) from None
    return tuple(str(item).strip() for item in value)


def _configure(base: Provider | None, name: str, table: Mapping[str, Any], path: str) -> Provider:
    for key in table:
        if key not in SETTINGS:
            warn_unknown(path, f"key `{key}` in [providers.{name}]", key, SETTINGS)
    table = {k: v for k, v in table.items() if k in SETTINGS}
    values: dict[str, Any] = {}
    for key, value in table.items():
        fix = f"fix {key} in [providers.{name}] of {path}"
        if key == "leeway":
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= MAX_LEEWAY
            ):
                raise ConfigError(
                    f"{path}: [providers.{name}] leeway must be a number of seconds from 0 "
                    f"to {MAX_LEEWAY}",
                    hint=fix,
                )
            values[key] = float(value)
            continue
        if key == "rate_limits":
            values[key] = _rate_limits(value, f"{path}: [providers.{name}] rate_limits", fix)
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{path}: [providers.{name}] {key} must be a non-empty string", hint=fix
            )
        if key in ENDPOINTS or key == "issuer":
            try:
                check_url(value, f"[providers.{name}] {key}")
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc.message}", hint=exc.hint) from None
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
