"""Which proxy and which CA certificates a request uses, and where each setting came from.

Read as requests and curl read them, from ``[http]`` in config.toml (which wins)
or the environment that :func:`keyfob.config.load` kept (``HttpSettings.environ``):

* the proxy of an ``https://`` URL: ``[http] proxy``, else ``https_proxy`` /
  ``HTTPS_PROXY``, else ``all_proxy`` / ``ALL_PROXY``; of an ``http://`` URL:
  ``http_proxy`` / ``HTTP_PROXY`` (not under CGI, where ``HTTP_PROXY`` is a request
  header: httpoxy), then ``ALL_PROXY``. Lower case wins, as in urllib and curl. A
  proxy without a scheme is ``http://``. ``[http] proxy = ""`` means no proxy at all.
* ``NO_PROXY`` (or ``[http] no_proxy``): names separated by commas or spaces; ``*``
  is every host; ``example.com`` and ``.example.com`` are that domain and every name
  under it (not ``notexample.com``); an IP address, or a network in CIDR form
  (``10.0.0.0/8``, ``fd00::/8``), matches addresses written as such (names are not
  looked up); ``host:port`` matches that port only.
* CA certificates: ``[http] ca_bundle``, else ``REQUESTS_CA_BUNDLE``,
  ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE``, ``SSL_CERT_DIR``, the first set; a PEM file
  or a folder of hashed certificates (``openssl rehash``). It replaces the default
  (certifi's bundle), as in requests and curl.

``~/.netrc`` plays no part: its passwords must never ride along to a token
endpoint (the HTTP clients are built with ``trust_env`` off, and given what is
decided here).

Cheap to import: nothing here touches the network or imports ``ssl``; the TLS
context itself is :func:`keyfob.tls.context`'s.
"""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from keyfob.config import HttpSettings, is_loopback
from keyfob.errors import ConfigError

#: where a proxy of each target scheme may come from, in order (``[http] proxy`` first)
PROXY_VARS: Mapping[str, tuple[str, ...]] = {
    "https": ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"),
    "http": ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"),
}
NO_PROXY_VARS = ("no_proxy", "NO_PROXY")
CA_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
_HASHED = re.compile(r"[0-9a-f]{8}\.r?[0-9]+")


@dataclass(frozen=True)
class Proxy:
    """A forward proxy; ``url`` may hold a user and password, so only :attr:`shown`
    (no user info) goes into messages."""

    url: str = field(repr=False)
    #: where it was set: ``HTTPS_PROXY``, ``[http] proxy in /path/config.toml``
    source: str

    @property
    def shown(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{parts.scheme}://{host}:{_port(parts)}"

    def __repr__(self) -> str:
        return f"Proxy({self.shown!r}, source={self.source!r})"


@dataclass(frozen=True)
class CaBundle:
    """The CA certificates that vouch for servers: ``path`` (a PEM file, or a folder
    when ``folder``), or certifi's bundle when ``path`` is None."""

    path: str | None = None
    folder: bool = False
    #: where it was set: ``SSL_CERT_FILE``, ``[http] ca_bundle in /path/config.toml``
    source: str = ""

    @property
    def shown(self) -> str:
        if self.path is None:
            return "the default (certifi's bundle)"
        return f"{self.path} (from {self.source})"


@dataclass(frozen=True)
class Network:
    """What :func:`resolve` decided: the proxies, the exceptions, the CA bundle."""

    proxies: Mapping[str, Proxy | None]
    no_proxy: tuple[str, ...] = ()
    no_proxy_source: str = ""
    ca: CaBundle = field(default_factory=CaBundle)
    verify: bool = True
    #: where ``verify = false`` was set (for the refusal's message)
    verify_source: str = ""

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy a request to ``url`` goes through, or None (straight there)."""
        parts = urllib.parse.urlsplit(url)
        proxy = self.proxies.get(parts.scheme.lower())
        if proxy is None or bypassed(self.no_proxy, parts.hostname or "", _port(parts)):
            return None
        return proxy

    def describe(self) -> list[str]:
        """What ``keyfob providers`` and ``keyfob status`` print: proxies and CA bundle,
        without any proxy password."""
        lines = []
        https, http = self.proxies.get("https"), self.proxies.get("http")
        if https is None and http is None:
            lines.append("proxy: none")
        elif https == http and https is not None:
            lines.append(f"proxy: {https.shown} (from {https.source})")
        else:
            for scheme, proxy in (("https", https), ("http", http)):
                said = f"{proxy.shown} (from {proxy.source})" if proxy else "none"
                lines.append(f"proxy for {scheme}:// URLs: {said}")
        if self.no_proxy and (https or http):
            lines.append(f"no proxy for: {', '.join(self.no_proxy)} (from {self.no_proxy_source})")
        lines.append(f"CA bundle: {self.ca.shown}")
        if not self.verify:
            lines.append(
                f"certificate checks: off for loopback hosts ({self.verify_source}); "
                "on for every other host"
            )
        return lines


def resolve(http: HttpSettings) -> Network:
    """The proxies and CA bundle of ``http``: config.toml first, then its environment.

    A proxy URL that is not one, or a CA bundle path that names nothing, is a
    ``ConfigError`` naming the setting or variable (never the proxy's password)."""
    env = dict(http.environ)
    in_config = f"in {http.path}" if http.path else "in config.toml"
    proxies: dict[str, Proxy | None] = {}
    for scheme, names in PROXY_VARS.items():
        if http.proxy is not None:
            source = f"[http] proxy {in_config}"
            proxies[scheme] = _proxy(http.proxy, source) if http.proxy else None
            continue
        proxies[scheme] = None
        for name in names:
            if name == "HTTP_PROXY" and env.get("REQUEST_METHOD"):
                continue  # httpoxy: under CGI a client sets this through a Proxy: header
            if env.get(name, "").strip():
                proxies[scheme] = _proxy(env[name], name)
                break
    if http.no_proxy is not None:
        no_proxy, no_proxy_source = http.no_proxy, f"[http] no_proxy {in_config}"
    else:
        name = next((n for n in NO_PROXY_VARS if env.get(n, "").strip()), "")
        no_proxy, no_proxy_source = env.get(name, ""), name
    return Network(
        proxies=proxies,
        no_proxy=tuple(e for e in re.split(r"[,\s]+", no_proxy.lower()) if e),
        no_proxy_source=no_proxy_source,
        ca=_ca_bundle(http, env, in_config),
        verify=http.verify,
        verify_source=f"[http] verify = false {in_config}",
    )


def check_verify(network: Network, url: str, what: str) -> None:
    """Certificate checks are off only for a loopback host (DESIGN: "the answer is a
    CA bundle")."""
    if network.verify:
        return
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and not is_loopback(parts.hostname or ""):
        raise ConfigError(
            f"refusing to skip certificate checks for {what} on {parts.hostname}: "
            f"{network.verify_source} applies to loopback hosts only",
            hint="remove `verify = false`, and give the CA that signed the server's "
            "certificate: [http] ca_bundle = PATH (a PEM file), or SSL_CERT_FILE",
        )


def bypassed(entries: tuple[str, ...], host: str, port: int) -> bool:
    """Whether NO_PROXY's ``entries`` (lower case) exempt ``host``:``port``."""
    host = host.strip("[]").rstrip(".").lower()
    address = _address(host)
    for entry in entries:
        if entry == "*":
            return True
        name, wanted = _split_port(entry)
        if wanted is not None and wanted != port:
            continue
        if "/" in name:
            try:
                network = ipaddress.ip_network(name, strict=False)
            except ValueError:
                continue
            if address is not None and address in network:
                return True
            continue
        entry_address = _address(name)
        if entry_address is not None:
            if address is not None and address == entry_address:
                return True
            continue
        name = name.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def fix_hint(source: str) -> str:
    """The hint's first words for a bad setting: a config.toml one (``[http] ...``) is
    fixed; an environment variable may also be unset."""
    return f"fix {source}" if source.startswith("[") else f"fix or unset {source}"


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, or a bare name, address or network."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:
        return entry, None
    return name, int(port) if port.isascii() and port.isdigit() else None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _port(parts: urllib.parse.SplitResult) -> int:
    try:
        port = parts.port
    except ValueError:
        port = None
    return port or (443 if parts.scheme.lower() == "https" else 80)


def _proxy(value: str, source: str) -> Proxy:
    value = value.strip()
    url = value if "://" in value else "http://" + value
    fix = fix_hint(source)
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not one
    except ValueError:
        raise ConfigError(f"{source} is not a proxy URL", hint=fix) from None
    scheme = parts.scheme.lower()
    if scheme.startswith("socks"):
        raise ConfigError(
            f"{source} names a SOCKS proxy; keyfob speaks to HTTP proxies only",
            hint=f"{fix}: give an http:// proxy (HTTPS_PROXY, or [http] proxy in config.toml)",
        )
    if scheme not in ("http", "https") or not parts.hostname or parts.port == 0:
        raise ConfigError(
            f"{source} is not an http:// or https:// proxy URL with a host",
            hint=f"{fix}: e.g. http://proxy.internal:3128",
        )
    return Proxy(urllib.parse.urlunsplit((scheme, parts.netloc, "", "", "")), source)


def _ca_bundle(http: HttpSettings, env: Mapping[str, str], in_config: str) -> CaBundle:
    if http.ca_bundle:
        path, source = http.ca_bundle, f"[http] ca_bundle {in_config}"
    else:
        name = next((n for n in CA_VARS if env.get(n, "").strip()), None)
        if name is None:
            return CaBundle()
        path, source = env[name].strip(), name
    path = os.path.expanduser(path)
    fix = fix_hint(source)
    what = "a PEM file of CA certificates, or a folder of them"
    if os.path.isdir(path):
        try:
            names = os.listdir(path)
        except OSError as exc:
            raise ConfigError(
                f"cannot read the CA folder {path} ({source}): {exc.strerror}", hint=fix
            ) from None
        if not any(_HASHED.fullmatch(n) for n in names):
            raise ConfigError(
                f"the CA folder {path} ({source}) holds no certificates by hash name",
                hint=f"run `openssl rehash {path}`, or {fix}: {what}",
            )
        return CaBundle(path, folder=True, source=source)
    if not os.path.exists(path):
        raise ConfigError(f"the CA bundle {path} ({source}) does not exist", hint=f"{fix}: {what}")
    return CaBundle(path, source=source)
