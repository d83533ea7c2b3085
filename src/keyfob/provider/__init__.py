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
from keyfob.provider import github, inaturalist, oauth1, oauth2, treesnap, twitter, twitter_user
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
    "request_token_url",
    "access_token_url",
)
#: client authentication without a secret (keyfob.clientauth): files, and the key's id
CLIENT_FILES = ("client_cert", "client_key", "private_key")
CLIENT_KEYS = (*CLIENT_FILES, "key_id", "signing_alg")
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
    *CLIENT_KEYS,
    "protocol",
    "signature_method",
    "signature_type",
    "rsa_key",
)
#: the keys only an OAuth 1.0a provider reads
OAUTH1_ONLY = (
    "request_token_url",
    "access_token_url",
    "signature_method",
    "signature_type",
    "rsa_key",
)
PROTOCOLS = ("oauth2", "oauth1")
#: the grants a declared OAuth2 provider may name: those oauth2 knows the secrets of
GRANTS = tuple(oauth2.REQUIRED)
CLIENT_AUTHS = (
    "client_secret_basic",
    "client_secret_post",
    "none",
    "private_key_jwt",  # RFC 7523 §2.2: a signed assertion, no secret
    "tls_client_auth",  # RFC 8705 §2.1.1: the client certificate, no secret
)

BUILTINS: dict[str, Provider] = {
    p.name: p
    for p in (
        inaturalist.PROVIDER,
        treesnap.PROVIDER,
        twitter.PROVIDER,
        twitter_user.PROVIDER,
        oauth1.PROVIDER,
        github.PROVIDER,
    )
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
        p = _client_auth(p, table, settings)
        if name not in BUILTINS and "env_prefix" not in table:
            twin = next((o for o in known.values() if o.env_prefix == p.env_prefix), None)
            if twin is not None:
                raise ConfigError(
                    f"{settings.path}: [providers.{name}] would read the same "
                    f"{p.env_prefix}_* variables as {twin.name}",
                    hint=f"give [providers.{name}] its own env_prefix, or rename it",
                )
        known[name] = p
    if settings.http.client_cert is not None:  # [http]'s, for every provider without its own
        for name, p in known.items():
            if p.client_cert is None:
                known[name] = dataclasses.replace(p, client_cert=settings.http.client_cert)
    for p in known.values():
        if p.client_auth == "tls_client_auth" and p.client_cert is None:
            raise ConfigError(
                f'{settings.path}: [providers.{p.name}] client_auth = "tls_client_auth" needs '
                "a client certificate, and neither [providers."
                f"{p.name}] nor [http] has client_cert",
                hint=f"set client_cert and client_key in [providers.{p.name}] or [http]",
            )
    return known


def _client_auth(p: Provider, table: Mapping[str, Any], settings: Settings) -> Provider:
    """The provider with its client certificate and signing key (keyfob.clientauth)."""
    from keyfob.config import client_cert, file_setting

    path, section = settings.path, f"[providers.{p.name}]"
    files = {k: file_setting(table[k], f"{section} {k}", path) for k in CLIENT_FILES if k in table}
    values: dict[str, Any] = {}
    cert = client_cert(files, section, path)
    if cert is not None:
        values["client_cert"] = cert
    if p.client_auth != "private_key_jwt" and "private_key" in files:
        log.warning(
            '%s: %s private_key is used only with client_auth = "private_key_jwt"; ignored',
            path,
            section,
        )
    if p.client_auth == "private_key_jwt":
        if "private_key" not in files:
            raise ConfigError(
                f'{path}: {section} client_auth = "private_key_jwt" needs private_key, the '
                "PEM file of the key whose public half the server knows",
                hint=f"add private_key (and key_id, its kid) to {section}",
            )
        from keyfob.clientauth import ALGORITHMS, SigningKey

        words = {}
        for key in ("key_id", "signing_alg"):
            value = table.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(
                    f"{path}: {section} {key} must be a non-empty string",
                    hint=f"fix {key} in {section}",
                )
            words[key] = value.strip() if isinstance(value, str) else None
        if words["signing_alg"] is not None and words["signing_alg"] not in ALGORITHMS:
            raise ConfigError(
                f"{path}: {section} signing_alg must be one of {', '.join(ALGORITHMS)}",
                hint="or leave it out: the key's kind chooses (RS256, ES256, EdDSA)",
            )
        values["signing_key"] = SigningKey(
            files["private_key"], words["key_id"], words["signing_alg"], section
        )
    return dataclasses.replace(p, **values) if values else p


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
    table = {k: v for k, v in table.items() if k in SETTINGS and k not in CLIENT_KEYS}
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
        if key in ("protocol", "signature_method", "signature_type"):
            values[key] = _one_of(key, value, name, path, fix)
            continue
        if key == "rsa_key":
            values[key] = _key_path(value, name, path, fix)
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
    protocol = values.pop("protocol", None)
    if base is not None:
        if "grant" in values and values["grant"] != base.grant and base.builtin:
            raise ConfigError(f"{path}: the grant of built-in provider {name} cannot be changed")
        is_oauth1 = base.kind.signer is not None
        if protocol is not None and protocol != ("oauth1" if is_oauth1 else "oauth2"):
            raise ConfigError(f"{path}: the protocol of provider {name} cannot be changed")
        if not is_oauth1:
            _only_oauth1(values, name, path)
        return dataclasses.replace(base, **values)
    if protocol == "oauth1":
        return _declare_oauth1(name, values, path)
    _only_oauth1(values, name, path)

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
    prefix = _env_prefix(values, name, path)
    return Provider(
        name=name,
        kind=oauth2.KIND,
        secrets=oauth2.SECRETS,
        required=oauth2.required(grant, values["client_auth"]),
        identity=oauth2.IDENTITY[grant],
        env=env(prefix, oauth2.SECRETS),
        **values,
    )


def _env_prefix(values: dict[str, Any], name: str, path: str) -> str:
    """The provider's ``env_prefix``: the one set, checked, else its name in capitals."""
    prefix = values.setdefault("env_prefix", re.sub(r"[^A-Z0-9]", "_", name.upper()))
    if not re.match(r"^[A-Z][A-Z0-9_]*$", prefix):
        raise ConfigError(f"{path}: [providers.{name}] env_prefix must be an upper-case name")
    return str(prefix)


def _one_of(key: str, value: object, name: str, path: str, fix: str) -> str:
    from keyfob.oauth1 import SIGNATURE_METHODS, SIGNATURE_TYPES

    known = {
        "protocol": PROTOCOLS,
        "signature_method": SIGNATURE_METHODS,
        "signature_type": SIGNATURE_TYPES,
    }[key]
    text = value.strip() if isinstance(value, str) else None
    if key == "signature_method" and text:
        text = text.upper()
    elif text:
        text = text.lower()
    if text not in known:
        raise ConfigError(
            f"{path}: [providers.{name}] {key} must be one of {', '.join(known)}, not {value!r}",
            hint=fix,
        )
    return text


def _key_path(value: object, name: str, path: str, fix: str) -> str:
    """rsa_key: a file path, ``~`` expanded, relative to the config file's folder."""
    import os

    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{path}: [providers.{name}] rsa_key must be the path of a PEM file", hint=fix
        )
    where = os.path.expanduser(value.strip())
    return os.path.join(os.path.dirname(os.path.abspath(path)), where)


def _only_oauth1(values: Mapping[str, Any], name: str, path: str) -> None:
    stray = [k for k in OAUTH1_ONLY if k in values]
    if stray:
        raise ConfigError(
            f"{path}: [providers.{name}] {', '.join(stray)} only mean something to an "
            "OAuth 1.0a provider",
            hint=f'add protocol = "oauth1" to [providers.{name}], or remove {stray[0]}',
        )


def _declare_oauth1(name: str, values: dict[str, Any], path: str) -> Provider:
    """A provider declared with protocol = "oauth1": its three endpoints are needed."""
    missing = [
        k for k in ("request_token_url", "authorize_url", "access_token_url") if k not in values
    ]
    if missing:
        raise ConfigError(
            f"{path}: [providers.{name}] (protocol oauth1) needs {', '.join(missing)}",
            hint="give the provider's request-token, authorize and access-token addresses",
        )
    if values.pop("grant", "oauth1") != "oauth1":
        raise ConfigError(f"{path}: [providers.{name}] an OAuth 1.0a provider has no grant")
    stray = [
        k for k in ("token_url", "device_url", "issuer", "jwt_url", "refresh_url") if k in values
    ]
    if stray:
        raise ConfigError(
            f"{path}: [providers.{name}] an OAuth 1.0a provider has no {', '.join(stray)}",
            hint='remove it, or drop protocol = "oauth1"',
        )
    if values.get("signature_method") == "RSA-SHA1" and not values.get("rsa_key"):
        raise ConfigError(
            f"{path}: [providers.{name}] signature_method RSA-SHA1 needs rsa_key",
            hint="set rsa_key to the path of the RSA private key file (PEM)",
        )
    prefix = _env_prefix(values, name, path)
    for key in ("client_auth", "scope", "leeway"):
        values.pop(key, None)
    return Provider(
        name=name,
        kind=oauth1.KIND,
        grant="oauth1",
        secrets=oauth1.SECRETS,
        required=oauth1.REQUIRED,
        identity=oauth1.IDENTITY,
        env=env(prefix, oauth1.SECRETS),
        **values,
    )
