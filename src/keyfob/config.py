"""config.toml and the environment, read into plain settings."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import tomllib
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keyfob import _paths
from keyfob.errors import ConfigError

if TYPE_CHECKING:
    from keyfob.clientauth import ClientCert


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = 5.0
    timeout: float = 30.0
    retries: int = 3
    max_wait: float = 60.0
    #: [http] proxy: None leaves it to the environment; "" means no proxy at all
    proxy: str | None = field(default=None, repr=False)
    #: [http] no_proxy: None leaves it to NO_PROXY / no_proxy
    no_proxy: str | None = None
    #: [http] ca_bundle: a PEM file or a folder of CA certificates; None: the environment's
    ca_bundle: str | None = None
    #: [http] verify = false: certificate checks off, for loopback hosts only
    verify: bool = True
    #: the proxy and CA variables of the environment when the settings were read
    environ: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: the config file the [http] values came from, for messages
    path: str = field(default="", repr=False, compare=False)
    #: [http] client_cert / client_key: every provider's, unless its table names its own
    client_cert: ClientCert | None = None


@dataclass(frozen=True)
class LimitSettings:
    """[limits]: how long an API request may wait for the rate budget; how often a 429
    is retried."""

    max_wait: float = 60.0
    retries: int = 2


#: the schemes of a shared cache URL (Redis; the one place that says so)
CACHE_SCHEMES = ("redis://", "rediss://")

#: what config.toml may hold; anything else is warned about and ignored
SECTIONS = ("providers", "cache", "http", "limits")
CACHE_KEYS = ("url",)
#: [http] key -> the range it may take: seconds (a timeout above 0), or a count for retries
HTTP_RANGES: Mapping[str, tuple[float, float]] = {
    "connect_timeout": (0.0, 600.0),
    "timeout": (0.0, 3600.0),
    "retries": (0, 20),
    "max_wait": (0.0, 86400.0),
}
#: [limits] key -> its range
LIMIT_RANGES: Mapping[str, tuple[float, float]] = {"max_wait": (0.0, 86400.0), "retries": (0, 20)}
_ABOVE_ZERO = frozenset({"connect_timeout", "timeout"})
#: [http] keys that hold text (a URL, host names, a path), and those that hold true/false
HTTP_TEXT = ("proxy", "no_proxy", "ca_bundle")
HTTP_FLAGS = ("verify",)
#: [http] keys that name a file (mutual TLS)
HTTP_FILES = ("client_cert", "client_key")
HTTP_KEYS = (*HTTP_RANGES, *HTTP_TEXT, *HTTP_FLAGS, *HTTP_FILES)
#: the variables that choose proxies and CA certificates, as requests and curl read them
NETWORK_VARS = (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",  # set under CGI, where HTTP_PROXY is a request header (httpoxy)
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)

log = logging.getLogger("keyfob")


@dataclass(frozen=True)
class Settings:
    path: str
    signature: str
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cache_url: str | None = None
    http: HttpSettings = field(default_factory=HttpSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)

    def __post_init__(self) -> None:
        # Here, not when the cache opens: the broker turns cache failures into warnings.
        if self.cache_url:
            where = f"fix [cache] url in {self.path}, or KEYFOB_CACHE_URL"
            if not self.cache_url.startswith(CACHE_SCHEMES):
                raise ConfigError(
                    f"the cache URL {safe_url(self.cache_url)} is not a redis:// or rediss:// URL",
                    hint=where,
                )
            if _bad_port(self.cache_url):
                raise ConfigError(
                    f"the cache URL {safe_url(self.cache_url)} has a port that is not a number "
                    "from 1 to 65535",
                    hint=where,
                )

    def __repr__(self) -> str:
        # Neither the cache URL's password nor whatever a provider table holds.
        cache = safe_url(self.cache_url) if self.cache_url else None
        return (
            f"Settings(path={self.path!r}, providers={sorted(self.providers)!r}, "
            f"cache_url={cache!r}, http={self.http!r})"
        )


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read config.toml (missing is fine) and the KEYFOB_* variables.

    A value of the wrong type or out of range is a ``ConfigError`` naming the
    key and the file; an unknown section or key is a warning naming the
    nearest known one."""
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

    for name, value in data.items():
        if name not in SECTIONS:
            what = (
                f"section [{name}]"
                if isinstance(value, dict)
                else f"key `{name}` outside a section"
            )
            warn_unknown(path, what, name, SECTIONS, sections=True)
    providers = data.get("providers", {})
    if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
        raise ConfigError(
            f"{path}: [providers.NAME] must be tables",
            hint=f"fix {path}: one [providers.NAME] table per provider",
        )
    cache = _table(data, "cache", path)
    http = _table(data, "http", path)
    for name in cache:
        if name not in CACHE_KEYS:
            warn_unknown(path, f"key `{name}` in [cache]", name, CACHE_KEYS)
    for name in [n for n in http if n not in HTTP_KEYS]:
        warn_unknown(path, f"key `{name}` in [http]", name, HTTP_KEYS)
        http = {k: v for k, v in http.items() if k != name}
    files = {k: file_setting(http[k], f"[http] {k}", path) for k in HTTP_FILES if k in http}
    http = {k: v for k, v in http.items() if k not in HTTP_FILES}
    limits = _table(data, "limits", path)
    for name in [n for n in limits if n not in LIMIT_RANGES]:
        warn_unknown(path, f"key `{name}` in [limits]", name, tuple(LIMIT_RANGES))
        limits = {k: v for k, v in limits.items() if k != name}
    limit_values = {
        key: _setting(limits[key], key, f"[limits] {key}", path, LIMIT_RANGES) for key in limits
    }

    cache_url = env.get("KEYFOB_CACHE_URL") or cache.get("url")
    if cache_url is not None and not isinstance(cache_url, str):
        raise ConfigError(
            f"{path}: [cache] url must be a string", hint=f"fix [cache] url in {path}"
        )

    values = {
        key: _setting(http[key], key, f"[http] {key}", path) for key in HTTP_RANGES if key in http
    }
    text = {key: _text(http[key], key, path) for key in HTTP_TEXT if key in http}
    flags = {key: _flag(http[key], key, path) for key in HTTP_FLAGS if key in http}
    if env.get("KEYFOB_TIMEOUT"):
        values["timeout"] = _setting(env["KEYFOB_TIMEOUT"], "timeout", "KEYFOB_TIMEOUT", None)
    defaults = HttpSettings()
    http_settings = HttpSettings(
        connect_timeout=values.get("connect_timeout", defaults.connect_timeout),
        timeout=values.get("timeout", defaults.timeout),
        retries=int(values.get("retries", defaults.retries)),
        max_wait=values.get("max_wait", defaults.max_wait),
        proxy=text.get("proxy"),
        no_proxy=text.get("no_proxy"),
        ca_bundle=text.get("ca_bundle"),
        verify=flags.get("verify", True),
        environ=tuple((name, env[name]) for name in NETWORK_VARS if env.get(name)),
        path=path,
        client_cert=client_cert(files, "[http]", path),
    )
    return Settings(
        path=path,
        signature=signature,
        providers=providers,
        cache_url=cache_url,
        http=http_settings,
        limits=LimitSettings(
            max_wait=limit_values.get("max_wait", LimitSettings.max_wait),
            retries=int(limit_values.get("retries", LimitSettings.retries)),
        ),
    )


def file_setting(value: object, name: str, path: str) -> str:
    """A file a setting names: ``~`` expanded, a relative path taken from the folder of
    config.toml. The file itself is checked when first used."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{path}: {name} must be the path of a file", hint=f"fix {name} in {path}"
        )
    value = os.path.expanduser(value.strip())
    return os.path.join(os.path.dirname(os.path.abspath(path)), value)


def client_cert(files: Mapping[str, str], setting: str, path: str) -> ClientCert | None:
    """The ``client_cert`` / ``client_key`` pair of a table; a key alone is an error, a
    certificate alone holds its key too (as curl's ``--cert``)."""
    from keyfob.clientauth import ClientCert

    if "client_cert" not in files:
        if "client_key" in files:
            raise ConfigError(
                f"{path}: {setting} has client_key but no client_cert",
                hint=f"add client_cert (the certificate of that key) to {setting}",
            )
        return None
    cert = files["client_cert"]
    return ClientCert(cert, files.get("client_key", cert), setting)


def _table(data: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name} must be a table", hint=f"write it as [{name}] in {path}")
    return table


def _setting(
    value: object,
    key: str,
    name: str,
    path: str | None,
    ranges: Mapping[str, tuple[float, float]] = HTTP_RANGES,
) -> float:
    """An [http] or [limits] value (from ``path``, else the environment), checked
    against its range."""
    low, high = ranges[key]
    whole = key == "retries"
    if whole:
        what = f"a whole number from {low:g} to {high:g}"
    elif key in _ABOVE_ZERO:
        what = f"a number of seconds above {low:g}, at most {high:g}"
    else:
        what = f"a number of seconds from {low:g} to {high:g}"
    where, fix = (f"{path}: ", f"fix {name} in {path}") if path else ("", f"fix or unset {name}")
    if path is None and isinstance(value, str):
        try:
            value = int(value) if whole else float(value)
        except ValueError:
            raise ConfigError(f"{where}{name} must be {what}", hint=fix) from None
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        raise ConfigError(f"{where}{name} must be {what}, not {_type_name(value)}", hint=fix)
    number = float(value)
    too_low = number <= low if key in _ABOVE_ZERO else number < low
    if not math.isfinite(number) or too_low or number > high:
        raise ConfigError(f"{where}{name} must be {what}, not {value!r}", hint=fix)
    return number


def _text(value: object, key: str, path: str) -> str:
    """An [http] value that is text: a string without control characters."""
    if not isinstance(value, str):
        raise ConfigError(
            f"{path}: [http] {key} must be a string, not {_type_name(value)}",
            hint=f"fix [http] {key} in {path}",
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(
            f"{path}: [http] {key} holds a control character",
            hint=f"fix [http] {key} in {path}",
        )
    return value.strip()


def _flag(value: object, key: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(
            f"{path}: [http] {key} must be true or false, not {_type_name(value)}",
            hint=f"fix [http] {key} in {path}",
        )
    return value


def _type_name(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    names = {str: "a string", bool: "true/false", list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def warn_unknown(
    path: str, what: str, name: str, known: Sequence[str], *, sections: bool = False
) -> None:
    """One line: ``what`` is unknown and ignored, and the nearest known name."""
    import difflib  # only when something is wrong

    near = difflib.get_close_matches(name, known, n=1)
    if near:
        hint = f"did you mean `{near[0]}`?"
    elif sections and name in HTTP_KEYS:
        hint = f"did you mean `{name}` under [http]?"
    else:
        hint = f"known: {', '.join(known)}"
    log.warning("%s: unknown %s, ignored (%s)", path, what, hint)


def is_loopback(host: str) -> bool:
    """A literal loopback address, or ``localhost`` itself.

    Not ``*.localhost`` or ``ip6-localhost``: those names are looked up (in
    DNS, or a hosts file), and the answer need not be loopback."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """Refuse anything but https://, or http:// to a loopback host."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise ConfigError(f"{what} is not a URL: {safe_url(url)}") from None
    if _bad_port(url):
        raise ConfigError(
            f"{what} has a port that is not a number from 1 to 65535: {safe_url(url)}",
            hint=f"fix {what}",
        )
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
    if not _bad_port(url) and parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _bad_port(url: str) -> bool:
    """Whether the URL names a port that is not one (``:abc``, ``:99999``, ``:0``)."""
    try:
        return urllib.parse.urlsplit(url).port == 0
    except ValueError:
        return True
