"""config.toml and the environment, read into plain settings."""

from __future__ import annotations

import ipaddress
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyfob import _paths
from keyfob.errors import ConfigError


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = 5.0
    timeout: float = 30.0
    retries: int = 3
    max_wait: float = 60.0


#: the schemes of a shared cache URL (Redis; the one place that says so)
CACHE_SCHEMES = ("redis://", "rediss://")


@dataclass(frozen=True)
class Settings:
    path: str
    signature: str
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cache_url: str | None = None
    http: HttpSettings = field(default_factory=HttpSettings)

    def __post_init__(self) -> None:
        # Here, not when the cache opens: the broker turns cache failures into warnings.
        if self.cache_url and not self.cache_url.startswith(CACHE_SCHEMES):
            raise ConfigError(
                f"the cache URL {safe_url(self.cache_url)} is not a redis:// or rediss:// URL",
                hint=f"fix [cache] url in {self.path}, or KEYFOB_CACHE_URL",
            )


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read config.toml (missing is fine) and the KEYFOB_* variables."""
    env = os.environ if environ is None else environ
    path = _paths.config_file()
    signature = _paths.config_signature()
    data: dict[str, Any] = {}
    try:
        # The file reached is checked on its descriptor (owner, mode): another user's
        # config.toml could send the secrets to their server. A link is followed (a
        # config.toml linked from a dotfiles folder is common), but what it reaches
        # is checked all the same, and it is what is read.
        with os.fdopen(_paths.open_checked(path), "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        pass
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}", hint="fix the file, or move it aside"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None

    providers = data.get("providers", {})
    if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
        raise ConfigError(f"{path}: [providers.NAME] must be tables")
    cache = data.get("cache", {})
    http = data.get("http", {})
    if not isinstance(cache, dict) or not isinstance(http, dict):
        raise ConfigError(f"{path}: [cache] and [http] must be tables")

    cache_url = env.get("KEYFOB_CACHE_URL") or cache.get("url")
    if cache_url is not None and not isinstance(cache_url, str):
        raise ConfigError(f"{path}: [cache] url must be a string")

    timeout = env.get("KEYFOB_TIMEOUT") or http.get("timeout", HttpSettings.timeout)
    http_settings = HttpSettings(
        connect_timeout=_number(http.get("connect_timeout", 5), "http.connect_timeout", path),
        timeout=_number(timeout, "http.timeout (or KEYFOB_TIMEOUT)", path),
        retries=int(_number(http.get("retries", 3), "http.retries", path)),
        max_wait=_number(http.get("max_wait", 60), "http.max_wait", path),
    )
    return Settings(
        path=path,
        signature=signature,
        providers=providers,
        cache_url=cache_url,
        http=http_settings,
    )


def _number(value: object, name: str, path: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: {name} must be a number of seconds") from None
    if number < 0:
        raise ConfigError(f"{path}: {name} must not be negative")
    return number


LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """Refuse anything but https://, or http:// to a loopback host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url
    if parts.scheme == "http":
        raise ConfigError(
            f"refusing plain http:// for {what} on {parts.hostname}: secrets would cross "
            "the network unencrypted",
            hint="use https://, or http:// only to 127.0.0.1, ::1 or localhost",
        )
    raise ConfigError(f"{what} is not an http(s) URL: {safe_url(url)}")


def safe_url(url: str) -> str:
    """A URL fit for a message: no user info, query or fragment."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
