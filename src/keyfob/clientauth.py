"""Client authentication without a shared secret: a client certificate (mutual TLS,
RFC 8705) and a signed client assertion (``private_key_jwt``, RFC 7523 §2.2,
OpenID Connect Core §9).

A provider's :class:`ClientCert` (``client_cert`` / ``client_key``, from its
``[providers.NAME]`` table or ``[http]``) rides on every request of that
provider (``HttpRequest.cert``); the transport keeps one client per
certificate and loads it with :func:`load_client_cert`. A provider with
``client_auth = "private_key_jwt"`` signs a fresh assertion for each request
that authenticates the client (:func:`attach` completes the request as it
leaves the flow), with the key of its :class:`SigningKey`.

Key files are checked when first used, each problem one ``ConfigError`` (exit
2) that names the setting and the file: missing, not PEM, not this user's
alone (as OpenSSH refuses a private key others can read), encrypted without
its passphrase (``KEYFOB_CLIENT_KEY_PASSWORD`` / ``KEYFOB_PRIVATE_KEY_PASSWORD``),
or, for mutual TLS, not the key of the certificate. A key, a passphrase and an
assertion never appear in a message, a log line or a ``repr``.

Cheap to import: ``ssl``, ``cryptography`` and ``jwt`` only when used.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from keyfob.errors import ConfigError

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Mapping

    from keyfob.flow import Flow, HttpRequest
    from keyfob.provider.base import Provider

T = TypeVar("T")

#: the client authentications that need no client secret
SECRETLESS = frozenset({"private_key_jwt", "tls_client_auth"})
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: an assertion is good this long (RFC 7523 §3: "a short period")
ASSERTION_LIFETIME = 60
#: the passphrase of an encrypted key, where keyfob finds it
CLIENT_KEY_PASSWORD = "KEYFOB_CLIENT_KEY_PASSWORD"
PRIVATE_KEY_PASSWORD = "KEYFOB_PRIVATE_KEY_PASSWORD"
#: signing algorithms keyfob knows (JWA names, RFC 7518; EdDSA: RFC 8037)
ALGORITHMS = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
_MAX_KEY_FILE = 1 << 20


@dataclass(frozen=True)
class ClientCert:
    """A client certificate and its key, by path; ``setting`` names where they were
    configured (``[providers.myapi] in /path/config.toml``) for messages."""

    cert: str
    key: str
    setting: str = ""

    def __str__(self) -> str:
        return self.cert if self.key == self.cert else f"{self.cert} (key {self.key})"


@dataclass(frozen=True)
class SigningKey:
    """The key a ``private_key_jwt`` client signs its assertions with, by path."""

    path: str
    key_id: str | None = None
    alg: str | None = None
    setting: str = ""


# -- mutual TLS -------------------------------------------------------------------


def load_client_cert(
    ctx: ssl.SSLContext, cert: ClientCert, environ: Mapping[str, str] | None = None
) -> None:
    """Load ``cert`` into ``ctx``, checking both files first (see the module)."""
    import ssl

    env = os.environ if environ is None else environ
    cert_data = _read(cert.cert, f"{cert.setting} client_cert", private=cert.cert == cert.key)
    if b"-----BEGIN CERTIFICATE-----" not in cert_data:
        raise _not_pem(cert.cert, f"{cert.setting} client_cert", "a certificate")
    key_setting = (
        f"{cert.setting} client_key" if cert.key != cert.cert else f"{cert.setting} client_cert"
    )
    fd, key_data = _open_key(cert.key, key_setting)
    try:
        if b"PRIVATE KEY-----" not in key_data:
            raise _not_pem(cert.key, key_setting, "a private key")
        password = _passphrase(key_data, cert.key, key_setting, CLIENT_KEY_PASSWORD, env)
        if password is not None:  # OpenSSL says only "PEM lib" for a wrong passphrase
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            try:
                load_pem_private_key(key_data, password.encode())
            except (ValueError, TypeError):
                raise ConfigError(
                    f"{key_setting}: the key {cert.key} cannot be decrypted with "
                    f"{CLIENT_KEY_PASSWORD}",
                    hint=f"check {CLIENT_KEY_PASSWORD}",
                ) from None
            except Exception:  # noqa: S110 - a kind of key cryptography lacks: OpenSSL may load it
                pass
        # The key is loaded from the descriptor that was checked, not by its name again.
        key_path = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else cert.key
        try:
            # A callable, always: with none, OpenSSL would prompt on the terminal.
            ctx.load_cert_chain(cert.cert, key_path, password=lambda: password or "")
        except ssl.SSLError as exc:
            raise _tls_load_error(exc, cert, key_setting) from None
        except OSError as exc:
            raise ConfigError(
                f"{cert.setting} client_cert: cannot read {cert.cert}: {exc.strerror}",
                hint="check the file",
            ) from None
    finally:
        os.close(fd)


def _tls_load_error(exc: ssl.SSLError, cert: ClientCert, key_setting: str) -> ConfigError:
    reason = str(getattr(exc, "reason", "") or "")
    if "MISMATCH" in reason:
        return ConfigError(
            f"{key_setting}: the key {cert.key} does not match the certificate {cert.cert}",
            hint="give the key the certificate was issued for (openssl x509 -noout -pubkey "
            "and openssl pkey -pubout print the same for a pair)",
        )
    return ConfigError(
        f"{cert.setting} client_cert: cannot load {cert} ({reason or 'not a certificate and key'})",
        hint="give a PEM certificate and its PEM private key",
    )


# -- private_key_jwt ------------------------------------------------------------


def assertion(
    key: SigningKey,
    client_id: str,
    audience: str,
    now: float,
    environ: Mapping[str, str] | None = None,
) -> str:
    """A client assertion (RFC 7523 §3): ``iss`` = ``sub`` = the client id, ``aud`` the
    token endpoint, a fresh ``jti``, ``exp`` a minute on; signed, ``kid`` in the header."""
    import secrets

    env = os.environ if environ is None else environ
    private, alg = _signing_key(key, env)
    import jwt  # PyJWT: only once a provider signs

    issued = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(24),
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    headers = {"kid": key.key_id} if key.key_id else None
    try:
        return jwt.encode(claims, private, algorithm=alg, headers=headers)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise ConfigError(
            f"{key.setting} private_key: cannot sign with {key.path} as {alg} "
            f"({type(exc).__name__})",
            hint="check signing_alg: RS256 and PS256 for RSA, ES256 for P-256, EdDSA for Ed25519",
        ) from None


def _signing_key(key: SigningKey, env: Mapping[str, str]) -> tuple[Any, str]:
    """The private key object, and the algorithm to sign with."""
    setting = f"{key.setting} private_key"
    fd, data = _open_key(key.path, setting)
    os.close(fd)
    if b"PRIVATE KEY-----" not in data:
        raise _not_pem(key.path, setting, "a private key")
    password = _passphrase(data, key.path, setting, PRIVATE_KEY_PASSWORD, env)
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        private = load_pem_private_key(data, password.encode() if password else None)
    except (ValueError, TypeError):
        if password is not None:
            raise ConfigError(
                f"{setting}: the key {key.path} cannot be decrypted with {PRIVATE_KEY_PASSWORD}, "
                "or is not a key",
                hint=f"check {PRIVATE_KEY_PASSWORD} and the file",
            ) from None
        raise _not_pem(key.path, setting, "a private key") from None
    except Exception:  # cryptography's UnsupportedAlgorithm, a key of another kind
        raise ConfigError(
            f"{setting}: {key.path} holds a key of a kind keyfob cannot sign with",
            hint="use an RSA, P-256 (EC) or Ed25519 key",
        ) from None
    fits: tuple[str, ...]
    if isinstance(private, rsa.RSAPrivateKey):
        default, fits = "RS256", ("RS", "PS")
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        sizes = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        default = sizes.get(private.curve.name, "")
        fits = (default,) if default else ()
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        default, fits = "EdDSA", ("EdDSA",)
    else:
        default, fits = "", ()
    if not default:
        raise ConfigError(
            f"{setting}: {key.path} holds a key of a kind keyfob cannot sign with",
            hint="use an RSA, P-256 (EC) or Ed25519 key",
        )
    alg = key.alg or default
    if not alg.startswith(fits):
        raise ConfigError(
            f"{key.setting} signing_alg {alg} does not fit the key in {key.path} ({default} does)",
            hint=f"set signing_alg = {default!r}, or leave it out",
        )
    return private, alg


# -- the files ---------------------------------------------------------------------


def _open_key(path: str, setting: str) -> tuple[int, bytes]:
    """A private key file opened and checked on its descriptor: this user's (or root's)
    and no one else's to read or write, as OpenSSH wants ``~/.ssh/id_*``. The open
    descriptor and the bytes."""
    from keyfob import _paths

    fd = _open(path, setting)
    try:
        st = os.fstat(fd)
        problem = _paths.unsafe_file(st, path)
        mine = hasattr(os, "getuid") and st.st_uid == os.getuid()
        if problem is None and mine and st.st_mode & 0o077:
            problem = (
                f"{path}: the private key is readable by others (mode {st.st_mode & 0o7777:04o})",
                f"chmod 600 {path}",
            )
        if problem is not None:
            why, fix = problem
            raise ConfigError(f"{setting}: refusing to use {why}", hint=f"fix: {fix}")
        data = os.read(fd, _MAX_KEY_FILE + 1)
    except BaseException:
        os.close(fd)
        raise
    return fd, data


def _open(path: str, setting: str) -> int:
    """Open ``path`` for reading; a FIFO or a device is refused, never waited on."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise _unreadable(path, setting, exc) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{setting}: {path} is not a plain file", hint=f"fix {setting}")
    return fd


def _read(path: str, setting: str, *, private: bool = False) -> bytes:
    if private:
        fd, data = _open_key(path, setting)
        os.close(fd)
        return data
    fd = _open(path, setting)
    try:
        return os.read(fd, _MAX_KEY_FILE + 1)
    except OSError as exc:
        raise _unreadable(path, setting, exc) from None
    finally:
        os.close(fd)


def _unreadable(path: str, setting: str, exc: OSError) -> ConfigError:
    import errno

    if exc.errno == errno.ENOENT:
        return ConfigError(f"{setting}: {path} does not exist", hint=f"fix {setting}")
    return ConfigError(
        f"{setting}: cannot read {path}: {exc.strerror}", hint="check the file and its permissions"
    )


def _not_pem(path: str, setting: str, what: str) -> ConfigError:
    return ConfigError(
        f"{setting}: {path} is not {what} in PEM form",
        hint="give a PEM file (-----BEGIN ...-----); openssl x509 / openssl pkey "
        "-outform PEM converts DER",
    )


def _passphrase(
    data: bytes, path: str, setting: str, variable: str, env: Mapping[str, str]
) -> str | None:
    """The passphrase of an encrypted key, from ``variable``; None for a plain key."""
    encrypted = b"ENCRYPTED" in data[: data.find(b"KEY-----") + 100]
    if not encrypted:
        return None
    password = env.get(variable)
    if not password:
        raise ConfigError(
            f"{setting}: the key {path} is encrypted and {variable} is not set",
            hint=f"set {variable} to its passphrase, or decrypt it into a file only you can "
            f"read: openssl pkey -in {path} -out KEY.pem && chmod 600 KEY.pem",
        )
    return password


# -- a provider's flows --------------------------------------------------------------


def attach(p: Provider, flow: Flow[T], clock: Callable[[], float] | None = None) -> Flow[T]:
    """``flow`` with ``p``'s client certificate on each of its requests, and a fresh
    signed assertion on each that authenticates a ``private_key_jwt`` client."""
    if p.client_cert is None and p.signing_key is None:
        return flow
    return _attached(p, flow, clock)


def _attached(p: Provider, flow: Flow[T], clock: Callable[[], float] | None) -> Flow[T]:
    from keyfob.errors import InvalidCredentials
    from keyfob.flow import HttpRequest

    try:
        effect = next(flow)
        while True:
            if isinstance(effect, HttpRequest):
                effect = _prepared(p, effect, clock)
            try:
                reply = yield effect
            except GeneratorExit:
                raise
            except BaseException as exc:  # the driver's failure, where the flow yielded
                effect = flow.throw(exc)
            else:
                effect = flow.send(reply)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    except InvalidCredentials as exc:
        if exc.error == "invalid_client" and not exc.hint:
            exc.hint = _refused_hint(p)
        raise
    finally:
        flow.close()


def _refused_hint(p: Provider) -> str:
    """What to check when the server refuses a client that has no secret to get wrong."""
    section = f"[providers.{p.name}]"
    if p.client_auth == "private_key_jwt" and p.signing_key is not None:
        return (
            f"check private_key and key_id in {section}: the server must know the public "
            "half of that key, under that kid"
        )
    if p.client_auth == "tls_client_auth" and p.client_cert is not None:
        return (
            f"check that {p.client_cert.cert} is the certificate the server has registered "
            "for the client, issued by a CA it trusts"
        )
    return ""


def _prepared(p: Provider, request: HttpRequest, clock: Callable[[], float] | None) -> HttpRequest:
    changes: dict[str, Any] = {}
    if p.client_cert is not None and request.cert is None:
        changes["cert"] = p.client_cert
    if request.client_auth == "private_key_jwt" and p.signing_key is not None and request.form:
        import time

        client_id = request.form.get("client_id", "")
        # OpenID Connect Core §9: the audience SHOULD be the token endpoint, also
        # for the requests to other endpoints (revocation, device authorization).
        audience = p.token_url or request.url
        signed = assertion(p.signing_key, client_id, audience, (clock or time.time)())
        changes["form"] = {
            **request.form,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        }
        changes["secrets"] = (*request.secrets, signed)
    return dataclasses.replace(request, **changes) if changes else request
