"""The TLS context of keyfob's HTTP clients: which CAs vouch for a server.

One function, :func:`context`, builds it for every driver (httpx sync and async,
requests), from the :class:`~keyfob.network.CaBundle` that
:func:`keyfob.network.resolve` chose. Imported only once a request is really sent:
``ssl`` and reading a CA bundle cost tens of milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyfob.errors import ConfigError
from keyfob.network import CaBundle, fix_hint

if TYPE_CHECKING:
    import ssl


def context(ca: CaBundle, *, verify: bool = True) -> ssl.SSLContext:
    """A client context trusting ``ca`` (certifi's bundle by default).

    ``verify=False`` (``[http] verify = false``; the transport refuses it for any
    host but a loopback one) checks nothing. A bundle that cannot be read, or holds
    no PEM certificate, is a ``ConfigError`` naming where it was set.
    """
    import ssl

    if not verify:
        insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        return insecure
    if ca.path is None:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    fix = fix_hint(ca.source)
    try:
        if ca.folder:
            return ssl.create_default_context(capath=ca.path)
        return ssl.create_default_context(cafile=ca.path)
    except ssl.SSLError:
        raise ConfigError(
            f"the CA bundle {ca.path} ({ca.source}) holds no PEM certificate",
            hint=f"{fix}: a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the CA bundle {ca.path} ({ca.source}): {exc.strerror}",
            hint=fix,
        ) from None
